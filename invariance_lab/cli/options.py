"""What the command modules share: the console they print to and the options several commands take.

    def run_cli(..., threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET): ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

# Piped output (files, tests) is not squeezed to 80 columns: tables stay whole.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

RESULTS_DIR = typer.Option(Path("results"), "--results-dir", help="Where run folders are created.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or progress messages.")
THREADS = typer.Option(None, "--threads", min=1, help="torch threads (default: torch's own); recorded in meta.json. "
                       "On a busy machine 1 can be faster than 2.")
SET = typer.Option([], "--set", help="Override a config key: --set train.epochs=2 (repeatable).")


def say(quiet: bool):
    """The on_event callback of library calls: progress messages on stderr, or none with --quiet."""
    return None if quiet else lambda m: err.print(m, highlight=False, markup=False, soft_wrap=True)


def line(text: str, console: Console = out) -> None:
    """One line as it is: no rich markup or highlighting (paths and messages hold brackets)."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)
