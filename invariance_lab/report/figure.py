"""Making a matplotlib figure for a report: matplotlib is imported only when one is drawn, and a figure's text is
plain text.

    @plain_text
    def my_figure(results):
        fig = new_figure(figsize=(8, 4.8), dpi=DPI)
        ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

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
