"""schema/sweep.py: sweep.subpixel (bilinear | fft). The default is not written, so every earlier config.yaml and
config digest stays the same; fft is a circular shift, so it is refused on the canvas and lets circular sweeps
take fractional steps."""

import re

import pytest
from conftest import ROOT

from invariance_lab.config.load import load_config, parse_config, to_yaml
from invariance_lab.core.errors import ConfigError, InvlabError
from invariance_lab.data.shifts import axis_values
from invariance_lab.schema.fields import parse_range
from invariance_lab.schema.sweep import SweepConfig


def test_the_default_is_not_written_so_digests_stay_the_same():
    assert "subpixel" not in SweepConfig().model_dump() and SweepConfig().subpixel == "bilinear"
    text = to_yaml(load_config(ROOT / "configs" / "quick.yaml"))
    assert "subpixel" not in text
    assert to_yaml(load_config(ROOT / "configs" / "quick.yaml", ["sweep.subpixel=bilinear"])) == text
    fft = load_config(ROOT / "configs" / "quick.yaml", ["sweep.mode=circular", "sweep.subpixel=fft"])
    assert "subpixel: fft" in to_yaml(fft)
    assert SweepConfig.model_validate(fft.sweep.model_dump(mode="json")) == fft.sweep  # a worker reads it back


def test_fft_takes_fractional_circular_steps_and_only_circular_ones():
    s = SweepConfig(mode="circular", dx=[-1, 1, 0.25], subpixel="fft")
    assert s.dx == [-1.0, 1.0, 0.25]
    with pytest.raises(ConfigError, match=r"\[sweep.subpixel\].*mode: circular"):
        parse_config({"sweep": {"subpixel": "fft"}})
    with pytest.raises(ConfigError, match=r"\[sweep.dx\].*whole pixels.*subpixel: fft"):
        parse_config({"sweep": {"mode": "circular", "dx": [0, 2, 0.5]}})
    with pytest.raises(ConfigError, match="sweep.subpixel"):
        parse_config({"sweep": {"mode": "circular", "subpixel": "lanczos"}})


def test_transform_angles_and_scales_are_written_only_when_set():
    text = to_yaml(load_config(ROOT / "configs" / "quick.yaml"))
    assert not any(k in text for k in ("transform", "angles", "scales"))
    assert to_yaml(load_config(ROOT / "configs" / "quick.yaml", ["sweep.transform=translate"])) == text
    turned = load_config(ROOT / "configs" / "quick.yaml", ["sweep.transform=rotate", "sweep.angles=[-40,40,20]"])
    assert "transform: rotate" in to_yaml(turned) and turned.sweep.angles == [-40.0, 40.0, 20.0]
    with pytest.raises(ConfigError, match=r"\[sweep.scales\].*> 0"):
        parse_config({"sweep": {"transform": "scale", "scales": [0, 1, 0.5]}})
    with pytest.raises(ConfigError, match="sweep.transform"):
        parse_config({"sweep": {"transform": "shear"}})


@pytest.mark.parametrize("start", [1e-10, 1e-300, 4e-10])
def test_scales_are_checked_as_used_rounded_to_9_decimals(start):
    with pytest.raises(ConfigError) as e:
        parse_config({"sweep": {"transform": "scale", "mode": "circular", "scales": [start, start]}}, "c.yaml")
    message = str(e.value)
    said = f"scales {start:g} has more than the 9 decimals a range's values are rounded to (it would be used as 0"
    assert "[sweep.scales]" in message and said in message, message
    with pytest.raises(ValueError, match=re.escape(said)):  # sweep --scales lays over the run's sweep
        SweepConfig.model_validate({"transform": "scale", "scales": [start, start, 1.0]})
    assert axis_values(SweepConfig(transform="scale", scales=[1e-9, 1e-9]).scales) == [1e-9]  # the least one used


@pytest.mark.parametrize("scale", [1e20, 1e6 + 1])
def test_a_scale_beyond_a_million_is_refused_before_any_work(scale):
    """1e20 passed the config and overflowed the drawing to NaN, then blamed the weights (a sweep folder made)."""
    with pytest.raises(ValueError, match="of at most 1,000,000"):
        SweepConfig.model_validate({"transform": "scale", "scales": [scale, scale]})
    assert SweepConfig(transform="scale", scales=[1e6, 1e6]).scales[0] == 1e6


@pytest.mark.parametrize("angles, twice", [([0, 720, 90], "0 and 360"), ([-180, 180, 90], "-180 and 180"),
                                           ([0, 360, 90], "0 and 360"),
                                           ([0, 360, 100], None), ([-180, 180, 100], None), ([10, 10], None)])
def test_a_rotation_grid_that_measures_one_turn_twice_is_refused(angles, twice):
    """0:720:90 was measured, each turn counted twice in every mean; a range wider than a turn whose values are
    all different turns (0:360:100) is fine. Refused for a config's sweep and for every measurement's grid."""
    from invariance_lab.eval.stream import check_grid
    from invariance_lab.schema.sweep import turn_problem

    values = axis_values(angles)
    said = turn_problem(values)
    assert (said is None) == (twice is None) and (twice is None or f"{twice} degrees are one turn" in said)
    if twice:
        with pytest.raises(ConfigError, match=f"\\[sweep.angles\\] {twice} degrees are one turn"):
            load_config(ROOT / "configs" / "quick.yaml", ["sweep.transform=rotate", f"sweep.angles={angles}"])
        with pytest.raises(InvlabError, match=f"angles: {twice} degrees are one turn"):
            check_grid([(a,) for a in values], (1, 16, 16), "canvas", transform="rotate")


