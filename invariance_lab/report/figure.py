"""Making a matplotlib figure for a report: matplotlib is imported only when one is drawn, and a figure's text is
plain text.

    @plain_text
    def my_figure(results):
        fig = new_figure(figsize=(8, 4.8), dpi=DPI)
        ...
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Built = TypeVar("Built")


def new_figure(**kwargs) -> Figure:
    """matplotlib.figure.Figure(**kwargs). matplotlib is imported here, when a plot is drawn: importing it takes
    about half a second, which every command that draws nothing would pay."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plain_text(build: Callable[..., Built]) -> Callable[..., Built]:
    """Build a figure with matplotlib's mathtext off (text.parse_math, for this call only): titles and legends
    hold names from result folders (a run's name, a model's), which come from anyone, and one holding "$...$"
    would be parsed as a formula, an exception when it is not one."""
    @functools.wraps(build)
    def built(*args, **kwargs) -> Built:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return build(*args, **kwargs)
    return built


def tight_layout(fig: Figure) -> None:
    """fig.tight_layout(), leaving the figure with no layout engine: tight_layout leaves a placeholder engine that
    lays out nothing, yet any engine makes savefig draw the whole figure once more, unrendered, before the real
    draw (about a fifth of its time). The PNG is byte for byte the same (tests/report/test_plots.py)."""
    import matplotlib

    fig.tight_layout()
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # no engine, whatever these two settings hold (they would pick one)


MAX_TICKS = 9  # heatmap ticks per axis: every grid value when they fit, else every k-th one, through 0
LEGEND_ROW_INCHES = 0.19  # one row of an 8 pt legend


def centre_ticks(values: np.ndarray, max_ticks: int = MAX_TICKS) -> np.ndarray:
    """Tick positions on grid values (the heatmap's cell centres): all of them, or every k-th counted from 0; on a
    sub-pixel grid (a step of 1/m px) on whole pixels, whose short labels do not run together."""
    values = np.sort(np.asarray(values, dtype=float))
    k = max(1, math.ceil(len(values) / max_ticks))
    step = float(np.min(np.diff(values))) if len(values) > 1 else 1.0
    per = round(1 / step) if 0 < step < 1 else 1
    if per > 1 and abs(per * step - 1) < 1e-6 and len(values) > max_ticks:
        k = per * math.ceil(k / per)
    zero = int(np.argmin(np.abs(values)))  # the reference shift, or the value nearest it
    return values[(np.arange(len(values)) - zero) % k == 0]


def legend_below(fig: Figure, ax, size: tuple[float, float]) -> None:
    """The axes' legend below them, the figure `size` (inches) made taller by its rows, so it covers no data:
    inside the axes, matplotlib's "best" place still covered a curve or band where no corner was free; beside
    them, a legend of many entries with a long name ran off the image or squeezed the plot to a strip. Two
    columns, one when a name is longer than 45 characters or the two columns are wider than the figure (45 wide
    letters, capitals: two columns of them ran off both sides of a study's 7-inch figure)."""
    names = ax.get_legend_handles_labels()[1]
    for ncol in (2, 1) if max(map(len, names)) <= 45 else (1,):
        fig.set_size_inches(size[0], size[1] + LEGEND_ROW_INCHES * math.ceil(len(names) / ncol))
        legend = ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, frameon=False)
        if ncol == 1 or legend.get_window_extent().width <= fig.bbox.width:
            break


LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # a third mark where colour and dashes run out (line_style)


def line_style(m: int, k: int, n_models: int, n_runs: int, points: int) -> dict:
    """The colour, dashes and marker of model m of run k, for a plot of n_runs runs of up to n_models models each:
    a model keeps its colour (C0-C9) in every run, and each (run, model) pair has a style of its own while runs x
    ceil(models / 10) <= 32 (a plain k + m // 10 gave run 0's 11th model and run 1's 1st the same colour and
    dashes). Past 4 of those groups of ten, markers tell them apart (on every line then, at most 12 a line); else
    dots on lines of 25 points or fewer."""
    groups = -(-n_models // 10)  # ten models to a group of colours
    j = k * groups + m // 10
    style = dict(color=f"C{m % 10}", linestyle=LINESTYLES[j % len(LINESTYLES)])
    if n_runs * groups > len(LINESTYLES):
        return {**style, "marker": MARKERS[(j // len(LINESTYLES)) % len(MARKERS)], "markevery": -(-points // 12)}
    return {**style, "marker": "o" if points <= 25 else None}
