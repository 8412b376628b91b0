"""The Lie derivative of a network along a continuous transformation of its input (Gruver et al., ICLR 2023, "The
Lie Derivative for Measuring Learned Equivariance"): how fast the softmax output moves as the image is translated,
rotated or scaled by an infinitesimal amount t, with no step size to choose.

    per_image = lie_derivative(model, images, transform="translate_x")   # (N,): ||d/dt softmax f(T_t x)||^2 at 0
    table = lie_table(models, images, layers=True)    # model, seed, transform, layer, value (lie.csv)
    invlab sweep results/quick/<run id> --metric lie [--layers]

Definition (docs/metrics.md): for an image x, the output's Lie derivative is the vector
    L f(x) = d/dt softmax(f(T_t x)) at t = 0    (K classes; torch.func.jvp, forward-mode: exact, no step size,
                                                  where f is differentiable: a tie in a max is a kink, docs/beyond.md)
and the value of an image is its squared Euclidean norm summed over the K classes, ||L f(x)||^2 (the paper's
Eq. 4 before its average over images; the paper's code averages .pow(2) over the classes too, which divides by K,
and its end-to-end script averages .abs(): lie-deriv issue #6). lie.csv's value is the mean over images of it.

T_t acts on the image's periodic band-limited (trigonometric) interpolant, the one the Fourier shift theorem uses:
translate_x / translate_y move it by t px, image(t) = Re(IFFT(FFT(image) * exp(-2 pi i k t / N))) (equal to
data/transforms.fourier_shift); rotate turns it by t radians about the image centre ((W - 1) / 2, (H - 1) / 2) by
three such shears (Paeth: x-shear -tan(t / 2), y-shear sin(t), x-shear -tan(t / 2), each row or column moved by its
own band-limited shift); scale magnifies it by e^t about the centre (each axis resampled from its Fourier series at
c + (i - c) e^-t). Why not bilinear (grid_sample): at t = 0 every sample lands on a pixel, where bilinear
interpolation has a kink, so its derivative there is a one-sided difference that float round-off picks per pixel.

Layers (with --layers): for each tap of eval/taps.py, a map F of cumulative stride s is transformed back by the same
transformation of the map (t / s px for translations; -t radians or e^-t about the map's own centre otherwise):
    L F(x) = d/dt T'_-t F(T_t x) at 0,   value = sum over images ||L F(x)||^2 / sum over images ||F(x)||^2,
the derivative's mean square per entry relative to the map's own (so layers of different scale compare). A vector
tap (the head) or a map with no stride (taps.infer_stride 0: its spatial mean) has the invariance target T' = 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.func import jvp

from ..core.columns import LIE_COLUMNS, REFERENCE
from ..core.errors import InvlabError, choose, whole
from ..core.runtime import exact_on, without_autocast
from ..core.progress import progress_bar
from ..data.shifts import sweep_inputs
from ..nn.outputs import check_output
from ..nn.logits import class_logits
from ..schema.config import DataConfig, SweepConfig
from .stream import image_source
from .tables import ModelKey
from .taps import taps_for

TRANSFORMS = ("translate_x", "translate_y", "rotate", "scale")
SWEEP_METRICS = ("lie",)  # `invlab sweep --metric`: what a sweep can measure besides its shift grid
DEFINITION = "mean over images of ||d/dt softmax f(T_t x) at t=0||^2, summed over classes (eval/lie.py)"
OUTPUT_LAYER = ""  # lie.csv's layer of the model's softmax output (the paper's quantity)
DEFAULT_BATCH = 256


# ----------------------------------------------------------- the transformations, differentiable in t (a tensor)
def _shift_lines(x: torch.Tensor, d: torch.Tensor, dim: int) -> torch.Tensor:
    """x (..., H, W) with each line along `dim` (-1: rows, along x; -2: columns, along y) moved by its own band-limited
    shift d (one per line: (H,) for rows, (W,) for columns; or a scalar)."""
    n = x.shape[dim]
    f = torch.fft.fftfreq(n, dtype=x.dtype, device=x.device)
    d = d.reshape(-1, 1) if dim == -1 else d.reshape(1, -1)  # rows: (H, 1) x (W,) frequencies; columns: (H,) x (1, W)
    phase = torch.exp(-2j * math.pi * (f.reshape(1, -1) if dim == -1 else f.reshape(-1, 1)) * d)
    return torch.fft.ifft(torch.fft.fft(x, dim=dim) * phase, dim=dim).real  # Re: the Nyquist term as cos(pi d)


def _resample(x: torch.Tensor, u: torch.Tensor, dim: int) -> torch.Tensor:
    """x's Fourier series along `dim` evaluated at the positions u (n,): Re(sum_k X_k exp(2 pi i f_k u)) / n."""
    n = x.shape[dim]
    f = torch.fft.fftfreq(n, dtype=x.dtype, device=x.device)
    basis = torch.exp(2j * math.pi * u.reshape(-1, 1) * f.reshape(1, -1)) / n  # (positions, frequencies)
    spectrum = torch.fft.fft(x, dim=dim).movedim(dim, -1)
    return (spectrum @ basis.T).real.movedim(-1, dim)


