"""Streaming evaluation of raster images over shifts, for any model: what `invlab measure` and the Python API share.

Images come a batch at a time (images.py); every shift of a batch is evaluated before the next batch is read (each
image is decoded once), and per model only per-shift sums are kept, so memory does not grow with the number of
images or of shifts. The numbers are run_sweep's (tests/test_measure.py checks it). Shifts move the image inside
its frame (canvas: what enters is the fill, zeros, edge or reflect; sub-pixel shifts bilinear,
shifts.translate_image) or roll it (circular, whole pixels), on the pixels as read, before the normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.errors import InvlabError, choose, quote
from ..data.images import Images, from_tensor, is_run_folder, open_folder, run_images
from ..core.metrics import correct, flips, tv_distance
from ..data.shifts import FILLS, INTERPOLATION, circular_shift, grid_points, previous_on_line, translate_image
from .sweep import ModelKey, SweepResult, tidy_table


MODES = ("canvas", "circular")
GRIDS = ("product", "axes")
ORIGIN = (0.0, 0.0)
Prepare = Callable[[torch.Tensor, float, float], torch.Tensor]  # (batch, dx, dy) -> the model's input


# ----------------------------------------------------------------------------------------------- the inputs


def preparer(mode: str, fill: str = "zeros", mean=None, std=None) -> Prepare:
    """prepare(x, dx, dy): the batch translated (canvas: inside the frame with `fill`; circular: rolled), then
    normalised ((x - mean) / std per channel) when mean or std is given."""
    choose("mode", mode, MODES)
    choose("fill", fill, FILLS)
    m = None if mean is None else torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
    s = None if std is None else torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
    if s is not None and (s <= 0).any():
        raise InvlabError(f"std must be positive; got {quote(list(std))}")

    def prepare(x: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
        x = circular_shift(x, dx, dy) if mode == "circular" else translate_image(x, dx, dy, fill)
        if m is not None:
            x = x - m
        if s is not None:
            x = x / s
        return x

    return prepare


def check_channels(values, channels: int, option: str) -> list[float] | None:
    """One value per channel (or one for all) for --mean / --std."""
    if values is None:
        return None
    values = [float(v) for v in ([values] if isinstance(values, (int, float)) else values)]
    if len(values) == 1:
        values = values * channels
    if len(values) != channels or not all(math.isfinite(v) for v in values):
        raise InvlabError(f"{option} {quote(values)}: give one finite number per channel ({channels}), or one for all")
    return values


def check_grid(points: list[tuple[float, float]], shape: tuple[int, int, int], mode: str) -> None:
    """Refuse shifts that cannot give a useful input for images of `shape` (C, H, W), and too large a grid."""
    from ..config.limits import MAX_SHIFTS

    h, w = shape[-2:]
    if len(points) > MAX_SHIFTS:
        raise InvlabError(f"{len(points)} shifts, each a pass over every image; at most {MAX_SHIFTS}: use larger steps")
    for dx, dy in points:
        if mode == "circular" and (dx != int(dx) or dy != int(dy)):
            raise InvlabError(f"--mode circular rolls by whole pixels; got the shift ({dx:g}, {dy:g}). Use whole-pixel "
                              f"steps, or --mode canvas ({INTERPOLATION} between whole pixels)")
        for d, side, axis in ((dx, w, "dx"), (dy, h, "dy")):
            if mode == "circular" and abs(d) >= side:
                raise InvlabError(f"{axis} {d:g}: a roll by {d:g} px of a {side} px image repeats a roll by "
                                  f"{d - side * round(d / side):g} px; keep |{axis}| < {side}")
            if mode == "canvas" and math.ceil(abs(d)) >= side:
                raise InvlabError(f"{axis} {d:g}: moves the whole {side} px image out of its frame, leaving only the "
                                  f"fill; keep |{axis}| < {side - 1 if d != int(d) else side}")


def shift_values(v, what: str) -> list[float]:
    vals = [float(x) for x in ([v] if isinstance(v, (int, float)) else v)]
    if not vals or not all(math.isfinite(x) for x in vals) or len(set(vals)) != len(vals):
        raise InvlabError(f"{what} must be distinct finite numbers (px); got {quote(vals)}")
    return vals


def pick_device(device) -> torch.device:
    from ..run.experiment import resolve_device

    return resolve_device(device) if isinstance(device, str) else torch.device(device)


def image_source(images, labels=None, *, colour: str = "grey", size=None) -> Images:
    """An image source (images.py) of a tensor, a folder of images, a run folder or an Images."""
    if isinstance(images, Images):
        src = images
    elif isinstance(images, (str, Path)):
        if is_run_folder(images):
            src = run_images(images)
        else:
            size = (size, size) if isinstance(size, int) else size
            src = open_folder(images, colour=colour, size=tuple(size) if size else None)
    else:
        return from_tensor(images, labels)
    if labels is not None:
        y = torch.as_tensor(labels).long().flatten()
        if len(y) != len(src):
            raise InvlabError(f"{len(y)} labels for {len(src)} images; give one label per image, or none")
        src.labels, src.classes = y, None
    return src


# ----------------------------------------------------------------------------------------------- the evaluation


@torch.inference_mode()
def stream_sweep(models: dict[ModelKey, nn.Module], images: Images, lines: list[list[tuple[float, float]]],
                 prepare: Prepare, batch_size: int, device: torch.device, progress: bool = False) -> SweepResult:
    """sweep.run_sweep's result (the same table) for images read a batch at a time: each batch is read once and
    evaluated at every shift before the next; per model only the per-shift sums are kept."""
    n, labels = len(images), images.labels
    points = grid_points(lines)
    index = {p: i for i, p in enumerate(points)}
    previous = previous_on_line(lines)
    sums = {k: np.zeros((len(points), 5)) for k in models}  # correct, flips, TV sum, TV max, neighbour flips
    clean = dict.fromkeys(models, 0)
    chunks = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    bar = tqdm(total=len(chunks) * len(points), desc="measure", unit="shift", disable=not progress, leave=False)
    for c in chunks:
        x0 = images(c)
        y = None if labels is None else labels[c].to(device)

        def probs_at(dx: float, dy: float, x0: torch.Tensor = x0) -> dict:
            x = prepare(x0, dx, dy).to(device, non_blocking=True)
            return {k: torch.softmax(m(x).float(), dim=1) for k, m in models.items()}

        ref = probs_at(*ORIGIN)
        ref_pred = {k: p.argmax(1) for k, p in ref.items()}
        if y is not None:
            for k in models:
                clean[k] += correct(ref[k], y)
        done, neighbour_done = set(), set()
        for line in lines:
            prev = None
            for p in line:
                probs = ref if p == ORIGIN else probs_at(*p)
                preds = ref_pred if p == ORIGIN else {k: q.argmax(1) for k, q in probs.items()}
                i = index[p]
                for k in models:
                    s = sums[k][i]
                    if p not in done:
                        if y is not None:
                            s[0] += correct(probs[k], y)
                        if p != ORIGIN:
                            tv = tv_distance(probs[k], ref[k])
                            s[1] += flips(preds[k], ref_pred[k])
                            s[2] += float(tv.sum())
                            s[3] = max(s[3], float(tv.max()))
                    if prev is not None and p not in neighbour_done:
                        s[4] += flips(preds[k], prev[k])
                done.add(p)
                if prev is not None:
                    neighbour_done.add(p)
                prev = preds
                bar.update(1)
    bar.close()
    rows = []
    for k in models:
        for p, i in index.items():
            s = sums[k][i] / n
            rows.append(dict(model=k[0], seed=k[1], dx=p[0], dy=p[1], n_images=n,
                             accuracy=np.nan if labels is None else s[0], flip_rate=s[1], prob_change=s[2],
                             neighbor_flip_rate=s[4] if p in previous else np.nan, max_prob_change=sums[k][i][3]))
    clean_accuracy = {k: (np.nan if labels is None else clean[k] / n) for k in models}
    return SweepResult(table=tidy_table(rows, list(models)), clean_accuracy=clean_accuracy)


def measure_engines(models: dict[ModelKey, nn.Module], shape: tuple[int, int, int], mode: str,
                    engine: str = "auto") -> tuple[dict, dict]:
    """({model key: engine.Plan, or None for brute force}, the engine protocol for meta.json) for images of
    `shape` (C, H, W). engine: auto takes the exact all-shift engine (engine.py) for every model it applies to
    (circular mode, square images, layers of known kinds), brute force for the rest; allshift refuses
    (InvlabError, with the reason) where it does not apply; brute never takes it."""
    from .engine import ENGINE_CHOICES, choose_engines, engine_protocol

    _, h, w = shape
    if h == w:
        plans = choose_engines(models, h, mode, engine)
        return plans, engine_protocol(plans, models, h, mode)
    choose("engine", engine, ENGINE_CHOICES)  # the engine rolls a C x C map: not these images
    if engine == "allshift":
        raise InvlabError(f"--engine allshift needs square images (it rolls a C x C map); these are {h} x {w} px: "
                          "use --engine auto or brute, or --size to make them square")
    names = sorted({k[0] for k in models})
    return dict.fromkeys(models), dict(engine="brute", engines=dict.fromkeys(names, "brute"),
                                       engine_notes=dict.fromkeys(names, f"the images are not square ({h} x {w} px)"))


def measure_shifts(models: dict[ModelKey, nn.Module], images: Images, lines: list[list[tuple[float, float]]],
                   prepare: Prepare, plans: dict, batch_size: int, device: torch.device,
                   progress: bool = False) -> SweepResult:
    """stream_sweep's result, with the models that have a plan (measure_engines) evaluated by the all-shift
    engine: it reads every image once, unshifted, and rolls inside the network (a --mean/--std normalisation is
    per channel, so it commutes with the roll and the inputs are the same)."""
    from .engine import allshift_sweep, sweep_by_engine

    return sweep_by_engine(
        models, plans, lambda ms: stream_sweep(ms, images, lines, prepare, batch_size, device, progress),
        lambda ps: allshift_sweep(ps, lambda ch, dx, dy: prepare(images(ch), dx, dy), images.labels, lines,
                                  batch_size, device, progress, n=len(images)))


def named_models(model) -> dict[str, nn.Module]:
    if isinstance(model, nn.Module):
        return {type(model).__name__: model}
    if isinstance(model, dict) and model and all(isinstance(m, nn.Module) for m in model.values()):
        return {str(k): m for k, m in model.items()}
    raise InvlabError(f"model must be a torch.nn.Module or a dict of name -> nn.Module; got {type(model).__name__}")


def custom_factors(model: nn.Module) -> dict:
    """A preset's factors (downsample, head, padding); {} for any other model ("custom" in the tables)."""
    from ..nn.models import InvNet

    return dict(model.factors) if isinstance(model, InvNet) else {}


def check_outputs(models: dict[str, nn.Module], src: Images, prepare: Prepare, device: torch.device) -> int:
    """Check every model on the first two images; returns the number of classes of their logits."""
    from ..nn.factory import check_output

    x = prepare(src(slice(0, min(2, len(src)))), *ORIGIN).to(device)
    counts = {}
    for name, m in models.items():
        want = len(src.classes) if src.classes else None
        counts[name] = check_output(m, x, want, f"model {name}")
        if src.labels is not None and int(src.labels.max()) >= counts[name]:
            raise InvlabError(f"model {name} gives {counts[name]} logits, but a label is {int(src.labels.max())}: "
                              "labels must be class indices below the number of logits")
    return max(counts.values())


class Modes:
    """Put models in eval mode (and on the device) for a measurement; put back their training flags after."""

    def __init__(self, models: dict[str, nn.Module], device: torch.device):
        self.models, self.device = models, device

    def __enter__(self):
        self.was = {k: m.training for k, m in self.models.items()}
        for m in self.models.values():
            m.to(self.device).eval()
        return self

    def __exit__(self, *exc):
        for k, m in self.models.items():
            m.train(self.was[k])
