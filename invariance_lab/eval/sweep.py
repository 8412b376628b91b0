"""Evaluate trained models over a grid of input shifts, streaming: memory does not grow with the grid.

For each shift the test inputs are made once, batch by batch, and every model sees the same batch, so the cost
of drawing letters is shared by all models. Per model only the reference outputs (N x classes) and the previous
shift's predictions (N) are kept.

    result = run_sweep(models, inputs, labels, lines, batch_size=500, device=torch.device("cpu"))
    result.table      # tidy DataFrame: model, seed, dx, dy, n_images, accuracy, flip_rate, prob_change, ...
    inv, summary = evaluate_shifts(models, factors, cfg.data, cfg.sweep, device)   # the same, for a config
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..schema.config import DataConfig, SweepConfig
from ..data.datasets import class_names
from ..core.metrics import correct, flips, tv_distance
from ..data.shifts import grid_points, shift_lines, sweep_inputs
from ..core.stats import is_at_chance

# inputs(chunk, dx, dy) -> images of the test items in `chunk` (a slice), translated by (dx, dy)
Inputs = Callable[[slice, float, float], torch.Tensor]
ModelKey = tuple[str, int]  # (model name, seed)

# The column vocabularies of the tidy tables, named once here where the tables are made; report, plots and
# experiment import them.
METRIC_COLUMNS = ["accuracy", "flip_rate", "prob_change", "neighbor_flip_rate"]  # invariance.csv, per shift
FACTOR_COLUMNS = ["downsample", "head", "padding"]  # the architecture factors, after model and seed
CUSTOM = "custom"  # what the factor columns say for a model of your own (a factory: factory.py)
# summary.csv, per model x seed: accuracy at (0, 0), then the mean and the worst of each metric over the non-zero
# shifts (worst = lowest accuracy, highest of the others); n_classes and at_chance say whether the seed learned.
SUMMARY_METRICS = ["clean_accuracy", *(f"{agg}_{m}" for m in METRIC_COLUMNS for agg in ("mean", "worst"))]
CHANCE_COLUMNS = ["n_classes", "at_chance"]
# Added later (older folders lack them): invariance.csv's max_prob_change, the largest TV distance of any one image
# at the shift; summary.csv's worst shift (the non-zero shift of worst_prob_change) and max_prob_change, the
# largest over every image and non-zero shift: the worst case an --all-shifts sweep certifies.
MAX_COLUMN = "max_prob_change"
WORST_SHIFT_COLUMNS = ["worst_shift_dx", "worst_shift_dy"]
INVARIANT_TV = 1e-6  # a model changes no probability by more than this (float round-off): invariant


@dataclass
class SweepResult:
    table: pd.DataFrame  # one row per model x seed x shift
    clean_accuracy: dict[ModelKey, float]  # accuracy at (0, 0), evaluated even when (0, 0) is not in the grid


@torch.inference_mode()
def run_sweep(models: dict[ModelKey, torch.nn.Module], inputs: Inputs, labels: torch.Tensor,
              lines: list[list[tuple[float, float]]], batch_size: int, device: torch.device,
              progress: bool = False) -> SweepResult:
    n = len(labels)
    labels = labels.to(device)
    chunks = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    for m in models.values():
        m.eval()

    def evaluate(dx: float, dy: float, ref=None):
        """Predictions and probabilities of every model at one shift (probs kept only for the reference)."""
        preds = {k: torch.empty(n, dtype=torch.long, device=device) for k in models}
        probs = dict.fromkeys(models)
        sums = {k: np.zeros(4) for k in models}  # correct, flips vs reference, summed and largest TV distance
        for c in chunks:
            x = inputs(c, dx, dy).to(device, non_blocking=True)
            for k, model in models.items():
                p = torch.softmax(model(x).float(), dim=1)
                pred = p.argmax(1)
                preds[k][c] = pred
                sums[k][0] += correct(p, labels[c])
                if ref is None:
                    if probs[k] is None:
                        probs[k] = torch.empty(n, p.shape[1], device=device)
                    probs[k][c] = p
                else:
                    ref_pred, ref_probs = ref[k]
                    sums[k][1] += flips(pred, ref_pred[c])
                    tv = tv_distance(p, ref_probs[c])
                    sums[k][2] += float(tv.sum())
                    sums[k][3] = max(sums[k][3], float(tv.max()))
        return preds, probs, sums

    moved = [p for p in grid_points(lines) if p != (0.0, 0.0)]
    bar = tqdm(total=len(moved) + 1, desc="sweep", unit="shift", disable=not progress, leave=False)
    ref_preds, ref_probs, ref_sums = evaluate(0.0, 0.0)
    ref = {k: (ref_preds[k], ref_probs[k]) for k in models}
    bar.update(1)

    rows: dict[tuple, dict] = {}
    for line in lines:
        prev = None
        for dx, dy in line:
            if (dx, dy) == (0.0, 0.0):
                preds, sums = ref_preds, ref_sums
            else:  # lines of our grids cross only at (0, 0); any other repeat is simply evaluated again
                preds, _, sums = evaluate(dx, dy, ref)
                bar.update(1)
            for k in models:
                row = rows.get((dx, dy, k))
                if row is None:
                    acc, fl, tv = sums[k][:3] / n
                    row = rows[(dx, dy, k)] = dict(model=k[0], seed=k[1], dx=dx, dy=dy, n_images=n, accuracy=acc,
                                                   flip_rate=fl, prob_change=tv, neighbor_flip_rate=np.nan,
                                                   max_prob_change=sums[k][3])
                if prev is not None and np.isnan(row["neighbor_flip_rate"]):
                    row["neighbor_flip_rate"] = flips(preds[k], prev[k]) / n
            prev = preds
    bar.close()
    clean = {k: float(ref_sums[k][0] / n) for k in models}
    return SweepResult(table=tidy_table(list(rows.values()), list(models)), clean_accuracy=clean)


def tidy_table(rows: list[dict], models: list[ModelKey]) -> pd.DataFrame:
    """The invariance table of `rows` (one per model x seed x shift): models in the given order, then dy, dx."""
    table = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate(models)}
    table["_order"] = [order[(m, s)] for m, s in zip(table.model, table.seed)]
    return table.sort_values(["_order", "dy", "dx"], kind="stable").drop(columns="_order").reset_index(drop=True)


def summarize(table: pd.DataFrame, clean_accuracy: dict[ModelKey, float],
              n_classes: int | None = None) -> pd.DataFrame:
    """Per model x seed: clean accuracy, and mean and worst of each metric over the non-zero shifts.

    n_classes (the number of classes) gives chance = 1 / n_classes, and `at_chance` flags a seed whose clean
    accuracy is at most chance + stats.CHANCE_MARGIN: its flip rate says nothing about invariance. Without it
    both columns are left empty (report.py then reads the number of classes from the run's config)."""
    keys = [c for c in table.columns if c not in METRIC_COLUMNS + ["dx", "dy", MAX_COLUMN]]
    out = []
    for key, g in table.groupby(["model", "seed"], sort=False):
        moved = g[(g.dx != 0) | (g.dy != 0)]
        row = {c: g[c].iloc[0] for c in keys}
        clean = clean_accuracy[key]
        row.update(n_shifts=len(moved), n_classes=n_classes, clean_accuracy=clean,
                   at_chance=None if n_classes is None else bool(is_at_chance(clean, n_classes)))
        for m in METRIC_COLUMNS:
            vals = moved[m].dropna()
            row[f"mean_{m}"] = vals.mean() if len(vals) else np.nan
            row[f"worst_{m}"] = (vals.min() if m == "accuracy" else vals.max()) if len(vals) else np.nan
        worst = moved.loc[moved.prob_change.idxmax()] if len(moved) else None  # the first, in table order
        row.update(zip(WORST_SHIFT_COLUMNS, (np.nan, np.nan) if worst is None else (worst.dx, worst.dy)))
        if MAX_COLUMN in moved:
            row[MAX_COLUMN] = moved[MAX_COLUMN].max() if len(moved) else np.nan
        out.append(row)
    return pd.DataFrame(out)


# ------------------------------------------------------- a sweep of configured data: inputs, evaluation, factors
DEFAULT_LAYER_IMAGES = 200  # the layer profile runs every tap at every shift: fewer images than the sweep


def protocol(sweep: SweepConfig, data: DataConfig, seeds: list[int], models: list[str], kind: str = "translation") -> dict:
    """The protocol of a sweep (SweepConfig) of data (DataConfig), as stored in meta.json."""
    p = dict(kind=kind, mode="parts" if kind == "parts" else sweep.mode, grid=sweep.grid, dx=sweep.dx,
             dy=sweep.dy, test_images=data.test_images * (2 if data.task == "position" else 1), seeds=list(seeds),
             models=list(models), n_shifts=len(grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid))))
    if data.task == "position":
        p["task"] = "position"  # paired top/bottom test images; the label is the half, not the letter
    if kind == "parts" and data.source == "letters" and data.glyphs == "outline":
        p["part"] = "counter"  # a filled letter's part is its right-most counter (outlines.py), not a stroke
    if data.source == "folder":  # images translated as pixels, not letters redrawn (folder_data.py)
        from ..data.shifts import INTERPOLATION

        p.update(images=f"the test split of {data.path}", fill=data.fill, interpolation=INTERPOLATION)
    if kind == "translation" and covers_every_roll(sweep, data.canvas):
        p["all_shifts"] = True  # the whole translation group of the canvas: the summary's worst case is exact
    return p


