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
from invariance_lab.data.images import FolderImages, open_folder
from invariance_lab.eval.measure_memory import check_measure_memory, feature_map_bytes


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


def test_feature_maps_count_a_convolutions_input_output_and_scratch():
    conv = nn.Conv2d(1, 4, 3, padding=1)
    peak, total = feature_map_bytes({"m": nn.Sequential(conv, nn.ReLU())}, torch.zeros(2, 1, 8, 8))
    # per image: input 64 floats, output 4 x 64, unfolded input 1 x 9 x 64 (x 4 bytes); ReLU: 256 in, 256 out
    assert peak == 4 * (64 + 256 + 9 * 64) and total == 4 * (256 + 256)


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
