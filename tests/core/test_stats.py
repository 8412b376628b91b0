"""stats.py: the t quantile against tables and closed forms, CI half-widths by hand, the cut interval, chance."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invariance_lab.core.errors import InvlabError
from invariance_lab.core.stats import (CHANCE_MARGIN, ci_halfwidth, clip_interval, first_max, is_at_chance,
                                       is_below_chance, t_quantile, with_bounds)


def test_t_quantile_matches_tables_and_closed_forms():
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(0.975, 4) == pytest.approx(2.776, abs=1e-3)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962, abs=1e-3)
    for p in (0.6, 0.9, 0.975, 0.995):  # exact: df=1 is Cauchy, df=2 has a closed form
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-9)
    assert t_quantile(0.025, 3) == pytest.approx(-t_quantile(0.975, 3))


def test_ci_halfwidth_hand_computed():
    assert ci_halfwidth([0.1, 0.2, 0.3]) == pytest.approx(4.303 * 0.1 / math.sqrt(3), abs=1e-4)  # 0.2484
    assert math.isnan(ci_halfwidth([0.5]))
    assert math.isnan(ci_halfwidth([]))
    assert ci_halfwidth([0.3, 0.3, 0.3]) == 0.0
    assert ci_halfwidth([0.1, np.nan, 0.3]) == pytest.approx(ci_halfwidth([0.1, 0.3]))  # NaN skipped
    with pytest.raises(InvlabError, match="confidence"):
        ci_halfwidth([0.1, 0.2], confidence=95)


def test_the_issue_intervals_are_cut_and_say_so():
    # "0.840 ± 0.518" and "0.003 ± 0.015" from the README: correct t intervals, impossible for a rate
    lo, hi, cut = clip_interval(0.840, 0.518)
    assert (lo, hi, cut) == (pytest.approx(0.322), 1.0, True)
    lo, hi, cut = clip_interval(0.003, 0.015)
    assert (lo, hi, cut) == (0.0, pytest.approx(0.018), True)
    lo, hi, cut = clip_interval(0.381, 0.089)
    assert (lo, hi, cut) == (pytest.approx(0.292), pytest.approx(0.470), False)
    lo, hi, cut = clip_interval(0.1, 0.43, 0.0, math.inf)  # a layer error: cut at 0 only
    assert (lo, hi, cut) == (0.0, pytest.approx(0.53), True)
    lo, hi, cut = clip_interval(0.5, float("nan"))  # one seed: no interval
    assert math.isnan(lo) and math.isnan(hi) and not cut


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=8))
def test_cut_interval_of_any_seeds_stays_in_range_and_holds_the_mean(values):
    mean, half = float(np.mean(values)), ci_halfwidth(values)
    lo, hi, cut = clip_interval(mean, half)
    assert 0.0 <= lo <= min(mean, 1.0) + 1e-12 and max(mean, 0.0) - 1e-12 <= hi <= 1.0
    assert cut == (mean - half < 0 or mean + half > 1)
    if not cut:
        assert (lo, hi) == (pytest.approx(mean - half), pytest.approx(mean + half))


def test_with_bounds_adds_lo_hi_after_ci():
    df = pd.DataFrame({"model": ["a", "b"], "x": [0.84, 0.5], "x_ci": [0.518, 0.1]})
    out = with_bounds(df, ["x"], (0.0, 1.0))
    assert list(out.columns) == ["model", "x", "x_ci", "x_lo", "x_hi"]
    assert out["x_hi"].tolist() == pytest.approx([1.0, 0.6]) and out["x_lo"].tolist() == pytest.approx([0.322, 0.4])


def test_at_chance_is_within_five_points_of_one_over_classes():
    assert CHANCE_MARGIN == 0.05
    assert is_at_chance(0.50, 2) and is_at_chance(0.55, 2) and not is_at_chance(0.56, 2)
    assert is_at_chance(0.38, 3) and not is_at_chance(0.40, 3)  # chance 1/3
    assert is_at_chance(0.1, 2)  # below chance learned nothing usable either
    assert list(is_at_chance([0.5, 0.99, np.nan], [2, 2, 2])) == [True, False, False]


def test_far_below_chance_needs_both_the_threshold_and_the_binomial_test():
    """0 of 8 with two classes (p = 1/256) is far below chance; 0 of 4 (p = 1/16) could be luck; 0.49 of two
    classes on 100 000 images is significant but at chance, not reversed (above half of chance)."""
    assert is_below_chance(0, 8, 2) and is_below_chance(2, 40, 2) and is_below_chance(0, 12, 3)
    assert not is_below_chance(0, 4, 2) and not is_below_chance(49_000, 100_000, 2)
    assert not is_below_chance(1, 10, 3)  # P(X <= 1) = 0.104 for Binomial(10, 1/3)
    assert not is_below_chance(8, 8, 2) and not is_below_chance(0, 0, 2) and not is_below_chance(0, 100, 1)


def test_t_quantile_refuses_a_probability_of_0_or_1_and_no_degrees_of_freedom():
    """Catches the argument check removed: p = 1 or df = 0 returned a number (a bogus interval) instead of raising."""
    for p, df in ((0.0, 3), (1.0, 3), (0.975, 0)):
        with pytest.raises(ValueError, match="0 < p < 1 and df > 0"):
            t_quantile(p, df)


def test_first_max_is_the_first_value_within_the_tie_of_the_largest_nan_skipped():
    """Catches first_max taking the plain argmax (a 4e-7 float-summing difference would pick the worst shift) or a
    tie band on the wrong side of the maximum (then no value qualifies and the first label is returned)."""
    values = pd.Series([np.nan, 0.1, 0.3, 0.3 + 4e-7], index=["nan", "low", "first", "last"])
    assert first_max(values) == "first"
    assert first_max(pd.Series([0.3, 0.3 + 1e-6], index=["a", "b"])) == "b"  # 1e-6 apart: beyond the tie
    assert first_max(pd.Series([0.3, 0.3 + 1e-6], index=["a", "b"]), tie=1e-5) == "a"
