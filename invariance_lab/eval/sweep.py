"""Evaluate trained models over a grid of input shifts, streaming: memory does not grow with the grid.

For each shift the test inputs are made once, batch by batch, and every model sees the same batch, so the cost
of drawing letters is shared by all models. Per model only the reference outputs (N x classes) and the previous
shift's predictions (N) are kept; the per-shift sums are accumulate.py's, as for every evaluator.

    result = run_sweep(models, inputs, labels, lines, batch_size=500, device=torch.device("cpu"))
    result.table      # tidy DataFrame: model, seed, dx, dy, n_images, accuracy, flip_rate, prob_change, ...
    inv, summary = evaluate_shifts(models, factors, cfg.data, cfg.sweep, device)   # the same, for a config
"""

from __future__ import annotations

import pandas as pd
import torch

from ..core.errors import InvlabError, choose
from ..core.progress import progress_bar
from ..data.datasets import class_names
from ..data.shifts import (SWEEP_KINDS, grid_points, roll_protocol, shift_lines, sweep_inputs, sweep_lines,
                           whole_shifts)
from ..data.transforms import INTERPOLATION
from ..schema.config import DataConfig, SweepConfig
from .accumulate import Grid, Inputs, ShiftSums, sweep_result, walk_grid
from .engine import allshift_sweep, choose_engines, roll_mode, sweep_by_engine
from .layerwise import profile_layers
from .lie import SWEEP_METRICS
from ..nn.forward import probabilities
from .tables import ModelKey, SweepResult, add_factors, model_words, summarize


@torch.inference_mode()
def run_sweep(models: dict[ModelKey, torch.nn.Module], inputs: Inputs, labels: torch.Tensor,
              lines: list[list[tuple[float, ...]]], batch_size: int, device: torch.device,
              progress: bool = False, transform: str = "translate", classes: int | None = None) -> SweepResult:
    """Brute force: every model on the inputs at every shift, the shifts in line order (accumulate.Grid.walk),
    each shift's batches one after another; the reference (0, 0) first, its probabilities kept. A rotate or scale
    sweep (transform) is the same walk over (angle,) or (scale,) points, from angle 0 or scale 1. `classes`: the
    number of logits every model must give (a model of your own that gives other ones is refused: nn/forward.py)."""
    n = len(labels)
    labels = labels.to(device)
    chunks = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    for m in models.values():
        m.eval()
    grid = Grid(lines, transform)
    sums = {k: ShiftSums(grid) for k in models}
    ref_probs: dict[ModelKey, torch.Tensor | None] = dict.fromkeys(models)

    def evaluate(shift: tuple[float, float], add: bool, keep: bool = False) -> dict[ModelKey, torch.Tensor]:
        """Predictions (n,) of every model at one shift; its sums are added when `add`, the probabilities kept
        when `keep` (the reference)."""
        preds = {k: torch.empty(n, dtype=torch.long, device=device) for k in models}
        for c in chunks:
            x = inputs(c, *shift).to(device, non_blocking=True)
            for k, model in models.items():
                p = probabilities(model, x, model_words(k), classes)
                if keep:
                    if ref_probs[k] is None:
                        ref_probs[k] = torch.empty(n, p.shape[1], device=device)
                    ref_probs[k][c] = p
                preds[k][c] = sums[k].add([shift], p[None], ref_probs[k][c], labels[c], c)[0] if add else p.argmax(1)
        return preds

    bar = progress_bar(grid.evaluations, "sweep", "shift", progress)

    def predict(shift: tuple[float, ...], new: bool) -> dict[ModelKey, torch.Tensor]:
        preds = evaluate(shift, add=new)
        bar.update(1)
        return preds

    if hasattr(inputs, "expect"):  # canvas shifts keep the sub-pixel phases this order needs (data/shifts.py)
        inputs.expect([grid.origin] + [step.shift for step in grid.walk if step.shift != grid.origin])
    ref_preds = evaluate(grid.origin, add=True, keep=True)
    bar.update(1)
    walk_grid(grid, sums, ref_preds, predict)
    bar.close()
    return sweep_result(sums, n, labelled=True)


# ------------------------------------------------------- a sweep of configured data: inputs, evaluation, factors
DEFAULT_LAYER_IMAGES = 200  # the layer profile runs every tap at every shift: fewer images than the sweep


