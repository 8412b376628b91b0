"""Convolution block and the downsampling / padding modules the models are built from.

Every model in the lab is a stack of ``ConvBlock``s: ``down(relu(conv(pad(x))))``. What varies between
models is how the border is padded and how the feature map is downsampled, because those two choices decide
whether the network commutes with translations (docs/science.md):

* padding ``circular`` makes a stride-1 conv commute exactly with circular shifts (``torch.roll``);
  ``zeros`` / ``reflect`` make the border special; ``valid`` pads nothing and shrinks the map.
* downsampling by 2 keeps that only for even shifts, unless the subsampling is anti-aliased (BlurPool,
  Zhang 2019: reduces aliasing, not exact) or adaptive (APS, Chaman & Dokmanic 2021: exact for circular
  shifts with circular padding).

Downsampling kinds live in one registry, ``DOWNSAMPLES`` (name -> ``Downsample``): each entry says what the
conv's stride is and which stages run after the ReLU; the module, the block's stride and its output size are
all derived from that one entry. List them with ``invlab models`` or::

    >>> [(d.name, d.stride, d.describe()) for d in DOWNSAMPLES.values()][:2]
    [('none', 1, 'no downsampling'), ('max', 2, 'MaxPool(k2, s2)')]

Padding is explicit (``Pad2d``) so that the blur and the stride-1 max-pool use the block's padding mode: a
circular network stays circular end to end. The one exception is zero padding of an odd conv kernel, which the
conv does itself (the same numbers, without a padded copy). The filters are written from the papers' definitions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import InvlabError, choose

PADDING_KINDS: tuple[str, ...] = ("zeros", "circular", "reflect", "valid")
MAX_BLUR_SIZE = 7


class LayerConfigError(InvlabError, ValueError):
    """A padding / downsampling / size combination that cannot work. A ValueError for callers, and an
    InvlabError so the CLI shows the message without a traceback (it usually comes from the user's config)."""


def binomial_filter(size: int) -> torch.Tensor:
    """(size, size) float32 low-pass filter: outer product of the binomial row C(size-1, k), summing to 1.

    >>> binomial_filter(3) * 16
    tensor([[1., 2., 1.],
            [2., 4., 2.],
            [1., 2., 1.]])
    """
    if not 1 <= size <= MAX_BLUR_SIZE:
        raise LayerConfigError(f"blur size must be in 1..{MAX_BLUR_SIZE}; got {size}")
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    row = row / row.sum()
    return torch.outer(row, row).to(torch.float32)


class Pad2d(nn.Module):
    """Explicit padding (left, right, top, bottom) with our padding names; 'zeros' maps to F.pad 'constant'."""

    def __init__(self, padding: str, left: int, right: int, top: int, bottom: int):
        super().__init__()
        choose("padding", padding, PADDING_KINDS[:3], error=LayerConfigError)  # 'valid' means no Pad2d at all
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
        choose("padding", padding, PADDING_KINDS, error=LayerConfigError)
        self.channels, self.size, self.stride = channels, size, stride
        self.pad = _same_pad(padding, size)
        kernel = binomial_filter(size)[None, None].repeat(channels, 1, 1, 1)
        self.register_buffer("kernel", kernel, persistent=False)  # a constant, not a learned weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.kernel, stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, size={self.size}, stride={self.stride}"


# ----------------------------------------------------------------------------------------------- the registry

BLUR = -1  # a Window.side standing for the block's blur_size


@dataclass(frozen=True)
class Window:
    """A window slid over the map: `side` (or BLUR), `stride`; `padded` with the network's padding mode (a
    'same' padding) or never padded (nn.MaxPool2d / AvgPool2d); `even`: the map must have an even side."""

    label: str
    side: int
    stride: int
    padded: bool = True
    even: bool = False


@dataclass(frozen=True)
class Stage:
    """One module run after the ReLU, and the windows it slides over the map, in order (for the sizes)."""

    label: str  # for describe(): "MaxPool(k2, s2)"
    build: Callable[[int, str, int], nn.Module]  # (channels, padding, blur_size) -> module
    windows: tuple[Window, ...]


MAX_S2 = Stage("MaxPool(k2, s2)", lambda c, p, b: nn.MaxPool2d(kernel_size=2, stride=2),
               (Window("max pooling (k2, s2)", 2, 2, padded=False),))
AVG_S2 = Stage("AvgPool(k2, s2)", lambda c, p, b: nn.AvgPool2d(kernel_size=2, stride=2),
               (Window("average pooling (k2, s2)", 2, 2, padded=False),))
MAX_S1 = Stage("MaxPool(k2, s1)", lambda c, p, b: MaxPoolS1(p), (Window("max-pool (k2, s1)", 2, 1),))
BLUR_S2 = Stage("BlurPool(s2)", lambda c, p, b: BlurPool(c, b, stride=2, padding=p), (Window("blur-pool", BLUR, 2),))
# APS: an optional stride-1 blur, then one of the four polyphase components (a stride-2 subsampling).
APS = Stage("optional blur (s1) + APS", lambda c, p, b: _aps(c, b, p),
            (Window("blur", BLUR, 1), Window("APS", 1, 2, padded=False, even=True)))


def _aps(channels: int, blur_size: int, padding: str) -> nn.Module:
    from .aps import APSDown  # aps.py builds on BlurPool here, so it is imported when first needed

    return APSDown(channels, blur_size, padding)


@dataclass(frozen=True)
class Downsample:
    """A downsampling kind: the conv's own stride, then the stages after the ReLU. Everything else (the
    module, the block's stride, its output size) is derived from these two fields."""

    name: str
    conv_stride: int = 1
    stages: tuple[Stage, ...] = ()
    literature: str = ""
    note: str = ""  # replaces the generated description where the stages alone don't say it
    stride: int = field(init=False)  # total stride of the block: the conv's times every window's

    def __post_init__(self):
        strides = [w.stride for s in self.stages for w in s.windows]
        object.__setattr__(self, "stride", self.conv_stride * math.prod(strides))

    def build(self, channels: int, padding: str, blur_size: int) -> nn.Module:
        """The module applied after the ReLU (Identity when the conv alone does the work)."""
        modules = [stage.build(channels, padding, blur_size) for stage in self.stages]
        if not modules:
            return nn.Identity()
        return modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def windows(self, kernel: int, blur_size: int) -> list[Window]:
        """Every window of a block, the conv first, with BLUR resolved to `blur_size`."""
        conv = Window("conv", kernel, self.conv_stride)
        rest = [w for s in self.stages for w in s.windows]
        return [conv] + [Window(w.label, blur_size if w.side == BLUR else w.side, w.stride, w.padded, w.even)
                         for w in rest]

    def describe(self) -> str:
        if self.note:
            return self.note
        if self.conv_stride > 1:
            return f"the conv itself has stride {self.conv_stride}"
        return " + ".join(s.label for s in self.stages) or "no downsampling"


DOWNSAMPLES: dict[str, Downsample] = {}


def register_downsample(name: str, **fields) -> Downsample:
    """Add a downsampling kind to DOWNSAMPLES (fields as in Downsample); returns the entry."""
    DOWNSAMPLES[name] = entry = Downsample(name, **fields)
    return entry


register_downsample("none")
register_downsample("max", stages=(MAX_S2,))
register_downsample("avg", stages=(AVG_S2,))
register_downsample("stride", conv_stride=2)
register_downsample("blur_max", stages=(MAX_S1, BLUR_S2), literature="Zhang 2019")
# Both anti-aliased rewrites of a strided conv and of average pooling reduce to a BlurPool after the ReLU.
register_downsample("blur_stride", stages=(BLUR_S2,), literature="Zhang 2019",
                    note="conv (s1) + ReLU, then BlurPool(s2)")
register_downsample("blur_avg", stages=(BLUR_S2,), literature="Zhang 2019")
register_downsample("aps_max", stages=(MAX_S1, APS), literature="Chaman & Dokmanic 2021")
register_downsample("aps_stride", stages=(APS,), literature="Chaman & Dokmanic 2021",
                    note="conv (s1) + ReLU, then optional blur (s1) + APS")

DOWNSAMPLE_KINDS = DOWNSAMPLES  # the older name: iterating, `in` and ", ".join() see the kind names


def get_downsample(kind: str) -> Downsample:
    """The registry entry of `kind`; a LayerConfigError listing the valid kinds if there is none."""
    return DOWNSAMPLES[choose("downsample", kind, DOWNSAMPLES, error=LayerConfigError)]


def make_downsample(kind: str, channels: int, padding: str, blur_size: int) -> nn.Module:
    """The module applied after the ReLU for downsampling `kind` (for 'stride', the conv does the work)."""
    entry = get_downsample(kind)
    choose("padding", padding, PADDING_KINDS, error=LayerConfigError)
    return entry.build(channels, padding, blur_size)


class ConvBlock(nn.Module):
    """``down(relu(conv(pad(x))))``: one stage of every model in the lab.

    >>> block = ConvBlock(1, 8, kernel=3, padding="circular", downsample="aps_max")
    >>> block.stride, block.out_size(32), tuple(block(torch.rand(2, 1, 32, 32)).shape)
    (2, 16, (2, 8, 16, 16))
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: str, downsample: str, blur_size: int = 3):
        super().__init__()
        choose("padding", padding, PADDING_KINDS, error=LayerConfigError)
        self.kind = get_downsample(downsample)
        binomial_filter(blur_size)  # validates the size early, with a clear message
        self.kernel, self.padding, self.downsample, self.blur_size = kernel, padding, downsample, blur_size
        self.stride = self.kind.stride  # of the whole block: what layer profiles divide shifts by
        # Zero padding of an odd kernel is done by the conv itself: the same numbers (bit for bit, tested) without
        # copying every input into a padded buffer first (F.pad cost 11-14% of a forward pass).
        self_pad = padding == "zeros" and kernel % 2 == 1
        self.pad = nn.Identity() if self_pad else _same_pad(padding, kernel)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=self.kind.conv_stride, padding=kernel // 2 if self_pad else 0)
        self.act = nn.ReLU()
        self.down = self.kind.build(out_ch, padding, blur_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.conv(self.pad(x))))

    def out_size(self, size: int) -> int:
        """Side of the output for a square input of side `size` (PyTorch floor semantics).

        Raises LayerConfigError (a ValueError) if the block cannot run on it: a map that becomes empty, APS on
        an odd map, reflect padding of p pixels on a side <= p, circular padding of p pixels on a side < p.
        """
        where = (f"padding={self.padding!r}, downsample={self.downsample!r}, kernel={self.kernel}, "
                 f"blur_size={self.blur_size}, input {size}x{size}")
        s = size
        for w in self.kind.windows(self.kernel, self.blur_size):
            if w.even and s % 2:
                raise LayerConfigError(
                    f"{self.downsample} needs an even feature map; got {s}x{s} at this block ({where}); choose a "
                    f"canvas divisible by the total stride (2 per downsampling block)")
            s = self._window(s, w, where)
        return s

    def _window(self, s: int, w: Window, where: str) -> int:
        """Side after window `w` on an s x s map, padded like the network where the window is padded."""
        padded = s
        if w.padded and self.padding != "valid":
            lo, hi = (w.side - 1) // 2, w.side // 2
            # PyTorch cannot reflect by >= the side, nor wrap around more than once.
            if (self.padding == "reflect" and hi >= s) or (self.padding == "circular" and hi > s):
                raise LayerConfigError(f"{w.label}: {self.padding} padding by {hi} does not fit a {s}x{s} map "
                                       f"({where}); use a larger canvas")
            padded = s + lo + hi
        if padded < w.side:
            raise LayerConfigError(f"{w.label}: the {w.side}x{w.side} window does not fit a {s}x{s} map ({where}); "
                                   f"use a larger canvas or fewer blocks")
        return (padded - w.side) // w.stride + 1
