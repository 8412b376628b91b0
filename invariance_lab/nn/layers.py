"""The padding and filtering modules the conv blocks are built from: explicit padding, the size-keeping stride-1
max-pool and the binomial blur (BlurPool, Zhang 2019), written from the papers' definitions.

    >>> BlurPool(channels=4, size=3, stride=2, padding="circular")(torch.rand(1, 4, 8, 8)).shape
    torch.Size([1, 4, 4, 4])

What the choices mean for translations (docs/science.md): padding ``circular`` makes a stride-1 conv commute
exactly with circular shifts (``torch.roll``); ``zeros`` / ``reflect`` make the border special; ``valid`` pads
nothing and shrinks the map; ``full`` pads a conv with k-1 zeros on each side, so every pixel meets every kernel
position and the map grows by k-1 (Kayhan & van Gemert 2020). Padding is explicit (``Pad2d``) so that the blur and
the stride-1 max-pool use the block's padding mode, and a circular network stays circular end to end, unless a
model's blur_padding pads its blurs otherwise (Zhang 2019's code reflects). Built on these: aps.py (adaptive
polyphase sampling), downsample.py (the registry of downsampling kinds), block.py (ConvBlock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError, choose

MAX_BLUR_SIZE = 7


@dataclass(frozen=True)
class Padding:
    """A padding kind: what fills the border and how much a window of side k pads on each side."""

    name: str
    description: str
    mode: str | None  # F.pad's mode; None pads nothing ('valid': the map shrinks by k-1 per window)
    full: bool = False  # a conv pads k-1 on each side (the map grows by k-1); other windows pad like 'same'

    def amounts(self, side: int, conv: bool = False) -> tuple[int, int]:
        """(before, after) pixels padded along each axis for a window of `side` (the block's conv if `conv`);
        'same' padding otherwise: the extra pixel of an even side goes right/bottom."""
        if self.mode is None:
            return 0, 0
        if conv and self.full:
            return side - 1, side - 1
        return (side - 1) // 2, side // 2


PADDINGS: dict[str, Padding] = {}


def register_padding(name: str, description: str, mode: str | None, full: bool = False) -> Padding:
    PADDINGS[name] = entry = Padding(name, description, mode, full)
    return entry


register_padding("zeros", "zeros at the border; the map keeps its size", "constant")
register_padding("circular", "the opposite border wraps around: commutes with circular shifts", "circular")
register_padding("reflect", "the map mirrored at the border", "reflect")
register_padding("valid", "nothing padded: each window shrinks the map by k-1", None)
# The blur and the stride-1 max-pool after a full conv keep the size with zeros, as in a zero-padded network.
register_padding("full", "k-1 zeros on each side of a conv: the map grows by k-1 (Kayhan & van Gemert 2020)",
                 "constant", full=True)
PADDING_KINDS: tuple[str, ...] = tuple(PADDINGS)


class LayerConfigError(ConfigError, ValueError):
    """A padding / downsampling / size combination that cannot work. A ConfigError, so the CLI shows the message
    without a traceback (it comes from the user's config or a checkpoint's factors), and a ValueError, as ever."""


def binomial_filter(size: int) -> torch.Tensor:
    """(size, size) float32 low-pass filter: outer product of the binomial row C(size-1, k), summing to 1.

    >>> binomial_filter(3) * 16
    tensor([[1., 2., 1.],
            [2., 4., 2.],
            [1., 2., 1.]])
    """
    if not 1 <= size <= MAX_BLUR_SIZE:
        raise LayerConfigError(f"blur size must be in 1..{MAX_BLUR_SIZE}; got {size}")
    # in Python floats, then one tensor: no tensor arithmetic, which on torch's meta device (store/checkpoints.py
    # builds models there for their shapes) runs through torch's Python reference ops and imports its compiler
    # stack. The values are exact either way: C(size-1, k) / 2**(size-1) is a dyadic fraction.
    row = [math.comb(size - 1, k) / 2 ** (size - 1) for k in range(size)]
    return torch.tensor([[a * b for b in row] for a in row], dtype=torch.float32)


class Pad2d(nn.Module):
    """Explicit padding (left, right, top, bottom) with our padding names; 'zeros' maps to F.pad 'constant'."""

    def __init__(self, padding: str, left: int, right: int, top: int, bottom: int):
        super().__init__()
        padded = [k for k, p in PADDINGS.items() if p.mode is not None]  # 'valid' means no Pad2d at all
        self.mode = PADDINGS[choose("padding", padding, padded, error=LayerConfigError)].mode
        self.padding = padding
        self.amounts = (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.amounts, mode=self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}, {self.amounts}"


# Below this many numbers a map's F.pad (one call) costs less than wrap's slices and two torch.cat (measured with the
# convolution after it, one thread: at 1.3k 12% slower, 3.5k even; 8k 5%, 33k 17%, 123k 16% faster)
WRAP_MIN = 4096


def strictly_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def wrap(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """F.pad(x, (left, right, top, bottom), mode="circular") of a channels-last map: the same values, copied by
    two torch.cat, rows then columns, in the map's own layout (F.pad writes it into the default layout)."""
    h, w = x.shape[-2:]
    if not (0 <= top <= h and 0 <= bottom <= h and 0 <= left <= w and 0 <= right <= w):
        return F.pad(x, (left, right, top, bottom), mode="circular")  # F.pad's own message for what cannot be padded
    # no empty piece: torch.cat takes its output's layout from the first one
    if top or bottom:
        x = torch.cat([x[..., h - top:, :]] * bool(top) + [x] + [x[..., :bottom, :]] * bool(bottom), dim=-2)
    if left or right:
        x = torch.cat([x[..., w - left:]] * bool(left) + [x] + [x[..., :right]] * bool(right), dim=-1)
    return x


def _same_pad(padding: str, kernel: int, conv: bool = False) -> nn.Module:
    """Padding that keeps the size for a stride-1 window of side `kernel` (Identity for 'valid'); for the block's
    `conv` the padding kind's own amount ('full': kernel-1 on each side, growing the map).

    The extra pixel of an even kernel goes right/bottom; for odd kernels this is kernel//2 on each side.
    """
    lo, hi = PADDINGS[choose("padding", padding, PADDINGS, error=LayerConfigError)].amounts(kernel, conv)
    if lo == hi == 0:
        return nn.Identity()
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

    The blur is padded with `padding` ((size-1)//2 left/top, size//2 right/bottom) so a stride-1 blur keeps the
    size: the network's padding mode (a circular network stays circular), or the model's blur_padding where it sets
    one; output side = ceil(side / stride).
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
