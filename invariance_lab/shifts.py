"""Shift grids and the two ways of translating a test input.

canvas   : the letter is drawn again at the shifted (possibly sub-pixel) position on the blank canvas; ink that
           leaves the frame is cut. The only difference from the reference image is the translation.
circular : the reference image is rolled (torch.roll), wrapping around: the setting of the exactness proofs.

A sweep is a list of lines; each line is a list of (dx, dy) shifts in order. The neighbour metric compares a
shift with the previous one on its line (one step back along x; along y on the vertical line of an `axes` grid
or when only dy varies).
"""

from __future__ import annotations

import math

import torch


def axis_values(r: list[float]) -> list[float]:
    """Inclusive values of [start, stop, step] (step defaults to 1), robust to float round-off."""
    start, stop = float(r[0]), float(r[1])
    step = float(r[2]) if len(r) > 2 else 1.0
    n = int((stop - start) / step + 1e-9) + 1
    return [round(start + i * step, 9) + 0.0 for i in range(n)]


def shift_lines(dx: list[float], dy: list[float], grid: str) -> list[list[tuple[float, float]]]:
    xs, ys = axis_values(dx), axis_values(dy)
    if grid == "product" and len(xs) == 1:  # only dy varies: one vertical line, so neighbours are along y
        return [[(xs[0], y) for y in ys]]
    if grid == "product":
        return [[(x, y) for x in xs] for y in ys]
    if grid == "axes":
        return [[(x, 0.0) for x in xs], [(0.0, y) for y in ys]]
    raise ValueError(f"unknown grid {grid!r}; choose one of: product, axes")


def grid_points(lines: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Distinct shifts in sweep order (the axes grid meets itself at (0, 0))."""
    seen, out = set(), []
    for line in lines:
        for p in line:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def circular_shift(images: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    if dx != int(dx) or dy != int(dy):
        raise ValueError(f"circular shifts are whole pixels; got ({dx}, {dy})")
    return torch.roll(images, shifts=(int(dy), int(dx)), dims=(-2, -1))


class CanvasShifts:
    """Canvas-mode inputs without redrawing every letter at every shift.

    A letter drawn at (dx, dy) = (ix + fx, iy + fy), with ix, iy whole and 0 <= fx, fy < 1, is the letter drawn
    at (fx, fy) on a canvas enlarged by `margin` px on every side, cut back to the original frame at an offset
    of (ix, iy). So each distinct sub-pixel phase (fx, fy) is drawn once, and every whole-pixel shift is a crop:
    the same pixels as drawing at the shifted position (up to float round-off), at a fraction of the cost.
    Drawn phases are kept up to `cache_bytes`; older ones are dropped (and drawn again if needed).

    draw_phase(fx, fy) must return the whole test set (N, 1, canvas + 2 * margin, ...) with every letter moved
    by (margin + fx, margin + fy) from its reference position.
    """

    def __init__(self, draw_phase, canvas: int, margin: int, cache_bytes: int = 256 * 2**20):
        self.draw_phase, self.canvas, self.margin = draw_phase, canvas, margin
        self.cache: dict[tuple[float, float], torch.Tensor] = {}
        self.cache_bytes = cache_bytes

    def phase(self, fx: float, fy: float) -> torch.Tensor:
        key = (round(fx, 6), round(fy, 6))
        if key not in self.cache:
            big = self.draw_phase(*key)
            while self.cache and (len(self.cache) + 1) * big.numel() * big.element_size() > self.cache_bytes:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = big
        return self.cache[key]

    def __call__(self, chunk: slice, dx: float, dy: float) -> torch.Tensor:
        ix, iy = math.floor(dx), math.floor(dy)
        if max(abs(ix), abs(iy), math.ceil(abs(dx)), math.ceil(abs(dy))) > self.margin:
            raise ValueError(f"shift ({dx}, {dy}) exceeds the margin {self.margin}")
        big = self.phase(dx - ix, dy - iy)
        top, left = self.margin - iy, self.margin - ix
        return big[chunk, :, top:top + self.canvas, left:left + self.canvas]
