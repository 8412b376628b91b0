"""Alias-free layers (afc.py) do what the paper says: the FFT downsampling and the polynomial activation commute
with half-pixel (Fourier) shifts, so circular padding + afc + global average is exactly invariant to EVERY circular
shift of a 16 px input, untrained and briefly trained; global max pooling, which reads the samples, is not."""

from __future__ import annotations

import pytest
import torch

from invariance_lab.nn.afc import PolyActivation, fourier_down2, fourier_up2
from .adversarial import S, all_rolls, assert_exact, logits_at_every_shift, probes, small_net

pytestmark = pytest.mark.usefixtures("one_thread")


def half_pixel_shift(x: torch.Tensor) -> torch.Tensor:
    """x shifted by half a pixel down and right (Fourier shift theorem), for maps without a Nyquist frequency."""
    h, w = x.shape[-2:]
    ky, kx = torch.fft.fftfreq(h, dtype=torch.float64), torch.fft.fftfreq(w, dtype=torch.float64)
    phase = torch.exp(-1j * torch.pi * (ky[:, None] + kx[None, :]))  # e^{-2 pi i k 0.5}
    return torch.fft.ifft2(torch.fft.fft2(x.double()) * phase).real


def test_fourier_upsampling_interpolates_and_downsampling_halves_the_band():
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    assert torch.allclose(fourier_up2(x)[..., ::2, ::2], x, atol=1e-12)  # the even samples are the input
    # a one-pixel roll of the input is an exact half-pixel shift of the downsampled map (nothing aliased)
    assert torch.allclose(fourier_down2(torch.roll(x, (1, 1), dims=(-2, -1))), half_pixel_shift(fourier_down2(x)),
                          atol=1e-12)
    with pytest.raises(ValueError, match="even"):
        fourier_down2(torch.rand(1, 1, 5, 6))


def test_the_polynomial_activation_commutes_with_half_pixel_shifts():
    u = fourier_down2(torch.rand(2, 3, 16, 16, dtype=torch.float64))  # 8 x 8, band-limited, no Nyquist bin
    act = PolyActivation(3).double()
    with torch.no_grad():
        act.coef.copy_(torch.tensor([[0.1, 0.5, 0.4], [0.0, 1.0, 1.0], [-0.3, 0.2, 2.0]]))
        assert torch.allclose(act(half_pixel_shift(u)), half_pixel_shift(act(u)), atol=1e-12)
        # a plain pointwise square does not: its x^2 aliases
        assert not torch.allclose(half_pixel_shift(u) ** 2, half_pixel_shift(u ** 2), atol=1e-3)


@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "trained"])
def test_afc_network_is_exactly_invariant_to_every_circular_shift(trained):
    assert_exact(logits_at_every_shift(small_net("afc", trained), probes()))


def test_afc_with_global_max_pooling_is_not_invariant():
    out = logits_at_every_shift(small_net("afc", False, head="global_max"), probes()[:2])
    assert (out - out[0]).abs().max().item() > 1e-3


def test_afc_blocks_use_the_polynomial_activation_and_halve_the_map():
    net = small_net("afc", False)
    assert all(isinstance(b.act, PolyActivation) for b in net.blocks)
    assert net.blocks[0](all_rolls(torch.rand(1, 1, S, S))[:2]).shape == (2, 4, S // 2, S // 2)


def test_fourier_down2_keeps_a_band_limited_signal_at_its_scale():
    """Catches a lost m/n factor in _down2: a signal within the band is just subsampled, a constant kept."""
    t = torch.arange(8, dtype=torch.float64)
    x = (2.0 + torch.cos(2 * torch.pi * t / 8))[None, :] * torch.ones(8, 1, dtype=torch.float64)  # |k| <= 1 < 8/4
    assert torch.allclose(fourier_down2(x), x[::2, ::2], atol=1e-12)


def test_poly_activation_applies_c0_plus_c1_x_plus_c2_x_squared():
    """Catches the coefficients read in the wrong order: on a constant map the activation is the polynomial."""
    act = PolyActivation(2)
    with torch.no_grad():
        act.coef.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.25]]))
    out = act(torch.full((1, 2, 4, 4), 0.5))
    assert torch.allclose(out[0, 0], torch.full((4, 4), 1 + 2 * 0.5 + 3 * 0.25), atol=1e-5)
    assert torch.allclose(out[0, 1], torch.full((4, 4), 0.5 - 0.5 + 0.25 * 0.25), atol=1e-5)