def protocol(sweep: SweepConfig, data: DataConfig, seeds: list[int], models: list[str], kind: str = "translation") -> dict:
    """The protocol of a sweep (SweepConfig) of data (DataConfig), as stored in meta.json."""
    p = dict(kind=kind, mode="parts" if kind == "parts" else sweep.mode, grid=sweep.grid, dx=sweep.dx,
             dy=sweep.dy, test_images=data.test_images * (2 if data.task == "position" else 1), seeds=list(seeds),
             models=list(models), n_shifts=len(grid_points(sweep_lines(sweep))))
    if data.task == "position":
        p["task"] = "position"  # paired top/bottom test images; the label is the half, not the letter
    if kind == "parts" and data.source == "letters" and data.glyphs == "outline":
        p["part"] = "counter"  # a filled letter's part is its right-most counter (outlines.py), not a stroke
    if data.source == "folder":  # images translated as pixels, not letters redrawn (data/folder.py)
        p.update(images=f"the test split of {data.path}", fill=data.fill, interpolation=INTERPOLATION)
    if data.source == "boxes":  # translated as pixels in their frame (data/shifts.py), zeros entering
        p.update(images=f"red and green boxes, the {data.test_set} test set", fill="zeros", interpolation=INTERPOLATION)
    if sweep.subpixel == "fft":  # fractional rolls band-limited (data/transforms.fourier_shift); absent: bilinear
        p["subpixel"] = "fft"
    if sweep.transform != "translate":  # the grid is angles or scales; dx, dy are the run's, unused here
        key = "angles" if sweep.transform == "rotate" else "scales"
        p.update(transform=sweep.transform, **{key: getattr(sweep, key)})
        verb = "turned" if sweep.transform == "rotate" else "scaled"
        p["drawing"] = (f"letters drawn {verb} (exact)" if data.source == "letters" and sweep.mode == "canvas" else
                        f"the reference image {verb} as pixels ({INTERPOLATION})")
    elif kind == "translation" and sweep.mode == "circular":  # every roll of the canvas, or one given twice
        p.update(roll_protocol(grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid)), data.canvas, data.canvas))
    if (kind, sweep.transform, sweep.mode, data.source, data.task) == ("translation", "translate", "canvas", "letters",
                                                                       "letter"):
        p["whole"] = _whole_range(data, sweep)  # past it the frame cuts letters: the tables' caption says so
    return p


def _whole_range(data: DataConfig, sweep: SweepConfig) -> dict[str, list[int]]:
    """data/shifts.whole_shifts of the test letters as the sweep draws them at (0, 0) (its canvas shifts draw the
    whole test set at once, so this holds no more than the sweep will)."""
    inputs, labels = sweep_inputs(data, sweep)
    return whole_shifts(inputs(slice(0, len(labels)), 0.0, 0.0))



def sweep_engines(models: dict[ModelKey, torch.nn.Module], data: DataConfig, sweep: SweepConfig,
                  kind: str = "translation", engine: str = "auto") -> dict:
    """{model key: engine.Plan, or None for brute force} for this sweep (engine: auto | allshift | brute)."""
    for m in models.values():
        m.eval()
    return choose_engines(models, data.canvas, engine_mode(sweep, kind), engine)


def engine_mode(sweep: SweepConfig, kind: str = "translation") -> str:
    """The sweep as the engine sees it (engine.plan_for): parts, canvas, circular, or circular with sub-pixel
    (fft) shifts, which are not rolls of the input."""
    if kind == "parts":
        return "parts"
    if sweep.transform != "translate":
        return sweep.transform  # rotate, scale: not rolls (engine.plan_for says why it does not apply)
    return roll_mode(sweep.mode, grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid)))


def evaluate_shifts(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, progress: bool = False,
                    kind: str = "translation", engine: str | dict = "auto") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(invariance table, summary table) of trained models over the sweep's shift (or part displacement) grid.

    engine: auto (the all-shift engine, engine.py, for every model it applies to: circular sweeps of circular
    networks; brute force for the rest), allshift (refuse where it does not apply), brute, or the result of
    sweep_engines(). The numbers are the same either way, to float round-off."""
    inputs, labels = sweep_inputs(data, sweep, kind)
    lines = sweep_lines(sweep)
    plans = engine if isinstance(engine, dict) else sweep_engines(models, data, sweep, kind, engine)
    result = sweep_by_engine(
        models, plans, lambda ms: run_sweep(ms, inputs, labels, lines, sweep.batch_size, device, progress=progress,
                                            transform=sweep.transform, classes=len(class_names(data))),
        lambda ps: allshift_sweep(ps, inputs, labels, lines, sweep.batch_size, device, progress=progress))
    inv = add_factors(result.table, factors, "parts" if kind == "parts" else sweep.mode)
    return inv, summarize(inv, result.clean_accuracy, n_classes=len(class_names(data)), worst_case=result.worst_case)


def evaluate_layers(models: dict[ModelKey, torch.nn.Module], factors: dict[str, dict], data: DataConfig,
                    sweep: SweepConfig, device: torch.device, n_images: int = DEFAULT_LAYER_IMAGES,
                    progress: bool = False, engine: str | dict = "auto") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(layers table, layers summary) of layerwise.profile_layers on the first n_images test images; engine as
    for evaluate_shifts."""
    inputs, labels = sweep_inputs(data, sweep, "translation", n_images=n_images)
    points = grid_points(shift_lines(sweep.dx, sweep.dy, sweep.grid))
    plans = engine if isinstance(engine, dict) else sweep_engines(models, data, sweep, "translation", engine)
    layers, summary = profile_layers(models, inputs, len(labels), points, sweep.mode, sweep.batch_size, device,
                                     progress=progress, engine=plans)
    return add_factors(layers, factors, sweep.mode), add_factors(summary, factors, sweep.mode)


def check_sweep_options(kind: str, layers: bool, metric: str | None, layer_images: int) -> None:
    """The options of a sweep that need no run, checked before one is trained for it (invlab sweep CONFIG)."""
    choose("sweep kind", kind, SWEEP_KINDS)
    if (layers or metric) and kind != "translation":  # both read whole inputs moved, not a part
        raise InvlabError(f"{'--layers' if layers else '--metric ' + str(metric)} measures transformations of the "
                          f"whole input; it cannot be combined with --kind {kind}")
    if metric is not None:
        choose("--metric", metric, SWEEP_METRICS)
    if (layers or metric) and layer_images < 1:
        raise InvlabError(f"--layer-images must be at least 1; got {layer_images}")
