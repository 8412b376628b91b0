"""The `invlab` command line: parse arguments, call one library function, print with rich.

    invlab run configs/seed_question.yaml --set train.epochs=2 --set "seeds=[0,1]"
    invlab models

Bad input (an InvlabError from the library) is printed as one paragraph and exits with code 2, no traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .errors import InvlabError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure how CNN architectures become invariant to translation, on synthetic letters.")
# Piped output (files, tests) is not squeezed to 80 columns: tables stay whole.
out = Console(width=None if sys.stdout.isatty() else 200)
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
        except OSError as e:  # an unreadable or unwritable path (--results-dir, a run folder): no traceback
            err.print(f"error: {e.strerror or e}: {e.filename or ''}", style="red", highlight=False, markup=False,
                      soft_wrap=True)
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
    from .report import brief_model_table, load_result, protocol_lines, to_rich_table

    cfg = load_config(config, overrides=set_)
    run_dir = run_experiment(cfg, results_dir=results_dir, progress=not quiet,
                             on_event=None if quiet else lambda m: err.print(m, highlight=False))
    result = load_result(run_dir)
    out.print(to_rich_table(brief_model_table([result]), title=f"{cfg.name}: mean ± 95% CI over seeds",
                            caption="\n".join(protocol_lines([result]))))
    out.print(f"run folder: {run_dir}", highlight=False, soft_wrap=True)


@app.command()
@polite
def sweep(target: Path = typer.Argument(..., help="A run folder (results/<name>/<run id>) or a YAML config."),
          dx: Optional[str] = typer.Option(None, "--dx", help="Horizontal shifts START:STOP[:STEP], px, inclusive."),
          dy: Optional[str] = typer.Option(None, "--dy", help="Vertical shifts START:STOP[:STEP], px, inclusive."),
          mode: Optional[str] = typer.Option(None, "--mode", help="canvas (redrawn; sub-pixel allowed) or circular (rolled)."),
          grid: Optional[str] = typer.Option(None, "--grid", help="product (every dx, dy pair) or axes (each axis alone)."),
          models_: Optional[str] = typer.Option(None, "--models", help="Comma-separated model names (default: all)."),
          kind: str = typer.Option("translation", "--kind", help="translation (move the letter) or parts (move only its right-most stroke by dx, dy)."),
          layers: bool = typer.Option(False, "--layers", help="Also write the per-layer profile: layers.csv, layers_summary.csv."),
          layer_images: int = typer.Option(200, "--layer-images", help="Test images for --layers (it runs every layer at every shift)."),
          set_: List[str] = typer.Option([], "--set", help="Config override when TARGET is a config file."),
          results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Evaluate trained models over new shifts without retraining; writes <run>/sweeps/<id>/."""
    from .experiment import sweep_experiment
    from .report import brief_model_table, layer_table, load_result, protocol_lines, to_rich_table

    chosen = [m.strip() for m in models_.split(",") if m.strip()] if models_ else None
    folder = sweep_experiment(target, results_dir=results_dir, dx=dx, dy=dy, mode=mode, grid=grid, models=chosen,
                              overrides=set_, progress=not quiet, kind=kind, layers=layers, layer_images=layer_images,
                              on_event=None if quiet else lambda m: err.print(m, highlight=False))
    result = load_result(folder)
    caption = "\n".join(protocol_lines([result]))
    out.print(to_rich_table(brief_model_table([result]), title="sweep: mean ± 95% CI over seeds", caption=caption))
    if result.layers is not None:
        mean, ci = layer_table([result])
        out.print(to_rich_table(mean.droplevel("run"), title="equivariance error per layer (mean over shifts, ± 95% CI over seeds)",
                                caption=caption, ci_df=ci.droplevel("run")))
    out.print(f"sweep folder: {folder}", highlight=False, soft_wrap=True)


@app.command()
@polite
def report(paths: List[Path] = typer.Argument(None, help="Run or sweep folders (default: the newest run)."),
           by: str = typer.Option("model", "--by", help="model: one row per model; shift: model x shift table; layer: model x layer (sweeps made with --layers)."),
           metric: str = typer.Option("flip_rate", "--metric", help="Metric for --by shift and --plot."),
           axis: Optional[str] = typer.Option(None, "--axis", help="dx or dy for --by shift (default: each swept axis)."),
           fmt: str = typer.Option("table", "--format", help="table, markdown or csv."),
           plot: Optional[Path] = typer.Option(None, "--plot", help="Also write PNG plots into this folder."),
           results_dir: Path = RESULTS_DIR):
    """Compare models (mean ± 95% CI over seeds) across one or more runs and sweeps; optionally plot."""
    from .report import build_report, newest_run

    results_paths = list(paths) if paths else [newest_run(results_dir)]
    rep = build_report(results_paths, by=by, metric=metric, axis=axis, fmt=fmt, plot_dir=plot)
    if fmt == "csv":
        out.print(rep.text, markup=False, highlight=False, soft_wrap=True, end="")
        for line in rep.protocol:  # keep stdout parseable; the protocol still reaches the reader
            err.print(line, highlight=False, soft_wrap=True)
    elif fmt == "markdown":
        out.print(rep.text, markup=False, highlight=False, soft_wrap=True)
    else:
        for table in rep.tables:
            out.print(table)
    for path in rep.plots:
        err.print(f"plot: {path}", highlight=False, soft_wrap=True)


@app.command()
@polite
def models():
    """List the model presets and the factors each one sets."""
    from rich.table import Table

    from .models import DEFAULTS, list_presets

    t = Table(title=f"model presets: channels {DEFAULTS['channels']}, kernel {DEFAULTS['kernel']} unless set; "
                    "any factor can be overridden in the config")
    t.add_column("arch", no_wrap=True)
    t.add_column("downsample / head / padding")
    t.add_column("description")
    for name, p in list_presets().items():
        t.add_row(name, f"{p['downsample']} / {p['head']} / {p['padding']}", p["description"])
    out.print(t)


def main() -> None:
    app()
