"""The conv block every model in the lab is a stack of: ``down(relu(conv(pad(x))))``. What varies between models
is how the border is padded (layers.py) and how the map is downsampled (downsample.py's registry), because those
two choices decide whether the network commutes with translations (docs/science.md).

    >>> block = ConvBlock(1, 8, kernel=3, padding="circular", downsample="aps_max")
    >>> block.stride, block.out_size(32)
    (2, 16)

Zero padding of an odd conv kernel, and full padding of any, is done by the conv itself (the same numbers, without
a padded copy). `bias=False` builds convolutions without bias (Kayhan & van Gemert 2020's networks);
`blur_padding` pads the blurs of blur_*, aps_* and lps otherwise than the network (Zhang 2019's BlurPool: reflect).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import choose
from .downsample import get_downsample
from .layers import PADDINGS, WRAP_MIN, LayerConfigError, _same_pad, binomial_filter, strictly_channels_last, wrap


class ConvBlock(nn.Module):
    """``down(relu(conv(pad(x))))``: one stage of every model in the lab.

    >>> block = ConvBlock(1, 8, kernel=3, padding="circular", downsample="aps_max")
    >>> block.stride, block.out_size(32), tuple(block(torch.rand(2, 1, 32, 32)).shape)
    (2, 16, (2, 8, 16, 16))
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: str, downsample: str, blur_size: int = 3,
                 bias: bool = True, blur_padding: str | None = None):
        super().__init__()
        kind = PADDINGS[choose("padding", padding, PADDINGS, error=LayerConfigError)]
        self.kind = get_downsample(downsample)
        binomial_filter(blur_size)  # validates the size early, with a clear message
        self.kernel, self.padding, self.downsample, self.blur_size = kernel, padding, downsample, blur_size
        self.blur_padding = blur_padding  # what its blurs pad with, where not the network's padding (downsample.py)
        self.stride = self.kind.stride  # of the whole block: what layer profiles divide shifts by
        # Zero padding the same on both sides (an odd kernel, or 'full') is done by the conv itself: the same numbers
        # (bit for bit, tested) without copying every input into a padded buffer first (F.pad cost 11-14% of a
        # forward pass).
        lo, hi = kind.amounts(kernel, conv=True)
        self_pad = kind.mode == "constant" and lo == hi
        self.pad = nn.Identity() if self_pad else _same_pad(padding, kernel, conv=True)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=self.kind.conv_stride, padding=lo if self_pad else 0,
                              bias=bias)
        # The ReLU writes over the conv's output, which nothing else reads (the conv's backward needs its input, not
        # its output, so it was freed right after the ReLU anyway): the same numbers without a second map allocated
        # per block and step, which left the heap more scattered (docs/speed.md). afc puts its alias-free
        # activation in the ReLU's place.
        self.act = self.kind.activation(out_ch) if self.kind.activation else nn.ReLU(inplace=True)
        self.down = self.kind.build(out_ch, padding, blur_size, blur_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.conv(self.padded(x))))

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """self.pad(x): the conv's input (taps and the all-shift engine read it so too). A channels-last map that
        needs no gradient (sweeps, layer profiles, test passes), padded circularly for a channels-last conv (a placed
        network's), is padded by layers.wrap in the map's own layout: F.pad wrote it into the default layout, which
        the conv then copied back to channels last (docs/speed.md, bench/circular_pad.py). The conv reads the same
        numbers in the same layout: the same bits (tests/nn/test_layers.py). A map that needs a gradient goes
        through F.pad, whose backward sums a border pixel's gradients in an order of its own."""
        if (getattr(self.pad, "mode", None) == "circular" and not x.requires_grad and x.numel() >= WRAP_MIN
                and strictly_channels_last(x) and strictly_channels_last(self.conv.weight)):
            return wrap(x, *self.pad.amounts)
        return self.pad(x)

    def out_size(self, size: int) -> int:
        """Side of the output for a square input of side `size` (PyTorch floor semantics); Downsample.out_size
        says when it raises LayerConfigError (a ValueError)."""
        return self.kind.out_size(size, self.kernel, self.padding, self.blur_size, self.blur_padding)
