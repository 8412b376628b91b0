"""The `invlab` command line: parse arguments, call one library function, print with rich.

    invlab run configs/seed_question.yaml --set train.epochs=2 --set "seeds=[0,1]"
    invlab models

Bad input (an InvlabError from the library) is printed as one paragraph and exits with code 2, no traceback.
"""

from __future__ import annotations

import functools
import os
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
THREADS = typer.Option(None, "--threads", min=1, help="torch threads (default: torch's own); recorded in meta.json. "
                       "On a busy machine 1 can be faster than 2.")


def _say(quiet: bool):
    return None if quiet else lambda m: err.print(m, highlight=False, markup=False, soft_wrap=True)


def writable(path: Path, option: str) -> Path:
    """The folder `path`, created if needed, or an error naming the option it came from."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvlabError(f"{option} {path}: cannot create this folder ({e.strerror or e}); give a writable folder") from None
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise InvlabError(f"{option} {path}: not a writable folder; give a writable folder")
    return path


def sweep_settings(run_dir: Path, *, dx: str | None, dy: str | None, mode: str | None, grid: str | None,
                   kind: str):
    """The run's own sweep settings with the command line's --dx/--dy/--mode/--grid laid over them.

    Ranges not given: with neither, the run's; with one, the other axis is fixed at 0."""
    from pydantic import ValidationError

    from .config import SweepConfig, load_config, parse_range
    from .runs import CONFIG_FILE, require_finished_run

    require_finished_run(run_dir)
    settings = load_config(Path(run_dir) / CONFIG_FILE).sweep.model_dump()
    if dx is not None or dy is not None:
        settings["dx"] = parse_range(dx, "--dx") if dx is not None else [0.0, 0.0, 1.0]
        settings["dy"] = parse_range(dy, "--dy") if dy is not None else [0.0, 0.0, 1.0]
        settings["grid"] = "product"
    settings.update({k: v for k, v in dict(mode=mode, grid=grid).items() if v is not None})
    if kind == "parts" and mode in (None, "canvas"):
        settings["mode"] = "canvas"  # displacements are drawn (sub-pixel allowed), whatever the run's sweep mode
    try:
        return SweepConfig.model_validate(settings)
    except ValidationError as e:
        raise InvlabError("invalid sweep options: " + "; ".join(
            f"{'.'.join(map(str, x['loc'])) or 'sweep'}: {x['msg'].removeprefix('Value error, ')}" for x in e.errors())) from None


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
        fresh: bool = typer.Option(False, "--fresh", help="Train every model again in a new folder (default: resume an interrupted run and reuse matching checkpoints)."),
        threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Train each model for each seed, sweep input translations, write invariance tables to a run folder.

    Re-running the same config resumes an interrupted run (Ctrl-C, SIGTERM, SIGKILL) and reuses every finished
    checkpoint with the same settings; --fresh trains everything again."""
    from .config import load_config
    from .experiment import run_experiment
    from .display import brief_tables
    from .results import load_result

    cfg = load_config(config, overrides=set_)
    run_dir = run_experiment(cfg, results_dir=writable(results_dir, "--results-dir"), progress=not quiet,
                             fresh=fresh, threads=threads, on_event=_say(quiet))
    for table in brief_tables(load_result(run_dir), title=f"{cfg.name}: mean ± 95% CI over seeds"):
        out.print(table)
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
          threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Evaluate trained models over new shifts without retraining; writes <run>/sweeps/<id>/."""
    from .config import load_config
    from .experiment import run_for_config, sweep_experiment
    from .display import brief_tables
    from .results import load_result

    chosen = [m.strip() for m in models_.split(",") if m.strip()] if models_ else None
    if target.is_file() or target.suffix in (".yaml", ".yml"):
        run_dir = run_for_config(load_config(target, set_), results_dir=writable(results_dir, "--results-dir"),
                                 progress=not quiet, threads=threads, on_event=_say(quiet))
    elif set_:
        raise InvlabError("--set applies to a config file; a run folder's settings are fixed")
    else:
        run_dir = target
    settings = sweep_settings(run_dir, dx=dx, dy=dy, mode=mode, grid=grid, kind=kind)
    folder = sweep_experiment(run_dir, settings, models=chosen, progress=not quiet, kind=kind, layers=layers,
                              layer_images=layer_images, threads=threads, on_event=_say(quiet))
    for table in brief_tables(load_result(folder), title="sweep: mean ± 95% CI over seeds"):
        out.print(table)
    out.print(f"sweep folder: {folder}", highlight=False, soft_wrap=True)


@app.command()
@polite
def report(paths: List[Path] = typer.Argument(None, help="Run or sweep folders (default: the newest run)."),
           by: str = typer.Option("model", "--by", help="model: one row per model; shift: model x shift table; layer: model x layer (sweeps made with --layers)."),
           metric: str = typer.Option("flip_rate", "--metric", help="Metric for --by shift and --plot."),
           axis: Optional[str] = typer.Option(None, "--axis", help="dx or dy for --by shift (default: each swept axis)."),
           fmt: str = typer.Option("table", "--format", help="table, markdown or csv."),
           plot: Optional[Path] = typer.Option(None, "--plot", help="Also write PNG plots into this folder."),
           drop_chance: bool = typer.Option(False, "--drop-chance", help="Leave out seeds at chance (clean accuracy within 5 points of 1/classes): their consistency says nothing."),
           results_dir: Path = RESULTS_DIR):
    """Compare models (mean ± 95% CI over seeds) across one or more runs and sweeps; optionally plot."""
    from .display import FORMATS, render
    from .errors import choose
    from .report import build_report
    from .runs import newest_run

    choose("table format", fmt, FORMATS)  # before any loading or plotting
    results_paths = list(paths) if paths else [newest_run(results_dir)]
    rep = build_report(results_paths, by=by, metric=metric, axis=axis, drop_chance=drop_chance)
    shown = render(rep, fmt)
    plots = []
    if plot is not None:
        from .plots import plot_all

        plots = plot_all(rep.results, writable(plot, "--plot"), metrics=tuple(dict.fromkeys([metric, "flip_rate", "prob_change"])))
    if fmt == "table":
        for table in shown.tables:
            out.print(table)
    else:
        out.print(shown.text, markup=False, highlight=False, soft_wrap=True, end="" if fmt == "csv" else "\n")
    for line in shown.side:  # csv: keep stdout parseable; the protocol and footnotes still reach the reader
        err.print(line, highlight=False, soft_wrap=True, markup=False)
    for path in plots:
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
