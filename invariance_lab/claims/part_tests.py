"""Claim 2's test: is a displaced part's effect smaller with max pooling than without, image by image?

For a pair (max pooling, none) with everything else equal and a distance d, each test image's probability change
(TV, mean over the displacements at distance d, part_focus.py) is averaged over the seeds of each network, and the
differences (none - max pooling) are compared by a paired t-test over the images (two-sided, alpha = ALPHA). Its
power is stated as the smallest true mean difference it detects with 80% power: (t_{1-alpha/2} + t_{0.8}) s / sqrt(n).
The images share their networks, so the test speaks of these trained networks; the seeds are also read one by one,
and a clear difference decides the verdict only when every seed shows it (max pooling lower in each, or higher in
each).

    found = paired(pf.images, "maxpool_gap_circular", "gap_circular", 1)   # Paired(n=300, diff=0.0095, p=0, ...)
    judge_pair(found, {m: removal_flip(pf.images, m) for m in PART_MODELS})   # HOLDS, FAILS, UNDECIDED or UNTESTED
    part_finding(pf.images, pf.parts)                                        # claim 2's Finding
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..core.stats import t_cdf, t_quantile
from .evidence import Finding, Stat
from .part_focus import DISTANCES, PART_MODELS
from .rules import ALPHA, FAILS, HOLDS, MIN_REMOVAL, PARTLY, POWER, POWERED_FRACTION, UNDECIDED, UNTESTED

# the two pairs of claim 2, max pooling first, everything else equal
PAIRS = {("conv_maxpool", "conv_only"): "max pooling vs none with a flatten head (zero padding)",
         ("maxpool_gap_circular", "gap_circular"): "max pooling vs none with a global average head (circular)"}
SHORT = {("conv_maxpool", "conv_only"): "max pooling + flatten", ("maxpool_gap_circular", "gap_circular"):
         "max pooling + global average"}


@dataclass(frozen=True)
class Paired:
    model: str  # with max pooling
    base: str  # without
    distance: int
    n: int  # images
    with_mean: float  # mean TV with max pooling
    base_mean: float
    diff: float  # mean of (base - with): positive when max pooling changes the output less
    p: float  # two-sided paired t-test
    mde: float  # smallest true mean difference detected with POWER at ALPHA
    seeds_lower: int  # seeds in which max pooling's mean TV is the lower
    n_seeds: int


def paired(images: pd.DataFrame, model: str, base: str, distance: int) -> Paired:
    rows = images[images.distance == distance]
    a = rows[rows.model == model].groupby("image").prob_change.mean()
    b = rows[rows.model == base].groupby("image").prob_change.mean()
    d = (b - a.reindex(b.index)).to_numpy()
    n = len(d)
    mean, sd = float(d.mean()), float(d.std(ddof=1)) if n > 1 else 0.0
    se = sd / math.sqrt(n) if n > 1 else 0.0
    if n < 2:  # one image: no test (and so never a verdict)
        p = 1.0
    elif se > 0:
        p = 2 * (1 - t_cdf(abs(mean) / se, n - 1))
    else:
        p = 1.0 if mean == 0 else 0.0
    mde = (t_quantile(1 - ALPHA / 2, n - 1) + t_quantile(POWER, n - 1)) * se if n > 1 else math.inf
    per_seed = rows[rows.model.isin((model, base))].groupby(["seed", "model"]).prob_change.mean().unstack()
    lower = int((per_seed[model] < per_seed[base]).sum())
    return Paired(model, base, distance, n, float(a.mean()), float(b.mean()), mean, p, mde, lower, len(per_seed))


def removal_flip(images: pd.DataFrame, model: str) -> float:
    """The share of predictions the part's removal changes (every image and seed)."""
    rows = images[(images.distance == 0) & (images.model == model)]
    return float(rows.flip.mean())


def judge_pair(found: Paired, removal: dict[str, float]) -> str:
    """The verdict of one pair at one distance, by rules.py's thresholds."""
    weak = [m for m in (found.model, found.base) if removal[m] < MIN_REMOVAL]
    if weak:
        return UNTESTED
    # a clear difference either way counts only when every seed shows it: the images share their networks, so the
    # paired test alone speaks of these trained networks, not of the architectures
    if found.p < ALPHA and found.diff > 0 and found.seeds_lower == found.n_seeds:
        return HOLDS
    if found.p < ALPHA and found.diff < 0 and found.seeds_lower == 0:
        return FAILS
    if found.p >= ALPHA and found.mde <= POWERED_FRACTION * found.base_mean:
        return FAILS  # the test could see max pooling remove that share of the change, and did not
    return UNDECIDED


def num(x: float) -> str:
    """A probability change: three decimals, or two significant digits below 0.01 (saturated networks)."""
    return f"{x:.3f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2g}"


def p_words(p: float) -> str:
    return f"p = {p:.2g}" if p > 0 else "p < 1e-15"  # t_cdf rounds to 1 in float64 beyond that


