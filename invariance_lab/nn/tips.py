"""Translation invariant polyphase sampling (TIPS, Saha & Gokhale, WACV 2025), as the paper and its MIT-licensed
code describe it: the four polyphase components of a map, mixed with per-channel weights computed from the map.

    down = TIPSDown(channels=16, padding="circular")   # what downsample: tips uses

The weights: a depthwise 3x3 conv (no bias), ReLU, the average over each of the four quadrants of the map
(adaptive average pooling to 2 x 2), a depthwise 1x1 conv (no bias), a softmax over the four per channel.
Quadrant q (row-major: top-left, top-right, bottom-left, bottom-right) weights component q of the order
(0, 0), (1, 0), (0, 1), (1, 1) (row offset, column offset), the reference code's pairing.

Built as described, not bent towards invariance: the quadrants are fixed regions of the map, so a circular
shift moves content between them without permuting the components the same way. docs/ gives the all-shift
certificate's verdict (tests/nn/test_tips.py measures it). The paper's two training regularisers (L_FM on the
mixing, L_undo on a shifted copy) change the loss, not the layer, and are not implemented.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import PADDINGS, LayerConfigError, _same_pad

PAIRING = ((0, 0), (1, 0), (0, 1), (1, 1))  # the component weighted by each quadrant, in quadrant order


class TIPSDown(nn.Module):
    """TIPS by 2: sum over q of softmax_q(w * quadrant_mean_q(ReLU(dwconv(x)))) * component_q, per channel."""

    def __init__(self, channels: int, padding: str = "circular"):
        super().__init__()
        self.pad = _same_pad(padding if PADDINGS[padding].mode else "zeros", 3)  # 'valid': a 2x2 map stays usable
        self.conv1 = nn.Conv2d(channels, channels, 3, groups=channels, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 4) mixing weights, one per quadrant, summing to 1 per channel."""
        quadrants = nn.functional.adaptive_avg_pool2d(torch.relu(self.conv1(self.pad(x))), 2)
        return torch.softmax(self.conv2(quadrants).flatten(2), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise LayerConfigError(f"TIPS needs an even feature map; got {h}x{w}")
        comps = torch.stack([x[..., i::2, j::2] for i, j in PAIRING], dim=2)  # (N, C, 4, h/2, w/2)
        return (self.weights(x)[..., None, None] * comps).sum(dim=2)
