"""`invlab run` as a library function: train every model for every seed, sweep shifts, write the run folder.

    run_dir = run_experiment(load_config("configs/quick.yaml"), results_dir=Path("results"))

The way data travels: Config -> (letters, models) -> trained checkpoints -> sweep -> tidy CSVs.

Sweep kinds: `translation` (the whole letter moves; canvas or circular mode) and `parts` (only the glyph's part,
the right-most stroke, moves by (dx, dy) px while the rest of the letter stays; see letters.py). `--layers` adds
the per-layer profile of layerwise.py to a translation sweep. The position task (data.py) is swept in circular
mode only: its test images are exact rolled pairs, which redrawing would break.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import yaml
from pydantic import ValidationError

from .config import Config, DataConfig, SweepConfig, to_yaml
from .data import (LetterBatch, class_names, draw, evaluation_set, glyph_table, position_test_set, reference_letters,
                   training_set)
from .errors import InvlabError
from .letters import GlyphTable
from .models import count_parameters
from .runs import Meta, environment, finished_runs, new_folder, write_csv, write_text
from .shifts import CanvasShifts, circular_shift, grid_points, shift_lines
from .sweep import ModelKey, run_sweep, summarize
from .train import fingerprint, load_checkpoint, save_checkpoint, train_model

FACTOR_COLUMNS = ["downsample", "head", "padding"]
SWEEP_KINDS = ("translation", "parts")
DEFAULT_LAYER_IMAGES = 200  # the layer profile runs every tap at every shift: fewer images than the sweep


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise InvlabError("device: cuda was asked for, but torch finds no CUDA device here; use device: auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def protocol(sweep: SweepConfig, data: DataConfig, seeds: list[int], models: list[str],
             kind: str = "translation") -> dict:
    p = dict(kind=kind, mode=_mode_label(sweep, kind), grid=sweep.grid, dx=sweep.dx, dy=sweep.dy,
             test_images=data.test_images * (2 if data.task == "position" else 1), seeds=list(seeds),
             models=list(models), n_shifts=len(grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid))))
    if data.task == "position":
        p["task"] = "position"  # paired top/bottom test images; the label is the half, not the letter
    return p


def _mode_label(sweep: SweepConfig, kind: str) -> str:
    """The `mode` column: how the test input was changed (a part displacement is a third way)."""
    return "parts" if kind == "parts" else sweep.mode


def check_sweep(data: DataConfig, sweep: SweepConfig, kind: str) -> None:
    """Refuse sweep kinds and modes that do not apply to this data, with the reason."""
    if kind not in SWEEP_KINDS:
        raise InvlabError(f"unknown sweep kind {kind!r}; choose one of: {', '.join(SWEEP_KINDS)}")
    if data.task == "position" and kind == "parts":
        raise InvlabError("--kind parts needs task: letter; the position task's test images are rolled pairs, "
                          "not redrawn letters")
    if data.task == "position" and sweep.mode != "circular":
        raise InvlabError("task: position is swept with --mode circular only (its bottom test images are the top "
                          f"ones rolled by canvas/2; redrawing on the canvas would break the pairs); got {sweep.mode}")


def part_inputs(table: GlyphTable, test: LetterBatch, canvas: int) -> Callable:
    """inputs(chunk, dx, dy): each letter drawn with its part moved by (dx, dy) px, the rest in place."""
    def inputs(c: slice, dx: float, dy: float) -> torch.Tensor:
        sub = test.select(c)
        offset = torch.tensor([float(dx), float(dy)]).expand(len(sub), 2)
        return draw(table, sub, canvas, part_offset=offset)

    return inputs


def sweep_inputs(data: DataConfig, sweep: SweepConfig, kind: str = "translation",
                 n_images: int | None = None) -> tuple[Callable, torch.Tensor]:
    """(inputs(chunk, dx, dy), labels) for the first n_images test items (all by default)."""
    check_sweep(data, sweep, kind)
    table = glyph_table(data)
    if data.task == "position":
        reference, labels = position_test_set(data, table)
        reference, labels = reference[:n_images], labels[:n_images]
        return (lambda c, dx, dy: circular_shift(reference[c], dx, dy)), labels
    test = reference_letters(data)
    if n_images is not None:
        test = test.select(slice(0, n_images))
    if kind == "parts":
        return part_inputs(table, test, data.canvas), test.labels
    max_shift = max(abs(v) for v in sweep.dx[:2] + sweep.dy[:2])
    return shifted_inputs(table, test, data.canvas, sweep.mode, max_shift), test.labels


def shifted_inputs(table: GlyphTable, test: LetterBatch, canvas: int, mode: str, max_shift: float) -> Callable:
    """inputs(chunk, dx, dy) for the sweep: redrawn on the canvas, or the reference image rolled."""
    if mode == "circular":
        reference = draw(table, test, canvas)
        return lambda c, dx, dy: circular_shift(reference[c], dx, dy)
    margin = math.ceil(max_shift)
    return CanvasShifts(lambda fx, fy: draw(table, test, canvas + 2 * margin, margin + fx, margin + fy), canvas, margin)


def _add_factors(df: pd.DataFrame, factors: dict[str, dict], mode: str) -> pd.DataFrame:
    """Insert downsample, head, padding and mode after model, seed."""
    for col in FACTOR_COLUMNS:
        df.insert(2 + FACTOR_COLUMNS.index(col), col, [factors[m][col] for m in df.model])
    df.insert(5, "mode", mode)
    return df


def evaluate_shifts(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, progress: bool = False,
                    kind: str = "translation") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(invariance table, summary table) of trained models over the sweep's shift (or part displacement) grid."""
    inputs, labels = sweep_inputs(data, sweep, kind)
    lines = shift_lines(sweep.dx, sweep.dy, sweep.grid)
    result = run_sweep(models, inputs, labels, lines, sweep.batch_size, device, progress=progress)
    inv = _add_factors(result.table, factors, _mode_label(sweep, kind))
    return inv, summarize(inv, result.clean_accuracy)