def way(found: Paired, numbers: str = "") -> str:
    """Max pooling's change against no pooling's, as the test reads it, and in how many seeds: 'higher (in 2 of 3
    seeds)', or with `numbers` first in the brackets: 'higher (0.0068 vs 0.0038, p = 0.004; in 2 of 3 seeds)'."""
    if found.p >= ALPHA:
        return f"no clear difference ({numbers})" if numbers else "no clear difference"
    lower = found.diff > 0
    seeds = found.seeds_lower if lower else found.n_seeds - found.seeds_lower
    return f"{'lower' if lower else 'higher'} ({numbers + '; ' if numbers else ''}in {seeds} of {found.n_seeds} seeds)"


def words(found: Paired) -> str:
    """'conv_maxpool 0.012 vs conv_only 0.025: lower by 0.013 (p = 2e-09; detectable 0.004), in 3 of 3 seeds'."""
    way = "lower" if found.diff > 0 else "higher"
    seeds = found.seeds_lower if found.diff > 0 else found.n_seeds - found.seeds_lower
    return (f"{found.model} {num(found.with_mean)} vs {found.base} {num(found.base_mean)}: {way} by "
            f"{num(abs(found.diff))} ({p_words(found.p)}; detectable with {POWER:.0%} power: {num(found.mde)}), "
            f"{way} in {seeds} of {found.n_seeds} seeds")


def _seed_stat(images: pd.DataFrame, model: str, distance: int, column: str) -> Stat:
    rows = images[(images.model == model) & (images.distance == distance)]
    return Stat.of(rows.groupby("seed")[column].mean())


def part_finding(images: pd.DataFrame, parts: pd.DataFrame) -> Finding:
    """Claim 2's finding from part_focus.py's tables: per pair the verdict at 1 px (within the pooling window),
    the removal control beside it, 2 and 3 px reported."""
    chosen = "part chosen by removal: its strokes (of the glyph's); predictions its removal changes; its ink share"
    numbers = [(chosen, f"{r.letter} in {r.font}",
                f"{r.strokes} (of {r.n_strokes}); {r.removal_flip:.1%}; {r.ink_share:.0%}") for r in parts.itertuples()]
    removal = {m: removal_flip(images, m) for m in PART_MODELS}
    for m in PART_MODELS:
        numbers.append(("removal control: flip rate; probability change (TV)", m,
                        f"{_seed_stat(images, m, 0, 'flip')}; {_seed_stat(images, m, 0, 'prob_change')}"))
    for d in DISTANCES:
        numbers += [(f"part moved {d} px: probability change (TV); flip rate", m,
                     f"{_seed_stat(images, m, d, 'prob_change')}; {_seed_stat(images, m, d, 'flip')}")
                    for m in PART_MODELS]
    verdicts, said, scope = {}, [], []
    for (a, b), label in PAIRS.items():
        tests = {d: paired(images, a, b, d) for d in DISTANCES}
        what = ("paired test at {} px: mean of (no pooling - max pooling) TV; p; detectable with "
                f"{POWER:.0%} power; seeds where max pooling is lower")
        numbers += [(what.format(d), f"{a} vs {b}",
                     f"{t.diff:+.4f}; {p_words(t.p)}; {t.mde:.4f}; {t.seeds_lower} of {t.n_seeds}")
                    for d, t in tests.items()]
        v = verdicts[label] = judge_pair(tests[1], removal)
        beyond = ", ".join(f"{d} px {way(t, f'{num(t.with_mean)} vs {num(t.base_mean)}, {p_words(t.p)}')}"
                           for d, t in tests.items() if d > 1)
        control = f"removing the part changes {removal[b]:.1%} of {b}'s and {removal[a]:.1%} of {a}'s predictions"
        said.append(f"{label}: {v} ({control}; at 1 px, within the pooling window, {words(tests[1])}; beyond it "
                    f"{beyond})")
        short, one = SHORT[(a, b)], tests[1]
        far = ", ".join(f"{d} px {way(t)}" for d, t in tests.items() if d > 1)
        # beyond the window: said as measured (with seeds 3-5 max pooling was lower at 2 and 3 px too)
        past = [d for d, t in tests.items() if d > 1 and judge_pair(t, removal) == HOLDS]
        reach = ("not beyond it" if not past else "and beyond it too" if len(past) == len(tests) - 1 else
                 f"and beyond it at {', '.join(f'{d} px' for d in past)}")
        scope.append(f"{short}: cannot be tested (removing the part changes {min(removal[a], removal[b]):.1%} of "
                     "predictions)" if v == UNTESTED else
                     f"within the pooling window (1 px) for {short} (TV {num(one.with_mean)} vs {num(one.base_mean)} "
                     f"without max pooling), {reach} ({far})" if v == HOLDS else
                     f"{'not' if v == FAILS else 'undecided'} for {short} (1 px: TV {num(one.with_mean)} vs "
                     f"{num(one.base_mean)} without max pooling; {far})")
    testable = {v for v in verdicts.values() if v != UNTESTED}
    verdict = (UNTESTED if not testable else testable.pop() if len(testable) == 1 else PARTLY if HOLDS in testable
               else FAILS if FAILS in testable else UNDECIDED)
    strided = paired(images, "conv_maxpool", "strided_conv", 1)
    said.append(f"beside them a strided convolution, with no max at all, at 1 px: {num(strided.base_mean)} against "
                f"max pooling's {num(strided.with_mean)}")
    scope.sort(key=lambda words: ": cannot be tested" in words)  # what was tested first
    return Finding(verdict, "; ".join(said), numbers, "; ".join(scope))
