"""sweep_settings.py: the command line's sweep options laid over a run's own, as `invlab sweep` does."""

import json
import re
import shutil

import pandas as pd
import pytest
import yaml
from conftest import untrained_quick_run

from invariance_lab.config.load import load_config
from invariance_lab.core.errors import InvlabError
from invariance_lab.data.shifts import every_roll
from invariance_lab.report.plots import figures
from invariance_lab.report.tables import build_report
from invariance_lab.run.sweep_settings import sweep_settings, sweep_target
from invariance_lab.store.results import load_result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return untrained_quick_run(tmp_path_factory)


def settings(run_dir, **options):
    return sweep_settings(run_dir, **{**dict(dx=None, dy=None, mode=None, grid=None, kind="translation"), **options})


def test_nothing_given_keeps_the_runs_own_sweep(run_dir):
    assert settings(run_dir) == load_config(run_dir / "config.yaml").sweep


def test_one_axis_given_fixes_the_other_at_zero_on_a_product_grid(run_dir):
    s = settings(run_dir, dx=[-3.0, 3.0, 1.0])
    assert s.dx == [-3.0, 3.0, 1.0] and s.dy == [0.0, 0.0, 1.0] and s.grid == "product"


def test_all_shifts_is_every_roll_and_refuses_ranges(run_dir):
    s = settings(run_dir, all_shifts=True)
    canvas = load_config(run_dir / "config.yaml").data.canvas
    assert s.mode == "circular" and s.grid == "product" and s.dx == s.dy == every_roll(canvas)
    with pytest.raises(InvlabError, match="leave out --dx"):
        settings(run_dir, all_shifts=True, dx=[0.0, 1.0, 1.0])
    with pytest.raises(InvlabError, match="--mode canvas"):
        settings(run_dir, all_shifts=True, mode="canvas")


def test_parts_are_drawn_on_the_canvas_and_bad_values_name_the_key(run_dir):
    assert settings(run_dir, kind="parts", dx=[-1.0, 1.0, 1.0]).mode == "canvas"
    with pytest.raises(InvlabError, match="invalid sweep options: .*grid"):
        settings(run_dir, grid="diagonal")


def test_subpixel_fft_sweeps_fractional_rolls_and_whole_ones_as_before(run_dir):
    """--subpixel fft: the fractional rolls are band-limited (brute force, the engine says why), the whole ones
    are torch.roll exactly, so their rows are those of a plain circular sweep; summary.csv has the worst case."""
    fft = sweep_target(run_dir, dx=[-1.0, 1.0, 0.25], mode="circular", subpixel="fft")
    plain = sweep_target(run_dir, dx=[-1.0, 1.0, 1.0], mode="circular")
    a, b = pd.read_csv(fft / "invariance.csv"), pd.read_csv(plain / "invariance.csv")
    assert sorted(a.dx.unique()) == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0]
    whole = a[a.dx == a.dx.round()].drop(columns="neighbor_flip_rate").reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, b.drop(columns="neighbor_flip_rate"), check_exact=True)
    protocol = json.loads((fft / "meta.json").read_text())["protocol"]
    assert protocol["subpixel"] == "fft" and "subpixel" not in json.loads((plain / "meta.json").read_text())["protocol"]
    notes = protocol["engine_notes"]  # the sub-pixel shifts are named first, whatever else the model has
    assert protocol["engine"] == "brute" and set(notes) == set(a.model)
    assert all("sub-pixel" in n for n in notes.values())
    assert "subpixel: fft" in (fft / "sweep.yaml").read_text()
    summary = pd.read_csv(fft / "summary.csv")
    assert list(summary.columns[-2:]) == ["robust_accuracy", "consistent_fraction"]
    assert (summary.robust_accuracy <= summary.worst_accuracy).all()
    assert (summary.consistent_fraction <= 1 - summary.worst_flip_rate + 1e-12).all()
    with pytest.raises(InvlabError, match="subpixel: fft is a circular shift .*use it with mode: circular"):
        settings(run_dir, dx=[-1.0, 1.0, 0.5], mode="canvas", subpixel="fft")


@pytest.mark.parametrize("dx", [[-2.0, 2.0, 1.0], [-1.0, 1.0]])
def test_subpixel_fft_over_whole_pixel_rolls_is_refused(run_dir, dx):
    """fft changes nothing on whole-pixel rolls, where the sweep's header said 'band-limited'."""
    with pytest.raises(InvlabError, match=re.escape("every shift here is a whole pixel")):
        settings(run_dir, dx=dx, mode="circular", subpixel="fft")


