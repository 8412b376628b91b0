"""sweep_settings.py: the command line's sweep options laid over a run's own, as `invlab sweep` does."""

import pytest
from conftest import untrained_quick_run

from invariance_lab.config.load import load_config
from invariance_lab.core.errors import InvlabError
from invariance_lab.eval.sweep import every_roll
from invariance_lab.run.sweep_settings import sweep_settings


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
