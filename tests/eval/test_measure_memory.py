"""measure_memory.py: a measurement too big for memory is refused before any image is decoded, with the estimate,
the limit and what to lower; the feature-map probe counts what a forward pass holds."""

import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

import invariance_lab as il
import invariance_lab.eval.measure_memory as measure_memory
from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError, FactoryError
from invariance_lab.data.images import FolderImages, from_tensor, open_folder
from invariance_lab.eval.measure_memory import check_measure_memory
from invariance_lab.nn.maps import conv_scratch, feature_map_bytes


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


@pytest.mark.filterwarnings("ignore:TF32 acceleration")  # torch says so whenever oneDNN flags are set
def test_feature_maps_count_a_convolutions_input_output_and_scratch():
    conv = nn.Conv2d(1, 4, 3, padding=1)
    peak, total = feature_map_bytes({"m": nn.Sequential(conv, nn.ReLU())}, torch.zeros(2, 1, 8, 8))
    # per image: input 64 floats, output 4 x 64, and oneDNN's blocked copy of the output (4 channels padded to a
    # block of 16: 16 x 64; a 1-channel input is read as it is); ReLU: 256 in, 256 out
    assert peak == 4 * (64 + 256 + 16 * 64) and total == 4 * (256 + 256)
    with torch.backends.mkldnn.flags(enabled=False):  # the native path: the unfolded input, 1 x 9 x 64
        assert feature_map_bytes({"m": conv}, torch.zeros(2, 1, 8, 8))[0] == 4 * (64 + 256 + 9 * 64)


def _scratch(conv, x):
    with torch.inference_mode():
        return conv_scratch(conv, x, conv(x))


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
    # 3 channels in, 8 out: the input is read as it is, the output copied with its channels padded to 16
    assert _scratch(nn.Conv2d(3, 8, 3, padding=1), torch.zeros(2, 3, 16, 16)) == 2 * 16 * 16 * 16 * 4
    # off oneDNN (float64 here; CUDA, 1-D and 3-D convolutions too): the unfolded input, 64 x 9 values per position
    wide = nn.Conv2d(64, 64, 3, padding=1).double()
    assert _scratch(wide, x.double()) == 9 * 2 * one_map


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
