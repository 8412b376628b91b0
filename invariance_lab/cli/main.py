"""The `invlab` command line: the typer app, the polite error handler, and the commands (one module each).

    invlab run configs/seed_question.yaml --set train.epochs=2 --set "seeds=[0,1]"
    invlab --debug sweep results/quick/<run id> --dx -4:4     # a traceback instead of the one-paragraph error

Bad input (an InvlabError from the library) is printed as one paragraph and exits with code 2, no traceback.
"""

from __future__ import annotations

import functools
import traceback

import typer

from ..core.errors import InvlabError
from ..core.speed import keep_freed_memory
from .claims import claims_cli
from .measure import measure_cli
from .models import fonts_cli, models_cli
from .options import err, line
from .report import report_cli
from .run import run_cli
from .status import status_cli
from .sweep import sweep_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure how CNN architectures become invariant to translation, on synthetic letters.")
_options = {"debug": False}  # the app's own options, set by its callback before every command


@app.callback()
def _start(debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error instead of its one-paragraph message.")) -> None:
    _options["debug"] = debug
    keep_freed_memory()  # fewer page faults per batch (speed.py); changes no number


def polite(fn):
    """Turn InvlabError (and an unreadable or unwritable path) into one paragraph and exit code 2, Ctrl-C into exit
    code 130; with --debug the error's whole traceback, the exception it came from first."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InvlabError, OSError) as e:
            if _options["debug"]:
                err.print(_traceback(e), highlight=False, markup=False, soft_wrap=True)
            elif isinstance(e, InvlabError):  # markup off: messages contain [key.path] brackets
                err.print(f"error: {e}", style="red", highlight=False, markup=False, soft_wrap=True)
            else:  # a path the library could not read or write (--results-dir, a run folder)
                err.print(f"error: {e.strerror or e}: {e.filename or ''}", style="red", highlight=False,
                          markup=False, soft_wrap=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            line("interrupted", err)
            raise typer.Exit(130)

    return wrapper


def _traceback(e: BaseException) -> str:
    """The whole chain of tracebacks: the library words errors `from None` (one paragraph without --debug), which
    would hide the exception they came from, e.g. a user factory's own error, with its file and line."""
    seen, x = set(), e
    while x is not None and id(x) not in seen:
        seen.add(id(x))
        x.__suppress_context__ = False
        x = x.__cause__ or x.__context__
    return "".join(traceback.format_exception(e))


for _name, _command in (("run", run_cli), ("status", status_cli), ("sweep", sweep_cli), ("report", report_cli),
                        ("models", models_cli), ("fonts", fonts_cli), ("measure", measure_cli),
                        ("claims", claims_cli)):
    app.command(_name)(polite(_command))


def main() -> None:
    app()
