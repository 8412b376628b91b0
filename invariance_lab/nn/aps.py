"""Adaptive polyphase sampling (APS, Chaman & Dokmanic, CVPR 2021): downsampling by 2 that keeps, per image, the
polyphase component with the largest norm, so that a circular shift of the input gives a circular shift of the
output. The rule, its tie-break and the inputs where exactness stops are in APSDown's docstring; the
measurements behind the tolerance are in the comment below and in docs/science.md.

    down = APSDown(channels=16, blur_size=3, padding="circular")   # what downsample: aps_max / aps_stride use
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import BlurPool, LayerConfigError

# A circular shift of the input permutes the four polyphase components and rolls each one, so in exact
# arithmetic their norms are merely permuted. In floating point they also move by noise; measured over every
# circular shift of noise and blurred-noise inputs to aps_max / aps_stride networks (blur 1, 3, 5, 7;
# untrained and trained; 16 and 32 px canvases) and of the tied inputs of tests/nn/test_aps.py to APSDown (blur 2
# to 7), relative to the largest of the four float64 energies:
#   CPU (x86, 1 or 2 threads), float32: <= 4.4e-16 within one batch, where the convs, blurs and pools were
#       bitwise shift-equivariant (only the float64 sums add the same squares in another order); <= 1.7e-7
#       between an image alone and its rolls in a batch of 256 (the one-channel 3x3 blur's kernel depends on
#       the batch; values then differ by <= 2.0e-7 of the largest |value|);
#   H200 GPU, float64 maps: <= 4.0e-16; float32 maps: <= 2.7e-7 (the third block's cuDNN kernels are not
#       bitwise shift-equivariant); float32 with TF32 convolutions, PyTorch's default there: <= 2.1e-4.
# Ties are judged at TIE_ULPS units of the map's own precision: 4 * 2**-23 = 4.8e-7 for float32 maps (1.8 x the
# worst float32 noise above), 8.9e-16 for float64 maps (2 x the summation noise). Values in the tie-break are
# compared at the same number of units of the sample's largest |value| (2.4 x the worst value noise above).
TIE_ULPS = 4


class APSDown(nn.Module):
    """Adaptive polyphase sampling by 2 (Chaman & Dokmanic 2021), with an optional stride-1 blur before it.

    Of the four polyphase components ``x[..., i::2, j::2]`` each sample keeps the one with the largest l2 norm
    (over channels and positions; squared norms summed in float64), the paper's rule. With circular padding a
    circular shift of the input permutes the components and rolls each one (by whole positions), so a choice
    made on what the components contain, never on where they are, keeps "the same" component for every shift:
    the output is a circular shift of the unshifted output (exact equivariance), hence exactly invariant
    after global pooling.

        >>> x = torch.zeros(1, 1, 4, 4); x[0, 0, 1, 0] = 3.0  # all the energy in component (1, 0)
        >>> APSDown(1)(x)[0, 0]
        tensor([[3., 0.],
                [0., 0.]])

    Ties. Norms within TIE_ULPS units of the map's precision of the largest one (4.8e-7 relative for float32,
    8.9e-16 for float64: the float noise a shift causes, measured above TIE_ULPS) count as equal; exact ties
    happen on blank backgrounds and on symmetric inputs (two copies of a shape). A bare argmax would then
    decide by rounding or by the components' fixed order, and neither follows the content under a shift. Among
    the tied components we keep the one holding the largest circular rotation: each rotation of a component
    (its values read row-major from a starting position, wrapping around, all channels of a position before
    the next position) is compared lexicographically, values within TIE_ULPS units of the sample's largest
    |value| counting as equal. The rotations of a component are the same set whatever the component was rolled
    by, so the rule depends only on each component's content up to a circular shift; and it is complete: two
    components with the same largest rotation are circular translates of each other, so either one gives a
    rolled output. Untied samples pay one float64 norm; tied samples pay a loop over positions that stops as
    soon as one component is ahead or the leaders are translates (within 4 rows on tests/nn/test_aps.py's inputs).

    Exact scope. The output is a circular shift of the unshifted output (to float round-off) whenever the
    network before APS commutes with circular shifts up to the noise measured above: circular padding,
    circular shifts, finite values. What remains outside:
    (1) norms, or values compared in the tie-break, whose difference lies within float noise of the tolerance
        itself (e.g. a relative norm gap of 4.8e-7 +- 3e-7): the choice may then follow the noise. Where the
        maps are bitwise shift-equivariant (CPU, within one batch) this needs a gap within 1e-15 of the
        tolerance. A coincidence of continuous values; no test input or measured network has met it;
    (2) two tied components that agree within the value tolerance at every position of their largest
        rotations without being translates: the first in the order (0,0), (0,1), (1,0), (1,1) is kept, and
        the output differs from a circular shift by at most that tolerance (4 units of the largest |value|);
    (3) maps computed with more noise than the tolerance (TF32 convolutions on a GPU: ~2e-4) or not
        equivariant at all: zero / reflect padding, canvas shifts (Shifman & Weiss 2024), odd map sides
        (refused). The choice is not differentiable; the gradient flows through the kept component, as in
        the paper.
    """

    def __init__(self, channels: int, blur_size: int = 1, padding: str = "circular"):
        super().__init__()
        self.blur = BlurPool(channels, blur_size, stride=1, padding=padding) if blur_size > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.subsample(self.blur(x))

    def subsample(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-2 part alone: keep each sample's chosen polyphase component of `x` (already blurred).
        engine.py runs it on the four polyphase offsets of one blurred map."""
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise LayerConfigError(f"APS needs an even feature map; got {h}x{w}")
        comps = torch.stack([x[..., i::2, j::2] for i in (0, 1) for j in (0, 1)], dim=1)  # (N, 4, C, h/2, w/2)
        index = self.choose(comps.detach())
        return comps[torch.arange(comps.shape[0], device=x.device), index]

    @torch.no_grad()
    def choose(self, comps: torch.Tensor) -> torch.Tensor:
        """Index (N,) of the kept component of each sample of `comps` (N, 4, C, h, w), by the class's rule."""
        ulp = TIE_ULPS * torch.finfo(comps.dtype).eps  # the map's float-noise level, relative
        c = comps.double()  # exact copies of the values: only the sums round, and in float64
        energy = c.pow(2).sum(dim=(2, 3, 4))  # (N, 4)
        best = energy.amax(dim=1, keepdim=True)
        tied = energy >= best - ulp * best
        index = energy.argmax(dim=1)
        rows = (tied.sum(dim=1) > 1).nonzero().squeeze(1)
        if len(rows):  # blank backgrounds, symmetric inputs: settle on content, for those samples only
            index[rows] = _largest_rotation(c[rows], tied[rows], ulp)
        return index


def _largest_rotation(c: torch.Tensor, tied: torch.Tensor, ulp: float) -> torch.Tensor:
    """(n,) index of the tied component holding the lexicographically largest circular rotation.

    c: (n, 4, C, h, w) float64 components; tied: (n, 4) the candidates. A candidate is a (component, start)
    pair, alive in `alive` (n, 4, h, w); at each offset (dy, dx) from the start and each channel, only the
    candidates within `tol` of the best alive value stay. A sample is settled once its survivors all lie in
    one component, or once the components holding survivors are translates of one another (then each holds
    the largest rotation, and the first in the fixed order is kept).
    """
    n, _, channels, h, w = c.shape
    tol = (ulp * c.abs().amax(dim=(1, 2, 3, 4))).view(n, 1, 1, 1)
    index = torch.zeros(n, dtype=torch.long, device=c.device)
    rows = torch.arange(n, device=c.device)  # the samples not settled yet
    alive = tied[:, :, None, None].expand(-1, -1, h, w).clone()
    for step in range(h * w + 1):
        holds = alive.flatten(2).any(dim=2)  # (m, 4): components with a surviving start
        done = holds.sum(dim=1) == 1
        if step == 0 or step % w == 1 or step == h * w:  # now and then (a row) the dearer test for translates
            done |= _translates(c, alive, tol)
        if done.any():
            index[rows[done]] = holds[done].to(torch.uint8).argmax(dim=1)
            keep = ~done
            rows, c, tol, alive = rows[keep], c[keep], tol[keep], alive[keep]
        if not len(rows) or step == h * w:
            return index
        dy, dx = divmod(step, w)
        ahead = c.roll((-dy, -dx), dims=(-2, -1))  # ahead[.., k, :, y, x] = c[.., k, :, y + dy, x + dx]
        for ch in range(channels):
            v = ahead[:, :, ch]
            best = v.masked_fill(~alive, -math.inf).amax(dim=(1, 2, 3), keepdim=True)
            alive &= v >= best - tol
    return index


def _translates(c: torch.Tensor, alive: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
    """(m,) whether the components holding survivors, each read from its first surviving start, are equal
    (within tol): they are then circular translates of one another (e.g. stripes, checkerboards, blank maps)."""
    m, _, channels, h, w = c.shape
    holds = alive.flatten(2).any(dim=2)
    start = alive.flatten(2).to(torch.uint8).argmax(dim=2)  # (m, 4) flat index of the first surviving start
    ys = (torch.arange(h, device=c.device) + (start // w)[..., None]) % h  # (m, 4, h)
    xs = (torch.arange(w, device=c.device) + (start % w)[..., None]) % w  # (m, 4, w)
    rot = c.gather(3, ys[:, :, None, :, None].expand(-1, -1, channels, -1, w))
    rot = rot.gather(4, xs[:, :, None, None, :].expand(-1, -1, channels, h, -1))  # roll(c[k], -start[k])
    ref = rot[torch.arange(m, device=c.device), holds.to(torch.uint8).argmax(dim=1)]
    equal = (rot - ref[:, None]).abs().amax(dim=(2, 3, 4)) <= tol.view(m, 1)
    return (equal | ~holds).all(dim=1)
