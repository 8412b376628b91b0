"""`invlab report` as one library call: the comparison tables of run, sweep or measure folders (or of one study),
with the PNG plots and the HTML page it was asked for written to disk.

    made = make_report([Path("results/quick/20261127-160351")], plot=Path("figs"), html=Path("report.html"))
    made.report.views[0].table      # the model table; made.plots: the PNGs; made.html: the page written

The command line renders made.report (display.render) and names the files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import choose
from ..run.writable import writable, writable_file
from ..store.atomic import write_text
from ..store.find import newest_run
from ..store.layout import is_study
from .display import FORMATS
from .html import html_report
from .plots import plot_all
from .study import compare_folders, plot_study
from .tables import Report


@dataclass
class MadeReport:
    report: Report
    plots: list[Path] = field(default_factory=list)  # PNGs written (--plot)
    html: Path | None = None  # the page written (--html)
    html_bytes: int = 0
    html_seconds: float = 0.0


def make_report(paths: list[Path] | None = None, *, by: str = "model", metric: str = "flip_rate",
                axis: str | None = None, fmt: str = "table", plot: Path | None = None, drop_chance: bool = False,
                html: Path | None = None, results_dir: Path = Path("results")) -> MadeReport:
    """The report of `paths` (default: the newest run in results_dir) as tables, its plots written into `plot`
    (for a study: the metric against its first varied key) and the whole page written to `html`. fmt is only
    checked here (before any loading), the caller renders with it."""
    choose("table format", fmt, FORMATS)  # before any loading or plotting
    if html is not None:  # refuse an unwritable page before the work of making it
        writable_file(html, "--html", "report.html")
    results_paths = list(paths) if paths else [newest_run(results_dir)]
    rep = compare_folders(results_paths, by=by, metric=metric, axis=axis, drop_chance=drop_chance)
    made = MadeReport(rep)
    if plot is not None:
        if len(results_paths) == 1 and is_study(results_paths[0]):  # a study: the metric against its first varied key
            made.plots = [plot_study(rep, results_paths[0], rep.views[0].table.columns[0], f"mean_{metric}"
                                     if by == "model" else rep.views[0].values[0], writable(plot, "--plot"))]
        else:
            made.plots = plot_all(rep.results, writable(plot, "--plot"),
                                  metrics=tuple(dict.fromkeys([metric, "flip_rate", "prob_change"])))
    if html is not None:
        t0 = time.perf_counter()
        page = html_report(results_paths, metric=metric, drop_chance=drop_chance)
        write_text(html, page)  # a temporary file renamed: a half-written page never looks complete
        made.html, made.html_bytes, made.html_seconds = html, len(page.encode()), time.perf_counter() - t0
    return made
