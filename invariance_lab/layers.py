"""Convolution block and the downsampling / padding modules the models are built from.

Every model in the lab is a stack of ``ConvBlock``s: ``down(relu(conv(pad(x))))``. What varies between
models is how the border is padded and how the feature map is downsampled, because those two choices decide
whether the network commutes with translations (see /work/shared/SCIENCE.md):

* padding ``circular`` makes a stride-1 conv commute exactly with circular shifts (``torch.roll``);
  ``zeros`` / ``reflect`` make the border special; ``valid`` pads nothing and shrinks the map.
* downsampling by 2 keeps that only for even shifts, unless the subsampling is anti-aliased (BlurPool,
  Zhang 2019: reduces aliasing, not exact) or adaptive (APS, Chaman & Dokmanic 2021: exact for circular
  shifts with circular padding).

Downsampling kinds (all by 2, applied after the ReLU unless noted):

==============  ===============================================================================
none            no downsampling
max / avg       MaxPool(k2, s2) / AvgPool(k2, s2)
stride          the conv itself has stride 2 (``down`` is Identity)
blur_max        MaxPool(k2, s1) + BlurPool(s2)
blur_stride     conv s1 + ReLU + BlurPool(s2)
blur_avg        BlurPool(s2)
aps_max         MaxPool(k2, s1) + optional blur (s1) + APS
aps_stride      conv s1 + ReLU + optional blur (s1) + APS
==============  ===============================================================================

All padding here is explicit (``Pad2d``) so that the blur and the stride-1 max-pool use the block's padding
mode: a circular network stays circular end to end. The filters are written from the papers' definitions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from invariance_lab.errors import InvlabError

DOWNSAMPLE_KINDS: tuple[str, ...] = (
    "none", "max", "avg", "stride", "blur_max", "blur_stride", "blur_avg", "aps_max", "aps_stride",
)
PADDING_KINDS: tuple[str, ...] = ("zeros", "circular", "reflect", "valid")
MAX_BLUR_SIZE = 7


class LayerConfigError(InvlabError, ValueError):
    """A padding / downsampling / size combination that cannot work. A ValueError for callers, and an
    InvlabError so the CLI shows the message without a traceback (it usually comes from the user's config)."""


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise LayerConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


def binomial_filter(size: int) -> torch.Tensor:
    """(size, size) float32 low-pass filter: outer product of the binomial row C(size-1, k), summing to 1."""
    if not 1 <= size <= MAX_BLUR_SIZE:
        raise LayerConfigError(f"blur size must be in 1..{MAX_BLUR_SIZE}; got {size}")
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    row = row / row.sum()
    return torch.outer(row, row).to(torch.float32)


class Pad2d(nn.Module):
    """Explicit padding (left, right, top, bottom) with our padding names; 'zeros' maps to F.pad 'constant'."""

    def __init__(self, padding: str, left: int, right: int, top: int, bottom: int):
        super().__init__()
        _check_choice("padding", padding, PADDING_KINDS[:3])  # 'valid' means no Pad2d at all
        self.padding = padding
        self.amounts = (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "constant" if self.padding == "zeros" else self.padding
        return F.pad(x, self.amounts, mode=mode)

    def extra_repr(self) -> str:
        return f"{self.padding}, {self.amounts}"


def _same_pad(padding: str, kernel: int) -> nn.Module:
    """Padding that keeps the size for a stride-1 window of side `kernel` (Identity for 'valid').

    The extra pixel of an even kernel goes right/bottom; for odd kernels this is kernel//2 on each side.
    """
    if padding == "valid" or kernel == 1:
        return nn.Identity()
    lo, hi = (kernel - 1) // 2, kernel // 2
    return Pad2d(padding, lo, hi, lo, hi)


class MaxPoolS1(nn.Module):
    """MaxPool(k2, s1) that keeps the size: pad one pixel right/bottom with the network's padding mode.

    Circular padding keeps exact shift-equivariance; zero padding is harmless after a ReLU (values >= 0).
    With 'valid' nothing is padded and the map shrinks by 1.
    """

    def __init__(self, padding: str):
        super().__init__()
        self.pad = _same_pad(padding, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.pad(x), kernel_size=2, stride=1)


class BlurPool(nn.Module):
    """Depthwise binomial blur, then subsampling by `stride` (Zhang 2019). stride=1 is a plain blur.

    The blur is padded with the network's padding mode ((size-1)//2 left/top, size//2 right/bottom) so a
    stride-1 blur keeps the size and a circular network stays circular; output side = ceil(side / stride).
    """

    def __init__(self, channels: int, size: int = 3, stride: int = 2, padding: str = "zeros"):
        super().__init__()
        _check_choice("padding", padding, PADDING_KINDS)
        self.channels, self.size, self.stride = channels, size, stride
        self.pad = _same_pad(padding, size)
        kernel = binomial_filter(size)[None, None].repeat(channels, 1, 1, 1)
        self.register_buffer("kernel", kernel, persistent=False)  # a constant, not a learned weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.kernel, stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, size={self.size}, stride={self.stride}"


class APSDown(nn.Module):
    """Adaptive polyphase sampling by 2 (Chaman & Dokmanic 2021), with an optional blur before it.

    Of the four polyphase components ``x[..., i::2, j::2]`` each sample keeps the one with the largest l2
    norm (over channels and positions). A circular shift of the input permutes the components and rolls each
    one, so a choice that depends only on shift-invariant statistics of the components keeps "the same"
    component for every shift: the output is a circular shift of the unshifted output (exact equivariance,
    hence exact invariance after global pooling).

    Tie-breaking. On blank backgrounds several components can have equal norms. A bare argmax then decides
    by float rounding (a rolled tensor is summed in another order) or by position, neither of which is
    shift-consistent. We compare the components lexicographically on a key made only of statistics that
    are invariant to circular shifts of a component, computed in float64:

        1. total energy sum(x**2) (the paper's criterion);
        2. then, per channel c = 0..C-1 in turn:  energy sum(x_c**2),  l1 mass sum|x_c|,
           lag-1 autocorrelations sum(x_c * x_c shifted by one row / column)  (arrangement, not just values),
           lag-1 skew correlations sum(x_c**2 * x_c shifted by one row / column)  (tells mirror images apart).

    Starting from all four components, for each key entry in turn keep those within a tolerance of the best
    one still kept. The tolerance is ``rtol`` times that entry's natural scale among the four (largest total
    energy, channel energy, channel l1 mass, or channel energy**1.5 for the skew correlations), so float noise
    (well below rtol) never decides but real differences do. If several components survive every entry, keep
    the first in the fixed order (0,0), (0,1), (1,0), (1,1).

    Limits: (1) the fixed-order fallback is harmless only when the survivors are circular shifts of one
    another (e.g. a stripe that wraps around the image); two different components that agree on every key
    entry within the tolerance (differences below ~rtol of the channel's energy) would break exactness.
    (2) A key difference lying within float noise of the tolerance itself could flip the choice; with
    continuous weights that needs a coincidence. (3) The guarantee is for circular padding and circular
    shifts only; with zero padding or canvas shifts it does not hold (Shifman & Weiss 2024). The choice is
    not differentiable; the gradient flows through the kept component, as in the paper.
    """

    def __init__(self, channels: int, blur_size: int = 1, padding: str = "circular", rtol: float = 1e-5):
        super().__init__()
        self.blur = BlurPool(channels, blur_size, stride=1, padding=padding) if blur_size > 1 else nn.Identity()
        self.rtol = rtol

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blur(x)
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise LayerConfigError(f"APS needs an even feature map; got {h}x{w}")
        comps = torch.stack([x[..., i::2, j::2] for i in (0, 1) for j in (0, 1)], dim=1)  # (N, 4, C, h/2, w/2)
        index = self.choose(comps.detach())
        return comps[torch.arange(comps.shape[0], device=x.device), index]

    @torch.no_grad()
    def choose(self, comps: torch.Tensor) -> torch.Tensor:
        """Index (N,) of the kept component of each sample, by the rule in the class docstring."""
        c = comps.double()  # a shift changes the summation order; in float64 that rounding is far below rtol
        energy = c.pow(2).sum(dim=(-2, -1))  # (N, 4, C)
        total = energy.sum(-1)
        alive = self._keep_best(torch.ones_like(total, dtype=torch.bool), total, total)
        tied = (alive.sum(1) > 1).nonzero().squeeze(1)
        if len(tied):  # rare (blank backgrounds): break the ties on the secondary key, for those samples only
            alive[tied] = self._break_ties(c[tied], energy[tied], alive[tied])
        return alive.to(torch.uint8).argmax(dim=1)  # the first survivor in the fixed order

    def _break_ties(self, c: torch.Tensor, energy: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        mass = c.abs().sum(dim=(-2, -1))
        values, scales = [energy, mass], [energy, mass]
        for dim in (-2, -1):  # lag-1 along rows, then columns; circular within a component, so shift-invariant
            neighbour = c.roll(1, dims=dim)
            values += [(c * neighbour).sum(dim=(-2, -1)), (c.pow(2) * neighbour).sum(dim=(-2, -1))]
            scales += [energy, energy.pow(1.5)]  # |sum x*y| <= E and |sum x^2*y| <= E * max|y| <= E**1.5
        # (n, 4, C, 6) -> (n, 4, 6C): all entries of channel 0 first, then channel 1, ...
        values = torch.stack(values, dim=-1).flatten(2)
        scales = torch.stack(scales, dim=-1).flatten(2)
        for k in range(values.shape[-1]):
            alive = self._keep_best(alive, values[..., k], scales[..., k])
        return alive

    def _keep_best(self, alive: torch.Tensor, value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Among the `alive` components (N, 4), keep those whose `value` is within rtol * scale of the best."""
        tol = self.rtol * scale.abs().amax(dim=1, keepdim=True)
        best = value.masked_fill(~alive, -math.inf).amax(dim=1, keepdim=True)
        return alive & (value >= best - tol)


def make_downsample(kind: str, channels: int, padding: str, blur_size: int) -> nn.Module:
    """The module applied after the ReLU for downsampling `kind` (for 'stride', the conv does the work)."""
    _check_choice("downsample", kind, DOWNSAMPLE_KINDS)
    _check_choice("padding", padding, PADDING_KINDS)
    if kind in ("none", "stride"):
        return nn.Identity()
    if kind == "max":
        return nn.MaxPool2d(kernel_size=2, stride=2)
    if kind == "avg":
        return nn.AvgPool2d(kernel_size=2, stride=2)
    if kind in ("blur_stride", "blur_avg"):
        # Both anti-aliased rewrites reduce to a BlurPool after the ReLU (the conv runs at stride 1).
        return BlurPool(channels, blur_size, stride=2, padding=padding)
    if kind == "blur_max":
        return nn.Sequential(MaxPoolS1(padding), BlurPool(channels, blur_size, stride=2, padding=padding))
    aps = APSDown(channels, blur_size, padding)
    return nn.Sequential(MaxPoolS1(padding), aps) if kind == "aps_max" else aps


class ConvBlock(nn.Module):
    """``down(relu(conv(pad(x))))``: one stage of every model in the lab."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: str, downsample: str, blur_size: int = 3):
        super().__init__()
        _check_choice("padding", padding, PADDING_KINDS)
        _check_choice("downsample", downsample, DOWNSAMPLE_KINDS)
        binomial_filter(blur_size)  # validates the size early, with a clear message
        self.kernel, self.padding, self.downsample, self.blur_size = kernel, padding, downsample, blur_size
        self.pad = _same_pad(padding, kernel)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=2 if downsample == "stride" else 1, padding=0)
        self.act = nn.ReLU()
        self.down = make_downsample(downsample, out_ch, padding, blur_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.conv(self.pad(x))))

    def out_size(self, size: int) -> int:
        """Side of the output for a square input of side `size` (PyTorch floor semantics).

        Raises LayerConfigError (a ValueError) if the block cannot run on it: a map that becomes empty, APS on
        an odd map, reflect padding of p pixels on a side <= p, circular padding of p pixels on a side < p.
        """
        where = (f"padding={self.padding!r}, downsample={self.downsample!r}, kernel={self.kernel}, "
                 f"blur_size={self.blur_size}, input {size}x{size}")

        def window(s: int, k: int, stride: int, step: str) -> int:
            """Side after a window of side k (padded like the network) and the given stride."""
            if self.padding == "valid":
                padded = s
            else:
                lo, hi = (k - 1) // 2, k // 2
                # PyTorch cannot reflect by >= the side, nor wrap around more than once.
                if (self.padding == "reflect" and hi >= s) or (self.padding == "circular" and hi > s):
                    raise LayerConfigError(f"{step}: {self.padding} padding by {hi} does not fit a {s}x{s} map "
                                           f"({where}); use a larger canvas")
                padded = s + lo + hi
            if padded < k:
                raise LayerConfigError(f"{step}: the {k}x{k} window does not fit a {s}x{s} map ({where}); "
                                       f"use a larger canvas or fewer blocks")
            return (padded - k) // stride + 1

        s = window(size, self.kernel, 2 if self.downsample == "stride" else 1, "conv")
        kind, b = self.downsample, self.blur_size
        if kind in ("max", "avg"):
            if s < 2:
                raise LayerConfigError(f"{kind} pooling needs a map of at least 2x2; got {s}x{s} ({where})")
            s //= 2
        if kind in ("blur_max", "aps_max"):
            s = window(s, 2, 1, "max-pool (k2, s1)")
        if kind in ("blur_max", "blur_stride", "blur_avg"):
            s = window(s, b, 2, "blur-pool")
        if kind in ("aps_max", "aps_stride"):
            s = window(s, b, 1, "blur")
            if s % 2:
                raise LayerConfigError(f"{kind} needs an even feature map; got {s}x{s} at this block ({where}); "
                                       f"choose a canvas divisible by the total stride (2 per downsampling block)")
            s //= 2
        return s
