"""`invlab report` as one library call: the comparison tables of run, sweep or measure folders (or of one study),
with the PNG plots and the HTML page it was asked for written to disk.

    made = make_report([Path("results/quick/20261127-160351")], plot=Path("figs"), html=Path("report.html"))
    made.report.views[0].table      # the model table; made.plots: the PNGs; made.html: the page written

The command line renders made.report (display.render) and names the files. The page and the plots replace only
files invlab made (the page's generator tag, the PNGs' Software chunk), unless `force` (run/writable.output_file);
never a link, device, FIFO or folder, nor a file inside a run, sweep, study or measure folder.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.columns import METRIC_COLUMNS
from ..core.errors import ConfigError, InvlabError, RunFolderError, choose
from ..run.writable import output_file, results_folder_of, writable
from ..store.atomic import write_page
from ..store.find import newest_run
from ..store.layout import is_study
from .display import FORMATS
from .html import GENERATOR, PAGE_HEAD, html_report
from .papers import paper_views, per_test_set_views
from .plots import PNG_MARK, PNG_SIGNATURE, figures, save
from .study import compare_folders, study_figure, varied
from .tables import Report

if TYPE_CHECKING:  # for annotations only: matplotlib is imported when a figure is made
    from matplotlib.figure import Figure


@dataclass
class MadeReport:
    report: Report
    plots: list[Path] = field(default_factory=list)  # PNGs written (--plot)
    html: Path | None = None  # the page written (--html)
    html_bytes: int = 0
    html_seconds: float = 0.0


def make_report(paths: list[Path] | None = None, *, by: str = "model", metric: str | None = None,
                axis: str | None = None, fmt: str = "table", plot: Path | None = None, drop_chance: bool = False,
                html: Path | None = None, results_dir: Path = Path("results"), force: bool = False) -> MadeReport:
    """The report of `paths` (default: the newest run in results_dir) as tables, its plots written into `plot` (for
    a study by model: the metric against each key that varies, then its runs' plots) and the whole page written to
    `html`. fmt is only checked here (before any loading), the caller renders with it. `force`: replace existing
    files that invlab did not make (--force)."""
    choose("table format", fmt, FORMATS)  # before any loading or plotting
    if metric is not None:
        choose("metric", metric, METRIC_COLUMNS)
    if metric is not None and by != "shift" and plot is None and html is None:  # as --axis: nothing would read it
        raise InvlabError(f"--metric {metric} picks the metric of --by shift, --plot and --html; with --by {by} and "
                          "neither --plot nor --html it would be ignored: add --by shift, or leave --metric out")
    metric = metric or "flip_rate"
    if html is not None:  # refuse an unwritable page before the work of making it
        output_file(html, "--html", "report.html", marker=GENERATOR.encode(), starts=PAGE_HEAD.encode(), force=force)
    if plot is not None:  # a folder invlab may write into, before the work of loading and drawing
        _plot_folder(plot)
        writable(plot, "--plot", create=False)
    results_paths = list(paths) if paths else [newest_run(results_dir)]
    rep = compare_folders(results_paths, by=by, metric=metric, axis=axis, drop_chance=drop_chance)
    if by == "model":  # a column per test set (data.test_sets) and the paper's numbers beside ours (paper:)
        rep.views += per_test_set_views(rep.results) + paper_views(rep.results)
    made = MadeReport(rep)
    if plot is not None:
        named = _figures(rep, results_paths, metric, by)
        for name, _ in named:  # every file it would replace, checked before the work of drawing
            _plot_target(plot, name, force)
        with tempfile.TemporaryDirectory(dir=writable(plot, "--plot"), prefix=".invlab-plots-") as tmp:
            try:
                drawn = [save(fig, tmp, name) for name, fig in named]
            except RunFolderError as e:  # a full disk: the PNG named where it goes, not in the temporary folder
                raise type(e)(str(e).replace(str(Path(tmp)), str(plot))) from None
            made.plots = _place(drawn, plot, force)
    if html is not None:
        t0 = time.perf_counter()
        page = html_report(results_paths, metric=metric, drop_chance=drop_chance)
        # checked again: a file of someone else's may have come to that name while the page was made
        output_file(html, "--html", "report.html", marker=GENERATOR.encode(), starts=PAGE_HEAD.encode(), force=force)
        write_page(html, page)  # a temporary file renamed: a half-written page never looks complete
        made.html, made.html_bytes, made.html_seconds = html, html.stat().st_size, time.perf_counter() - t0
    return made


def _plot_folder(plot: Path) -> None:
    """--plot names a folder of invlab's PNGs: neither a run, sweep, study or measure folder nor inside one."""
    folder = results_folder_of(Path(plot) / "plot.png")
    if folder is not None:
        raise ConfigError(f"--plot {plot} lies in the results folder {folder}; invlab never writes plots into a run, "
                          f"sweep, study or measure folder: give a folder outside it, e.g. --plot figs")


def _figures(rep: Report, results_paths: list[Path], metric: str, by: str) -> list[tuple[str, Figure]]:
    """The figures --plot writes, named and not yet drawn: for a study (--by model), the metric against each key
    that still varies, then, as for runs, every plot of its runs (named by their varied values), as the HTML page
    shows them."""
    runs = figures(rep.results, metrics=tuple(dict.fromkeys([metric, "flip_rate", "prob_change"])))
    if len(results_paths) == 1 and is_study(results_paths[0]) and by == "model":  # the model table has the means
        return [study_figure(rep, results_paths[0], key, f"mean_{metric}") for key in varied(rep, results_paths[0])]\
            + runs
    return runs


def _plot_target(plot: Path, name: str, force: bool) -> Path:
    return output_file(Path(plot) / name, "--plot", "figs", marker=PNG_MARK, starts=PNG_SIGNATURE, force=force,
                       mark="a PNG text chunk Software: invlab")


def _place(drawn: list[Path], plot: Path, force: bool) -> list[Path]:
    """Move the PNGs drawn into a temporary folder into `plot`, after checking every one they would replace again
    (a file may have appeared there while they were drawn)."""
    targets = [_plot_target(plot, p.name, force) for p in drawn]
    for p, target in zip(drawn, targets):
        os.replace(p, target)
    return targets