def test_a_run_swept_with_fft_can_be_swept_on_the_canvas_and_by_parts(run_dir, tmp_path):
    """A run whose own sweep is circular with subpixel: fft: a canvas or part sweep of it draws the letters, a rotate
    sweep turns them, and whole-pixel rolls are rolls, so the run's fft does not apply (they were refused, some
    with no option that could make them, or kept fft on rolls under a 'band-limited' header)."""
    run = tmp_path / run_dir.name
    shutil.copytree(run_dir, run)
    config = run / "config.yaml"
    raw = yaml.safe_load(config.read_text())
    raw["sweep"].update(mode="circular", subpixel="fft", dx=[-1.0, 1.0, 0.5])
    config.write_text(yaml.safe_dump(raw))
    for options in (dict(mode="canvas", dx=[-1.0, 1.0, 0.5]), dict(kind="parts"),
                    dict(mode="canvas", subpixel="bilinear"), dict(angles=[-10.0, 10.0, 10.0]),
                    dict(dx=[-2.0, 2.0, 1.0]), dict(all_shifts=True)):  # turned, or rolls alone: no fft either
        assert settings(run, **options).subpixel == "bilinear", options
    assert settings(run).subpixel == "fft"  # the run's own fractional sweep keeps it


def test_a_metric_of_the_whole_input_is_refused_for_a_part_sweep(run_dir):
    with pytest.raises(InvlabError, match="--metric lie measures transformations of the whole input; it cannot be "
                                          "combined with --kind parts"):
        sweep_target(run_dir, kind="parts", metric="lie")


def test_angles_mean_rotate_scales_mean_scale_and_the_options_of_two_transforms_clash(run_dir):
    s = settings(run_dir, angles=[-40.0, 40.0, 20.0])
    assert s.transform == "rotate" and s.angles == [-40.0, 40.0, 20.0]
    assert settings(run_dir, transform="scale").scales == [0.8, 1.2, 0.1]
    with pytest.raises(InvlabError, match="--transform rotate does not take --dx/--dy.*the options of --transform translate"):
        settings(run_dir, transform="rotate", dx=[0.0, 1.0, 1.0])
    with pytest.raises(InvlabError, match="--angles and --scales belong to two transforms"):
        settings(run_dir, angles=[0.0, 10.0, 10.0], scales=[1.0, 2.0, 1.0])


def test_a_rotate_sweep_writes_an_angle_column_and_reports_along_it(run_dir):
    folder = sweep_target(run_dir, angles=[-30.0, 30.0, 30.0], models=["conv_gap"])
    inv = pd.read_csv(folder / "invariance.csv")
    assert "angle" in inv and "dx" not in inv and sorted(set(inv.angle)) == [-30.0, 0.0, 30.0]
    assert (inv[inv.angle == 0].flip_rate == 0).all()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["protocol"]["transform"] == "rotate" and meta["protocol"]["engines"] == {"conv_gap": "brute"}
    assert "not a roll" in meta["protocol"]["engine_notes"]["conv_gap"]
    (view,) = build_report([folder], by="shift").views
    assert view.values == ["-30", "0", "30"] and view.key == ("axis", "angle")
    assert [name for name, _ in figures([load_result(folder)])][:2] == ["flip_rate_vs_angle.png",
                                                                        "prob_change_vs_angle.png"]


@pytest.mark.parametrize("options, words", [
    (dict(all_shifts=True, dx=[0.0, 1.0, 1.0]), "leave out --dx"),
    (dict(kind="parts", metric="lie"), "--metric lie measures transformations of the whole input"),
    (dict(kind="parts", layers=True), "--layers measures transformations of the whole input"),
    (dict(scales=[1e-10, 1e-10, 1.0]), "(it would be used as 0, and named 1e-10)"),
])
def test_a_config_swept_with_bad_options_is_refused_before_a_run_is_trained(tmp_path, quick_config_path, options,
                                                                            words):
    with pytest.raises(InvlabError, match=words):
        sweep_target(quick_config_path, results_dir=tmp_path / "r", **options)
    assert not (tmp_path / "r").exists()  # nothing trained, no folder made


def test_a_configs_own_sweep_is_swept_when_its_finished_run_is_reused(run_dir, quick_config_path):
    """Runs are reused for a config of the same training, whatever sweep they were made with: the sweep made is
    the config's (here --set sweep.*), not the reused run's canvas sweep, which it silently was."""
    same = ["train.epochs=0", "seeds=[0]", "data.test_images=12"]  # how untrained_quick_run made the run
    folder = sweep_target(quick_config_path, overrides=[*same, "sweep.mode=circular", "sweep.dx=[-1, 1]",
                                                        "sweep.dy=[0, 0]"], results_dir=run_dir.parents[1])
    assert folder.parent.parent == run_dir  # the finished run, not a new one
    protocol = json.loads((folder / "meta.json").read_text())["protocol"]
    assert protocol["mode"] == "circular" and protocol["dx"][:2] == [-1, 1] and protocol["dy"][:2] == [0, 0]
