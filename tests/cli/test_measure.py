"""`invlab measure` through the command line: a bad checkpoint is one paragraph and exit code 2 (no traceback),
and --debug shows the traceback instead."""

import pandas as pd
import torch
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.data.images import write_folder
from invariance_lab.nn.models import create_model
from invariance_lab.store.checkpoints import save_checkpoint

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def unfit_checkpoint(tmp_path):
    """An invlab checkpoint (fingerprint and all fields valid) whose preset cannot be built on its recorded canvas:
    three 2x2 max-pooling blocks on a 4 px canvas leave no feature map."""
    path = tmp_path / "unfit.pt"
    model = create_model("conv_maxpool", num_classes=2, canvas=32)
    save_checkpoint(path, model, name="conv_maxpool", seed=0, data={"canvas": 4}, train={}, classes=["a", "b"],
                    history=pd.DataFrame({"epoch": [0]}))
    return path


def image_folder(tmp_path):
    path = tmp_path / "imgs"
    pixels = (torch.rand(4, 1, 12, 12, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    write_folder(pixels, path, torch.tensor([0, 1, 0, 1]), ["a", "b"])
    return path


def test_a_checkpoint_that_does_not_fit_its_canvas_is_one_paragraph_and_exit_2(tmp_path):
    weights, images = unfit_checkpoint(tmp_path), image_folder(tmp_path)
    res = invoke("measure", "--weights", weights, "--images", images, "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 2, res.output
    message = res.output.strip()
    assert message.startswith("error:") and "Traceback" not in res.output
    assert len(message.splitlines()) == 1  # one paragraph: the soft-wrapped message is a single line
    assert "4px canvas" in message or "4 px" in message, message  # it names the canvas that does not fit
    assert not (tmp_path / "r" / "measure").exists()  # refused before any folder is made


def test_debug_shows_the_traceback_instead(tmp_path):
    weights, images = unfit_checkpoint(tmp_path), image_folder(tmp_path)
    res = invoke("--debug", "measure", "--weights", weights, "--images", images, "--results-dir", tmp_path / "r",
                 "--quiet")
    assert res.exit_code == 2
    assert "Traceback (most recent call last)" in res.output and "check_model" in res.output
