"""claims/part_tests.py: claim 2's paired test over images, its power, and the verdict of a pair, on made-up
per-image tables (no training)."""

import math

import numpy as np
import pandas as pd

from invariance_lab.claims.part_tests import judge_pair, paired, way
from invariance_lab.claims.rules import FAILS, HOLDS, MIN_REMOVAL, UNDECIDED, UNTESTED
from invariance_lab.core.stats import t_cdf, t_quantile


def _images(base, pooled, seeds=(0, 1, 2), distance=1):
    rows = []
    for seed in seeds:
        for model, values in (("none", base), ("max", pooled)):
            rows += [{"model": model, "seed": seed, "image": i, "glyph": 0, "distance": distance,
                      "prob_change": v, "flip": 0.0} for i, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_the_paired_test_is_a_t_test_over_images_with_its_power():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.02, 0.06, 200)
    pooled = base - 0.01 + rng.normal(0, 0.01, 200)
    found = paired(_images(base, pooled), "max", "none", 1)
    d = base - pooled
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert found.n == 200 and math.isclose(found.diff, d.mean())
    assert math.isclose(found.p, 2 * (1 - t_cdf(d.mean() / se, 199)), rel_tol=1e-9)
    assert math.isclose(found.mde, (t_quantile(0.975, 199) + t_quantile(0.8, 199)) * se, rel_tol=1e-9)
    assert found.seeds_lower == found.n_seeds == 3


def test_a_pair_is_untested_when_removing_the_part_changes_nothing_not_undecided():
    base = np.full(50, 0.03)
    found = paired(_images(base, base - 0.02 + np.linspace(-1e-3, 1e-3, 50)), "max", "none", 1)
    assert judge_pair(found, {"max": 0.3, "none": 0.4}) == HOLDS
    assert judge_pair(found, {"max": 0.0, "none": 0.4}) == UNTESTED  # a part the network ignores decides nothing


def test_no_difference_fails_only_when_the_test_had_power():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.05, 0.07, 300)
    quiet = paired(_images(base, base + rng.normal(0, 0.002, 300)), "max", "none", 1)
    assert quiet.p > 0.05 and quiet.mde <= 0.5 * quiet.base_mean
    assert judge_pair(quiet, {"max": 0.2, "none": 0.2}) == FAILS  # it could have seen a halving, and did not
    small = rng.uniform(0.0, 0.06, 6)
    noisy = paired(_images(small, small + rng.normal(0, 0.05, 6)), "max", "none", 1)
    if noisy.p > 0.05:
        assert judge_pair(noisy, {"max": 0.2, "none": 0.2}) == UNDECIDED  # too few images to tell
    higher = paired(_images(base, base + 0.01), "max", "none", 1)
    assert judge_pair(higher, {"max": 0.2, "none": 0.2}) == FAILS


def _per_seed(effects, n=300, seed=0):
    """Per-image tables where max pooling's change is the base's minus effects[s] in seed s."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.05, 0.07, n)
    return pd.concat([_images(base, base - e + rng.normal(0, 0.002, n), seeds=(s,)) for s, e in enumerate(effects)])


def test_a_clear_difference_decides_only_when_every_seed_shows_it():
    """The images share their networks: a difference the pooled images call clear, but one seed contradicts, is
    undecided either way, and the words say in how many seeds it holds."""
    removal = {"max": 0.2, "none": 0.2}
    mixed_higher = paired(_per_seed([0.03, -0.03, -0.03]), "max", "none", 1)  # higher on average, lower in seed 0
    assert mixed_higher.p < 0.05 and mixed_higher.diff < 0 and mixed_higher.seeds_lower == 1
    assert judge_pair(mixed_higher, removal) == UNDECIDED
    assert way(mixed_higher) == "higher (in 2 of 3 seeds)"
    mixed_lower = paired(_per_seed([0.03, 0.03, -0.03]), "max", "none", 1)
    assert mixed_lower.p < 0.05 and judge_pair(mixed_lower, removal) == UNDECIDED
    assert way(mixed_lower) == "lower (in 2 of 3 seeds)"
    higher = paired(_per_seed([-0.03, -0.03, -0.03]), "max", "none", 1)
    assert judge_pair(higher, removal) == FAILS and way(higher) == "higher (in 3 of 3 seeds)"
    assert way(higher, "0.07 vs 0.04, p = 0.001") == "higher (0.07 vs 0.04, p = 0.001; in 3 of 3 seeds)"
    assert judge_pair(paired(_per_seed([0.03] * 3), "max", "none", 1), removal) == HOLDS


def test_one_image_is_no_test():
    found = paired(_images([0.05], [0.01]), "max", "none", 1)
    assert found.n == 1 and found.p == 1.0 and found.mde == math.inf
    assert judge_pair(found, {"max": 0.2, "none": 0.2}) == UNDECIDED


def _two_sided_p(t, df, points=200_001):
    """P(|T| >= |t|) for Student's t by integrating its density (independent of core.stats.t_cdf)."""
    x = np.linspace(0.0, abs(t), points)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    return 1.0 - 2.0 * float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(x)))


def test_the_p_value_is_two_sided_either_way():
    """A small effect (t about 1.3 with 7 degrees of freedom): p is both tails, about 0.24, not one tail's 0.12,
    and the same whether max pooling's change is lower or higher."""
    d = np.array([0.012, -0.004, 0.009, 0.001, -0.006, 0.015, 0.003, -0.002])
    base = np.full(len(d), 0.05)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    expected = _two_sided_p(t, len(d) - 1)
    assert 0.2 < expected < 0.3
    lower, higher = (paired(_images(base, base - sign * d), "max", "none", 1) for sign in (1, -1))
    assert lower.diff > 0 > higher.diff
    for found in (lower, higher):
        assert math.isclose(found.p, expected, rel_tol=1e-6), (found.p, expected)


def test_a_pair_is_untested_when_removing_the_part_changes_nothing_for_the_base_network():
    """The removal control covers both networks: a part that only the network without pooling ignores decides
    nothing either."""
    base = np.full(50, 0.03)
    found = paired(_images(base, base - 0.02 + np.linspace(-1e-3, 1e-3, 50)), "max", "none", 1)
    assert judge_pair(found, {"max": 0.3, "none": 0.4}) == HOLDS
    assert judge_pair(found, {"max": 0.3, "none": 0.0}) == UNTESTED
    assert judge_pair(found, {"max": 0.3, "none": MIN_REMOVAL}) == HOLDS  # at least 5%: tested
    assert judge_pair(found, {"max": 0.3, "none": 0.049}) == UNTESTED