def covers_every_roll(sweep: SweepConfig, canvas: int) -> bool:
    """Whether a circular sweep's grid holds every roll of the canvas (each (dx, dy) mod canvas)."""
    if sweep.mode != "circular":
        return False
    points = grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid))
    return len({(int(dx) % canvas, int(dy) % canvas) for dx, dy in points}) == canvas * canvas


def every_roll(canvas: int) -> list[float]:
    """The [start, stop, step] range of every roll along one axis, centred on 0: -15..16 for 32, -15..15 for 31."""
    return [float(-((canvas - 1) // 2)), float(canvas // 2), 1.0]


def sweep_engines(models: dict[ModelKey, torch.nn.Module], data: DataConfig, sweep: SweepConfig,
                  kind: str = "translation", engine: str = "auto") -> dict:
    """{model key: engine.Plan, or None for brute force} for this sweep (engine: auto | allshift | brute)."""
    from .engine import choose_engines  # engine builds on this module's SweepResult

    for m in models.values():
        m.eval()
    return choose_engines(models, data.canvas, "parts" if kind == "parts" else sweep.mode, engine)


def evaluate_shifts(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, progress: bool = False,
                    kind: str = "translation", engine: str | dict = "auto") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(invariance table, summary table) of trained models over the sweep's shift (or part displacement) grid.

    engine: auto (the all-shift engine, engine.py, for every model it applies to: circular sweeps of circular
    networks; brute force for the rest), allshift (refuse where it does not apply), brute, or the result of
    sweep_engines(). The numbers are the same either way, to float round-off."""
    from .engine import allshift_sweep, sweep_by_engine

    inputs, labels = sweep_inputs(data, sweep, kind)
    lines = shift_lines(sweep.dx, sweep.dy, sweep.grid)
    plans = engine if isinstance(engine, dict) else sweep_engines(models, data, sweep, kind, engine)
    result = sweep_by_engine(
        models, plans, lambda ms: run_sweep(ms, inputs, labels, lines, sweep.batch_size, device, progress=progress),
        lambda ps: allshift_sweep(ps, inputs, labels, lines, sweep.batch_size, device, progress=progress))
    inv = _add_factors(result.table, factors, "parts" if kind == "parts" else sweep.mode)
    return inv, summarize(inv, result.clean_accuracy, n_classes=len(class_names(data)))


def evaluate_layers(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, n_images: int = DEFAULT_LAYER_IMAGES,
                    progress: bool = False, engine: str | dict = "auto") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(layers table, layers summary) of layerwise.layer_profile on the first n_images test images; engine as
    for evaluate_shifts."""
    from .layerwise import layer_profile  # layerwise builds on this module's Inputs

    inputs, labels = sweep_inputs(data, sweep, "translation", n_images=n_images)
    points = grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid))
    plans = engine if isinstance(engine, dict) else sweep_engines(models, data, sweep, "translation", engine)
    layers, summary = layer_profile(models, inputs, len(labels), points, sweep.mode, sweep.batch_size, device,
                                    progress=progress, engine=plans)
    return _add_factors(layers, factors, sweep.mode), _add_factors(summary, factors, sweep.mode)


def _add_factors(df: pd.DataFrame, factors: dict[str, dict], mode: str) -> pd.DataFrame:
    """Insert downsample, head, padding and mode after model, seed ("custom" for a factory model's factors)."""
    for i, col in enumerate(FACTOR_COLUMNS):
        df.insert(2 + i, col, [factors[m].get(col, CUSTOM) for m in df.model])
    df.insert(2 + len(FACTOR_COLUMNS), "mode", mode)
    return df
