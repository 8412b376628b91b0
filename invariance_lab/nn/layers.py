"""The padding and filtering modules the conv blocks are built from: explicit padding, the size-keeping stride-1
max-pool and the binomial blur (BlurPool, Zhang 2019), written from the papers' definitions.

    >>> BlurPool(channels=4, size=3, stride=2, padding="circular")(torch.rand(1, 4, 8, 8)).shape
    torch.Size([1, 4, 4, 4])

What the choices mean for translations (docs/science.md): padding ``circular`` makes a stride-1 conv commute
exactly with circular shifts (``torch.roll``); ``zeros`` / ``reflect`` make the border special; ``valid`` pads
nothing and shrinks the map. Padding is explicit (``Pad2d``) so that the blur and the stride-1 max-pool use the
block's padding mode: a circular network stays circular end to end. Built on these: aps.py (adaptive polyphase
sampling), downsample.py (the registry of downsampling kinds), block.py (ConvBlock).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError, choose

PADDING_KINDS: tuple[str, ...] = ("zeros", "circular", "reflect", "valid")
MAX_BLUR_SIZE = 7


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
