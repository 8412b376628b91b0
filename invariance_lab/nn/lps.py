"""Learnable polyphase sampling (LPS, Rojas-Gomez, Lim, Schwing, Do & Yeh, NeurIPS 2022), written from the paper:
downsampling by 2 that keeps the polyphase component a small network scores highest. The score is a circular
conv net followed by a global average, so it depends on what a component contains, never on where it is: a
circular shift of the input permutes the components, and their scores with them.

    down = LPSDown(channels=16, blur_size=3, padding="circular")   # what downsample: lps uses

Training draws a soft choice (Gumbel-softmax over the four scores, temperature 1, the paper's default), so the
output is a mix of the components and the network learns the scorer; evaluation keeps the argmax component.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .aps import TIE_ULPS, _largest_rotation
from .layers import BlurPool, LayerConfigError, _same_pad

GUMBEL_TAU = 1.0  # the paper's Gumbel-softmax temperature


class LPSDown(nn.Module):
    """Learnable polyphase sampling by 2, with an optional stride-1 blur before it (as APSDown).

    Score of component k: mean over channels and positions of conv(ReLU(conv(component k))), both 3x3 convs with
    `channels` hidden channels, padded circularly (the paper's logits layers). In eval mode each sample keeps
    the component with the largest score.

    Ties. Scores are global averages of local features, so they tie exactly more often than norms do: two
    components made of the same isolated features, differently spaced, score the same. A bare argmax would
    then decide by rounding or by the components' fixed order, and neither follows the content under a shift.
    Scores within TIE_ULPS units of the map's precision times the sample's largest |hidden value| (the float
    noise a roll causes in the convs) count as tied, and the tie is settled by APSDown's rule (aps.py): the
    tied component holding the lexicographically largest circular rotation, which depends only on each
    component's content up to a roll. The scope where exactness stops is APSDown's: gaps within noise of the
    tolerance, non-circular padding, odd sides (refused), noisy kernels (TF32).
    """

    def __init__(self, channels: int, blur_size: int = 1, padding: str = "circular"):
        super().__init__()
        self.blur = BlurPool(channels, blur_size, stride=1, padding=padding) if blur_size > 1 else nn.Identity()
        # circular whatever the network pads with, as the paper's logits layers: a roll of a component then permutes
        # nothing in its score, and a 1 x 1 component can still be padded
        self.score = nn.Sequential(_same_pad("circular", 3), nn.Conv2d(channels, channels, 3), nn.ReLU(),
                                   _same_pad("circular", 3), nn.Conv2d(channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.subsample(self.blur(x))

    def subsample(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-2 part alone, on `x` already blurred (engine_rules.py runs it on each polyphase offset)."""
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise LayerConfigError(f"LPS needs an even feature map; got {h}x{w}")
        comps = torch.stack([x[..., i::2, j::2] for i in (0, 1) for j in (0, 1)], dim=1)  # (N, 4, C, h/2, w/2)
        hidden = self.score(comps.flatten(0, 1)).unflatten(0, (len(x), 4))  # (N, 4, C, h/2, w/2)
        logits = hidden.double().mean(dim=(2, 3, 4))  # float64: the same sum in any order, to ~1e-16
        if self.training:
            weights = F.gumbel_softmax(logits, tau=GUMBEL_TAU).to(x.dtype)
            return (weights[:, :, None, None, None] * comps).sum(dim=1)
        index = self.choose(comps.detach(), logits.detach(), hidden.detach())
        return comps[torch.arange(len(x), device=x.device), index]

    @torch.no_grad()
    def choose(self, comps: torch.Tensor, logits: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """(N,) index of the kept component: the largest score, ties settled on content (the class docstring)."""
        ulp = TIE_ULPS * torch.finfo(comps.dtype).eps
        scale = hidden.abs().amax(dim=(1, 2, 3, 4)).double()  # (N,) the sample's largest |hidden value|
        best = logits.amax(dim=1, keepdim=True)
        tied = logits >= best - (ulp * scale)[:, None]
        index = logits.argmax(dim=1)
        rows = (tied.sum(dim=1) > 1).nonzero().squeeze(1)
        if len(rows):
            index[rows] = _largest_rotation(comps[rows].double(), tied[rows], ulp)
        return index
