"""measure_memory.py: a measurement too big for memory is refused before any image is decoded, with the estimate,
the limit and what to lower; the feature-map probe counts what a forward pass holds."""

import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from typer.testing import CliRunner

import invariance_lab as il
import invariance_lab.eval.measure_memory as measure_memory
from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError, FactoryError
from invariance_lab.data.images import FolderImages, from_tensor, open_folder
from invariance_lab.eval.measure_memory import check_measure_memory
from invariance_lab.nn.maps import feature_map_bytes


@pytest.fixture
def pngs(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (64, 64)).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(self, path):
        raise AssertionError(f"{path} was decoded before the memory check")
    monkeypatch.setattr(FolderImages, "_read", refuse)


def test_the_estimate_refuses_from_the_headers_alone(pngs, monkeypatch, no_decoding):
    monkeypatch.setattr(measure_memory, "memory_limit", lambda: (100_000, "a test's limit"))
    src = open_folder(pngs, size=(64, 64))
    # 3 images x 64 x 64 floats = 48 KiB a batch: held 3 times decoded, 4 times shifted on the canvas
    assert measure_memory.measure_memory(src, batch_size=256, mode="canvas") == {
        "decoded images": 3 * 3 * 4 * 64 * 64, "shifted inputs": 4 * 3 * 4 * 64 * 64}
    with pytest.raises(ConfigError, match=r"too big to measure: 3 images of 64 x 64 px .* about 336 KiB .* over the "
                                          r"limit of 97.7 KiB \(a test's limit\).* lower --batch-size"):
        check_measure_memory(src, batch_size=256, mode="canvas")
    check_measure_memory(src, batch_size=1, mode="circular")  # one image at a time: 48 KiB, under the limit


# conv_scratch's oneDNN rule applies where torch has oneDNN (x86 and most ARM builds); elsewhere the unfold rule
ONEDNN = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")


@ONEDNN
@pytest.mark.filterwarnings("ignore:TF32 acceleration")  # torch says so whenever oneDNN flags are set
def test_feature_maps_count_a_convolutions_output_and_scratch():
    conv = nn.Conv2d(1, 4, 3, padding=1)
    peak, taps, made = feature_map_bytes({"m": nn.Sequential(conv, nn.ReLU())}, torch.zeros(2, 1, 8, 8))
    # per image: the output 4 x 64 floats and oneDNN's blocked copy of it (4 channels padded to a block of 16:
    # 16 x 64; a 1-channel input is read as it is; the input batch is the caller's); ReLU: 256 in, 256 out
    assert peak == 4 * (256 + 16 * 64) and taps == made == 4 * (256 + 256)
    in_place = nn.Sequential(conv, nn.ReLU(inplace=True))  # its output is its input's memory: made once
    assert feature_map_bytes({"m": in_place}, torch.zeros(2, 1, 8, 8)).made == 4 * 256
    with torch.backends.mkldnn.flags(enabled=False):  # the native path: the unfolded input, 1 x 9 x 64
        assert feature_map_bytes({"m": conv}, torch.zeros(2, 1, 8, 8))[0] == 4 * (256 + 9 * 64)


def _scratch(conv, x):
    """What the convolution holds beyond its output (and its input, the caller's), from feature_map_bytes."""
    with torch.inference_mode():
        out = conv(x)
    return feature_map_bytes({"c": conv}, x)[0] * len(x) - out.numel() * out.element_size()


