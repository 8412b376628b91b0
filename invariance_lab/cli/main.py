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

from ..core.errors import InvlabError, choose

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure how CNN architectures become invariant to translation, on synthetic letters.")
# Piped output (files, tests) is not squeezed to 80 columns: tables stay whole.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

RESULTS_DIR = typer.Option(Path("results"), "--results-dir", help="Where run folders are created.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or progress messages.")
THREADS = typer.Option(None, "--threads", min=1, help="torch threads (default: torch's own); recorded in meta.json. "
                       "On a busy machine 1 can be faster than 2.")


@app.callback()
def _start() -> None:
    from ..core.speed import keep_freed_memory

    keep_freed_memory()  # fewer page faults per batch (speed.py); changes no number


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
                   kind: str, all_shifts: bool = False):
    """The run's own sweep settings with the command line's --dx/--dy/--mode/--grid laid over them.

    Ranges not given: with neither, the run's; with one, the other axis is fixed at 0. all_shifts: every roll of
    the canvas (circular mode, both axes, product grid), centred on 0."""
    from pydantic import ValidationError

    from ..schema.config import SweepConfig, parse_range
    from ..config.load import load_config
    from ..store.runs import CONFIG_FILE, require_finished_run

    require_finished_run(run_dir)
    cfg = load_config(Path(run_dir) / CONFIG_FILE)
    settings = cfg.sweep.model_dump()
    if all_shifts:
        from ..eval.sweep import every_roll

        given = [o for o, v in (("--dx", dx), ("--dy", dy), ("--grid", grid)) if v is not None]
        if given:
            raise InvlabError(f"--all-shifts sweeps every roll of the canvas by itself; leave out {', '.join(given)}")
        if mode not in (None, "circular") or kind != "translation":
            raise InvlabError("--all-shifts rolls the whole input (--mode circular, --kind translation); leave out "
                              f"{'--mode ' + mode if mode not in (None, 'circular') else '--kind ' + kind}")
        settings.update(mode="circular", dx=every_roll(cfg.data.canvas), dy=every_roll(cfg.data.canvas),
                        grid="product")
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
        vary: List[str] = typer.Option([], "--vary", help="Run a study: one run per combination of the values, --vary data.train_shift=0,4 (repeatable; a list value in brackets: --vary 'seeds=[0,1],[2,3]')."),
        fresh: bool = typer.Option(False, "--fresh", help="Train every model again in a new folder (default: resume an interrupted run and reuse matching checkpoints)."),
        jobs: int = typer.Option(1, "--jobs", "-j", help="(model, seed) units trained at once, each in its own worker process with cores/jobs torch threads unless --threads says; the same numbers as --jobs 1. With --executor slurm: array jobs running at once."),
        executor: str = typer.Option("processes", "--executor", help="processes: worker processes on this machine; slurm: a SLURM job array through submitit (needs submitit: pip install submitit, or the package's slurm extra; the results folder must be on a shared filesystem); submitit-local: the slurm path run on this machine."),
        partition: Optional[str] = typer.Option(None, "--partition", help="slurm: the partition."),
        time_min: int = typer.Option(60, "--time", help="slurm: minutes per unit's job."),
        cpus: Optional[int] = typer.Option(None, "--cpus", help="slurm: CPUs per unit's job (default: --threads, else 1)."),
        gpus: int = typer.Option(0, "--gpus", help="slurm: GPUs per unit's job."),
        mem: Optional[float] = typer.Option(None, "--mem", help="slurm: memory per unit's job, GB."),
        threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Train each model for each seed, sweep input translations, write invariance tables to a run folder.

    Re-running the same config resumes an interrupted run (Ctrl-C, SIGTERM, SIGKILL) and reuses every finished
    checkpoint with the same settings; --fresh trains everything again. --jobs N trains N units at once; --vary
    runs a study (one run per combination; `invlab report STUDY` compares them)."""
    from ..config.load import load_config
    from ..run.experiment import run_experiment
    from ..run.executors import Resources, check_jobs

    check_jobs(jobs, executor)
    _check_resources(time_min=time_min, cpus=cpus, gpus=gpus, mem=mem)
    resources = Resources(partition=partition, time_min=time_min, cpus=cpus or threads, gpus=gpus, mem_gb=mem)

    def one_run(cfg):  # every config is checked before the results folder is made
        return run_experiment(cfg, results_dir=writable(results_dir, "--results-dir"), progress=not quiet and jobs == 1 and executor == "processes",
                              fresh=fresh, threads=threads, on_event=_say(quiet), factory_dirs=[config.parent],
                              jobs=jobs, executor=executor, resources=resources)

    if vary:
        from ..report.display import render
        from ..report.tables import build_report
        from ..run.study import run_study

        folder = run_study(config, overrides=set_, vary=vary, results_dir=results_dir, run=one_run,
                           on_event=_say(quiet))
        for table in render(build_report([folder]), "table").tables:
            out.print(table)
        out.print(f"study folder: {folder}", highlight=False, soft_wrap=True)
        return
    cfg = load_config(config, overrides=set_)
    _print_run(one_run(cfg), cfg.name)


def _check_resources(*, time_min: int, cpus: int | None, gpus: int, mem: float | None) -> None:
    """The cluster options, checked before anything is submitted."""
    for flag, value, ok, allowed in (("--time", time_min, time_min >= 1, "at least 1 (minutes per unit's job)"),
                                     ("--cpus", cpus, cpus is None or cpus >= 1, "at least 1 (CPUs per unit's job)"),
                                     ("--gpus", gpus, gpus >= 0, "0 or more (GPUs per unit's job)"),
                                     ("--mem", mem, mem is None or mem > 0, "more than 0 (GB per unit's job)")):
        if not ok:
            raise InvlabError(f"{flag} must be {allowed}; got {value}")


def _print_run(run_dir: Path, name: str) -> None:
    from ..report.display import brief_tables
    from ..config.factorial import left_out_note
    from ..store.results import load_result

    result = load_result(run_dir)
    for table in brief_tables(result, title=f"{name}: mean ± 95% CI over seeds"):
        out.print(table)
    if result.meta.get("factorial_left_out"):
        out.print(left_out_note(result.meta["factorial_left_out"]), highlight=False, markup=False, soft_wrap=True)
    out.print(f"run folder: {run_dir}", highlight=False, soft_wrap=True)


@app.command()
@polite
def status(path: Path = typer.Argument(..., help="A run folder (results/<name>/<run id>) or a study folder (results/<name>/study-<time>)."),
           lines: int = typer.Option(8, "--lines", help="Log lines shown for each failed unit.")):
    """Each unit's state: done, running, failed (with its log's last lines) or missing; for a study, each run's."""
    from rich.table import Table

    from ..store.runs import is_study, read_meta, run_state
    from ..run.study import study_runs
    from ..run.units import unit_status

    folders = [(None, path)] if not is_study(path) else study_runs(path)
    for values, folder in folders:
        label = ", ".join(f"{k}={v}" for k, v in (values or {}).items())
        if folder is None:
            out.print(f"{label}: not run yet", highlight=False, markup=False)
            continue
        meta = read_meta(folder)
        if meta.get("kind") != "run":
            raise InvlabError(f"{folder} is a {meta.get('kind')} folder; status shows the units of a run folder "
                              "(results/<name>/<run id>) or of a study")
        units = unit_status(folder, meta, lines)
        counts = {s: sum(u.state == s for u in units) for s in ("done", "running", "failed", "missing")}
        out.print(f"{label + ': ' if label else ''}{folder} ({run_state(meta)}): "
                  + ", ".join(f"{n} {s}" for s, n in counts.items() if n), highlight=False, markup=False,
                  soft_wrap=True)
        t = Table()
        for column in ("unit", "state", "detail"):
            t.add_column(column, overflow="fold")
        for u in units:
            t.add_row(u.key, u.state, u.detail + "".join("\n  " + line for line in u.log))
        out.print(t)


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
          all_shifts: bool = typer.Option(False, "--all-shifts", help="Every circular shift of the canvas (the whole translation group, --mode circular): prints each model's exact worst case, a certificate of invariance or the shift that breaks it."),
          engine: str = typer.Option("auto", "--engine", help="auto: the exact all-shift engine for every model it applies to (circular sweeps of circular-padding networks; the same numbers, much faster), brute force for the rest; brute: one forward pass per shift (the check); allshift: refuse where the engine does not apply."),
          set_: List[str] = typer.Option([], "--set", help="Config override when TARGET is a config file."),
          jobs: int = typer.Option(1, "--jobs", "-j", help="Sweep the models in N shares at once, in worker processes with cores/N torch threads each unless --threads says; the same numbers as --jobs 1."),
          trust_factory: bool = typer.Option(False, "--trust-factory", help="Import the Python modules that build a run folder's own models (factory: in its config.yaml); without it invlab refuses and names the file that would run."),
          threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Evaluate trained models over new shifts without retraining; writes <run>/sweeps/<id>/."""
    from ..config.load import load_config
    from ..run.experiment import run_for_config, sweep_experiment
    from ..report.display import brief_tables, certificate_lines
    from ..store.results import load_result

    chosen = [m.strip() for m in models_.split(",") if m.strip()] if models_ else None
    if target.is_file() or target.suffix in (".yaml", ".yml"):
        run_dir = run_for_config(load_config(target, set_), results_dir=writable(results_dir, "--results-dir"),
                                 progress=not quiet, threads=threads, on_event=_say(quiet),
                                 factory_dirs=[target.parent])
        trust_factory = True  # your config names its factories: importing them is what you asked for
    elif set_:
        raise InvlabError("--set applies to a config file; a run folder's settings are fixed")
    else:
        run_dir = target
    settings = sweep_settings(run_dir, dx=dx, dy=dy, mode=mode, grid=grid, kind=kind, all_shifts=all_shifts)
    folder = sweep_experiment(run_dir, settings, models=chosen, progress=not quiet, kind=kind, layers=layers,
                              layer_images=layer_images, threads=threads, on_event=_say(quiet), engine=engine,
                              trust_factory=trust_factory, factory_dirs=[target.parent] if run_dir != target else None,
                              jobs=jobs)
    result = load_result(folder)
    for table in brief_tables(result, title="sweep: mean ± 95% CI over seeds"):
        out.print(table)
    for line in certificate_lines(result):  # sweeps over every roll of the canvas: the exact worst case
        out.print(line, highlight=False, markup=False, soft_wrap=True)
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
           html: Optional[Path] = typer.Option(None, "--html", help="Also write one self-contained HTML page (tables, plots, the test letters as the networks saw them, animations) to this file."),
           results_dir: Path = RESULTS_DIR):
    """Compare models (mean ± 95% CI over seeds) across one or more runs and sweeps; optionally plot, or write
    the whole report as one HTML page."""
    from ..report.display import FORMATS, render
    from ..core.errors import choose
    from ..report.tables import build_report
    from ..store.runs import newest_run

    choose("table format", fmt, FORMATS)  # before any loading or plotting
    if html is not None:  # refuse an unwritable page before the work of making it
        if html.is_dir():
            raise InvlabError(f"--html {html} is a folder; give the file to write, e.g. --html {html / 'report.html'}")
        writable(html.parent, "--html")
    results_paths = list(paths) if paths else [newest_run(results_dir)]
    rep = build_report(results_paths, by=by, metric=metric, axis=axis, drop_chance=drop_chance)
    shown = render(rep, fmt)
    plots = []
    if plot is not None:
        from ..report.plots import plot_all

        from ..store.runs import is_study

        if len(results_paths) == 1 and is_study(results_paths[0]):  # a study: the metric against its first varied key
            from ..run.study import plot_study

            plots = [plot_study(rep, results_paths[0], rep.views[0].table.columns[0], f"mean_{metric}"
                                if by == "model" else rep.views[0].values[0], writable(plot, "--plot"))]
        else:
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
    if html is not None:
        import time

        from ..report.html import html_report
        from ..store.runs import write_text

        t0 = time.perf_counter()
        page = html_report(results_paths, metric=metric, drop_chance=drop_chance)
        write_text(html, page)  # a temporary file renamed: a half-written page never looks complete
        err.print(f"html: {html} ({len(page.encode()) / 1e6:.2f} MB, {time.perf_counter() - t0:.1f} s)",
                  highlight=False, soft_wrap=True)


@app.command()
@polite
def models():
    """List the model presets and the factors each one sets."""
    from rich.table import Table

    from ..nn.models import DEFAULTS, list_presets

    t = Table(title=f"model presets: channels {DEFAULTS['channels']}, kernel {DEFAULTS['kernel']} unless set; "
                    "any factor can be overridden in the config")
    t.add_column("arch", no_wrap=True)
    t.add_column("downsample / head / padding")
    t.add_column("description")
    for name, p in list_presets().items():
        t.add_row(name, f"{p['downsample']} / {p['head']} / {p['padding']}", p["description"])
    out.print(t)


@app.command()
@polite
def fonts():
    """List the fonts data.fonts takes: stroke fonts (data.glyphs: stroke) and outline fonts (glyphs: outline)."""
    from ..data.outlines import font_names

    for kind, names in font_names().items():
        out.print(f"[bold]{kind}[/bold] fonts (data.glyphs: {kind}; or a .ttf/.otf path for outline):" if
                  kind == "outline" else f"[bold]{kind}[/bold] fonts (data.glyphs: {kind}, the default):")
        out.print("  " + ", ".join(names), highlight=False)


@app.command()
@polite
def measure(images: Path = typer.Option(..., "--images", help="A folder of PNG/JPEG images: class subfolders (DIR/<class>/<image>) give labels, a flat folder none. Or a run folder: its own test images."),
            model: Optional[str] = typer.Option(None, "--model", help="package.module:function that returns your nn.Module (imported: its code runs). Optional when --weights is an invlab checkpoint of a preset."),
            model_kwargs: Optional[str] = typer.Option(None, "--model-kwargs", help="JSON object of keyword arguments for --model, e.g. '{\"width\": 16}'."),
            weights: Optional[Path] = typer.Option(None, "--weights", help="A state dict (.pt, read with weights_only=True), a .safetensors file, or an invlab checkpoint. Without it the model is measured as --model returns it."),
            dx: str = typer.Option("-8:8", "--dx", help="Horizontal shifts START:STOP[:STEP], px, inclusive."),
            dy: str = typer.Option("0", "--dy", help="Vertical shifts START:STOP[:STEP], px, inclusive; every (dx, dy) pair is measured."),
            mode: str = typer.Option("canvas", "--mode", help="canvas (the image moves inside its frame; sub-pixel shifts bilinear) or circular (rolled, whole pixels)."),
            fill: str = typer.Option("zeros", "--fill", help="canvas mode: what enters the frame: zeros, edge (nearest border pixel) or reflect."),
            colour: str = typer.Option("grey", "--colour", help="grey (1 channel) or rgb (3)."),
            size: Optional[str] = typer.Option(None, "--size", help="Resize every image to N or HxW px (bilinear), e.g. the model's input size. Default: as they are (all the same size)."),
            mean: Optional[str] = typer.Option(None, "--mean", help="Normalisation after the shift: one value, or one per channel (0.485,0.456,0.406)."),
            std: Optional[str] = typer.Option(None, "--std", help="Normalisation: one value, or one per channel."),
            layers: bool = typer.Option(False, "--layers", help="Also write the layer profile (forward hooks): layers.csv, layers_summary.csv."),
            taps: Optional[str] = typer.Option(None, "--taps", help="Comma-separated module names (model.named_modules(), and 'output') to tap with --layers; default every convolution, pooling and normalisation module."),
            layer_images: int = typer.Option(200, "--layer-images", help="Images for --layers (it runs the model at every shift and keeps every tap)."),
            batch_size: int = typer.Option(256, "--batch-size", help="Images per forward pass (memory stays flat in the number of images and shifts)."),
            name: Optional[str] = typer.Option(None, "--name", help="The model's name in the tables (default: the checkpoint's model, else the function's name)."),
            device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
            engine: str = typer.Option("auto", "--engine", help="auto: the exact all-shift engine where it applies (--mode circular, square images, layers of known kinds: the same numbers, much faster), brute force otherwise; brute: one forward pass per shift (the check); allshift: refuse where the engine does not apply."),
            threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Measure a model of your own (trained anywhere) on a folder of images, without training: writes
    results/measure/<name>-<time>/ with the files `invlab report` reads."""
    from ..schema.config import parse_range
    from ..report.display import brief_tables
    from ..run.experiment import set_threads
    from ..run.measure import measure_to_folder
    from ..store.results import load_result

    set_threads(threads)
    choose("device", device, ("cpu", "cuda", "auto"))
    folder = measure_to_folder(
        images=images, model=model, model_kwargs=_json_object(model_kwargs, "--model-kwargs"), weights=weights,
        dx=parse_range(dx, "--dx"), dy=parse_range(dy, "--dy"), mode=mode, fill=fill, colour=colour,
        size=_size(size), mean=_numbers(mean, "--mean"), std=_numbers(std, "--std"), layers=layers,
        taps=[t.strip() for t in taps.split(",") if t.strip()] if taps else None, layer_images=layer_images,
        batch_size=batch_size, name=name, results_dir=writable(results_dir, "--results-dir"), device=device,
        progress=not quiet, on_event=_say(quiet), engine=engine)
    for table in brief_tables(load_result(folder), title="measure: per model (one trained network)"):
        out.print(table)
    out.print(f"measure folder: {folder}", highlight=False, soft_wrap=True)


