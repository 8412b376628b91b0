"""Streaming evaluation of raster images over shifts, for any model: what `invlab measure` and the Python API share
(measurement.py puts it together).

    prepare = preparer("canvas", fill="zeros")        # prepare(batch, dx, dy): shifted, then normalised
    result = stream_sweep(models, open_folder("data/test"), lines, prepare, 256, torch.device("cpu"))

Images come a batch at a time (images.py); every shift of a batch is evaluated before the next batch is read (each
image is decoded once), and per model only per-shift sums are kept, so memory does not grow with the number of
images or of shifts. The numbers are run_sweep's (tests/run/test_measure.py and tests/eval/test_accumulate.py
check it). Shifts move the image inside its frame (canvas: what enters is the fill, zeros, edge or reflect;
sub-pixel shifts bilinear, shifts.translate_image) or roll it (circular, whole pixels), on the pixels as read,
before the normalisation.
"""

from __future__ import annotations

import math
from numbers import Real
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..core.progress import progress_bar
from ..schema.sweep import MAX_SHIFTS, turn_problem
from ..core.channels_last import channels_last_hint
from ..core.errors import ConfigError, InvlabError, choose, quote
from ..data.images import Images, from_tensor, label_tensor, open_folder
from ..store.run_images import is_run_folder, run_images
from ..data.shifts import circular_shift
from ..data.transforms import FILLS, INTERPOLATION, SUBPIXEL, flat_at_scale, translate_image, turn_image
from ..core.columns import GRID_COLUMNS
from .accumulate import Grid, ShiftSums, sweep_result, walk_grid
from ..nn.forward import probabilities
from .tables import ModelKey, SweepResult, model_words

MODES = ("canvas", "circular")
GRIDS = ("product", "axes")
# (batch, dx, dy) -> the model's input; (batch, angle) or (batch, scale) for a rotate or scale measurement
Prepare = Callable[..., torch.Tensor]
STD_MIN = float(torch.finfo(torch.float32).tiny)  # the smallest --std: the least normal float32


# ----------------------------------------------------------------------------------------------- the inputs


def preparer(mode: str, fill: str = "zeros", mean=None, std=None, subpixel: str = "bilinear",
             transform: str = "translate") -> Prepare:
    """prepare(x, dx, dy): the batch translated (canvas: inside the frame with `fill`; circular: rolled, a
    fractional shift band-limited with subpixel fft), then normalised ((x - mean) / std per channel) when mean or
    std is given. transform rotate or scale: prepare(x, angle) or prepare(x, scale), the batch turned or scaled
    about the image centre (data/transforms.turn_image: bilinear, `fill` where the source point is outside the
    image), then normalised; canvas mode only, since a turned image is no roll."""
    choose("mode", mode, MODES)
    choose("fill", fill, FILLS)
    choose("subpixel", subpixel, SUBPIXEL)
    choose("transform", transform, GRID_COLUMNS)
    if transform != "translate" and (mode != "canvas" or subpixel != "bilinear"):
        given = "--mode circular" if mode != "canvas" else f"--subpixel {subpixel}"
        raise InvlabError(f"--transform {transform} turns or scales the image about its centre ({INTERPOLATION}, "
                          f"--fill entering where the source is outside it): no roll or shift, so {given} does not "
                          "apply; leave it out")
    if fill != "zeros" and mode == "circular" and transform == "translate":
        raise InvlabError(f"fill {fill} says what enters the frame when an image moves inside it (mode canvas); mode "
                          "circular rolls the image around, and nothing enters: leave fill out")
    if subpixel == "fft" and mode != "circular":
        raise InvlabError("--subpixel fft is a circular shift (the DFT wraps around): use it with --mode circular "
                          f"(canvas shifts are {INTERPOLATION} between whole pixels)")
    m = None if mean is None else torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
    s = None if std is None else torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)
    if s is not None and (s <= 0).any():
        raise InvlabError(f"std must be positive; got {quote(list(std))}")
    key = GRID_COLUMNS[transform][0]  # angle or scale

    def move(x: torch.Tensor, *shift: float) -> torch.Tensor:
        if transform != "translate":
            return turn_image(x, fill=fill, **{key: shift[0]})
        dx, dy = shift
        return circular_shift(x, dx, dy, subpixel) if mode == "circular" else translate_image(x, dx, dy, fill)

    def prepare(x: torch.Tensor, *shift: float) -> torch.Tensor:
        x = move(x, *shift)
        if m is not None:
            x = x - m
        if s is not None:
            x = x / s
        return x

    return prepare


