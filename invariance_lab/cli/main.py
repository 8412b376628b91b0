"""The `invlab` command line: the typer app, the polite error handler, and the commands (one module each).

    invlab run configs/seed_question.yaml --set train.epochs=2 --set "seeds=[0,1]"
    invlab --debug sweep results/quick/<run id> --dx -4:4     # a traceback instead of the one-paragraph error

Bad input (an InvlabError from the library) is printed as one paragraph and exits with code 2, no traceback.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import signal
import sys
import traceback
from typing import NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from ..core.errors import InvlabError, clip, out_of_memory
from ..core.processes import terminate_as_interrupt
from ..core.speed import keep_freed_memory
from ..core.versions import __version__
from .options import err, error, line


class Command(NamedTuple):
    module: str  # the module under cli/ that holds the command
    function: str  # its typer function
    help: str  # the function's docstring, shown by `invlab --help` (tests/cli/test_main.py keeps them equal)


# The commands, in the order `invlab --help` lists them. A command's module (and the library it calls: torch,
# pandas, matplotlib) is imported only when that command runs, so `invlab --help` answers at once.
COMMANDS = {
    "run": Command("run", "run_cli", "Train each model for each seed, sweep input translations, write invariance "
                   "tables to a run folder."),
    "status": Command("status", "status_cli", "Each unit's state: done, running, failed (with its log's last lines) "
                      "or missing; for a study, each run's."),
    "sweep": Command("sweep", "sweep_cli", "Evaluate trained models over new shifts without retraining; writes "
                     "<run>/sweeps/<id>/."),
    "report": Command("report", "report_cli", "Compare models (mean ± 95% CI over seeds) across one or more runs and "
                      "sweeps; optionally plot, or write\nthe whole report as one HTML page."),
    "models": Command("models", "models_cli", "List the model presets and the factors each one sets."),
    "fonts": Command("models", "fonts_cli", "List the fonts data.fonts takes: stroke fonts (data.glyphs: stroke) and "
                     "outline fonts (glyphs: outline)."),
    "measure": Command("measure", "measure_cli", "Measure a model of your own (trained anywhere) on a folder of "
                       "images, without training: writes\nresults/measure/<name>-<time>/ with the files `invlab "
                       "report` reads."),
    "claims": Command("claims", "claims_cli", "Test the question's six claims: run the config (or reuse its finished "
                      "run), add the sweeps each claim needs\n(or reuse them), decide every verdict from the numbers "
                      "and write the answers page (invariance_lab/claims/claims.py)."),
}


# Built once per process: a program that runs many commands (CliRunner, a notebook, the tests) paid 2-4 ms per
# call for typer reading the function's signature and building a validator per option, each time the same.
@functools.cache
def load_command(name: str) -> TyperCommand:
    """The command `name`, its module imported now (polite: InvlabError is one paragraph, exit 2). The command
    holds no state of a call (click makes a context per call), so one object serves every call."""
    entry = COMMANDS[name]
    function = getattr(importlib.import_module(f"{__package__}.{entry.module}"), entry.function)
    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    one.command(name)(polite(function))
    return typer.main.get_command(one)


class LazyCommands(TyperGroup):
    """The app's commands: listed from COMMANDS (name and help), loaded when one is run or asked for its --help."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, name: str) -> TyperCommand | None:
        if name not in COMMANDS:
            return None
        return TyperCommand(name, help=COMMANDS[name].help)  # enough to list it; resolve_command loads it

    def resolve_command(self, ctx: typer.Context, args: list[str]):
        name, _, rest = super().resolve_command(ctx, args)  # unknown names: click's error, with suggestions
        command = load_command(name)
        twice = repeated_option(command, rest)
        if twice:  # click keeps the last value silently: `--dx 0:1 --dx 0:2` measured 0:2 alone
            ctx.fail(f"{twice} is given twice; it takes one value (give it once)")
        return name, command, rest


def repeated_option(command: TyperCommand, args: list[str]) -> str | None:
    """The first option of `command` that takes one value and appears twice in `args` (as --opt V or --opt=V),
    or None. Flags and options that take many values (--set, --vary) may repeat."""
    single = {o: p for p in command.params if isinstance(p, TyperOption) and not (p.multiple or p.is_flag or p.count)
              for o in p.opts + p.secondary_opts}
    seen = set()
    for arg in args:
        if arg == "--":  # what follows is arguments, not options
            break
        param = single.get(arg.split("=", 1)[0] if arg.startswith("--") else arg)
        if param is not None and param.name in seen:
            return "/".join(param.opts)
        if param is not None:
            seen.add(param.name)
    return None


