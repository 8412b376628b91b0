"""Shift grids and the two ways of translating a test input.

canvas   : the letter is drawn again at the shifted (possibly sub-pixel) position on the blank canvas; ink that
           leaves the frame is cut. The only difference from the reference image is the translation.
circular : the reference image is rolled (torch.roll), wrapping around: the setting of the exactness proofs.

A sweep is a list of lines; each line is a list of (dx, dy) shifts in order. The neighbour metric compares a
shift with the previous one on its line (one step back along x; along y on the vertical line of an `axes` grid).
"""

from __future__ import annotations

import torch


def axis_values(r: list[float]) -> list[float]:
    """Inclusive values of [start, stop, step] (step defaults to 1), robust to float round-off."""
    start, stop = float(r[0]), float(r[1])
    step = float(r[2]) if len(r) > 2 else 1.0
    n = int((stop - start) / step + 1e-9) + 1
    return [round(start + i * step, 9) + 0.0 for i in range(n)]


def shift_lines(dx: list[float], dy: list[float], grid: str) -> list[list[tuple[float, float]]]:
    xs, ys = axis_values(dx), axis_values(dy)
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
