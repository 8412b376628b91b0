"""What the command modules share: the console they print to and the options several commands take.

    def run_cli(..., threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET): ...
    mode: str = choice("canvas", "--mode", MODES, "canvas (redrawn) or circular (rolled).")
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from ..core.errors import InvlabError, choose

# Piped output (files, tests) is not squeezed to 80 columns: tables stay whole. No emoji codes: a file or model
# named notes:x:draft is printed as named, not with an emoji in place of :x:.
out = Console(width=None if sys.stdout.isatty() else 200, emoji=False)
err = Console(stderr=True, emoji=False)


def _refuse(message: str):
    """A bad option value, found while the options are parsed (before the command's own error handling): one
    paragraph, exit 2."""
    error(message)
    raise typer.Exit(2)


def nonempty(flag: str, example: str):
    """The parser of a path option (`flag` starts with --) or argument (its name, e.g. config): an empty value
    (an unset shell variable, `--plot "$FIGS"`) would be the working directory, so it is refused."""
    named = f"{flag} is empty" if flag.startswith("-") else f"the {flag} argument is empty"
    given = f"{flag} {example}" if flag.startswith("-") else example

    def parse(value) -> Path:
        if not str(value).strip():
            _refuse(f"{named} (an unset shell variable?); name a path, e.g. {given}")
        return Path(value)
    return parse


RESULTS_DIR = typer.Option(Path("results"), "--results-dir", parser=nonempty("--results-dir", "results"),
                           metavar="<path>",
                           help="Where run folders are created (and found: a finished run of the same config is "
                           "resumed or reused).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or progress messages.")
THREADS = typer.Option(None, "--threads", min=1, help="torch threads (default: one per free core: torch's own count, "
                       "less the cores other processes keep busy); recorded in meta.json with why.")
SET = typer.Option([], "--set", help="Override a config key: --set train.epochs=2 (repeatable).")


def choice(default, flag: str, choices, help: str, *aliases: str):
    """An option that takes one of `choices`: --help lists them, and a value that is not one of them is one
    paragraph with the closest name (core/errors.choose), exit 2, before the command starts."""
    names = tuple(str(c) for c in choices)

    def check(value):
        if value is not None:
            try:
                choose(flag, value, names)
            except InvlabError as e:
                _refuse(str(e))
        return value

    def complete(incomplete: str) -> list[str]:  # the shell's completion (invlab --install-completion)
        return [n for n in names if n.startswith(incomplete)]

    return typer.Option(default, flag, *aliases, metavar="|".join(names), callback=check, autocompletion=complete,
                        help=help)


def names(text: str | None, flag: str) -> list[str] | None:
    """A comma-separated list of names (--models a,b; --taps conv1,output); None when the option is not given. Given
    with no name in it (`--models ,`, `--taps ''`) it is refused, rather than read as "all" or "the default"."""
    if text is None:
        return None
    found = [t.strip() for t in text.split(",") if t.strip()]
    if not found:
        raise InvlabError(f"{flag} {text!r} names nothing; give comma-separated names (e.g. {flag} a,b), or leave "
                          f"{flag} out for the default")
    twice = [n for i, n in enumerate(found) if n in found[:i]]
    if twice:  # it was measured and listed twice (meta.json named the model twice)
        raise InvlabError(f"{flag} {text!r} names {twice[0]!r} twice; give each name once")
    return found


def only_with(value, flag: str, used: bool, by: str, default):
    """An option that only sizes another's work (--layer-images for --layers, --metric lie): refused when given
    without it (it would be ignored), else its value or the default."""
    if value is None:
        return default
    if not used:
        raise InvlabError(f"{flag} {value} sets how many images {by} use; without {by} it would be ignored: give "
                          f"{by}, or leave {flag} out")
    return value


def say(quiet: bool):
    """The on_event callback of library calls: progress messages on stderr, or none with --quiet."""
    return None if quiet else lambda m: err.print(m, highlight=False, markup=False, soft_wrap=True)


# control characters (C0 but tab, DEL, C1) written out, as \x1b: text from a file invlab did not write cannot drive
# the terminal (move the cursor, clear the screen, set the window title)
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0a, 0x20), *range(0x7f, 0xa0)]}


def shown(text: str) -> str:
    """`text` read from a run folder (a log line, the error a worker recorded, a unit's name), safe to print."""
    return str(text).translate(_CONTROL)


def error(message: str) -> None:
    """One paragraph on stderr, `error: ` first: markup off (messages contain [key.path] brackets), control
    characters escaped but line breaks kept (a name from a file or folder, in a message, cannot clear the screen
    or retitle the terminal and so hide the message)."""
    text = "\n".join(shown(part) for part in str(message).split("\n"))
    err.print(f"error: {text}", style="red", highlight=False, markup=False, soft_wrap=True)


def line(text: str, console: Console = out) -> None:
    """One line as it is: no rich markup or highlighting (paths and messages hold brackets)."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)