def transform_images(x: torch.Tensor, transform: str, t: torch.Tensor | float) -> torch.Tensor:
    """The images x (..., H, W) under the transformation `transform` (TRANSFORMS) by t (px, radians, or log-scale);
    t may be a 0-d tensor carrying a tangent (torch.func.jvp)."""
    choose("Lie derivative transform", transform, TRANSFORMS)
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    h, w = x.shape[-2:]
    if transform == "translate_x":
        return _shift_lines(x, t, -1)
    if transform == "translate_y":
        return _shift_lines(x, t, -2)
    rows = torch.arange(h, dtype=x.dtype, device=x.device) - (h - 1) / 2  # y - c_y per row
    cols = torch.arange(w, dtype=x.dtype, device=x.device) - (w - 1) / 2  # x - c_x per column
    if transform == "rotate":  # x-shear, y-shear, x-shear: (x, y) -> (x cos t - y sin t, x sin t + y cos t)
        a = -torch.tan(t / 2)  # each shear moves content: a row at y by a y, a column at x by sin(t) x
        x = _shift_lines(x, a * rows, -1)
        x = _shift_lines(x, torch.sin(t) * cols, -2)
        return _shift_lines(x, a * rows, -1)
    scale = torch.exp(-t)  # magnified by e^t: the pixel at c + p shows the image at c + p e^-t
    x = _resample(x, (w - 1) / 2 + cols * scale, -1)
    return _resample(x, (h - 1) / 2 + rows * scale, -2)


def _transform_back(a: torch.Tensor, stride: int, transform: str, t: torch.Tensor) -> torch.Tensor:
    """A tap's activation moved back by the transformation its input went through (the equivariance target)."""
    if a.dim() == 4 and stride == 0:
        return a.mean(dim=(-2, -1))  # no stride fits: its spatial mean, whose target is invariance
    if a.dim() != 4:
        return a
    return transform_images(a, transform, -t / stride if transform.startswith("translate") else -t)


# ----------------------------------------------------------------------------------- the derivative, batch by batch
def _derivative(fn: Callable[[torch.Tensor], tuple], x: torch.Tensor) -> tuple[tuple, tuple]:
    """(values, tangents) of fn(t) at t = 0 along dt = 1: torch.func.jvp (forward mode)."""
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    try:
        return jvp(fn, (zero,), (torch.ones_like(zero),))
    except (RuntimeError, NotImplementedError) as e:  # an operation without a forward-mode derivative
        first = str(e).splitlines()[0][:200]
        if "mutate a captured Tensor" in str(e):  # e.g. a buffer counted up in forward: self.calls += 1
            raise InvlabError(f"the model changes a tensor it holds in place during forward (a buffer or attribute, "
                              f"e.g. self.calls += 1), which torch.func.jvp cannot trace; make that update out of "
                              f"place or skip it in eval mode ({first})") from None
        raise InvlabError(f"the Lie derivative needs forward-mode derivatives (torch.func.jvp) of every operation of "
                          f"the model; one has none: {first}") from None


def _chunks(n: int, batch_size: int) -> list[slice]:
    whole("batch_size", batch_size)
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _images(images, model: nn.Module) -> torch.Tensor:
    """A float tensor (N, C, H, W) as it is (its dtype and device kept); uint8 pixels, (N, H, W) tensors, a folder
    of image files or a run folder read whole, as il.measure reads them (eval/stream.image_source), and put on the
    model's device (a folder is read into memory, on the CPU)."""
    if isinstance(images, torch.Tensor) and images.is_floating_point() and images.dim() == 3:
        images = images.unsqueeze(1)  # (N, H, W): one channel, as il.measure reads it (the dtype kept)
    if isinstance(images, (str, Path)) or isinstance(images, torch.Tensor) and not images.is_floating_point():
        src = image_source(images)
        images = src(slice(0, len(src))).to(next(model.parameters(), torch.empty(0)).device)
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InvlabError(f"the Lie derivative takes images as a float tensor (N, C, H, W) or a folder of images; "
                          f"got {shape}")
    return images


