"""Position probe (Kayhan & van Gemert 2020): labels, the paired test set, and the exact 0.5 of an invariant net."""

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from invariance_lab.data import datasets as D
from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError
from invariance_lab.schema.config import DataConfig, SweepConfig
from invariance_lab.config.load import parse_config
from invariance_lab.core.errors import InvlabError
from invariance_lab.data.shifts import check_sweep

runner = CliRunner()
POS = DataConfig(task="position", canvas=16, size=6, letters=["A", "B", "C"], fonts=["futural", "timesr"],
                 train_images=60, test_images=10, train_shift=1)


def row_centre_of_mass(images):
    rows = torch.arange(images.shape[-2], dtype=torch.float64) + 0.5
    mass = images.double().sum(dim=(1, 3))  # (N, H)
    return (mass * rows).sum(1) / mass.sum(1)


@pytest.mark.parametrize("train_mode", ["canvas", "circular"])
def test_training_labels_are_balanced_and_mark_the_half(train_mode):
    data = POS.model_copy(update=dict(train_mode=train_mode))
    images, labels = D.training_set(data, D.glyph_table(data))
    assert int((labels == 0).sum()) == int((labels == 1).sum()) == 30
    com = row_centre_of_mass(images)
    assert torch.equal(labels, (com >= data.canvas / 2).long())  # label 0 = ink centre of mass in the top half


def test_paired_test_set_rolls_each_top_image_by_half_the_canvas():
    images, labels = D.position_test_set(POS, D.glyph_table(POS))
    assert images.shape == (20, 1, 16, 16) and labels.tolist() == [0, 1] * 10
    top, bottom = images[0::2], images[1::2]
    assert torch.equal(bottom, torch.roll(top, 8, dims=-2))  # bitwise
    assert torch.equal(labels, (row_centre_of_mass(images) >= 8).long())
    assert torch.equal(D.evaluation_set(POS, D.glyph_table(POS))[0], images)


def test_position_task_config_rules():
    with pytest.raises(ConfigError, match="sweep.mode: circular"):
        parse_config({"data": {"task": "position"}, "sweep": {"mode": "canvas"}})
    with pytest.raises(ConfigError, match="even canvas"):
        parse_config({"data": {"task": "position", "canvas": 17}, "sweep": {"mode": "circular"}})
    with pytest.raises(InvlabError, match="--mode circular only"):
        check_sweep(POS, SweepConfig(mode="canvas"), "translation")
    with pytest.raises(InvlabError, match="task: letter"):
        check_sweep(POS, SweepConfig(mode="circular"), "parts")


def test_circular_stride1_gap_probe_scores_exactly_half_for_every_seed(tmp_path):
    """Trained briefly, three seeds: the roll-invariant network cannot tell the halves apart on the pairs."""
    cfg = dict(name="probe", seeds=[0, 1, 2], device="cpu",
               data=POS.model_dump(mode="json"),
               models={"circ": {"arch": "conv_gap", "padding": "circular", "channels": [4, 4]}},
               train={"epochs": 2, "batch_size": 16, "lr": 0.01},
               sweep={"mode": "circular", "dx": [0, 0], "dy": [-8, 8, 4]})
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["run", str(path), "--results-dir", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "r" / "probe").iterdir()
    train = pd.read_csv(run_dir / "train.csv")
    assert len(train) == 6 and (train.test_accuracy == 0.5).all()  # every epoch of every seed
    inv = pd.read_csv(run_dir / "invariance.csv")
    assert (inv.accuracy == 0.5).all() and (inv.n_images == 20).all()
    summary = pd.read_csv(run_dir / "summary.csv")
    assert (summary.clean_accuracy == 0.5).all() and (summary.mean_flip_rate == 0).all()
