"""The claims' evidence helpers (claims/evidence.py) that need no run."""

from types import SimpleNamespace

import pandas as pd

from invariance_lab.claims.evidence import Evidence, Stat, compare, exact_on_lattice_only, lattice_numbers
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
