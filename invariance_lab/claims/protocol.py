"""How the answers page words the protocol that ran, from the run's config: the letters, the canvas, the run's own
shifts, the number of blocks; and a share as a percentage, or what is missing when nothing was measured.

    protocol_words(cfg)   # {"letters": "A vs B", "canvas": 32, "blocks": "five",
                          #  "canvas_shifts": "canvas shifts of -8..8 px along each axis"}
    pct(0.125)            # "12.5%"; pct(nan): "no value (no shift was measured)"
"""

from __future__ import annotations

import math

from ..schema.config import Config, SweepConfig

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
MISSING = "no value (no shift was measured)"


def count_words(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def range_words(r: list[float]) -> str:
    """An inclusive [start, stop, step] range of shifts: "-8..8", "-8..8 step 2", or "0" when it is one value."""
    start, stop, step = (list(r) + [1.0])[:3]
    if start == stop:
        return f"{start:g}"
    return f"{start:g}..{stop:g}" + (f" step {step:g}" if step != 1 else "")


def shift_words(sweep: SweepConfig) -> str:
    """The run's own sweep in words: "canvas shifts of -8..8 px along each axis"."""
    dx, dy = range_words(sweep.dx), range_words(sweep.dy)
    grid = "along each axis" if sweep.grid == "axes" else "in x and y (every pair)"
    if dx == dy:
        return f"{sweep.mode} shifts of {dx} px {grid}"
    if dy == "0":
        return f"{sweep.mode} shifts of {dx} px in x"
    if dx == "0":
        return f"{sweep.mode} shifts of {dy} px in y"
    return f"{sweep.mode} shifts of dx {dx} and dy {dy} px {grid}"


def protocol_words(cfg: Config) -> dict[str, object]:
    """The placeholders a claim's experiment text may hold ({letters}, {canvas}, {blocks}, {canvas_shifts})."""
    canvas = cfg.data.canvas
    return {"letters": " vs ".join(cfg.data.letters), "canvas": canvas, "canvas_shifts": shift_words(cfg.sweep),
            "blocks": count_words(round(math.log2(canvas))) if canvas > 0 else "?"}


def pct(x: float, digits: int = 1) -> str:
    """A share as a percentage; MISSING where it is NaN (a mean over no shift), never "nan%"."""
    return MISSING if x is None or math.isnan(x) else f"{x:.{digits}%}"


def pct_interval(stat) -> str:
    """A mean share over seeds with its 95% interval (evidence.Stat), as percentages: '1.0% [0.0%, 5.1%]'; the mean
    alone with one seed."""
    if math.isnan(stat.lo) or math.isnan(stat.hi):
        return pct(stat.mean)
    return f"{pct(stat.mean)} [{pct(stat.lo)}, {pct(stat.hi)}]"


ZERO_MAPS = "undefined (0 / 0: the feature maps are all zero)"


def ratio(x: float, spec: str = ".3g") -> str:
    """A relative equivariance error; ZERO_MAPS where it is NaN (a network whose maps are all zero, e.g. one that
    never learned), never "nan"."""
    return ZERO_MAPS if x is None or math.isnan(x) else format(x, spec)
