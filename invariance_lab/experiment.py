"""`invlab run` as a library function: train every model for every seed, sweep shifts, write the run folder.

    run_dir = run_experiment(load_config("configs/quick.yaml"), results_dir=Path("results"))

The way data travels: Config -> (letters, models) -> trained checkpoints -> sweep -> tidy CSVs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from .config import Config, DataConfig, SweepConfig, to_yaml
from .data import LetterBatch, class_names, draw, glyph_table, test_letters, training_set
from .errors import InvlabError
from .letters import GlyphTable
from .models import count_parameters
from .runs import Meta, environment, new_folder, write_csv, write_text
from .shifts import axis_values, circular_shift, shift_lines
from .sweep import ModelKey, run_sweep, summarize
from .train import fingerprint, save_checkpoint, train_model

FACTOR_COLUMNS = ["downsample", "head", "padding"]


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise InvlabError("device: cuda was asked for, but torch finds no CUDA device here; use device: auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def protocol(sweep: SweepConfig, data: DataConfig, seeds: list[int], models: list[str]) -> dict:
    return dict(kind="translation", mode=sweep.mode, grid=sweep.grid, dx=sweep.dx, dy=sweep.dy,
                test_images=data.test_images, seeds=list(seeds), models=list(models),
                n_shifts=len({p for line in shift_lines(sweep.dx, sweep.dy, sweep.grid) for p in line}))


def shifted_inputs(table: GlyphTable, test: LetterBatch, canvas: int, mode: str) -> Callable:
    """inputs(chunk, dx, dy) for the sweep: redrawn on the canvas, or the reference image rolled."""
    if mode == "circular":
        reference = draw(table, test, canvas)
        return lambda c, dx, dy: circular_shift(reference[c], dx, dy)
    return lambda c, dx, dy: draw(table, test.select(c), canvas, dx, dy)


def evaluate_shifts(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(invariance table, summary table) of trained models over the sweep's shift grid."""
    table = glyph_table(data)
    test = test_letters(data)
    inputs = shifted_inputs(table, test, data.canvas, sweep.mode)
    lines = shift_lines(sweep.dx, sweep.dy, sweep.grid)
    result = run_sweep(models, inputs, test.labels, lines, sweep.batch_size, device, progress=progress)
    inv = result.table
    for col in FACTOR_COLUMNS:
        inv.insert(2 + FACTOR_COLUMNS.index(col), col, [factors[m][col] for m in inv.model])
    inv.insert(5, "mode", sweep.mode)
    return inv, summarize(inv, result.clean_accuracy)


def run_experiment(cfg: Config, *, results_dir: Path, progress: bool = False,
                   on_event: Callable[[str], None] | None = None) -> Path:
    """Train, sweep and write a new run folder; returns its path. meta.json says 'complete' only at the end."""
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
    try:
        t0 = time.perf_counter()
        table = glyph_table(cfg.data)
        train_x, train_y = training_set(cfg.data, table)
        test = test_letters(cfg.data)
        test_x = draw(table, test, cfg.data.canvas)
        meta.data["timings"]["data_s"] = round(time.perf_counter() - t0, 2)
        classes = class_names(cfg.data)
        data_d, train_d = cfg.data.model_dump(mode="json"), cfg.train.model_dump(mode="json")

        trained, histories = {}, []
        for name, f in factors.items():
            for seed in cfg.seeds:
                t0 = time.perf_counter()
                model, hist = train_model(f, train_x, train_y, test_x, test.labels, cfg.train, noise=cfg.data.noise,
                                          seed=seed, num_classes=len(classes), canvas=cfg.data.canvas, device=device,
                                          progress=progress, label=f"{name} seed {seed}")
                save_checkpoint(run_dir / "checkpoints" / f"{name}-seed{seed}.pt", model, name=name, seed=seed,
                                data=data_d, train=train_d, classes=classes, history=hist)
                trained[(name, seed)] = model
                histories.append(hist.assign(model=name, seed=seed))
                seconds = round(time.perf_counter() - t0, 2)
                meta.data["timings"]["train_s"][f"{name}-seed{seed}"] = seconds
                meta.data["models"][name] = dict(f, n_params=count_parameters(model))
                meta.data.setdefault("fingerprints", {})[f"{name}-seed{seed}"] = fingerprint(f, data_d, train_d, seed)
                meta.save()
                last = hist.iloc[-1]
                say(f"trained {name} seed {seed}: test accuracy {last.test_accuracy:.3f} ({seconds:.1f}s)")
        train_csv = pd.concat(histories, ignore_index=True)
        write_csv(run_dir / "train.csv", train_csv[["model", "seed"] + [c for c in train_csv if c not in ("model", "seed")]])

        t0 = time.perf_counter()
        inv, summary = evaluate_shifts(trained, factors, cfg.data, cfg.sweep, device, progress=progress)
        meta.data["timings"]["sweep_s"] = round(time.perf_counter() - t0, 2)
        write_csv(run_dir / "invariance.csv", inv)
        write_csv(run_dir / "summary.csv", summary)
    except KeyboardInterrupt:
        meta.finish("interrupted")
        raise
    except BaseException as e:
        meta.finish("failed", error=f"{type(e).__name__}: {e}")
        raise
    meta.finish("complete")
    return run_dir