def check_channels(values, channels: int, option: str) -> list[float] | None:
    """One value per channel (or one for all) for --mean / --std (option "std" or "--std": each value divides the
    pixels, so it must be a positive normal float32, checked here before any folder is made)."""
    if values is None:
        return None
    values = numbers(values, option)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{option} {quote(values)}: give one finite number per channel ({channels}), or one for all")
    if option.lstrip("-") == "std" and min(values) < STD_MIN:  # zero, negative, or so small (1e-45) that every
        raise ConfigError(  # pixel divided by it overflows to infinity and the logits are NaN
            f"{option} {quote(values)}: each value divides the pixels, so it must be positive and at least "
            f"{STD_MIN:.3g} (the smallest normal float32: below it the pixels divided by it overflow to infinity "
            f"and the logits are NaN); a usual std is 0.1 to 1, e.g. {option} 0.229,0.224,0.225")
    return values


def check_grid(points: list[tuple[float, ...]], shape: tuple[int, int, int], mode: str,
               subpixel: str = "bilinear", transform: str = "translate") -> None:
    """Refuse shifts that cannot give a useful input for images of `shape` (C, H, W), and too large a grid;
    fractional circular shifts need subpixel fft. A rotate grid takes any angle; a scale grid factors above 0."""
    h, w = shape[-2:]
    if len(points) > MAX_SHIFTS:
        raise InvlabError(f"{len(points)} shifts, each a pass over every image; at most {MAX_SHIFTS}: use larger steps")
    if transform != "translate":
        if transform == "rotate" and (twice := turn_problem([p[0] for p in points])):
            raise InvlabError(f"angles: {twice}")  # as il.measure names them (--angles on the command line)
        if transform == "scale" and min(p[0] for p in points) <= 0:
            raise InvlabError(f"--scales are factors (1 = as the image is) and must be above 0; got "
                              f"{min(p[0] for p in points):g}")
        if transform == "scale":  # below 1/side the image is under a pixel; beyond side one pixel fills the frame
            bad = [p[0] for p in points if flat_at_scale(p[0], h, w)]
            if bad:
                raise InvlabError(f"--scales {bad[0]:g} of a {h}x{w} image leaves one flat value: useful factors lie "
                                  f"between 1/{min(h, w)} and {max(h, w)}")
        return
    for dx, dy in points:
        if mode == "circular" and subpixel != "fft" and (dx != int(dx) or dy != int(dy)):
            raise InvlabError(f"--mode circular rolls by whole pixels; got the shift ({dx:g}, {dy:g}). Use whole-pixel "
                              f"steps, --subpixel fft (band-limited sub-pixel rolls; subpixel='fft' in il.measure) "
                              f"or --mode canvas ({INTERPOLATION} between whole pixels; mode='canvas')")
        for d, side, axis in ((dx, w, "dx"), (dy, h, "dy")):
            if mode == "circular" and abs(d) >= side:
                raise InvlabError(f"{axis} {d:g}: a roll by {d:g} px of a {side} px image repeats a roll by "
                                  f"{d - side * round(d / side):g} px; keep |{axis}| < {side}"
                                  + channels_last_hint(tuple(shape)))
            if mode == "canvas" and math.ceil(abs(d)) >= side:
                raise InvlabError(f"{axis} {d:g}: moves the whole {side} px image out of its frame, leaving only the "
                                  f"fill; keep |{axis}| < {side - 1 if d != int(d) else side}"
                                  + channels_last_hint(tuple(shape)))