app = typer.Typer(cls=LazyCommands, add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Measure how CNN architectures become invariant to translation, on synthetic letters.")
_options = {"debug": False}  # the app's own options, set by its callback before every command (own_process: by main)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"invlab {__version__}")
        raise typer.Exit()


@app.callback()
def _start(debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error instead of its one-paragraph message."),
           version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                        help="Print invlab's version and exit.")) -> None:
    _options["debug"] = debug
    keep_freed_memory()  # fewer page faults per batch (speed.py); changes no number


# what a stopped command's user does next, where the same command again goes on from where it stopped (run:
# run_experiment resumes the interrupted run folder and reuses every finished unit; claims: its run, and its finished
# sweeps, likewise)
RESUMES = {"run_cli": ": the units that finished are kept; run the same command again to resume",
           "claims_cli": ": the units and sweeps that finished are kept; run the same command again to resume",
           "sweep_cli": ": the sweep folder is left unfinished; run the same command again for a new one (the "
                        "unfinished one can be deleted)",
           "measure_cli": ": the measure folder is left unfinished; run the same command again for a new one (the "
                          "unfinished one can be deleted)"}


def _debug_hint(e: BaseException, command: str) -> str:
    """Where another exception caused the error (a model's or a factory's own, or one raised in a --jobs worker):
    how to see its traceback. --debug is the app's option, so it goes before the command: `invlab measure ...
    --debug` is refused."""
    cause = e.__cause__
    if cause is None or isinstance(cause, InvlabError):
        return ""
    return f" (`invlab --debug {command.removesuffix('_cli')} ...` shows its traceback)"


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
            elif isinstance(e, InvlabError):
                error(str(e) + _debug_hint(e, fn.__name__))
            else:  # a path the library could not read or write (--results-dir, a run folder)
                error(f"{e.strerror or e}: {e.filename or ''}")
            raise typer.Exit(2)
        except (MemoryError, RuntimeError) as e:
            if _options["debug"] or not out_of_memory(e):
                raise
            error(f"out of memory ({clip(' '.join(str(e).split()) or type(e).__name__, 200)}): the run needs more "
                  "memory than this machine gave it, beyond invlab's estimate. Lower what grows with it: "
                  "data.canvas, data.test_images, train.batch_size or sweep.batch_size (--batch-size), a model's "
                  "channels, or --jobs; a folder left unfinished says so, and nothing finished is lost")
            raise typer.Exit(2)
        except KeyboardInterrupt:
            _exiting()
            again = RESUMES.get(fn.__name__, "")
            if again and kwargs.get("fresh"):  # --fresh starts a new folder each time: without it, the run resumes
                again = again.replace("run the same command again", "run the same command without --fresh")
            line("interrupted" + again, err)
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


def _exiting() -> None:
    """The command is ending: from here on Ctrl-C ends the process at once with exit code 130 (what it has written
    is complete), since raising KeyboardInterrupt would only interrupt the interpreter's exit (torch's atexit
    handlers) with a traceback; an exit that hangs still stops. Only in invlab's own process (main, the `invlab`
    command's entry point), never in a program that runs the commands itself (CliRunner, a notebook).

    gc.freeze(): the interpreter's exit runs one last garbage collection over every object the process holds,
    about 0.45 s of CPU once torch is imported, after the command's last line; the memory goes back to the system
    with the process anyway. Frozen objects are still freed when nothing refers to them; files are closed by the
    commands that write them (store/atomic.py), not left to a collection."""
    if _options.get("own_process"):
        signal.signal(signal.SIGINT, _end_now)
        gc.freeze()


def _end_now(*_) -> None:
    """Ctrl-C after the command has ended: what it printed is flushed, then the process ends with code 130."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head), a closed stream
            pass
    os._exit(130)


def replace_unencodable(*streams) -> None:
    """Characters a stream's encoding lacks written as '?': on a terminal or pipe that is not UTF-8
    (PYTHONIOENCODING=ascii, LANG=C on older systems) the tables' ± and Δ would end a finished run in a
    UnicodeEncodeError traceback, exit 1."""
    for stream in streams:
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):  # not a text stream of its own (a wrapper), or closed
            pass


def main() -> None:
    _options["own_process"] = True
    replace_unencodable(sys.stdout, sys.stderr)  # invlab's own process only: a program that runs it keeps its own
    try:
        os.getcwd()
    except FileNotFoundError:  # torch's MKL ends the process with a "FATAL ERROR" when it loads from there
        error("the current folder no longer exists (it was deleted or moved while the shell was in it), and torch "
              "cannot load from there; cd to a folder that exists and run again")
        sys.exit(2)
    try:
        with terminate_as_interrupt():  # `kill` ends every command as Ctrl-C does: what it was writing is cleaned up
            app()
    finally:
        _exiting()
