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

from .config import DataConfig, SweepConfig
from .data import class_names
from .metrics import correct, flips, tv_distance
from .shifts import grid_points, shift_lines, sweep_inputs
from .stats import is_at_chance

# inputs(chunk, dx, dy) -> images of the test items in `chunk` (a slice), translated by (dx, dy)
Inputs = Callable[[slice, float, float], torch.Tensor]
ModelKey = tuple[str, int]  # (model name, seed)

# The column vocabularies of the tidy tables, named once here where the tables are made; report, plots and
# experiment import them.
METRIC_COLUMNS = ["accuracy", "flip_rate", "prob_change", "neighbor_flip_rate"]  # invariance.csv, per shift
FACTOR_COLUMNS = ["downsample", "head", "padding"]  # the architecture factors, after model and seed
# summary.csv, per model x seed: accuracy at (0, 0), then the mean and the worst of each metric over the non-zero
# shifts (worst = lowest accuracy, highest of the others); n_classes and at_chance say whether the seed learned.
SUMMARY_METRICS = ["clean_accuracy", *(f"{agg}_{m}" for m in METRIC_COLUMNS for agg in ("mean", "worst"))]
CHANCE_COLUMNS = ["n_classes", "at_chance"]


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
        sums = {k: np.zeros(3) for k in models}  # correct, flips vs reference, summed TV distance
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
                    sums[k][2] += float(tv_distance(p, ref_probs[c]).sum())
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
                    acc, fl, tv = sums[k] / n
                    row = rows[(dx, dy, k)] = dict(model=k[0], seed=k[1], dx=dx, dy=dy, n_images=n, accuracy=acc,
                                                   flip_rate=fl, prob_change=tv, neighbor_flip_rate=np.nan)
                if prev is not None and np.isnan(row["neighbor_flip_rate"]):
                    row["neighbor_flip_rate"] = flips(preds[k], prev[k]) / n
            prev = preds
    bar.close()
    table = pd.DataFrame(list(rows.values()))
    order = {k: i for i, k in enumerate(models)}
    table["_order"] = [order[(m, s)] for m, s in zip(table.model, table.seed)]
    table = table.sort_values(["_order", "dy", "dx"], kind="stable").drop(columns="_order").reset_index(drop=True)
    clean = {k: float(ref_sums[k][0] / n) for k in models}
    return SweepResult(table=table, clean_accuracy=clean)


def summarize(table: pd.DataFrame, clean_accuracy: dict[ModelKey, float],
              n_classes: int | None = None) -> pd.DataFrame:
    """Per model x seed: clean accuracy, and mean and worst of each metric over the non-zero shifts.

    n_classes (the number of classes) gives chance = 1 / n_classes, and `at_chance` flags a seed whose clean
    accuracy is at most chance + stats.CHANCE_MARGIN: its flip rate says nothing about invariance. Without it
    both columns are left empty (report.py then reads the number of classes from the run's config)."""
    keys = [c for c in table.columns if c not in METRIC_COLUMNS + ["dx", "dy"]]
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
    return p


def evaluate_shifts(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, progress: bool = False,
                    kind: str = "translation") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(invariance table, summary table) of trained models over the sweep's shift (or part displacement) grid."""
    inputs, labels = sweep_inputs(data, sweep, kind)
    result = run_sweep(models, inputs, labels, shift_lines(sweep.dx, sweep.dy, sweep.grid), sweep.batch_size,
                       device, progress=progress)
    inv = _add_factors(result.table, factors, "parts" if kind == "parts" else sweep.mode)
    return inv, summarize(inv, result.clean_accuracy, n_classes=len(class_names(data)))


def evaluate_layers(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, n_images: int = DEFAULT_LAYER_IMAGES,
                    progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(layers table, layers summary) of layerwise.layer_profile on the first n_images test images."""
    from .layerwise import layer_profile  # layerwise builds on this module's Inputs

    inputs, labels = sweep_inputs(data, sweep, "translation", n_images=n_images)
    points = grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid))
    layers, summary = layer_profile(models, inputs, len(labels), points, sweep.mode, sweep.batch_size, device,
                                    progress=progress)
    return _add_factors(layers, factors, sweep.mode), _add_factors(summary, factors, sweep.mode)


def _add_factors(df: pd.DataFrame, factors: dict[str, dict], mode: str) -> pd.DataFrame:
    """Insert downsample, head, padding and mode after model, seed."""
    for i, col in enumerate(FACTOR_COLUMNS):
        df.insert(2 + i, col, [factors[m][col] for m in df.model])
    df.insert(2 + len(FACTOR_COLUMNS), "mode", mode)
    return df
