"""`invlab status`: each unit of a run folder (or each run of a study) as a table.

    invlab status results/factorial/<run id>
    invlab status                                   # the run started last under results/
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from ..run.status import folder_status
from .options import line, nonempty, out, shown


def status_cli(path: Optional[Path] = typer.Argument(None, parser=nonempty("path", "results/quick/<run id>"), help="A run folder (results/<name>/<run id>) or a study folder (results/<name>/study-<time>). Default: the run started last under --results-dir."),
               lines: int = typer.Option(8, "--lines", min=0, help="Log lines shown for each failed unit (0: none)."),
               results_dir: Path = typer.Option(Path("results"), "--results-dir", parser=nonempty("--results-dir", "results"), metavar="<path>", help="Where to look for the run started last when no folder is given.")):
    """Each unit's state: done, running, failed (with its log's last lines) or missing; for a study, each run's."""
    for run in folder_status(path, lines=lines, results_dir=results_dir):
        label = ", ".join(f"{k}={v}" for k, v in run.values.items())
        if run.folder is None:
            again = "" if run.state == "running" else "; running the study again resumes it"
            line(f"{shown(label)}: " + (f"{shown(run.state)} (its run folder is named in the study once the run "
                                         f"finishes{again})" if run.state else "not run yet"))
            continue
        counts = {s: sum(u.state == s for u in run.units) for s in ("done", "running", "failed", "missing")}
        line(f"{shown(label) + ': ' if label else ''}{shown(run.folder)} ({shown(run.state)}): "
             + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        t = Table()
        for column in ("unit", "state", "detail"):
            t.add_column(column, overflow="fold")
        for u in run.units:
            # Text, not str: a log line or an error message holds brackets ([/], [train.epochs]) that rich would
            # read as markup, and a stray closing tag would end the command in a traceback
            # shown(): a log may hold terminal escapes; each line is printed as text, control characters written out
            t.add_row(Text(shown(u.key)), Text(u.state), Text(shown(u.detail) + "".join("\n  " + shown(log)
                                                                                     for log in u.log)))
        out.print(t)
        if run.sweeps:
            line("sweeps: " + ", ".join(f"{shown(name)} ({shown(state)})" for name, state in run.sweeps))