class _Eval:
    """model.eval() for the measurement, its own training flags restored after (the caller's state kept)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.flags = {m: m.training for m in self.model.modules()}
        self.model.eval()

    def __exit__(self, *exc):
        for m, flag in self.flags.items():
            m.training = flag


def lie_derivative(model: nn.Module, images: torch.Tensor | str | Path, transform: str = "translate_x", *,
                   batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """Per image (N,): ||d/dt softmax(model(T_t x)) at t = 0||^2, summed over the classes (module docstring).

    images: a float tensor (N, C, H, W), or a folder of image files or a run folder (read as il.measure reads
    them, onto the model's device). The model runs in eval mode (its own mode restored after) on the images' device
    and dtype, without TF32 on CUDA; lie.csv's value is this tensor's mean. transform: translate_x, translate_y
    (t px), rotate (t radians), scale (factor e^t)."""
    choose("Lie derivative transform", transform, TRANSFORMS)
    if not isinstance(model, nn.Module):  # il.measure takes a dict of models; this returns one tensor
        raise InvlabError(f"lie_derivative takes one model (an nn.Module); got a {type(model).__name__}: call it "
                          "once per model")
    whole("batch_size", batch_size)
    images = _images(images, model)
    out = []
    with _Eval(model), without_autocast(), exact_on(images.device):  # autocast: bfloat16; TF32: ~1e-4
        if len(images):  # a model that fails on the images at all is told so, not blamed on forward mode
            check_output(model, images[:2], None, "the model", one_logit=True, seed=0)  # a lazy layer: seeded
        for c in _chunks(len(images), batch_size):
            x = images[c]
            _, d = _derivative(lambda t, x=x: torch.softmax(class_logits(model(transform_images(x, transform, t))),
                                                             dim=1), x)
            out.append(d.detach().flatten(1).pow(2).sum(1))
    return torch.cat(out) if out else images.new_zeros(0)


def layer_lie_derivative(model: nn.Module, images: torch.Tensor, transform: str = "translate_x", *,
                         taps: list[str] | None = None, batch_size: int = DEFAULT_BATCH) -> dict[str, float]:
    """{tap name: sum ||L F||^2 / sum ||F||^2 over the images} for every tap of eval/taps.py (an invlab preset's
    block<i>.conv, block<i>.down, head; another model's convolution, pooling and normalisation modules, or those
    named in `taps`), in depth order; NaN for a tap that is 0 on every image."""
    choose("Lie derivative transform", transform, TRANSFORMS)
    images = _images(images, model)
    tap = taps_for(model, taps)
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    with _Eval(model), without_autocast(), exact_on(images.device):
        for c in _chunks(len(images), batch_size):
            x = images[c]
            names = [(name, stride) for name, stride, _ in tap(x)]

            def back(t: torch.Tensor, x: torch.Tensor = x) -> tuple:
                found = tap(transform_images(x, transform, t))
                return tuple(_transform_back(a, stride, transform, t) for _, stride, a in found)

            values, tangents = _derivative(back, x)
            for (name, _), v, d in zip(names, values, tangents):
                num[name] = num.get(name, 0.0) + d.detach().double().pow(2).sum().item()
                den[name] = den.get(name, 0.0) + v.detach().double().pow(2).sum().item()
    return {name: num[name] / den[name] if den[name] > 0 else math.nan for name in num}


def lie_table(models: dict[ModelKey, nn.Module], images: torch.Tensor, *, transforms: tuple[str, ...] = TRANSFORMS,
              layers: bool = False, taps: list[str] | None = None, batch_size: int = DEFAULT_BATCH,
              progress: bool = False) -> pd.DataFrame:
    """lie.csv (core/columns.py's LIE_COLUMNS): per model x seed x transform, the mean over the images of
    lie_derivative (layer ""), and with `layers` one row per tap (layer_lie_derivative; `taps` names them)."""
    for tr in transforms:
        choose("Lie derivative transform", tr, TRANSFORMS)
    rows = []
    bar = progress_bar(len(models) * len(transforms), "lie", "transform", progress)
    for (name, seed), model in models.items():
        x = images.to(next(model.parameters(), images).device)
        for tr in transforms:
            rows.append((name, seed, tr, OUTPUT_LAYER, lie_derivative(model, x, tr, batch_size=batch_size)
                         .double().mean().item()))
            if layers:
                for tap, value in layer_lie_derivative(model, x, tr, taps=taps, batch_size=batch_size).items():
                    rows.append((name, seed, tr, tap, value))
            bar.update(1)
    bar.close()
    return pd.DataFrame(rows, columns=LIE_COLUMNS)


def lie_protocol(n_images: int, layers: bool) -> dict:
    """What meta.json's protocol records of a sweep's Lie derivative."""
    return {"n_images": n_images, "transforms": list(TRANSFORMS), "definition": DEFINITION, "layers": layers,
            "interpolation": "band-limited (Fourier series); rotate: three shears; about the image centre"}


def evaluate_lie(models: dict[ModelKey, nn.Module], data: DataConfig, sweep: SweepConfig, device: torch.device,
                 n_images: int, *, layers: bool = False, progress: bool = False) -> pd.DataFrame:
    """lie.csv of a sweep: lie_table on the first n_images test images at the reference position (0, 0)."""
    inputs, labels = sweep_inputs(data, sweep, "translation", n_images=n_images)
    n = min(n_images, len(labels))
    x = inputs(slice(0, n), *REFERENCE[sweep.transform]).to(device)  # (0, 0); a rotate or scale sweep's 0 or 1
    return lie_table(models, x, layers=layers, batch_size=sweep.batch_size, progress=progress)