def numbers(v, what: str) -> list[float]:
    """A number (numpy's too) or an iterable of numbers as floats; anything else (a string, None, a label) is an
    InvlabError naming `what`, not a TypeError from float()."""
    problem = InvlabError(f"{what} takes numbers (one, or a list or range of them); got {quote(v)}")
    if isinstance(v, (str, bytes, bool)) or v is None:
        raise problem
    try:
        items = [v] if isinstance(v, Real) else list(v)
        # float("1") would read a label or a typo as a number, float(True) a flag as 1
        if any(isinstance(x, (str, bytes, bool)) for x in items):
            raise problem
        return [float(x) for x in items]
    except (TypeError, ValueError):
        raise problem from None


def shift_values(v, what: str) -> list[float]:
    vals = numbers(v, what)
    if not vals or not all(math.isfinite(x) for x in vals) or len(set(vals)) != len(vals):
        unit = {"dx": " (px)", "dy": " (px)", "angles": " (degrees)"}.get(what, "")
        raise InvlabError(f"{what} must be distinct finite numbers{unit}; got {quote(vals)}")
    return vals


def image_source(images, labels=None, *, colour: str = "grey", size=None) -> Images:
    """An image source (images.py) of a tensor, a folder of images, a run folder or an Images."""
    if isinstance(images, Images):
        src = images
    elif isinstance(images, (str, Path)):
        if is_run_folder(images):
            src = run_images(images)
        else:
            src = open_folder(images, colour=colour, size=size)  # N, "HxW" or (H, W): images.image_size
    else:
        if size is not None or colour != "grey":
            raise InvlabError("size and colour say how to read a folder of image files; a tensor is measured as it "
                              "is: resize it (torch.nn.functional.interpolate) or give it the channels the model "
                              "takes before measuring")
        return from_tensor(images, labels)
    if labels is not None:
        if src.classes:  # the order the files are read in is invlab's: labels given for it would be a guess
            named = ", ".join(map(str, src.classes[:6])) + (", ..." if len(src.classes) > 6 else "")
            raise InvlabError(f"{images} labels its images itself, by its classes ({named}), in an order of invlab's "
                              f"reading; leave out labels (class_index= gives each class the model's output index)")
        y = label_tensor(labels)
        if len(y) != len(src):
            raise InvlabError(f"{len(y)} labels for {len(src)} images; give one label per image, or none")
        src.labels, src.classes = y, None
    return src


# ----------------------------------------------------------------------------------------------- the evaluation


@torch.inference_mode()
def stream_sweep(models: dict[ModelKey, nn.Module], images: Images, lines: list[list[tuple[float, float]]],
                 prepare: Prepare, batch_size: int, device: torch.device, progress: bool = False,
                 outputs: dict[str, int] | None = None, transform: str = "translate") -> SweepResult:
    """sweep.run_sweep's result (the same table) for images read a batch at a time: each batch is read once and
    evaluated at every shift (in line order, accumulate.Grid.walk) before the next; per model only the per-shift
    sums are kept. `outputs`: model name -> its number of logits, as the first check found it (every batch must
    give as many). transform rotate or scale: the lines hold (angle,) or (scale,) points (accumulate.Grid)."""
    n, labels = len(images), images.labels
    grid = Grid(lines, transform)
    sums = {k: ShiftSums(grid) for k in models}
    chunks = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    bar = progress_bar(len(chunks) * grid.evaluations, "measure", "batch", progress)  # a batch of images at one shift
    for c in chunks:
        x0 = images(c)
        y = None if labels is None else labels[c].to(device)

        def probs_at(shift: tuple[float, ...], x0: torch.Tensor = x0) -> dict:
            x = prepare(x0, *shift).to(device, non_blocking=True)
            bar.update(1)
            return {k: probabilities(m, x, model_words(k), (outputs or {}).get(k[0])) for k, m in models.items()}

        ref = probs_at(grid.origin)
        ref_pred = {k: sums[k].add([grid.origin], ref[k][None], ref[k], y, c)[0] for k in models}

        def predict(shift: tuple[float, ...], new: bool, c: slice = c, y=y, ref: dict = ref) -> dict:
            return {k: sums[k].add([shift], q[None], ref[k], y, c)[0] if new else q.argmax(1)
                    for k, q in probs_at(shift).items()}

        walk_grid(grid, sums, ref_pred, predict)
    bar.close()
    return sweep_result(sums, n, labelled=labels is not None)


