"""Translating raster images inside their frame (invlab measure, image folders): whole pixels exact, sub-pixel
shifts bilinear, with a choice of what enters at the border; and circular sub-pixel shifts, band-limited (FFT).

    translate_image(images, 2.5, -1, fill="edge")    # right 2.5 px, up 1 px; the border pixel enters
    fourier_shift(images, 0.5, 0)                    # rolled by half a pixel: the Fourier shift theorem
    turn_image(images, angle=30)                     # turned 30 degrees counterclockwise, bilinear (or scale=1.2)

It sits below folder.py's users (datasets.py, shifts.py) so that each can translate an image.
"""

from __future__ import annotations

import math

import torch

from ..core.errors import DataError, choose


class ShiftError(DataError, ValueError):
    """A shift an image cannot take (a fractional roll, one that leaves nothing in the frame); a ValueError, as
    ever, and a DataError so the CLI shows the message without a traceback."""


# What enters the frame when a raster image is translated inside it (canvas mode): torch.nn.functional.pad modes.
FILLS = {"zeros": "constant", "edge": "replicate", "reflect": "reflect"}
INTERPOLATION = "bilinear"  # sub-pixel canvas shifts: linear per axis between the two nearest whole-pixel shifts
# Sub-pixel circular shifts (sweep.subpixel): bilinear is what canvas shifts do (circular mode refuses fractions),
# fft the band-limited shift of fourier_shift, circular by nature
SUBPIXEL = ("bilinear", "fft")


def translate_image(images: torch.Tensor, dx: float, dy: float, fill: str = "zeros") -> torch.Tensor:
    """Images (N, C, H, W) moved by (dx, dy) px inside their frame (content moves right and down for positive
    values, as torch.roll and the letters' canvas shift): what leaves is cut, what enters is `fill` (FILLS: zeros,
    edge = the nearest border pixel, reflect = mirrored about the border). Whole pixels are exact (a copy of the
    pixels); a sub-pixel shift is bilinear (INTERPOLATION): the weighted mean of the four nearest whole-pixel
    shifts. Needs |dx| < W - 1 and |dy| < H - 1 for sub-pixel shifts, |dx| < W and |dy| < H for whole ones."""
    choose("fill", fill, FILLS)
    ix, iy = math.floor(dx), math.floor(dy)
    fx, fy = dx - ix, dy - iy
    out = None
    for sx, wx in ((ix, 1 - fx), (ix + 1, fx)):
        for sy, wy in ((iy, 1 - fy), (iy + 1, fy)):
            if wx * wy == 0:
                continue
            part = _whole_shift(images, sx, sy, fill)
            out = part if wx * wy == 1 else (part * (wx * wy) if out is None else out + part * (wx * wy))
    return out


def _whole_shift(images: torch.Tensor, dx: int, dy: int, fill: str) -> torch.Tensor:
    if dx == 0 and dy == 0:
        return images
    h, w = images.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        raise ShiftError(f"a shift of ({dx}, {dy}) px leaves nothing of a {w} x {h} image in its frame")
    px, py = abs(dx), abs(dy)
    padded = torch.nn.functional.pad(images, (px, px, py, py), mode=FILLS[fill])
    return padded[..., py - dy:py - dy + h, px - dx:px - dx + w]



# What enters the frame when raster images are turned or scaled (turn_image): grid_sample's padding modes.
TURN_FILLS = {"zeros": "zeros", "edge": "border", "reflect": "reflection"}


def flat_at_scale(scale: float, height: int, width: int) -> bool:
    """Whether turn_image at `scale` leaves an image of height x width px one flat value: below 1/side it shrinks
    under a pixel, beyond side one of its pixels is wider than the frame."""
    return scale * min(height, width) < 1 or scale > max(height, width)


def turn_image(images: torch.Tensor, angle: float = 0.0, scale: float = 1.0, fill: str = "zeros") -> torch.Tensor:
    """Images (N, C, H, W) turned by `angle` degrees counterclockwise on screen and scaled by `scale` about the
    image centre (W / 2, H / 2 in pixel-edge units: the letters' canvas centre), interpolated: bilinear
    (F.grid_sample on an affine grid, align_corners False), `fill` (TURN_FILLS) where the source point is outside.
    Angle 0 and scale 1 return the images as they are. Each output pixel reads the input at R(-angle) p / scale,
    p its offset from the centre in pixels (the x and y units differ on a non-square image: the grid's theta
    converts)."""
    if angle == 0 and scale == 1:
        return images
    choose("fill", fill, TURN_FILLS)
    h, w = images.shape[-2:]
    c, s = math.cos(math.radians(angle)) / scale, math.sin(math.radians(angle)) / scale
    theta = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]], dtype=images.dtype, device=images.device)
    grid = torch.nn.functional.affine_grid(theta.expand(len(images), 2, 3), list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode=TURN_FILLS[fill],
                                           align_corners=False)


def fourier_shift(images: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Images (..., H, W) rolled by (dx, dy) px, any real amount, as the band-limited (trigonometric) interpolation
    of their pixels: the Fourier shift theorem, each 2-D DFT coefficient (k, l) times exp(-2 pi i (k dy / H +
    l dx / W)), k and l the signed frequencies, and the real part of the inverse. Whole pixels give torch.roll (to
    float round-off); shifts compose (a then b is a + b) and invert (a then -a) exactly for images with no energy
    at the Nyquist frequency.

    The Nyquist frequency of an even side (N / 2 cycles, the pattern +1, -1, +1, ...) is its own alias -N / 2, so
    neither phase exp(-+ i pi d) keeps the result real; it takes their mean, cos(pi d): the Nyquist component is
    scaled by cos(pi d) (kept and signed at whole pixels, zero at half a pixel). Each axis's factors are then
    conjugate-symmetric, so the inverse is real up to round-off and its real part loses nothing."""
    h, w = images.shape[-2:]
    spectrum = torch.fft.fft2(images.to(torch.float64))
    factor = _phase(h, dy)[:, None] * _phase(w, dx)[None, :]
    return torch.fft.ifft2(spectrum * factor).real.to(images.dtype)


def _phase(n: int, d: float) -> torch.Tensor:
    """The shift theorem's factor exp(-2 pi i f d) per frequency f = k / n of one axis (n,), cos(pi d) at Nyquist."""
    f = torch.fft.fftfreq(n, dtype=torch.float64)
    phase = torch.exp(-2j * math.pi * f * d)
    if n % 2 == 0:
        phase[n // 2] = math.cos(math.pi * d)
    return phase
