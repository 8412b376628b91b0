"""Translating raster images inside their frame (invlab measure, image folders): whole pixels exact, sub-pixel
shifts bilinear, with a choice of what enters at the border.

    translate_image(images, 2.5, -1, fill="edge")    # right 2.5 px, up 1 px; the border pixel enters

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

