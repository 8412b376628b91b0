"""The claims' evidence helpers (claims/evidence.py) that need no run."""

import math
from types import SimpleNamespace

import pandas as pd

from invariance_lab.claims.evidence import Evidence, Stat, compare, exact_on_lattice_only, lattice_numbers
from invariance_lab.claims.rules import AGREE_TV, EXACT_TV
from invariance_lab.config.load import parse_config
from invariance_lab.core.columns import MAX_COLUMN


def test_the_total_stride_is_the_product_of_each_blocks_own_stride():
    cfg = parse_config({"models": {"kayhan": {"arch": "strided_conv", "first_stride": 1, "channels": [4, 4, 4]},
                                   "pooled": {"arch": "conv_maxpool", "channels": [4, 4]},
                                   "gap": {"arch": "conv_gap"}}})
    ev = Evidence(cfg, {})
    # first_stride: 1 leaves the first block at stride 1: 1 * 2 * 2, not 2 ** 3
    assert {m: ev.total_stride(m) for m in cfg.models} == {"kayhan": 4, "pooled": 4, "gap": 1}


def test_one_seed_is_not_compared_as_within_the_seed_spread():
    """With one seed there is no interval: 1% against 60% must not read as 'within the seed spread'."""
    one = compare(Stat.of([0.01]), Stat.of([0.60]))
    assert "within" not in one and "one seed" in one
    assert compare(Stat.of([0.01, 0.02, 0.01]), Stat.of([0.60, 0.62, 0.61])) == "lower"
    assert compare(Stat.of([0.10, 0.30, 0.20]), Stat.of([0.15, 0.35, 0.25])) == "within the seed spread"


def test_a_network_exact_at_no_multiple_of_its_stride_has_no_exact_lattice():
    """Claim 5's lattice numbers for a network whose every non-zero roll changes some image: no finest exact step
    (None), not a StopIteration."""
    cfg = parse_config({"models": {"pooled": {"arch": "conv_maxpool_gap", "padding": "circular",
                                              "channels": [4, 4]}}})
    rolls = pd.DataFrame([{"model": "pooled", "seed": s, "dx": dx, "dy": dy, "flip_rate": 0.1, "prob_change": 0.1,
                           MAX_COLUMN: 0.0 if (dx, dy) == (0, 0) else 0.3}
                          for s in (0, 1) for dx in range(-4, 5) for dy in range(-4, 5)])
    brute = rolls[(rolls.dx == 0) | (rolls.dy == 0)]
    ev = Evidence(cfg, {"every_roll": SimpleNamespace(invariance=rolls), "layers": SimpleNamespace(invariance=brute)})
    found, numbers = lattice_numbers(ev, "pooled")
    assert found["step"] == 4 and found["period"] is None and found["odd_exact"] == 0
    assert not exact_on_lattice_only(found)
    assert ("finest step of the exact lattice (px)", "pooled", "None") in numbers


def test_the_engine_gap_is_the_largest_difference_at_any_one_shift_not_the_mean():
    """Engine and brute force disagree by 1e-4 at one shift of one seed and agree everywhere else: the gap is that
    1e-4 (above AGREE_TV), not its mean over the shifts (under AGREE_TV); models not asked about are left out."""
    rows = pd.DataFrame([{"model": m, "seed": s, "dx": dx, "dy": dy, "prob_change": 0.01}
                         for m in ("a", "b", "other") for s in (0, 1) for dx in range(4) for dy in range(4)])
    brute = rows[(rows.dx == 0) | (rows.dy == 0)].copy()
    brute.loc[(brute.model == "b") & (brute.seed == 1) & (brute.dx == 2), "prob_change"] += 1e-4
    brute.loc[brute.model == "other", "prob_change"] = 0.5
    ev = Evidence(parse_config({}), {"every_roll": SimpleNamespace(invariance=rows),
                                     "layers": SimpleNamespace(invariance=brute)})
    assert math.isclose(ev.engine_gap(["a", "b"]), 1e-4, rel_tol=1e-6)
    assert ev.engine_gap(["a", "b"]) > AGREE_TV
    assert ev.engine_gap(["a"]) == 0.0


def test_exact_on_the_lattice_needs_brute_force_as_well_as_the_engine():
    """The engine's 0 at the multiples of the stride is not enough: brute force's 1e-3 there is no exact lattice."""
    found = {"on": 0.0, "on_brute": 0.0, "odd_exact": 0}
    assert exact_on_lattice_only(found)
    assert not exact_on_lattice_only({**found, "on_brute": 1e-3})
    assert not exact_on_lattice_only({**found, "on": 1e-3})
    assert not exact_on_lattice_only({**found, "odd_exact": 1})  # exact at an odd shift: more than the lattice
    assert exact_on_lattice_only({**found, "on": EXACT_TV, "on_brute": EXACT_TV})