@ONEDNN
def test_a_wide_convolution_holds_one_map_more_not_its_unfolded_input():
    """bench/measure_memory.py measured a 64-channel 3 x 3 convolution at input + output + one map (oneDNN's
    blocked copies), where the unfolded input the estimate charged before is nine maps: a VGG-like network of your
    own on 256 RGB images of 128 px was refused at 11.3 GiB and uses 3.2 GiB."""
    x = torch.zeros(2, 64, 16, 16)
    one_map = x.numel() * 4
    assert _scratch(nn.Conv2d(64, 64, 3, padding=1), x) == one_map
    assert _scratch(nn.Conv2d(64, 128, 3, padding=1, stride=2), x) == one_map  # the input's copy; output half
    # circular padding: F.pad's copy (18 x 18) too, and the blocked copy is of the padded input
    padded = 2 * 64 * 18 * 18 * 4
    assert _scratch(nn.Conv2d(64, 64, 3, padding=1, padding_mode="circular"), x) == padded + padded
    # padding="same" with an even kernel: torch first copies the input one pixel larger (17 x 17)
    with pytest.warns(UserWarning, match="zero-padded copy"):
        assert _scratch(nn.Conv2d(64, 64, 2, padding="same"), x) == 2 * (2 * 64 * 17 * 17 * 4)
    # 3 channels in, 8 out: the input is read as it is, the output copied with its channels padded to 16
    assert _scratch(nn.Conv2d(3, 8, 3, padding=1), torch.zeros(2, 3, 16, 16)) == 2 * 16 * 16 * 16 * 4
    # off oneDNN (float64 here; CUDA, 1-D and 3-D convolutions too): the unfolded input, 64 x 9 values per position
    wide = nn.Conv2d(64, 64, 3, padding=1).double()
    assert _scratch(wide, x.double()) == 9 * 2 * one_map


class Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x):
        return torch.relu(x + self.body(x))


