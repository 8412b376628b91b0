"""il.measure and il.layer_profile leave the process as they found it: torch's thread count, the TF32 flags,
torch's RNG, and the user's model (each submodule's train/eval mode, every parameter's device); loading
checkpoints, sweeping and reporting leave torch's RNG too."""

import re
import shutil

import pandas as pd
import pytest
import torch
from torch import nn

import invariance_lab as il
from invariance_lab.core.errors import InvlabError
from invariance_lab.core.runtime import resolve_device

SIDE = 8


class Meddler(nn.Module):
    """A model whose forward pass changes process state, as some libraries do: threads, TF32, the RNG."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
        self.norm = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        torch.set_num_threads(1)
        torch.backends.cuda.matmul.allow_tf32 = not torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = not torch.backends.cudnn.allow_tf32
        torch.rand(3)  # draws from torch's global generator
        return self.fc(self.norm(self.conv(x)).mean(dim=(-2, -1)))


def images(n=6):
    return torch.rand(n, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


def state():
    return (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.random.get_rng_state())


CALLS = {
    "measure": lambda m, dev: il.measure(m, images(), dx=[-1, 0, 1], mode="circular", device=dev),
    "layer_profile": lambda m, dev: il.layer_profile(m, images(), shifts=[-1, 0, 1], mode="circular", device=dev),
}


@pytest.fixture
def two_threads():
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(was)


@pytest.mark.parametrize("call", list(CALLS))
def test_threads_tf32_and_rng_are_given_back(call, two_threads):
    model = Meddler()
    torch.manual_seed(123)
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, False
    threads, matmul, cudnn, rng = state()
    try:
        CALLS[call](model, "cpu")
        now = state()
        assert now[:3] == (threads, matmul, cudnn)
        assert torch.equal(now[3], rng)  # the next random numbers are the ones the caller would have drawn
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@pytest.mark.parametrize("call", list(CALLS))
def test_each_submodules_mode_is_given_back(call):
    m = Meddler().train()
    m.norm.eval()  # a frozen BatchNorm inside a training model: it must stay frozen
    CALLS[call](m, "cpu")
    assert m.training and m.conv.training and m.fc.training and not m.norm.training
    m.eval()
    CALLS[call](m, "cpu")
    assert not any(s.training for s in m.modules())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("call", list(CALLS))
def test_the_models_device_and_tf32_are_given_back_after_a_cuda_measurement(call):
    m = Meddler()
    m.fc.cuda()  # spread over two devices: each parameter goes back to its own
    before = {n: p.device for n, p in [*m.named_parameters(), *m.named_buffers()]}
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, True
    try:
        CALLS[call](m, "cuda")  # resolve_device turns TF32 off for the measurement
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == tf32
        assert {n: p.device for n, p in [*m.named_parameters(), *m.named_buffers()]} == before
        m.cpu()
        CALLS[call](m, "cuda")
        assert all(p.device.type == "cpu" for p in [*m.parameters(), *m.buffers()])
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True


def test_reading_options_of_image_files_are_refused_for_a_tensor():
    for kwargs in ({"size": 4}, {"colour": "rgb"}):
        with pytest.raises(il.InvlabError, match="size and colour say how to read a folder of image files"):
            il.measure(Meddler(), images(), dx=[0, 1], mode="circular", **kwargs)


def test_loading_checkpoints_sweeping_and_reporting_leave_the_callers_random_numbers(small_quick_run, tmp_path):
    """load_checkpoint builds the model (its initial weights drawn) before reading the file's: in a fork of the
    generator, so il.load_checkpoint, il.sweep_experiment and il.html_report (its gallery loads checkpoints) leave
    torch's random numbers as the caller had them (they moved them)."""
    run = tmp_path / "run"
    shutil.copytree(small_quick_run, run)
    calls = {"load_checkpoint": lambda: il.load_checkpoint(run / "checkpoints" / "conv_gap-seed0.pt",
                                                           torch.device("cpu")),
             "sweep_experiment": lambda: il.sweep_experiment(run, threads=1),
             "html_report": lambda: il.html_report([run], n_images=1)}
    for name, call in calls.items():
        torch.manual_seed(7)
        before = torch.random.get_rng_state()
        call()
        assert torch.equal(torch.random.get_rng_state(), before), name