def evaluate_layers(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, n_images: int = DEFAULT_LAYER_IMAGES,
                    progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(layers table, layers summary) of layerwise.layer_profile on the first n_images test images."""
    from .layerwise import layer_profile

    inputs, labels = sweep_inputs(data, sweep, "translation", n_images=n_images)
    points = grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid))
    layers, summary = layer_profile(models, inputs, len(labels), points, sweep.mode, sweep.batch_size, device,
                                    progress=progress)
    return _add_factors(layers, factors, sweep.mode), _add_factors(summary, factors, sweep.mode)


def find_checkpoints(results_dir: Path, name: str) -> dict[str, Path]:
    """Checkpoints of earlier finished runs of this experiment name, by fingerprint (the newest wins)."""
    found = {}
    for folder, meta in finished_runs(results_dir, name):
        for key, fp in meta.get("fingerprints", {}).items():
            path = folder / "checkpoints" / f"{key}.pt"
            if path.exists():
                found[fp] = path
    return found


def run_experiment(cfg: Config, *, results_dir: Path, progress: bool = False, reuse: bool = False,
                   on_event: Callable[[str], None] | None = None) -> Path:
    """Train, sweep and write a new run folder; returns its path. meta.json says 'complete' only at the end.

    With reuse, a model whose fingerprint (factors, data, training settings, seed) matches a checkpoint of an
    earlier finished run of the same name is loaded from there instead of being trained again.
    """
    say = on_event or (lambda msg: None)
    device = resolve_device(cfg.device)
    factors = cfg.resolved_models()
    run_dir = new_folder(Path(results_dir) / cfg.name)
    (run_dir / "checkpoints").mkdir()
    write_text(run_dir / "config.yaml", to_yaml(cfg))
    meta = Meta(run_dir, kind="run", name=cfg.name, run_id=run_dir.name, device=str(device), seeds=cfg.seeds,
                protocol=protocol(cfg.sweep, cfg.data, cfg.seeds, list(factors)), environment=environment(),
                models={}, timings={"train_s": {}})
    say(f"run folder: {run_dir}")
    with meta.recording():
        t0 = time.perf_counter()
        table = glyph_table(cfg.data)
        train_x, train_y = training_set(cfg.data, table)
        test_x, test_y = evaluation_set(cfg.data, table)  # position task: the paired top/bottom images
        meta.data["timings"]["data_s"] = round(time.perf_counter() - t0, 2)
        classes = class_names(cfg.data)
        data_d, train_d = cfg.data.model_dump(mode="json"), cfg.train.model_dump(mode="json")

        earlier = find_checkpoints(results_dir, cfg.name) if reuse else {}
        trained, histories = {}, []
        for name, f in factors.items():
            for seed in cfg.seeds:
                t0 = time.perf_counter()
                fp = fingerprint(f, data_d, train_d, seed)
                old = earlier.get(fp)
                if old is not None:
                    model, blob = load_checkpoint(old, device)
                    hist = pd.DataFrame(blob["history"])
                    meta.data.setdefault("reused", {})[f"{name}-seed{seed}"] = str(old)
                    say(f"reused {name} seed {seed} from {old}")
                else:
                    model, hist = train_model(f, train_x, train_y, test_x, test_y, cfg.train, noise=cfg.data.noise,
                                              seed=seed, num_classes=len(classes), canvas=cfg.data.canvas, device=device,
                                              progress=progress, label=f"{name} seed {seed}")
                save_checkpoint(run_dir / "checkpoints" / f"{name}-seed{seed}.pt", model, name=name, seed=seed,
                                data=data_d, train=train_d, classes=classes, history=hist)
                trained[(name, seed)] = model
                histories.append(hist.assign(model=name, seed=seed))
                seconds = round(time.perf_counter() - t0, 2)
                meta.data["timings"]["train_s"][f"{name}-seed{seed}"] = seconds
                meta.data["models"][name] = dict(f, n_params=count_parameters(model))
                meta.data.setdefault("fingerprints", {})[f"{name}-seed{seed}"] = fp
                meta.save()
                last = hist.iloc[-1]
                if old is None:
                    say(f"trained {name} seed {seed}: test accuracy {last.test_accuracy:.3f} ({seconds:.1f}s)")
        train_csv = pd.concat(histories, ignore_index=True)
        write_csv(run_dir / "train.csv", train_csv[["model", "seed"] + [c for c in train_csv if c not in ("model", "seed")]])

        t0 = time.perf_counter()
        inv, summary = evaluate_shifts(trained, factors, cfg.data, cfg.sweep, device, progress=progress)
        meta.data["timings"]["sweep_s"] = round(time.perf_counter() - t0, 2)
        write_csv(run_dir / "invariance.csv", inv)
        write_csv(run_dir / "summary.csv", summary)
    return run_dir


def parse_range(text: str, option: str) -> list[float]:
    """'START:STOP[:STEP]' (inclusive) or a single value 'V' -> [start, stop, step], checked like the config."""
    from .config import _check_range

    try:
        values = [float(v) for v in text.split(":")]
    except ValueError:
        raise InvlabError(f"{option} {text!r}: expected START:STOP[:STEP] with numbers, e.g. {option} -4:4:0.5") from None
    if len(values) == 1:
        values = values * 2
    try:
        return _check_range(values, option)
    except ValueError as e:
        raise InvlabError(f"{option} {text!r}: {e}") from None


def latest_matching_run(cfg: Config, results_dir: Path) -> Path | None:
    """The newest finished run of cfg.name whose checkpoints match every model x seed of cfg exactly."""
    data_d, train_d = cfg.data.model_dump(mode="json"), cfg.train.model_dump(mode="json")
    want = {f"{n}-seed{s}": fingerprint(f, data_d, train_d, s) for n, f in cfg.resolved_models().items() for s in cfg.seeds}
    matching = [folder for folder, meta in finished_runs(results_dir, cfg.name) if meta.get("fingerprints") == want]
    return matching[-1] if matching else None


def sweep_experiment(target: Path, *, results_dir: Path = Path("results"), dx: str | None = None,
                     dy: str | None = None, mode: str | None = None, grid: str | None = None,
                     models: list[str] | None = None, overrides: list[str] | None = None, progress: bool = False,
                     kind: str = "translation", layers: bool = False, layer_images: int = DEFAULT_LAYER_IMAGES,
                     on_event: Callable[[str], None] | None = None) -> Path:
    """Evaluate a run's checkpoints over new shifts; results go to <run>/sweeps/<id>/. Returns that folder.

    kind "parts" moves only each letter's part (the right-most stroke) by (dx, dy) px instead of the letter.
    layers adds layers.csv (per tap x shift) and layers_summary.csv (per tap, with the normalised variance) of
    the first `layer_images` test images (layerwise.py); translation sweeps only.

    `target` is a run folder, or a config file: then the newest finished run with the same models, data,
    training settings and seeds is used, or a new run is made that reuses every matching checkpoint.
    Ranges not given: with neither, the config's; with one, the other axis is fixed at 0.
    """
    from .config import load_config
    from .runs import require_finished_run

    say = on_event or (lambda msg: None)
    if kind not in SWEEP_KINDS:
        raise InvlabError(f"unknown sweep kind {kind!r}; choose one of: {', '.join(SWEEP_KINDS)}")
    if layers and kind != "translation":
        raise InvlabError(f"--layers profiles translations of the whole input; it cannot be combined with --kind {kind}")
    if layers and layer_images < 1:
        raise InvlabError(f"--layer-images must be at least 1; got {layer_images}")
    if kind == "parts" and mode not in (None, "canvas"):
        raise InvlabError(f"--kind parts draws the moved part on the canvas; --mode {mode} does not apply (leave it out)")
    target = Path(target)
    if target.is_file() or target.suffix in (".yaml", ".yml"):
        cfg = load_config(target, overrides)
        run_dir = latest_matching_run(cfg, results_dir)
        if run_dir is None:
            say("no finished run with these exact settings: running it first (matching checkpoints are reused)")
            run_dir = run_experiment(cfg, results_dir=results_dir, progress=progress, reuse=True, on_event=on_event)
        else:
            say(f"using run {run_dir}")
    else:
        if overrides:
            raise InvlabError("--set applies to a config file; a run folder's settings are fixed")
        run_dir = target
    meta_run = require_finished_run(run_dir)
    cfg = load_config(run_dir / "config.yaml")

    settings = cfg.sweep.model_dump()
    if dx is not None or dy is not None:
        settings["dx"] = parse_range(dx, "--dx") if dx is not None else [0.0, 0.0, 1.0]
        settings["dy"] = parse_range(dy, "--dy") if dy is not None else [0.0, 0.0, 1.0]
        settings["grid"] = "product"
    settings.update({k: v for k, v in dict(mode=mode, grid=grid).items() if v is not None})
    if kind == "parts":
        settings["mode"] = "canvas"  # displacements are drawn (sub-pixel allowed), whatever the run's sweep mode
    try:
        sweep = SweepConfig.model_validate(settings)
    except ValidationError as e:
        raise InvlabError("invalid sweep options: " + "; ".join(
            f"{'.'.join(map(str, x['loc'])) or 'sweep'}: {x['msg'].removeprefix('Value error, ')}" for x in e.errors())) from None

    factors = cfg.resolved_models()
    chosen = list(factors) if not models else models
    unknown = [m for m in chosen if m not in factors]
    if unknown:
        raise InvlabError(f"unknown model(s) {', '.join(unknown)} in {run_dir}; choose from: {', '.join(factors)}")
    check_sweep(cfg.data, sweep, kind)
    device = resolve_device(cfg.device)
    loaded = {}
    for name in chosen:
        for seed in cfg.seeds:
            path = run_dir / "checkpoints" / f"{name}-seed{seed}.pt"
            if not path.exists():
                raise InvlabError(f"{run_dir} has no checkpoint {path.name}; the run folder is incomplete")
            loaded[(name, seed)], _ = load_checkpoint(path, device)

    folder = new_folder(run_dir / "sweeps")
    write_text(folder / "sweep.yaml", yaml.safe_dump(dict(sweep=sweep.model_dump(mode="json"), models=chosen, kind=kind,
                                                          layers=layers), sort_keys=False))
    proto = protocol(sweep, cfg.data, cfg.seeds, chosen, kind=kind)
    if layers:
        proto["layers"] = dict(n_images=min(layer_images, proto["test_images"]))
    meta = Meta(folder, kind="sweep", name=cfg.name, run_id=run_dir.name, sweep_id=folder.name, run=str(run_dir),
                device=str(device), seeds=cfg.seeds, protocol=proto,
                environment=environment(), timings={}, run_environment=meta_run.get("environment"))
    say(f"sweep folder: {folder}")
    with meta.recording():
        t0 = time.perf_counter()
        inv, summary = evaluate_shifts(loaded, factors, cfg.data, sweep, device, progress=progress, kind=kind)
        meta.data["timings"]["sweep_s"] = round(time.perf_counter() - t0, 2)
        write_csv(folder / "invariance.csv", inv)
        write_csv(folder / "summary.csv", summary)
        if layers:
            t0 = time.perf_counter()
            per_shift, per_layer = evaluate_layers(loaded, factors, cfg.data, sweep, device, n_images=layer_images,
                                                   progress=progress)
            meta.data["timings"]["layers_s"] = round(time.perf_counter() - t0, 2)
            write_csv(folder / "layers.csv", per_shift)
            write_csv(folder / "layers_summary.csv", per_layer)
    return folder