class Functional(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        a, b = self.block.body[0], self.block.body[2]
        return torch.relu(x + F.conv2d(torch.relu(F.conv2d(x, a.weight, a.bias, padding=1)), b.weight, b.bias,
                                       padding=1))


@ONEDNN
def test_a_residual_blocks_input_is_counted_while_its_body_runs():
    """A skip connection keeps the block's input alive beside its body's maps: a ResNet-like model of your own (64
    channels, 256 RGB images of 128 px) was estimated at 3.33 GiB and used 4.28 GiB; it is estimated at 4.33 GiB now
    (bench/measure_memory.py). In a plain chain each output is freed once the next module has run."""
    one = 64 * 8 * 8 * 4  # a 64-channel map of 8 x 8 px, per image
    x = torch.zeros(2, 4, 8, 8)
    residual = nn.Sequential(nn.Conv2d(4, 64, 3, padding=1), Residual(64))
    chain = nn.Sequential(nn.Conv2d(4, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(64, 64, 3, padding=1))
    # at the body's second convolution: its input, its output, oneDNN's blocked copy and (residual) the block's input
    assert feature_map_bytes({"r": residual}, x)[0] == 4 * one
    assert feature_map_bytes({"c": chain}, x)[0] == 3 * one
    assert feature_map_bytes({"s": torch.jit.script(chain)}, x)[0] == 3 * one  # inside TorchScript too
    # functional code counts as modules do: the same block written with torch.relu and F.conv2d
    functional = Functional(residual[1])
    assert feature_map_bytes({"f": nn.Sequential(residual[0], functional)}, x)[0] == 4 * one


class Attention(nn.Module):
    """Self-attention over the positions of a map, as a model of your own might have it."""

    def __init__(self, project: bool = False):
        super().__init__()
        self.project = nn.Linear(4, 4) if project else None

    def forward(self, x):
        q = x.flatten(2).transpose(1, 2)  # (N, positions, channels): a transposed view
        if self.project is not None:
            return self.project(q)
        return F.scaled_dot_product_attention(q, q, q)


def test_an_attention_layers_scores_count_and_a_failing_model_leaves_no_mode_behind():
    """F.scaled_dot_product_attention on a flattened 64 x 64 map of 4 images grew the process by 583 MiB and was
    estimated at 0.5 MiB: the fused operation was seen whole. Its parts are seen now (513 MiB): here the scores
    and their softmax, 256 x 256 per image. A linear layer on the transposed view copies it first (BLAS)."""
    x = torch.zeros(2, 4, 16, 16)
    assert feature_map_bytes({"a": Attention()}, x).peak >= 2 * 256 * 256 * 4
    view = 4 * 256 * 4  # the input's 4 x 256 values per image: its contiguous copy, then the output
    assert feature_map_bytes({"p": Attention(project=True)}, x).peak >= 2 * view

    with pytest.raises(FactoryError, match="model bad failed when the memory its forward pass needs was measured"):
        feature_map_bytes({"bad": nn.Linear(3, 3)}, x)  # 16 features, not 3
    assert torch._C._len_torch_dispatch_stack() == 0  # the measuring mode is gone with the error


@ONEDNN
def test_a_vgg_like_model_of_your_own_fits_the_default_limit(monkeypatch):
    layers, c = [], 3
    for _ in range(3):
        layers += [nn.Conv2d(c, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c = 64
    vgg = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 2))
    maps = feature_map_bytes({"vgg": vgg}, torch.zeros(2, 3, 128, 128))
    src = from_tensor(torch.zeros(256, 3, 128, 128))
    monkeypatch.setattr(measure_memory, "memory_limit", lambda: (4 * 2**30, "the default"))
    parts = measure_memory.measure_memory(src, batch_size=256, mode="canvas", maps=maps)
    # three 64-channel maps of 128 px per image (input, output, blocked copy) x 256, and the shifted inputs
    assert parts["network feature maps"] == 256 * 3 * 64 * 128 * 128 * 4
    check_measure_memory(src, batch_size=256, mode="canvas", maps=maps)  # 3.2 GiB: not refused


def test_a_model_that_fails_when_its_maps_are_measured_is_a_factory_error_naming_it():
    class SecondCall(nn.Module):  # passes the first check, fails on the next call: the feature-map probe's
        calls = 0

        def forward(self, x):
            SecondCall.calls += 1
            if SecondCall.calls == 2:
                raise RuntimeError("boom")
            return x.mean((2, 3)).repeat(1, 2)

    with pytest.raises(FactoryError, match=r"model mine failed on a batch of shape \(2, 1, 8, 8\) "
                                           r"\(RuntimeError: boom"):
        il.measure({"mine": SecondCall()}, torch.rand(2, 1, 8, 8), dx=[0, 1], mode="circular", engine="brute")


def test_invlab_measure_refuses_before_decoding_or_writing(pngs, tmp_path, monkeypatch, no_decoding):
    monkeypatch.setattr(measure_memory, "memory_limit", lambda: (100_000, "a test's limit"))
    res = CliRunner().invoke(app, ["measure", "--images", str(pngs), "--model", "custom_models:circular_gap",
                                   "--results-dir", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "too big to measure" in res.output and "--batch-size" in res.output
    assert not list((tmp_path / "r").rglob("*"))  # no measure folder made


def test_the_feature_maps_and_the_layer_profile_count_one_after_the_other(monkeypatch):
    """The layer profile runs once the shifts are measured: with --layers --layer-images 256 a VGG-like model of
    64 channels on 128 px was estimated at 14.5 GiB (the two summed) and used 8.0-8.1 GiB; 11.5 GiB now."""
    src = from_tensor(torch.zeros(8, 1, 16, 16))
    parts = measure_memory.measure_memory(src, batch_size=8, mode="circular", maps=(1000, 3000), layer_images=8)
    assert parts["network feature maps"] == 8 * 1000 and parts["layer profile"] == 8 * 2 * 3000
    assert measure_memory.measure_total(parts) == parts["shifted inputs"] + 8 * 2 * 3000
    monkeypatch.setattr(measure_memory, "memory_limit", lambda: (1000, "a test's limit"))
    with pytest.raises(ConfigError, match="would need about 62.9 KiB of memory \\(layer profile 46.9 KiB, shifted "
                                          "inputs 16 KiB, network feature maps 7.81 KiB; the feature maps and the "
                                          "layer profile one after the other: the larger counted\\)"):
        check_measure_memory(src, batch_size=8, mode="circular", maps=(1000, 3000), layer_images=8)


def test_engine_only_feature_maps_are_capped_at_the_engines_chunk_memory():
    """Catches engine_only ignored: the all-shift engine sizes its chunks to ENGINE_MEMORY, so no more is charged."""
    from invariance_lab.eval.engine_plan import ENGINE_MEMORY
    src = from_tensor(torch.zeros(300, 1, 4, 4))
    maps = (8 * 2**20, 0)  # 8 MiB per image: 256 images are 2 GiB
    brute = measure_memory.measure_memory(src, batch_size=256, mode="circular", maps=maps)
    fast = measure_memory.measure_memory(src, batch_size=256, mode="circular", maps=maps, engine_only=True)
    assert brute["network feature maps"] == 256 * maps[0]
    assert fast["network feature maps"] == ENGINE_MEMORY