@pytest.mark.parametrize("angles", [[1e300, 1e300], [-3601, 0, 1]])
def test_an_angle_past_ten_turns_is_refused_for_a_sweep_and_a_measurement(angles):
    """1e300 degrees was measured, and named angle 1e+300: its turn is what float rounding leaves of it."""
    from invariance_lab.eval.stream import check_grid
    from invariance_lab.schema.sweep import turn_problem

    said = "degrees is past the 3600 (ten turns) invlab turns by"
    assert said in turn_problem(axis_values(angles)) and turn_problem([-3600.0, 3590.0]) is None
    with pytest.raises(ConfigError, match=rf"\[sweep.angles\] an angle of .* {re.escape(said)}"):
        load_config(ROOT / "configs" / "quick.yaml", ["sweep.transform=rotate", f"sweep.angles={angles}"])
    with pytest.raises(InvlabError, match=re.escape(said)):
        check_grid([(a,) for a in axis_values(angles)], (1, 16, 16), "canvas", transform="rotate")


def test_a_step_finer_than_the_rounding_is_refused_for_every_range():
    for key in ("angles", "scales", "dx"):
        with pytest.raises(ConfigError, match=rf"\[sweep.{key}\] {key} step 1e-10 is finer than the 9 decimals"):
            parse_config({"sweep": {key: [1, 1 + 1e-9, 1e-10]}}, "c.yaml")
    with pytest.raises(ConfigError, match="--angles '0:1e-9:1e-10': --angles step 1e-10"):
        parse_range("0:1e-9:1e-10", "--angles")
    assert axis_values(parse_range("0:2e-9:1e-9", "--angles")) == [0.0, 1e-9, 2e-9]


def test_cli_refuses_a_scale_that_rounds_to_0_before_any_folder(tmp_path):
    from typer.testing import CliRunner

    from invariance_lab.cli.main import app
    res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path / "r"),
                                   "--quiet", "--threads", "1", "--set", "sweep.transform=scale",
                                   "--set", "sweep.scales=[0.0000000001, 0.0000000001]",
                                   "--set", "sweep.mode=circular"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "[sweep.scales]" in res.output and "1e-10 has more than the 9 decimals" in res.output, res.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value, used", [("1e-10:1e-10", "0"), ("-1e-320:0", "0"), ("0:3e-10", "0")])
def test_a_shift_past_9_decimals_is_refused_not_swept_as_another_value_named_as_given(value, used):
    """`invlab sweep RUN --dx 1e-10:1e-10` swept dx = 0 under a caption saying "dx 1e-10"."""
    from invariance_lab.schema.fields import parse_range

    with pytest.raises(ConfigError, match=rf"has more than the 9 decimals .*\(it would be used as {used}, and named"):
        parse_range(value, "--dx")
    assert parse_range("0.1:0.3:0.1", "--dx") == [0.1, 0.3, 0.1] and parse_range("1e-9", "--dx") == [1e-9, 1e-9, 1.0]
    assert parse_range("0:1.0000000004", "--dx")[1] == 1.0000000004  # used as 1, and named 1 (as printed)


@pytest.mark.parametrize("values, words", [
    (dict(mode="roll"), "[mode] Input should be 'canvas' or 'circular' (got 'roll')"),
    (dict(dx=4), "[dx] must be a list, e.g. [0, 1] (got 4)"),
    (dict(dxx=[1, 2]), "[dxx] unknown key; did you mean 'dx'?"),
])
def test_a_sweep_built_in_python_is_refused_as_a_configs_sweep_section_is(values, words):
    """il.SweepConfig(...) raised pydantic's ValidationError (its text and URL), which `except il.InvlabError`
    missed; inside a whole config the same value still names its key path under sweep."""
    with pytest.raises(ConfigError) as e:
        SweepConfig(**values)
    assert str(e.value).startswith("SweepConfig(...): invalid sweep.") and words in str(e.value)
    with pytest.raises(ConfigError, match=r"\[sweep\.") as e:
        parse_config({"name": "x", "models": {"m": {"arch": "conv_gap"}}, "sweep": values})
    assert SweepConfig(mode="circular", dx=[-4, 4]).dx == [-4.0, 4.0, 1.0]


def test_a_sweep_batch_holds_at_least_one_image():
    """Catches sweep.batch_size 0 accepted (a sweep that never advances)."""
    from pydantic import ValidationError

    from invariance_lab.schema.sweep import SweepConfig
    assert SweepConfig.model_validate({"batch_size": 1}).batch_size == 1
    with pytest.raises(ValidationError) as e:
        SweepConfig.model_validate({"batch_size": 0})
    assert e.value.errors()[0]["loc"] == ("batch_size",)


def test_a_grid_of_exactly_the_most_shifts_is_accepted_and_axes_grids_count_one_line_each():
    """Catches an off-by-one at MAX_SHIFTS, or an axes grid counted as the product of its axes."""
    from invariance_lab.schema.fields import _Problem
    from invariance_lab.schema.sweep import MAX_SHIFTS, SweepConfig, grid_problem
    assert MAX_SHIFTS == 100_000
    assert grid_problem(SweepConfig(dx=[0, 999, 1], dy=[0, 99, 1])) is None  # 1000 x 100
    too_many = SweepConfig.model_construct(mode="canvas", transform="translate", subpixel=None, grid="product",
                                           dx=[0, 999, 1], dy=[0, 100, 1])
    assert isinstance(grid_problem(too_many), _Problem) and "has 101000 shifts" in str(grid_problem(too_many))
    assert grid_problem(SweepConfig(grid="axes", dx=[0, 999, 1], dy=[0, 999, 1])) is None  # 1999 shifts
