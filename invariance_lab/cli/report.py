"""`invlab report`: call report.command.make_report, print its tables and name the files it wrote.

    invlab report results/quick/<run id> --by shift --format markdown
    invlab report results/factorial/study-<time> --plot figs --html report.html
    invlab report RUN --html notes.html --force       # notes.html exists and is not invlab's page: replace it
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..report.command import make_report
from ..report.display import FORMATS, render
from ..report.tables import AXES, BY
from .options import choice, err, line, nonempty, out


def report_cli(paths: List[Path] = typer.Argument(None, parser=nonempty("path", "results/quick/<run id>"), help="Run or sweep folders (default: the newest run)."),
               by: str = choice("model", "--by", BY, "model: one row per model; shift: model x shift table; layer: model x layer (sweeps made with --layers)."),
               metric: Optional[str] = typer.Option(None, "--metric", help="Metric for --by shift, --plot and --html (default: flip_rate)."),
               axis: Optional[str] = choice(None, "--axis", AXES, "dx or dy for --by shift; angle or scale for a rotate or scale sweep (default: each swept axis)."),
               fmt: str = choice("table", "--format", FORMATS, "table, markdown or csv."),
               plot: Optional[Path] = typer.Option(None, "--plot", parser=nonempty("--plot", "plots"), metavar="<path>", help="Also write PNG plots into this folder."),
               drop_chance: bool = typer.Option(False, "--drop-chance", help="Leave out seeds at chance (clean accuracy within 5 points of 1/classes): their consistency says nothing."),
               html: Optional[Path] = typer.Option(None, "--html", parser=nonempty("--html", "report.html"), metavar="<path>", help="Also write one self-contained HTML page (tables, plots, the test letters as the networks saw them, animations) to this file."),
               wide: bool = typer.Option(False, "--wide", help="Terminal tables with every column of the report (default: the main ones, to fit 100 columns; markdown and csv always have them all; summary.csv also holds max_prob_change and the worst neighbour and correct-image flips)."),
               results_dir: Path = typer.Option(Path("results"), "--results-dir", parser=nonempty("--results-dir", "results"), metavar="<path>", help="Where to look for the newest run when no folder is given."),
               force: bool = typer.Option(False, "--force", help="Replace an existing --html page or --plot PNG that invlab did not write (without it, only invlab's own files are replaced).")):
    """Compare models (mean ± 95% CI over seeds) across one or more runs and sweeps; optionally plot, or write
    the whole report as one HTML page."""
    made = make_report(paths, by=by, metric=metric, axis=axis, fmt=fmt, plot=plot, drop_chance=drop_chance,
                       html=html, results_dir=results_dir, force=force)
    shown = render(made.report, fmt, wide)
    if fmt == "table":
        for table in shown.tables:
            out.print(table)
        for text in shown.after:  # sweeps and measurements over every circular shift: the exact worst case
            line(text)
    else:
        out.print(shown.text, markup=False, highlight=False, soft_wrap=True, end="" if fmt == "csv" else "\n")
    for text in shown.side:  # csv: keep stdout parseable; the protocol and footnotes still reach the reader
        line(text, err)
    for path in made.plots:
        line(f"plot: {path}", err)
    if made.html is not None:
        line(f"html: {made.html} ({made.html_bytes / 1e6:.2f} MB, {made.html_seconds:.1f} s)", err)
