"""claims/part_tests.py: claim 2's paired test over images, its power, and the verdict of a pair, on made-up
per-image tables (no training)."""

import math

import numpy as np
import pandas as pd

from invariance_lab.claims.part_tests import judge_pair, paired
from invariance_lab.claims.rules import FAILS, HOLDS, UNDECIDED, UNTESTED
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
