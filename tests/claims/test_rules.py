"""rules.py: 'approximately invariant' (a mean flip rate of at most 5%) is read on the 95% interval over seeds.
On the mean alone claim 5's verdict for max pooling + global average was a property of the seeds: 1.0% with seeds
0-2 (holds), 13.1% with seeds 3-5 (does not), 4.2% with seeds 6-8 (holds), each interval holding 5%."""

import math

from invariance_lab.claims.evidence import Stat
from invariance_lab.claims.rules import APPROX_FLIP, within_flip


def test_the_interval_decides_and_undecided_where_it_holds_the_threshold():
    assert within_flip(Stat.of([0.010, 0.011, 0.012])) is True  # the whole interval under 5%
    assert within_flip(Stat.of([0.24, 0.25, 0.245])) is False  # the whole interval above
    for seeds in ([0.008, 0.254, 0.132], [0.045, 0.063, 0.019], [0.001, 0.021]):  # seeds 3-5, 6-8; two seeds
        s = Stat.of(seeds)
        assert s.lo <= APPROX_FLIP < s.hi and within_flip(s) is None, s


def test_one_seed_has_no_interval_and_its_value_decides():
    one = Stat.of([0.04])
    assert math.isnan(one.lo) and within_flip(one) is True
    assert within_flip(Stat.of([0.06])) is False


def test_an_interval_that_reaches_the_threshold_exactly_is_within_it():
    """'At most 5%': an interval whose upper end is exactly 5% is within (a strict < would call it undecided), and
    one whose lower end is exactly 5% holds the threshold, so it is not wholly above."""
    assert within_flip(Stat(0.03, 0.02, 0.01, APPROX_FLIP)) is True
    assert within_flip(Stat(0.07, 0.02, APPROX_FLIP, 0.09)) is None
    assert within_flip(Stat(APPROX_FLIP, math.nan, math.nan, math.nan)) is True  # one seed at exactly 5%
