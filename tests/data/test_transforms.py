"""data/transforms.py's band-limited shift (fourier_shift) against theory: whole pixels are torch.roll, a sampled
cosine moves exactly, shifts compose and invert for images without Nyquist energy, and the Nyquist choice
(cos(pi d)) is what the docstring says; circular_shift's default (bilinear) still refuses fractions."""

import math

import pytest
import torch

from invariance_lab.data.shifts import circular_shift
from invariance_lab.data.transforms import ShiftError, fourier_shift, turn_image


def images(h=8, w=8, seed=0):
    return torch.rand(3, 2, h, w, generator=torch.Generator().manual_seed(seed))


def band_limited(x: torch.Tensor) -> torch.Tensor:
    """x without its Nyquist row and column (even sides): what the group property needs."""
    spectrum = torch.fft.fft2(x.double())
    h, w = x.shape[-2:]
    if h % 2 == 0:
        spectrum[..., h // 2, :] = 0
    if w % 2 == 0:
        spectrum[..., :, w // 2] = 0
    return torch.fft.ifft2(spectrum).real.float()


@pytest.mark.parametrize("h, w", [(8, 8), (7, 9), (6, 5)])
@pytest.mark.parametrize("dx, dy", [(1, 0), (0, -3), (2, 5), (-7, 4)])
def test_a_whole_pixel_fft_shift_is_torch_roll(h, w, dx, dy):
    x = images(h, w)  # Nyquist energy included: cos(pi d) = (-1)^d keeps it, signed, at whole pixels
    assert torch.allclose(fourier_shift(x, dx, dy), torch.roll(x, (dy, dx), (-2, -1)), atol=1e-6, rtol=0)
    assert torch.equal(circular_shift(x, dx, dy, "fft"), torch.roll(x, (dy, dx), (-2, -1)))  # exactly


@pytest.mark.parametrize("d", [0.5, 0.25, -1.3, 2.75])
def test_a_sampled_cosine_moves_by_the_fraction(d):
    n, k, phase = 16, 3, 0.4
    m = torch.arange(n, dtype=torch.float64)
    row = lambda shift: torch.cos(2 * math.pi * k * (m - shift) / n + phase)  # noqa: E731
    x = row(0.0).expand(5, n).float()[None, None]  # varies along x only
    assert torch.allclose(fourier_shift(x, d, 0.0)[0, 0], row(d).expand(5, n).float(), atol=1e-6)
    assert torch.allclose(fourier_shift(x.transpose(-1, -2), 0.0, d)[0, 0], row(d)[:, None].expand(n, 5).float(),
                          atol=1e-6)


@pytest.mark.parametrize("h, w", [(8, 8), (7, 9)])
def test_half_then_half_is_one_pixel_for_band_limited_images(h, w):
    x = band_limited(images(h, w, seed=1))
    two_halves = fourier_shift(fourier_shift(x, 0.5, 0.5), 0.5, 0.5)
    assert torch.allclose(two_halves, torch.roll(x, (1, 1), (-2, -1)), atol=1e-6, rtol=0)
    assert torch.allclose(fourier_shift(fourier_shift(x, 0.3, -1.25), 1.2, 0.5), fourier_shift(x, 1.5, -0.75),
                          atol=1e-6, rtol=0)


@pytest.mark.parametrize("a", [(0.5, 0.0), (0.3, -0.7), (-2.25, 1.5)])
def test_a_shift_is_undone_by_its_inverse_for_band_limited_images(a):
    x = band_limited(images(8, 8, seed=2))
    back = fourier_shift(fourier_shift(x, *a), -a[0], -a[1])
    assert torch.allclose(back, x, atol=1e-6, rtol=0)
    assert not torch.allclose(fourier_shift(x, *a), x, atol=1e-3)  # it did move


def test_the_nyquist_component_is_scaled_by_cos_pi_d():
    checkerboard = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).float()[None, None] * 2 - 1
    assert torch.allclose(fourier_shift(checkerboard, 0.5, 0.0), torch.zeros_like(checkerboard), atol=1e-6)
    assert torch.allclose(fourier_shift(checkerboard, 1.0, 0.0), -checkerboard, atol=1e-6)
    assert torch.allclose(fourier_shift(checkerboard, 0.25, 0.0), math.cos(math.pi / 4) * checkerboard, atol=1e-6)


def test_bilinear_is_unchanged_circular_shifts_refuse_fractions():
    x = images()
    assert torch.equal(circular_shift(x, 2, -1), torch.roll(x, (-1, 2), (-2, -1)))
    with pytest.raises(ShiftError, match="whole pixels unless subpixel is fft"):
        circular_shift(x, 0.5, 0)
    assert fourier_shift(x, 0.5, 0).dtype == x.dtype and fourier_shift(x, 0.5, 0).shape == x.shape


# -------------------------------------------------------------- turn_image: rotate and scale sweeps of pixels
def test_turn_image_at_angle_0_scale_1_is_the_image_and_a_quarter_turn_is_rot90():
    x = images(8, 8)
    assert turn_image(x) is x and turn_image(x, angle=0.0, scale=1.0) is x
    torch.testing.assert_close(turn_image(x, angle=90), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(turn_image(x, angle=-90), torch.rot90(x, -1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_a_circularly_symmetric_image_is_unchanged_by_turn_image():
    """A Gaussian of sigma 4 px about the centre (W / 2, H / 2): the turn itself changes nothing, and bilinear
    interpolation errs by at most h^2 / 8 (|f_xx| + |f_yy|) <= 2 / (8 sigma^2) ~ 0.016 of the peak (h = 1 px)."""
    side = 32
    pos = torch.arange(side) + 0.5 - side / 2
    r2 = pos[None, :] ** 2 + pos[:, None] ** 2
    x = torch.exp(-r2 / (2 * 4.0**2))[None, None]
    for angle in (10, 30, 45, 77, 180):
        assert (turn_image(x, angle=angle) - x).abs().max() < 0.016
    assert (turn_image(x, scale=1.2) - x).abs().max() > 0.05  # a scaling is not a symmetry of it: the test sees


def test_turn_image_turns_counterclockwise_and_fills_with_zeros():
    x = torch.zeros(1, 1, 9, 9)
    x[..., 4, 7] = 1.0  # right of the centre (4.5, 4.5)
    up = turn_image(x, angle=90)
    assert up[0, 0].argmax() == 1 * 9 + 4  # now above it: row 1, column 4
    assert turn_image(torch.ones(1, 1, 9, 9), angle=45)[0, 0, 0, 0] == 0  # a corner comes from outside


def test_turn_image_edge_fill_repeats_the_border_pixel_and_reflect_mirrors_the_inside():
    """fill="edge" (grid_sample's border) gives a corner of a 45 degree turn the value of the border it is clamped
    to; reflect mirrors the frame back in, so the blank inside shows there; zeros gives 0."""
    x = torch.zeros(1, 1, 10, 10)
    x[..., 0, :] = x[..., -1, :] = x[..., :, 0] = x[..., :, -1] = 0.7  # a border of 0.7 about a blank inside
    corners = lambda y: y[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]]  # noqa: E731
    edge, reflect = corners(turn_image(x, angle=45, fill="edge")), corners(turn_image(x, angle=45, fill="reflect"))
    torch.testing.assert_close(edge, torch.full((4,), 0.7), atol=1e-6, rtol=0)
    assert (reflect < 0.5).all()
    assert not corners(turn_image(x, angle=45, fill="zeros")).any()