@pytest.mark.parametrize("call, words", [
    (lambda m, x: il.measure(m, x, dx=[0, 1], device="tpu"), "device 'tpu' is not a device torch knows"),
    (lambda m, x: il.measure(m, x, dx="1:3"), "dx takes numbers (one, or a list or range of them); got '1:3'"),
    (lambda m, x: il.measure(m, x, transform="rotate", angles=[0, 10], dx=[5, 6]), "dx and dy are the shifts of"),
    (lambda m, x: il.measure(m, x, dx=["1", 2]), "dx takes numbers"),
    (lambda m, x: il.measure(m, x, mean="0.5"), "mean takes numbers"),
    (lambda m, x: il.measure(m, x, ["a"] * 6), "labels are class indices (whole numbers from 0)"),
    (lambda m, x: il.measure(m, x, [1.9] * 6), "labels are class indices (whole numbers from 0)"),
    (lambda m, x: il.measure(m, x, [-1] * 6), "a label is -1"),
    (lambda m, x: il.lie_derivative({"a": m}, x), "lie_derivative takes one model (an nn.Module); got a dict"),
    (lambda m, x: il.summarize(__import__("pandas").DataFrame()), "summarize takes the per-shift table"),
    (lambda m, x: il.build_report([]), "no folder to report"),
    (lambda m, x: il.html_report([]), "no folder to report"),
    (lambda m, x: il.run_experiment({"name": "x"}, results_dir="r"), "run_experiment takes a Config"),
    # a flag is not a number, a fill has nothing to fill in a roll, fft changes no whole-pixel roll
    (lambda m, x: il.measure(m, x, dx=[True]), "dx takes numbers"),
    (lambda m, x: il.measure(m, x, dx=[0, 1], batch_size=True), "batch_size must be a whole number of at least 1"),
    (lambda m, x: il.measure(m, x, dx=[0, 1], mode="circular", fill="edge"), "mode circular rolls the image around"),
    (lambda m, x: il.measure(m, x, dx=[0, 1], mode="circular", subpixel="fft"), "every shift here is a whole pixel"),
    # layer_profile's arguments, each named: none read character by character, cut short or floored
    (lambda m, x: il.layer_profile(m, x, shifts="-2:2"), "shifts takes numbers (dx, with dy = 0) or (dx, dy) pairs"),
    (lambda m, x: il.layer_profile(m, x, shifts=[None]), "shifts takes numbers"),
    (lambda m, x: il.layer_profile(m, x, shifts=[(1, 2, 3)]), "shifts takes numbers (dx, with dy = 0) or (dx, dy)"),
    (lambda m, x: il.layer_profile(m, x, shifts=[1], taps="output"),
     "taps is a list of module names; got the string 'output'"),
    (lambda m, x: il.layer_profile(m, x, n_images=2.7), "n_images must be a whole number of at least 1; got 2.7"),
    (lambda m, x: il.layer_profile(m, x, batch_size=0), "batch_size must be a whole number of at least 1; got 0"),
    (lambda m, x: il.lie_derivative(m, x, batch_size=2.5), "batch_size must be a whole number of at least 1"),
    (lambda m, x: il.summarize([1, 2]), "summarize takes the per-shift table il.measure returns (a pandas DataFrame"),
    (lambda m, x: il.summarize(il.measure(m, x, dx=[0, 1]), n_classes=0), "n_classes must be a whole number of at "
                                                                            "least 2; got 0"),
    (lambda m, x: il.summarize(il.measure(m, x, dx=[0, 1]), n_classes="2"), "n_classes must be a whole number"),
    (lambda m, x: il.open_folder("/no/such/dir"), "images /no/such/dir: no such folder"),
    (lambda m, x: il.load_checkpoint("/no/such.pt", "tpu"), "device 'tpu' is not a device torch knows"),
    (lambda m, x: il.create_model(5, num_classes=2, canvas=16), "create_model takes a preset name"),
])
def test_a_wrong_argument_is_an_invlab_error_naming_it(call, words):
    """Python callers get the library's one-paragraph errors too, not a TypeError or KeyError from deep inside."""
    with pytest.raises(il.InvlabError) as e:
        call(Meddler(), images())
    assert words in str(e.value)


def test_numbers_of_numpy_one_path_and_one_override_are_taken_as_meant(small_quick_run):
    """A numpy number is a number; one folder given as a str is that folder (not its characters); one override
    text is a list of one."""
    import numpy as np

    assert sorted(set(il.measure(Meddler(), images(), dx=np.int64(2), mode="circular").dx)) == [2.0]
    assert il.build_report(str(small_quick_run)).results[0].path == small_quick_run
    assert il.load_config(small_quick_run / "config.yaml", "train.epochs=3").train.epochs == 3


def test_one_shift_is_a_list_of_one_and_one_folder_a_list_of_one_in_every_api_call(small_quick_run):
    """layer_profile takes one number as measure does; html_report one folder as build_report does; run_images
    refuses a count below 1 (-1 had sliced off the last image)."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(32, 2))
    one = il.layer_profile(net, images(), shifts=2, mode="circular", by="shift")
    pd.testing.assert_frame_equal(one, il.layer_profile(net, images(), shifts=[2], mode="circular", by="shift"))
    assert set(one.dx) == {0.0, 2.0}  # the reference and the one shift
    assert il.html_report(small_quick_run, n_images=1).startswith("<!DOCTYPE html>")  # had been a TypeError
    for bad in (-1, 0, 2.5, "all"):
        with pytest.raises(il.InvlabError, match="n_images must be a whole number of at least 1"):
            il.run_images(small_quick_run, bad)
    with pytest.raises(il.InvlabError, match="is not a run folder \\(a file\\)"):
        il.load_result(small_quick_run / "meta.json")


def test_summarize_leaves_at_chance_empty_without_labels():
    table = il.summarize(il.measure(Meddler(), images(), dx=[-1, 0, 1], mode="circular"))
    assert table.clean_accuracy.isna().all() and table.at_chance.isna().all()


class NewApiMeddler(Meddler):
    """A model that turns TF32 off with torch's newer per-backend API (torch >= 2.9), as invlab does on CUDA."""

    def forward(self, x):
        torch.backends.cuda.matmul.fp32_precision = torch.backends.cudnn.conv.fp32_precision = "ieee"
        return self.fc(self.norm(self.conv(x)).mean(dim=(-2, -1)))


