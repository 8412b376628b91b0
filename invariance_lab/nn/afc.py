"""Alias-free layers (Michaeli, Michaeli & Soudry, CVPR 2023, "Alias-Free Convnets: Fractional Shift Invariance
via Polynomial Activations"), written from the paper: an ideal (FFT) low-pass before every stride-2 subsampling,
and a polynomial activation applied at twice the resolution, so that no layer aliases.

    down = AliasFreeDown()                  # what downsample: afc runs after the activation
    act = PolyActivation(channels=16)       # what downsample: afc puts in place of the block's ReLU

Why it is exact for circular shifts, fractional ones included. Treat a C x C map as the samples of a
trigonometric polynomial (its DFT). A circular conv multiplies each frequency by a constant, so it commutes with
any shift of that polynomial, whole-pixel or not. AliasFreeDown keeps only the frequencies |k| < C/4 and then
every second sample: the half-size map holds the same band-limited signal (nothing folds over), so a one-pixel
shift of the input is an exact half-pixel (Fourier) shift of the output. PolyActivation upsamples by 2 in the
Fourier domain, applies a degree-2 polynomial pointwise and keeps |k| < C/2: a band of degree < C/2 squared has
degree < C, which the 2C grid holds exactly, so the activation is the band-limited projection of the continuous
p(u(t)) and commutes with every shift. After the first downsampling no map holds its Nyquist frequency (both
layers drop it), so half- and quarter-pixel shifts are well defined, and a global average (the DC term) is
invariant to them: circular padding + afc + global_avg is exactly invariant to every integer circular shift (and,
in exact arithmetic, to band-limited fractional ones). Global max pooling or flatten are not (the samples move).

What we took from the paper and what we chose: the ideal low-pass + subsampling, the x2 upsampling around a
degree-2 polynomial with learned per-channel coefficients, both as the paper describes them. The paper's
initialisation of the coefficients and its alias-free normalisation are not used (our blocks have no
normalisation); we start each channel at the least-squares fit of ReLU on [-1, 1], 3/32 + x/2 + 15/32 x^2.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import LayerConfigError

RELU_FIT = (3 / 32, 1 / 2, 15 / 32)  # least-squares degree-2 fit of ReLU on [-1, 1] (Legendre projection)


def _down2(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Ideal low-pass keeping |k| < n/4, then every second sample, along `dim` (side n, even): the spectrum
    truncated to the half-size grid, with its Nyquist frequency dropped."""
    n = x.shape[dim]
    m = n // 2
    keep = (m - 1) // 2  # the largest k with k < m / 2
    spec = torch.fft.fft(x, dim=dim)
    out = torch.zeros(*spec.shape[:dim % x.ndim], m, *spec.shape[dim % x.ndim + 1:], dtype=spec.dtype,
                      device=x.device)
    out.narrow(dim, 0, keep + 1).copy_(spec.narrow(dim, 0, keep + 1))
    if keep:
        out.narrow(dim, m - keep, keep).copy_(spec.narrow(dim, n - keep, keep))
    return torch.fft.ifft(out, dim=dim).real * (m / n)


def _up2(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Band-limited upsampling by 2 along `dim` (side n): the spectrum zero-padded to 2n, the Nyquist bin of an
    even n split between +n/2 and -n/2, so the even samples of the output are the input."""
    n = x.shape[dim]
    keep = (n - 1) // 2
    spec = torch.fft.fft(x, dim=dim)
    out = torch.zeros(*spec.shape[:dim % x.ndim], 2 * n, *spec.shape[dim % x.ndim + 1:], dtype=spec.dtype,
                      device=x.device)
    out.narrow(dim, 0, keep + 1).copy_(spec.narrow(dim, 0, keep + 1))
    if keep:
        out.narrow(dim, 2 * n - keep, keep).copy_(spec.narrow(dim, n - keep, keep))
    if n % 2 == 0:
        half = spec.narrow(dim, n // 2, 1) / 2
        out.narrow(dim, n // 2, 1).copy_(half)
        out.narrow(dim, 2 * n - n // 2, 1).copy_(half)
    return torch.fft.ifft(out, dim=dim).real * 2


def fourier_down2(x: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., H/2, W/2): ideal circular low-pass (|k| < side/4 on each axis), then stride 2."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise LayerConfigError(f"afc needs an even feature map to halve; got {h}x{w}")
    return _down2(_down2(x, -1), -2)


def fourier_up2(x: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., 2H, 2W): band-limited (FFT) upsampling by 2."""
    return _up2(_up2(x, -1), -2)


class AliasFreeDown(nn.Module):
    """Ideal FFT low-pass, then subsampling by 2 (the paper's alias-free downsampling). No weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fourier_down2(x)


class PolyActivation(nn.Module):
    """The alias-free activation: upsample x2 (FFT), c0 + c1 x + c2 x^2 per channel, low-pass and downsample
    back (FFT). Keeps the side; the coefficients are learned, one set per channel (RELU_FIT to start)."""

    def __init__(self, channels: int):
        super().__init__()
        self.coef = nn.Parameter(torch.tensor(RELU_FIT).repeat(channels, 1))  # (channels, 3); no RNG drawn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = fourier_up2(x)
        c0, c1, c2 = (self.coef[:, i].view(1, -1, 1, 1).to(x.dtype) for i in range(3))
        return fourier_down2(c0 + c1 * up + c2 * up * up)

    def extra_repr(self) -> str:
        return f"channels={self.coef.shape[0]}, degree=2, at 2x resolution"
