"""Where invariance comes from: a per-layer profile of equivariance and pooled invariance.

    invlab sweep results/where_invariance_comes_from/<run id> --layers --layer-images 200
    per_shift, per_tap = profile_layers(models, inputs, 200, points, "circular", 64, torch.device("cpu"))

Taps (taps.layer_taps; ConvBlock = down(act(conv(pad(x))))): for block i, `block<i>.conv` is the activation
after the ReLU and `block<i>.down` the block's output after downsampling (the same tensor when downsample is none or stride);
`head` is the vector the dense classifier sees (global mean / max, or the flattened last map). Each tap has a
cumulative stride s: the product of the strides before it (each block's `stride`, from its downsampling kind's
registry entry; a stride-2 conv counts at its own `.conv` tap).

Definitions, per model x seed x tap x shift T = (dx, dy), averaged over the test images x:

equivariance_error       ||F(T x) - T'(F(x))|| / ||F(x)||, the l2 norm over channels and positions, with
                         T' = T / s. Zhang's (ICML 2019) internal feature distance, made relative. Defined only
                         when dx and dy are multiples of s (NaN otherwise). T' is torch.roll in circular mode;
                         in canvas mode it translates the map with zero fill, so border effects are included
                         (what leaves the map is lost, what enters is 0): in canvas mode 0 is not expected even
                         for a perfectly equivariant network. For `head` (no spatial axis) the target is
                         invariance, T' = identity, at every shift.
pooled_invariance_error  ||m(F(T x)) - m(F(x))|| / ||m(F(x))||, m = per-channel global mean over positions (for
                         `head`, m is the identity): is the spatial average already invariant at this depth?

Images whose reference activation (or its mean) has norm 0 are left out of that average.

normalized_variance (per model x seed x tap, over the whole shift grid, (0, 0) included), after tmeasures
(Quiroga et al.): for each pooled activation (channel c of m(F)),
    NV_c = mean over images of Var over shifts  /  mean over shifts of Var over images
(population variances), then averaged over channels. 0 = invariant (the activation ignores the shift); 1 =
a shift moves it as much as changing the image does. Channels whose variance over images is ~0 (dead or
constant: below 1e-12 of the tap's mean squared activation) carry no information and are left out; NaN if
none is left.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..core.errors import FactoryError
from ..core.progress import progress_bar
from ..nn.models import InvNet
from .accumulate import Inputs
from .engine import choose_engines
from .tables import ModelKey
from .taps import taps_for


def translate(f: torch.Tensor, dx: int, dy: int, mode: str) -> torch.Tensor:
    """Move a feature map by (dx, dy) positions: rolled (circular) or with zero fill (canvas)."""
    if mode == "circular":
        return torch.roll(f, shifts=(dy, dx), dims=(-2, -1))
    out = torch.zeros_like(f)
    h, w = f.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        f[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _norms(t: torch.Tensor) -> torch.Tensor:
    """(N,) ||t_i||, in float64."""
    # float32 norms: the difference is already a float32 tensor, so float64 here would add cost, not precision
    return t.flatten(1).norm(dim=1).double()


def _relative(diff: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """(N,) ||diff_i|| / den_i (the reference's _norms, computed once per batch), NaN where the reference is 0."""
    num = _norms(diff)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.full_like(num, math.nan))


def _multiple(d: float, stride: int) -> int | None:
    if stride < 1:  # a hooked tap whose stride could not be inferred (taps.py): no equivariance target
        return None
    q = d / stride
    return int(q) if float(q).is_integer() else None


class _Accumulator:
    """Running sums for one model x tap: error sums per shift, and the normalised-variance moments."""

    def __init__(self, n_shifts: int, n_images: int):
        self.eq = np.zeros((n_shifts, 2))  # sum of ratios, count
        self.inv = np.zeros((n_shifts, 2))
        self.n_shifts, self.n_images = n_shifts, n_images
        self.img = None  # (N, C, 2): sums of (p - p_ref) and its square over shifts, per image
        self.shift = None  # (S, C, 2): sums of (p - centre) and its square over images, per shift
        self.centre = None  # (C,) a fixed per-channel offset that keeps the float64 sums well conditioned
        self.mean_sq = 0.0

    def add(self, k: int, chunk: slice, pooled: torch.Tensor, ref_pooled: torch.Tensor) -> None:
        p, r = pooled.double().cpu(), ref_pooled.double().cpu()
        if self.img is None:
            c = p.shape[1]
            self.img = torch.zeros(self.n_images, c, 2, dtype=torch.float64)
            self.shift = torch.zeros(self.n_shifts, c, 2, dtype=torch.float64)
            self.centre = r.mean(0)
        d = p - r  # deviations from the image's own reference: exactly 0 for an invariant activation
        self.img[chunk, :, 0] += d
        self.img[chunk, :, 1] += d * d
        e = p - self.centre
        self.shift[k, :, 0] += e.sum(0)
        self.shift[k, :, 1] += (e * e).sum(0)
        self.mean_sq += float((p * p).mean(1).sum()) / (self.n_images * self.n_shifts)

    def normalized_variance(self) -> float:
        s, n = self.n_shifts, self.n_images
        var_shifts = (self.img[..., 1] / s - (self.img[..., 0] / s) ** 2).clamp_min(0).mean(0)  # (C,)
        var_images = (self.shift[..., 1] / n - (self.shift[..., 0] / n) ** 2).clamp_min(0).mean(0)
        keep = var_images > 1e-12 * max(self.mean_sq, 1e-300)
        return float((var_shifts[keep] / var_images[keep]).mean()) if keep.any() else math.nan


