"""The Python API, for notebooks and scripts: measure any PyTorch model's invariance to translations of images.

    import invariance_lab as il
    df = il.measure(model, images, labels=None, dx=range(-8, 9), dy=[0], mode="canvas")   # per shift
    il.summarize(df)                                                 # per model: clean accuracy, mean / worst
    il.layer_profile(model, images, shifts=range(-8, 9))             # per tap (taps.py)

`images` is a tensor (N, C, H, W), a folder of PNG/JPEG files (images.py: class subfolders give labels) or a run
folder (its own test letters, drawn exactly). The tables have the columns of a run's invariance.csv and
summary.csv. The measurement is eval/measurement.py's, the one `invlab measure` runs; a call leaves the models'
modes and devices, torch's threads, TF32 flags and RNG as it found them. summarize is eval/tables.summarize.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

import pandas as pd

from ..core.errors import InvlabError, choose, quote, whole
from ..data.images import relabel
from ..data.shifts import FFT_ON_ROLLS, axis_values, grid_points, value_lines
from ..schema.sweep import SWEEP_DEFAULTS
from ..eval.measurement import Measurement, named_models
from ..eval.stream import GRIDS, check_channels, check_grid, image_source, numbers, preparer, shift_values
from ..eval.tables import summarize

__all__ = ["layer_profile", "measure", "summarize"]


def measure(model, images, labels=None, *, dx: Iterable[float] | None = None, dy: Iterable[float] | None = None,
            mode: str = "canvas", fill: str = "zeros", grid: str = "product", mean=None, std=None,
            colour: str = "grey", size=None, batch_size: int = 256, device="cpu", seed: int = 0,
            progress: bool = False, engine: str = "auto", subpixel: str = "bilinear", transform: str = "translate",
            angles: Iterable[float] | None = None, scales: Iterable[float] | None = None,
            class_index: dict[str, int] | None = None) -> pd.DataFrame:
    """The tidy per-shift table of `model` (an nn.Module, or a dict name -> module) on `images`: the columns of
    invariance.csv (model, seed, downsample, head, padding, mode, dx, dy, n_images, accuracy, flip_rate,
    prob_change, neighbor_flip_rate, ...). Accuracy is empty (NaN) without labels.

    images: a tensor (N, C, H, W) or (N, H, W) (float pixels as they are, in float32; uint8 divided by 255), a
    folder of PNG/JPEG files (class subfolders give labels; colour grey | rgb and size, (H, W), N or "HxW", say how to
    read them) or a run folder. labels: one class index per image. A model with one logit per image (a sigmoid binary
    classifier) is measured as the two logits (0, z) (nn/logits.py). class_index: {class folder: the model's output
    index} for a model with more outputs than the folder has classes (data/images.relabel). dx, dy: the shifts, px
    (every pair with grid product; each axis alone with axes; default dx -8..8, dy 0). mode: canvas (moved inside
    the frame, `fill`: zeros | edge | reflect, sub-pixel bilinear) or circular (rolled, whole pixels; with subpixel
    "fft" any fraction, band-limited: data/transforms.fourier_shift). mean, std:
    normalisation after the shift. engine: auto (the exact all-shift engine, engine.py, where it applies: circular
    mode, square images, layers of known kinds; brute force otherwise), allshift (refuse where it does not apply)
    or brute; df.attrs["engine"] says which ran. transform "rotate" or "scale": the images turned by `angles`
    (degrees, counterclockwise; default -40..40 step 10) or scaled by `scales` (factors; default 0.8..1.2 step 0.1)
    about their centre (bilinear, `fill` where the source is outside), in place of dx, dy; the table's column
    angle or scale in place of dx, dy; brute force. The models are evaluated in eval mode and given back as they
    were (each submodule's mode, each parameter's device); torch's threads, TF32 flags and RNG are left as found."""
    choose("grid", grid, GRIDS)
    whole("batch_size", batch_size)
    models = named_models(model)
    src = image_source(images, labels, colour=colour, size=size)
    if class_index is not None:
        if labels is not None:
            raise InvlabError("labels and class_index both label the images; give one")
        relabel(src, class_index, "class_index")
    mean, std = check_channels(mean, src.shape[0], "mean"), check_channels(std, src.shape[0], "std")
    prepare = preparer(mode, fill, mean, std, subpixel, transform)
    if transform == "translate":
        if angles is not None or scales is not None:
            raise InvlabError("angles and scales are the values of transform='rotate' and 'scale'; give transform too")
        lines = value_lines(shift_values(range(-8, 9) if dx is None else dx, "dx"),
                            shift_values((0,) if dy is None else dy, "dy"), grid)
    else:
        if dx is not None or dy is not None:
            raise InvlabError(f"dx and dy are the shifts of transform='translate'; transform={transform!r} takes "
                              f"{'angles' if transform == 'rotate' else 'scales'} instead")
        given = {"angles": angles, "scales": scales}
        key, other = ("angles", "scales") if transform == "rotate" else ("scales", "angles")
        if given[other] is not None:
            raise InvlabError(f"{other} are the values of transform={'scale' if other == 'scales' else 'rotate'!r}; "
                              f"transform={transform!r} takes {key}")
        values = axis_values(SWEEP_DEFAULTS[key]) if given[key] is None else given[key]
        lines = [[(v,) for v in shift_values(values, key)]]
    points = grid_points(lines)
    if subpixel == "fft" and transform == "translate" and all(float(v).is_integer() for p in points for v in p):
        raise InvlabError(FFT_ON_ROLLS)
    check_grid(points, src.shape, mode, subpixel, transform)
    with Measurement(models, src, prepare, lines, mode=mode, device=device, seed=seed,
                     batch_size=batch_size, engine=engine, progress=progress, transform=transform) as m:
        df = m.shifts()
    df.attrs.update(engine=m.engines, clean_accuracy={f"{k[0]}/{k[1]}": v for k, v in m.clean_accuracy.items()},
                    worst_case={f"{k[0]}/{k[1]}": v for k, v in m.worst_case.items()},
                    n_classes=len(src.classes) if src.classes else m.n_classes)
    return df