@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch < 2.9")
@pytest.mark.parametrize("model", [Meddler, NewApiMeddler])
@pytest.mark.parametrize("precision", ["medium", "high", "highest"])
def test_a_callers_float32_matmul_precision_reads_back_after_a_measurement(precision, model):
    """torch >= 2.9 refuses to read the matmul precision once the older allow_tf32 flags and its newer API
    disagree: il.measure wrote the older flags back (unchanged) on every call, even on the CPU, and a model that
    writes either API left them disagreeing."""
    was = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    flags = torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    try:
        il.measure(model(), images(), dx=[-1, 0, 1], mode="circular", device="cpu")
        assert torch.get_float32_matmul_precision() == precision
        assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == flags
    finally:
        torch.set_float32_matmul_precision(was)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch < 2.9")
def test_a_cuda_torch_device_turns_tf32_off_as_the_name_cuda_does():
    flags = torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    try:
        for device in ("cuda", torch.device("cuda"), torch.device("cuda", 0)):
            torch.backends.cuda.matmul.fp32_precision = torch.backends.cudnn.conv.fp32_precision = "tf32"
            assert resolve_device(device).type == "cuda"
            assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == (
                "ieee", "ieee")
    finally:
        torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = flags


@pytest.mark.parametrize("device, words", [
    ("cuda:99" if torch.cuda.is_available() else "cuda:1", "was asked for"),
    (torch.device("cuda", 99) if torch.cuda.is_available() else torch.device("cuda"), "was asked for"),
    ("meta", "device meta holds shapes without values"),
    ("xla", "device xla: torch cannot place a tensor there"),
    (0, "device 0 is not a device torch knows"),
    (None, "device None is not a device torch knows"),
    ("CPU", "device 'CPU' is not a device torch knows")])
def test_a_device_this_machine_lacks_is_an_invlab_error_and_the_model_stays_where_it_was(device, words):
    """device= of il.measure took a torch.device or any name as it was: torch's own AssertionError ("Torch not
    compiled with CUDA enabled"), RuntimeError or NotImplementedError came out of the measurement."""
    net = Meddler()
    with pytest.raises(InvlabError, match=re.escape(words)):
        il.measure(net, images(), dx=[0, 1], device=device)
    assert next(net.parameters()).device.type == "cpu"
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")


class Wide(nn.Module):
    """A network of 8 input channels: (N, 8, 16, 4) is its input, not a channels-last image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 2, 3, padding=1, padding_mode="circular")

    def forward(self, x):
        return self.conv(x).mean(dim=(-2, -1))


def test_a_channels_last_batch_is_named_where_it_fails_and_a_meant_shape_is_measured():
    """(N, H, W, C), as numpy and PIL give images, failed with a message about shifts ("moves the whole 1 px image
    out of its frame") or the model's channels; a shape such as (N, 8, 16, 4) can be meant, so nothing refuses it
    up front."""
    hint = r"looks channels-last \(H, W, C\).*permute\(0, 3, 1, 2\)"
    x = images().permute(0, 2, 3, 1)  # (6, 8, 8, 1)
    with pytest.raises(il.InvlabError, match=r"moves the whole 1 px image out of its frame.*" + hint):
        il.measure(Meddler(), x, dx=[-2, 0, 2])
    with pytest.raises(il.InvlabError, match=r"a roll by 1 px of a 1 px image.*" + hint):
        il.measure(Meddler(), x, dx=[0, 1], mode="circular")
    with pytest.raises(il.InvlabError, match=r"failed on a batch of shape \(2, 8, 8, 3\).*" + hint):
        il.measure(Meddler(), images().expand(-1, 3, -1, -1).permute(0, 2, 3, 1), dx=[0], mode="circular")
    table = il.measure(Wide().eval(), torch.rand(6, 8, 16, 4), dx=[0, 1], mode="circular")
    assert len(table) and table["flip_rate"].notna().all()


def test_a_callers_autocast_does_not_change_the_numbers():
    """Inside torch.autocast("cpu", bfloat16) the measurement ran in bfloat16: probabilities moved by ~1e-4, past
    the certificate's threshold of 1e-6 (and the caller's autocast is still on after it)."""
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 2))
    plain = il.measure(net, images(), dx=range(-2, 3), mode="circular")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = il.measure(net, images(), dx=range(-2, 3), mode="circular")
        assert torch.is_autocast_enabled("cpu") and net(images()).dtype == torch.bfloat16
    pd.testing.assert_frame_equal(plain, cast)