@torch.inference_mode()
def profile_layers(models: dict[ModelKey, InvNet], inputs: Inputs, n_images: int,
                  points: list[tuple[float, float]], mode: str, batch_size: int, device: torch.device,
                  progress: bool = False, engine: str | dict = "auto",
                  taps: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-shift table, per-tap summary) for the first n_images test items over the shifts `points`.

    inputs(chunk, dx, dy) gives the shifted test images (as for run_sweep); `mode` says how feature maps are
    translated for the equivariance target (circular: roll; canvas: zero fill). Columns: core/columns.py's
    LAYER_COLUMNS and LAYER_SUMMARY_COLUMNS after model, seed. engine: auto | allshift | brute, or {model key:
    engine.Plan or None}: with a plan the taps of every shift come from one all-shift pass (engine.py) instead of
    a forward pass per shift.
    Any other model (your own) is tapped through forward hooks (taps.py): `taps` names its modules, default
    every convolution, pooling and normalisation module and the output.
    """
    if (0.0, 0.0) not in points:
        points = [(0.0, 0.0)] + list(points)  # the normalised variance needs the reference among the shifts
    chunks = [slice(i, min(i + batch_size, n_images)) for i in range(0, n_images, batch_size)]
    rows, summary = [], []
    bar = progress_bar(len(models) * len(chunks) * len(points), "layers", "batch", progress)  # images at one shift
    for (name, seed), model in models.items():
        model.eval()
        tap_fn = taps_for(model, taps)
        acc: dict[int, _Accumulator] = {}
        names: list[tuple[str, int]] = []
        for c in chunks:
            x = inputs(c, 0.0, 0.0).to(device)
            plan = engine.get((name, seed)) if isinstance(engine, dict) else \
                choose_engines({(name, seed): model}, x.shape[-1], mode, engine)[(name, seed)]
            # the engine's taps are layer_taps' (InvNet's); modules chosen by name are hooked, shift by shift
            shifted = plan.tap_maker(x, points) if plan is not None and taps is None else None
            ref = shifted(0.0, 0.0) if shifted else tap_fn(x)
            names = [(tap, s) for tap, s, _ in ref]
            ref_pooled = [_pool(f) for _, _, f in ref]
            # the references' norms, once per batch (each shift divides by them; a channels-last map is copied
            # to be flattened)
            ref_norms = [_norms(f) if f.dim() != 2 else None for _, _, f in ref]
            pooled_norms = [_norms(p) for p in ref_pooled]
            for k, (dx, dy) in enumerate(points):
                if (dx, dy) == (0.0, 0.0):  # the reference itself: its taps are at hand, not run a second time
                    out = ref
                else:
                    out = shifted(dx, dy) if shifted else tap_fn(inputs(c, dx, dy).to(device))
                for j, ((tap, s, f_ref), (_, _, f)) in enumerate(zip(ref, out)):
                    a = acc.setdefault(j, _Accumulator(len(points), n_images))
                    pooled = _pool(f)
                    if not bool(torch.isfinite(pooled).all()):  # NaN would pass as "undefined" (nansum) unseen
                        raise FactoryError(f"model {name} (seed {seed}) gives NaN or infinite values at tap {tap!r} "
                                           f"on images {c.start}..{c.stop - 1} shifted by ({dx:g}, {dy:g}), so its "
                                           f"layer profile would be NaN there; measure finite weights and images")
                    inv = _relative(pooled - ref_pooled[j], pooled_norms[j])
                    if f.dim() == 2:  # head: no spatial axis, so the equivariance target is invariance
                        eq = inv
                    else:
                        qx, qy = _multiple(dx, s), _multiple(dy, s)
                        eq = None if qx is None or qy is None else \
                            _relative(f - translate(f_ref, qx, qy, mode), ref_norms[j])
                    if eq is not None:
                        a.eq[k] += [float(eq.nansum()), int((~eq.isnan()).sum())]
                    a.inv[k] += [float(inv.nansum()), int((~inv.isnan()).sum())]
                    a.add(k, c, pooled, ref_pooled[j])
                bar.update(1)
        for j, (tap, s) in enumerate(names):
            a = acc[j]
            eq = np.where(a.eq[:, 1] > 0, a.eq[:, 0] / np.maximum(a.eq[:, 1], 1), np.nan)
            inv = np.where(a.inv[:, 1] > 0, a.inv[:, 0] / np.maximum(a.inv[:, 1], 1), np.nan)
            for k, (dx, dy) in enumerate(points):
                rows.append(dict(model=name, seed=seed, layer=j, layer_name=tap, stride=s, dx=dx, dy=dy,
                                 n_images=n_images, equivariance_error=eq[k], pooled_invariance_error=inv[k]))
            moved = [k for k, p in enumerate(points) if p != (0.0, 0.0)]
            summary.append(dict(model=name, seed=seed, layer=j, layer_name=tap, stride=s, n_images=n_images,
                                n_shifts=len(moved), mean_equivariance_error=_nanmean(eq[moved]),
                                mean_pooled_invariance_error=_nanmean(inv[moved]),
                                normalized_variance=a.normalized_variance()))
    bar.close()
    return pd.DataFrame(rows), pd.DataFrame(summary)


def _pool(f: torch.Tensor) -> torch.Tensor:
    """Per-channel global mean of a map; a head vector is already position-free."""
    return f if f.dim() == 2 else f.mean(dim=(-2, -1))


def _nanmean(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.mean()) if len(v) else math.nan