def _points(shifts) -> list[tuple[float, float]]:
    """shifts: one number or numbers (dx, with dy = 0), or (dx, dy) pairs; distinct and finite."""
    problem = InvlabError(f"shifts takes numbers (dx, with dy = 0) or (dx, dy) pairs, distinct and finite; got "
                          f"{quote(shifts)}")
    items = range(-8, 9) if shifts is None else [shifts] if isinstance(shifts, Real) else shifts
    if isinstance(items, (str, bytes, bool)):
        raise problem
    try:
        items = list(items)
    except TypeError:
        raise problem from None
    pts = []
    for s in items:
        pair = numbers(s, "shifts")  # a label, None or a flag: an InvlabError naming shifts
        if len(pair) != (1 if isinstance(s, Real) else 2):
            raise problem
        pts.append((pair[0] + 0.0, (pair[1] if len(pair) == 2 else 0.0) + 0.0))
    if not pts or len(set(pts)) != len(pts) or not all(math.isfinite(v) for p in pts for v in p):
        raise problem
    return pts


def layer_profile(model, images, *, shifts=None, mode: str = "canvas", fill: str = "zeros",
                  taps: list[str] | None = None, by: str = "layer", n_images: int | None = None, mean=None,
                  std=None, colour: str = "grey", size=None, batch_size: int = 64, device="cpu", seed: int = 0,
                  progress: bool = False) -> pd.DataFrame:
    """The layer profile (layerwise.py) of `model` on `images` over `shifts` (numbers: dx; or (dx, dy) pairs;
    default dx -8..8): by "layer", one row per tap (mean equivariance error, mean pooled invariance error,
    normalised variance: layers_summary.csv); by "shift", one row per tap x shift (layers.csv). Taps: an invlab
    preset's own, else forward hooks on every convolution, pooling and normalisation module and the output, or the
    named modules `taps` (taps.py); each tap's stride is inferred from its shape. The engine's taps serve an
    invlab preset in circular mode on square images (eval/engine.py)."""
    choose("by", by, ("layer", "shift"))
    models = named_models(model)
    src = image_source(images, None, colour=colour, size=size)
    n = len(src) if n_images is None else min(whole("n_images", n_images), len(src))
    whole("batch_size", batch_size)
    mean, std = check_channels(mean, src.shape[0], "mean"), check_channels(std, src.shape[0], "std")
    prepare = preparer(mode, fill, mean, std)
    points = _points(shifts)
    check_grid(points, src.shape, mode)
    with Measurement(models, src, prepare, [points], mode=mode, device=device, seed=seed,
                     batch_size=batch_size, layers=True, taps=taps, labelled=False, progress=progress,
                     layer_images=n) as m:
        per_shift, per_layer = m.layers(n)
    return per_layer if by == "layer" else per_shift
