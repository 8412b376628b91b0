"""The few statistics the tables need: the Student-t confidence interval of a mean over seeds, that interval cut
to the range a quantity can take, and the test for a network that answers at chance. No scipy: one quantile does
not justify a 40 MB dependency.

    half = ci_halfwidth([0.84, 0.52, 0.99])        # t_{0.975, 2} * s / sqrt(3) = 0.596
    lo, hi, cut = clip_interval(0.78, half, 0, 1)  # (0.18, 1.0, True): the upper end was cut at 1
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from .errors import InvlabError

# A seed whose clean accuracy is at most chance (1 / number of classes) plus this margin is "at chance": it has
# learned (almost) nothing, so its low flip rate says nothing about invariance (one class for every image never
# flips). Five points: a trained network on our letters scores 0.95-1.0; one stuck at a constant scores 1/n.
CHANCE_MARGIN = 0.05


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b): Lentz continued fraction (Numerical Recipes, betacf)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only below this point: use symmetry
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return math.exp(log_front) * h / a


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """Inverse of t_cdf, by bisection (monotone, so this cannot fail; 200 halvings reach float precision)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def ci_halfwidth(values, confidence: float = 0.95) -> float:
    """Half-width of the t confidence interval of the mean: t_{(1+c)/2, n-1} · s / √n (s with ddof=1).

    NaNs are skipped (as pandas' mean skips them); NaN when fewer than two values remain."""
    if not 0.0 < confidence < 1.0:
        raise InvlabError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence}.")
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n < 2:
        return float("nan")
    return t_quantile((1.0 + confidence) / 2.0, n - 1) * float(np.std(x, ddof=1)) / math.sqrt(n)


def clip_interval(mean, half, low: float = 0.0, high: float = 1.0):
    """(lower, upper, cut): the interval mean ± half cut to [low, high], elementwise, and where it was cut.

    A t interval over three seeds is correct arithmetic but can reach below 0 or above 1; a rate cannot, so every
    table and plot shows the cut interval and marks it. A NaN half-width (one seed) gives NaN bounds, not cut.
    Works on scalars, numpy arrays and pandas objects of the same shape."""
    raw_lo, raw_hi = mean - half, mean + half
    cut = (raw_lo < low) | (raw_hi > high)
    return np.clip(raw_lo, low, high), np.clip(raw_hi, low, high), cut


def with_bounds(df: pd.DataFrame, values: list, bounds: tuple[float, float]) -> pd.DataFrame:
    """Add `<v>_lo` and `<v>_hi` after each `<v>_ci`: the interval v ± ci cut to `bounds` (NaN for one seed)."""
    out = df.copy()
    for v in values:
        # numpy, not pandas, arithmetic: the same numbers, without pandas' per-call overhead (a report makes many)
        lo, hi, _ = clip_interval(out[v].to_numpy(dtype=float), out[f"{v}_ci"].to_numpy(dtype=float), *bounds)
        at = list(out.columns).index(f"{v}_ci") + 1
        out.insert(at, f"{v}_lo", lo)
        out.insert(at + 1, f"{v}_hi", hi)
    return out


def chance_level(n_classes) -> float:
    """Accuracy of a network that ignores its input: 1 / number of classes."""
    return 1.0 / n_classes


def is_at_chance(clean_accuracy, n_classes, margin: float = CHANCE_MARGIN):
    """True where the clean accuracy is at most chance + margin (elementwise; NaN accuracy is not flagged)."""
    return np.asarray(clean_accuracy, dtype=float) <= chance_level(np.asarray(n_classes, dtype=float)) + margin


# Far below chance: a network that answers the wrong class this consistently has learned the classes, in another
# order (a folder whose class names sort differently from the model's outputs). Both must hold: at most half of
# chance (a plain threshold, so that many images cannot make 0.49 of two classes look reversed) and a one-sided
# binomial test against chance below this p (so that 0 of 2 images is not enough).
BELOW_CHANCE_P = 0.01


def is_below_chance(correct: int, n: int, n_classes: int, p: float = BELOW_CHANCE_P) -> bool:
    """True when `correct` right answers of n are far below chance (1 / n_classes): at most half of chance, and
    P(X <= correct) < p for X ~ Binomial(n, 1 / n_classes) (that tail is I_{1-1/k}(n - correct, correct + 1))."""
    if n_classes < 2 or n < 1 or not 0 <= correct <= n / (2 * n_classes):
        return False
    return _betainc(n - correct, correct + 1, 1.0 - chance_level(n_classes)) < p


# Probabilities computed by two engines, or in two batch sizes, agree to ~2e-7 in float32: mean changes within this
# of each other are one value, so which shift is "the worst" does not depend on how the numbers were summed. Below
# core/columns.INVARIANT_TV (1e-6), the largest change a certificate still calls invariant.
TIE = 5e-7


def first_max(values: pd.Series, tie: float = TIE):
    """The index label of the first value (in the series' order) within `tie` of the largest, NaN skipped."""
    v = values.dropna()
    return v.index[int(np.argmax((v >= v.max() - tie).to_numpy()))]
