"""The `invlab` command line: parse arguments, call one library function, print with rich.

    invlab run configs/seed_question.yaml --set train.epochs=2 --set "seeds=[0,1]"
    invlab models

Bad input (an InvlabError from the library) is printed as one paragraph and exits with code 2, no traceback.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .errors import InvlabError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure how CNN architectures become invariant to translation, on synthetic letters.")
out = Console()
err = Console(stderr=True)

RESULTS_DIR = typer.Option(Path("results"), "--results-dir", help="Where run folders are created.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or progress messages.")


def polite(fn):
    """Turn InvlabError into a message and exit code 2; Ctrl-C into exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvlabError as e:
            # markup off: messages contain [key.path] brackets that rich would read as tags
            err.print(f"error: {e}", style="red", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(2)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130)

    return wrapper


@app.command()
@polite
def run(config: Path = typer.Argument(..., help="YAML config, e.g. configs/seed_question.yaml."),
        set_: List[str] = typer.Option([], "--set", help="Override a config key: --set train.epochs=2 (repeatable)."),
        results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Train each model for each seed, sweep input translations, write invariance tables to a new run folder."""
    from .config import load_config
    from .experiment import run_experiment
    from .report import load_result, model_table, protocol_lines, to_rich_table

    cfg = load_config(config, overrides=set_)
    run_dir = run_experiment(cfg, results_dir=results_dir, progress=not quiet,
                             on_event=None if quiet else lambda m: err.print(m, highlight=False))
    result = load_result(run_dir)
    out.print(to_rich_table(model_table([result]), title=f"{cfg.name}: mean ± 95% CI over seeds",
                            caption="\n".join(protocol_lines([result]))))
    out.print(f"run folder: {run_dir}", highlight=False, soft_wrap=True)


@app.command()
@polite
def models():
    """List the model presets and the factors each one sets."""
    from rich.table import Table

    from .models import list_presets

    t = Table(title="model presets (any factor can be overridden in the config)")
    t.add_column("arch", no_wrap=True)
    for col in ("downsample", "head", "padding", "channels", "kernel", "description"):
        t.add_column(col)
    for name, p in list_presets().items():
        t.add_row(name, p["downsample"], p["head"], p["padding"], str(p["channels"]), str(p["kernel"]), p["description"])
    out.print(t)


def main() -> None:
    app()