def _json_object(text: str | None, option: str):
    import json

    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvlabError(f"{option} {text!r} is not JSON ({e}); write an object, e.g. {option} '{{\"width\": 16}}'") from None
    if not isinstance(value, dict):
        raise InvlabError(f"{option} must be a JSON object of keyword arguments; got {text!r}")
    return value


def _numbers(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InvlabError(f"{option} {text!r}: expected numbers separated by commas, e.g. {option} 0.5 or "
                          f"{option} 0.485,0.456,0.406") from None


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        hw = [int(p) for p in parts]
    except ValueError:
        hw = []
    if len(hw) not in (1, 2) or min(hw) < 1:
        raise InvlabError(f"--size {text!r}: expected N or HxW in px, e.g. --size 32 or --size 224x224")
    return (hw[0], hw[-1])


@app.command()
@polite
def claims(config: Path = typer.Argument(Path("configs/question_claims.yaml"), help="The claims config (its models are the ones the claims read)."),
           set_: List[str] = typer.Option([], "--set", help="Override a config key: --set train.epochs=2 (repeatable)."),
           out_file: Path = typer.Option(Path("docs/answers.md"), "--out", help="The answers page to write (atomically)."),
           threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Test the question's six claims: run the config (or reuse its finished run), add the sweeps each claim needs
    (or reuse them), decide every verdict from the numbers and write the answers page (invariance_lab/claims.py)."""
    import time
    from datetime import datetime

    from ..claims.answers import answer_claims, claims_run, render_answers
    from ..config.load import load_config
    from ..store.runs import write_text

    t0, load0, since = time.perf_counter(), os.getloadavg()[0], datetime.now().isoformat(timespec="seconds")
    if out_file.is_dir():
        raise InvlabError(f"--out {out_file} is a folder; give the file to write, e.g. --out {out_file / 'answers.md'}")
    writable(out_file.parent, "--out")
    cfg = load_config(config, set_)
    run_dir = claims_run(cfg, results_dir=writable(results_dir, "--results-dir"), progress=not quiet,
                         threads=threads, on_event=_say(quiet), factory_dirs=[config.parent])
    answers = answer_claims(run_dir, threads=threads, progress=not quiet, on_event=_say(quiet))
    text = render_answers(answers, config=str(config), wall_s=time.perf_counter() - t0,
                          load=(load0, os.getloadavg()[0]), since=since)
    write_text(out_file, text)  # a temporary file renamed: a half-written page never looks complete
    for c, f in answers.findings:
        out.print(f"{c.number}. {c.text}: {f.verdict.upper()}: {f.condition}", highlight=False, markup=False,
                  soft_wrap=True)
    out.print(f"answers: {out_file} (run folder: {run_dir})", highlight=False, soft_wrap=True)


def main() -> None:
    app()
