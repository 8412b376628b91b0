"""plots.py writes real PNGs from a hand-made result folder; heatmaps only for 2-D product grids."""

import importlib.util
from pathlib import Path

import pytest

from invariance_lab.errors import InvlabError
from invariance_lab.plots import plot_all, plot_heatmaps, plot_metric_vs_shift
from invariance_lab.report import load_result

# The fake-result writer lives in test_report.py; load it by path so this works in any pytest import mode.
_spec = importlib.util.spec_from_file_location("_fake_results", Path(__file__).with_name("test_report.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
write_fake_result = _mod.write_fake_result


def _assert_png(path: Path):
    assert path.is_file()
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert path.stat().st_size > 10_000


@pytest.fixture
def grid_run(tmp_path):
    return load_result(write_fake_result(tmp_path / "results" / "demo" / "r1", run_id="r1",
                                         models=("plain", "blur", "aps")))


def test_line_plot_written(grid_run, tmp_path):
    path = plot_metric_vs_shift([grid_run], "flip_rate", "dx", tmp_path / "plots")
    assert path.name == "flip_rate_vs_dx.png"
    _assert_png(path)


def test_heatmap_written_for_2d_grid(grid_run, tmp_path):
    (path,) = plot_heatmaps([grid_run], "prob_change", tmp_path / "plots")
    assert path.name == "prob_change_heatmap.png"
    _assert_png(path)


def test_no_heatmap_for_axes_grid_or_1d(tmp_path):
    axes = load_result(write_fake_result(tmp_path / "a" / "r", grid="axes"))
    line = load_result(write_fake_result(tmp_path / "b" / "r", dy=(0, 0, 0), dx=(-2, 2, 0.5)))
    assert plot_heatmaps([axes, line], "flip_rate", tmp_path / "plots") == []


def test_plot_all_picks_plots(grid_run, tmp_path):
    paths = plot_all([grid_run], tmp_path / "plots")
    assert sorted(p.name for p in paths) == sorted([
        "flip_rate_vs_dx.png", "flip_rate_vs_dy.png", "flip_rate_heatmap.png",
        "prob_change_vs_dx.png", "prob_change_vs_dy.png", "prob_change_heatmap.png"])
    for p in paths:
        _assert_png(p)


def test_plot_all_dx_only(tmp_path):
    line = load_result(write_fake_result(tmp_path / "b" / "r", dy=(0, 0, 0), dx=(-2, 2, 0.5)))
    paths = plot_all([line], tmp_path / "plots", metrics=("accuracy",))
    assert [p.name for p in paths] == ["accuracy_vs_dx.png"]
    _assert_png(paths[0])


def test_two_runs_compared_and_heatmap_per_run(grid_run, tmp_path):
    other = load_result(write_fake_result(tmp_path / "results" / "other" / "r2", name="other", run_id="r2"))
    _assert_png(plot_metric_vs_shift([grid_run, other], "neighbor_flip_rate", "dy", tmp_path / "p"))
    paths = plot_heatmaps([grid_run, other], "flip_rate", tmp_path / "p")
    assert [p.name for p in paths] == ["flip_rate_heatmap_demo_r1.png", "flip_rate_heatmap_other_r2.png"]


def test_unknown_metric(grid_run, tmp_path):
    with pytest.raises(InvlabError, match="flip_rate"):
        plot_all([grid_run], tmp_path, metrics=("flips",))
