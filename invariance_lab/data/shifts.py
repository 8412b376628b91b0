"""Shift grids and the two ways of translating a test input.

canvas   : the letter is drawn again at the shifted (possibly sub-pixel) position on the blank canvas; ink that
           leaves the frame is cut. At whole pixels the only difference from the reference image is the
           translation; at a fraction of a pixel the letter is also sampled at a new phase, which changes its
           total ink by up to a few percent (bench/subpixel_ink.py; docs/metrics.md). The boxes of
           source: boxes are translated in their frame with zeros entering (transforms.translate_image): for whole
           pixels exactly the boxes drawn at the shifted place; for a sub-pixel shift each pixel holds the share of
           it the moved box covers (bilinear = area coverage for a pixel-aligned box).
circular : the reference image is rolled (torch.roll), wrapping around: the setting of the exactness proofs.
           Whole pixels only, unless sweep.subpixel is fft: then a fractional shift is the band-limited roll of
           transforms.fourier_shift (whole pixels stay torch.roll, exactly).

A sweep is a list of lines; each line is a list of (dx, dy) shifts in order. The neighbour metric compares a
shift with the previous one on its line (one step back along x; along y on the vertical line of an `axes` grid
or when only dy varies).
"""

from __future__ import annotations

import bisect
import math

import torch

from ..core.errors import InvlabError, choose
from ..schema.fields import range_values
from .datasets import draw, evaluation_set, glyph_table, position_test_set, reference_letters
from .folder import folder_test_set, to_float
from .transforms import SUBPIXEL, ShiftError, fourier_shift, translate_image, turn_image


def axis_values(r: list[float]) -> list[float]:
    """Inclusive values of [start, stop, step] (step defaults to 1), robust to float round-off: rounded to 9
    decimals (schema/fields.range_values, which the config's checks look at, so a value they pass is used as is)."""
    return range_values(r)


def shift_lines(dx: list[float], dy: list[float], grid: str) -> list[list[tuple[float, float]]]:
    return value_lines(axis_values(dx), axis_values(dy), grid)


def sweep_lines(sweep) -> list[list[tuple[float, ...]]]:
    """The lines of a sweep's grid (SweepConfig): (dx, dy) shifts for transform translate; for rotate and scale
    one line of (angle,) or (scale,) points in increasing order (each point's neighbour is the value before)."""
    if sweep.transform == "translate":
        return shift_lines(sweep.dx, sweep.dy, sweep.grid)
    return [[(v,) for v in axis_values(sweep.angles if sweep.transform == "rotate" else sweep.scales)]]


# --subpixel fft given where every shift is a whole pixel: a roll, which fft does not change (a header would still
# say "band-limited"); invlab sweep and invlab measure refuse it with these words
FFT_ON_ROLLS = ("--subpixel fft shifts by fractions of a pixel; every shift here is a whole pixel (a roll), which it "
                "would not change: leave it out, or give fractional steps (--dx -1:1:0.25)")


def whole_pixels(*ranges: list[float]) -> bool:
    """Every value of these [start, stop(, step)] ranges is a whole number of pixels."""
    return all(float(v).is_integer() for r in ranges for v in axis_values(r))


def every_roll(side: int) -> list[float]:
    """The [start, stop, step] range of every roll along one axis of `side` px, centred on 0: -15..16 for 32,
    -15..15 for 31."""
    return [float(-((side - 1) // 2)), float(side // 2), 1.0]


def roll_count(points: list[tuple[float, float]], height: int, width: int) -> int | None:
    """How many distinct rolls of a height x width image whole-pixel (dx, dy) shifts give (each (dx mod width,
    dy mod height)): height x width when they hold the whole translation group, whose worst case is then exact;
    fewer than the points when two are one roll (dx and dx + width: -8 and 8 on 16 px), which a circular sweep
    then counts twice in its means. None for sub-pixel (fft) shifts, which are more than the translation group."""
    if any(v != int(v) for p in points for v in p):
        return None
    return len({(int(dx) % width, int(dy) % height) for dx, dy in points})


def roll_protocol(points: list[tuple[float, float]], height: int, width: int) -> dict:
    """meta.json's protocol keys of a circular grid on height x width images: all_shifts when its rolls are the
    whole translation group (the worst case over the grid is then the exact worst case over every roll), rolls
    (the distinct ones) when a roll is given twice and counted twice in the means; {} otherwise."""
    rolls, out = roll_count(points, height, width), {}
    if rolls == height * width:
        out["all_shifts"] = True
    if rolls is not None and rolls < len(points):
        out["rolls"] = rolls
    return out


def value_lines(xs: list[float], ys: list[float], grid: str) -> list[list[tuple[float, float]]]:
    """The lines of a grid of the values xs (dx) and ys (dy), as shift_lines makes them from ranges."""
    xs, ys = [float(x) + 0.0 for x in xs], [float(y) + 0.0 for y in ys]
    if grid == "product" and len(xs) == 1:  # only dy varies: one vertical line, so neighbours are along y
        return [[(xs[0], y) for y in ys]]
    if grid == "product":
        return [[(x, y) for x in xs] for y in ys]
    if grid == "axes":
        return [[(x, 0.0) for x in xs], [(0.0, y) for y in ys]]
    raise ShiftError(f"unknown grid {grid!r}; choose one of: product, axes")


def grid_points(lines: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Distinct shifts in sweep order (the axes grid meets itself at (0, 0))."""
    seen, out = set(), []
    for line in lines:
        for p in line:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def previous_on_line(lines: list[list[tuple[float, float]]]) -> dict[tuple[float, float], tuple[float, float]]:
    """{shift: the shift one step back on its line}, for the neighbour metric: the first line on which a shift
    has a predecessor decides (the axes grid's (0, 0) is compared along x); a line's first shift has none."""
    previous: dict[tuple[float, float], tuple[float, float]] = {}
    for line in lines:
        for before, p in zip(line, line[1:]):
            previous.setdefault(p, before)
    return previous


def whole_shifts(images: torch.Tensor) -> dict[str, list[int]]:
    """{"dx": [lo, hi], "dy": [lo, hi]}: the whole-pixel shifts (positive: right and down) within which the ink of
    every image (N, C, H, W) stays inside its frame; a canvas shift past them cuts some letters at the frame, so
    those images are cropped as well as moved. Blank images are left out; {} when all are blank."""
    ink = images.detach().abs().sum(1) > 0  # (N, H, W)
    rows, cols = ink.any(2), ink.any(1)
    inked = rows.any(1)
    rows, cols = rows[inked], cols[inked]
    if not len(rows):
        return {}
    (h, w), ranges = ink.shape[1:], {}
    for key, lines, side in (("dx", cols, w), ("dy", rows, h)):
        first = lines.float().argmax(1)  # the first inked column (row) of each image
        last = side - 1 - lines.flip(1).float().argmax(1)
        ranges[key] = [-int(first.min()), int((side - 1 - last).min())]
    return ranges


def circular_shift(images: torch.Tensor, dx: float, dy: float, subpixel: str = "bilinear") -> torch.Tensor:
    """Images rolled by (dx, dy) px: whole pixels by torch.roll; a fraction only with subpixel fft (the band-limited
    shift, transforms.fourier_shift), refused with bilinear (a roll has no bilinear sub-pixel counterpart here)."""
    if dx == int(dx) and dy == int(dy):
        return torch.roll(images, shifts=(int(dy), int(dx)), dims=(-2, -1))
    if choose("subpixel", subpixel, SUBPIXEL) == "fft":
        return fourier_shift(images, dx, dy)
    raise ShiftError(f"circular shifts are whole pixels unless subpixel is fft (the band-limited shift); "
                     f"got ({dx}, {dy})")


class CanvasShifts:
    """Canvas-mode inputs without redrawing every letter at every shift.

    A letter drawn at (dx, dy) = (ix + fx, iy + fy), with ix, iy whole and 0 <= fx, fy < 1, is the letter drawn
    at (fx, fy) on a canvas enlarged by `margin` px on every side, cut back to the original frame at an offset
    of (ix, iy). So each distinct sub-pixel phase (fx, fy) is drawn once, and every whole-pixel shift is a crop:
    the same pixels as drawing at the shifted position (up to float round-off), at a fraction of the cost.
    Drawn phases are kept up to `cache_bytes`. When more phases are needed than fit, the one dropped is the one
    needed again last in the order the caller announced (expect(shifts): a sweep walks its lines so, and walking
    them dropped the phase needed next, redrawing every phase at every step: 64 draws for a 0.25 px grid's 4
    phases); without an announced order, the oldest.

    draw_phase(fx, fy) must return the whole test set (N, 1, canvas + 2 * margin, ...) with every letter moved
    by (margin + fx, margin + fy) from its reference position.
    """

    def __init__(self, draw_phase, canvas: int, margin: int, cache_bytes: int = 256 * 2**20):
        self.draw_phase, self.canvas, self.margin = draw_phase, canvas, margin
        self.cache: dict[tuple[float, float], torch.Tensor] = {}
        self.cache_bytes = cache_bytes
        self.uses: dict[tuple[float, float], list[int]] = {}  # phase -> where the announced order asks for it
        self.at = 0  # where in that order the phase last asked for is

    def expect(self, shifts: list[tuple[float, float]]) -> None:
        """The shifts about to be asked for, in order (the chunks of one shift, asked for in turn, count once)."""
        self.uses, self.at = {}, 0
        for i, (dx, dy) in enumerate(shifts):
            self.uses.setdefault(self._key(dx - math.floor(dx), dy - math.floor(dy)), []).append(i)

    @staticmethod
    def _key(fx: float, fy: float) -> tuple[float, float]:
        return round(fx, 6), round(fy, 6)

    def _next_use(self, key: tuple[float, float]) -> float:
        """Where `key` is asked for next in the announced order, from here on; infinity if never again."""
        uses = self.uses.get(key, [])
        i = bisect.bisect_left(uses, self.at)
        return uses[i] if i < len(uses) else math.inf

    def phase(self, fx: float, fy: float) -> torch.Tensor:
        key = self._key(fx, fy)
        here = self._next_use(key)
        if here != math.inf:  # a phase the announced order does not hold leaves the place as it was
            self.at = here
        if key not in self.cache:
            big = self.draw_phase(*key)
            while self.cache and (len(self.cache) + 1) * big.numel() * big.element_size() > self.cache_bytes:
                drop = max(self.cache, key=self._next_use) if self.uses else next(iter(self.cache))
                self.cache.pop(drop)
            self.cache[key] = big
        return self.cache[key]

    def __call__(self, chunk: slice, dx: float, dy: float) -> torch.Tensor:
        ix, iy = math.floor(dx), math.floor(dy)
        if max(abs(ix), abs(iy), math.ceil(abs(dx)), math.ceil(abs(dy))) > self.margin:
            raise ShiftError(f"shift ({dx}, {dy}) exceeds the margin {self.margin}")
        big = self.phase(dx - ix, dy - iy)
        top, left = self.margin - iy, self.margin - ix
        return big[chunk, :, top:top + self.canvas, left:left + self.canvas]


# ------------------------------------------------------------------------------ the sweep's shifted test inputs
# inputs(chunk, dx, dy) -> images of the test items in `chunk` (a slice), translated by (dx, dy); see sweep.Inputs
SWEEP_KINDS = ("translation", "parts")


def check_sweep(data, sweep, kind: str) -> None:
    """Refuse sweep kinds and modes that do not apply to this data (DataConfig, SweepConfig), with the reason."""
    choose("sweep kind", kind, SWEEP_KINDS)
    if data.source == "boxes" and kind == "parts":
        raise InvlabError("--kind parts moves one stroke of a drawn letter; this run's images are boxes "
                          "(data.source: boxes), which have no parts to move: use --kind translation")
    if data.source == "folder" and kind == "parts":
        raise InvlabError("--kind parts moves one stroke of a drawn letter; this run's images come from an image "
                          "folder (data.source: folder), which has no parts to move: use a run on letters")
    if data.task == "position" and kind == "parts":
        raise InvlabError("--kind parts needs task: letter; the position task's test images are rolled pairs, "
                          "not redrawn letters")
    if sweep.transform != "translate" and (kind == "parts" or data.task == "position"):
        raise InvlabError(f"a {sweep.transform} sweep (transform: {sweep.transform}) changes the whole test image; "
                          + ("--kind parts moves one part of a letter: use --transform translate" if kind == "parts"
                             else "task: position's test images are rolled pairs: sweep it with transform: translate"))
    if data.task == "position" and sweep.mode != "circular":
        raise InvlabError("task: position is swept with --mode circular only (its bottom test images are the top "
                          f"ones rolled by canvas/2; redrawing on the canvas would break the pairs); got {sweep.mode}")


def part_inputs(table, test, canvas: int):
    """inputs(chunk, dx, dy): each letter drawn with its part moved by (dx, dy) px, the rest in place."""
    def inputs(c: slice, dx: float, dy: float) -> torch.Tensor:
        sub = test.select(c)
        offset = torch.tensor([float(dx), float(dy)]).expand(len(sub), 2)
        return draw(table, sub, canvas, part_offset=offset)

    return inputs


def shifted_inputs(table, test, canvas: int, mode: str, max_shift: float, subpixel: str = "bilinear"):
    """inputs(chunk, dx, dy) for the sweep: redrawn on the canvas, or the reference image rolled."""
    if mode == "circular":
        reference = draw(table, test, canvas)
        return lambda c, dx, dy: circular_shift(reference[c], dx, dy, subpixel)
    margin = math.ceil(max_shift)
    return CanvasShifts(lambda fx, fy: draw(table, test, canvas + 2 * margin, margin + fx, margin + fy), canvas, margin)


def folder_inputs(data, mode: str, n_images: int | None = None, subpixel: str = "bilinear"):
    """(inputs(chunk, dx, dy), labels) of an image folder's test images: rolled, or translated in their frame
    with data.fill entering (translate_image); floats a chunk at a time from the kept 8-bit pixels."""
    reference, labels = folder_test_set(data)
    reference, labels = reference[:n_images], labels[:n_images]
    if mode == "circular":
        return (lambda c, dx, dy: circular_shift(to_float(reference[c]), dx, dy, subpixel)), labels
    return (lambda c, dx, dy: translate_image(to_float(reference[c]), dx, dy, data.fill)), labels


def box_inputs(data, mode: str, n_images: int | None = None, subpixel: str = "bilinear"):
    """(inputs(chunk, dx, dy), labels) of the boxes' test images (data.test_set): rolled, or translated in their
    frame with zeros entering (the module docstring: whole pixels are the boxes drawn at the shifted place)."""
    reference, labels = evaluation_set(data, None)
    reference, labels = reference[:n_images], labels[:n_images]
    if mode == "circular":
        return (lambda c, dx, dy: circular_shift(reference[c], dx, dy, subpixel)), labels
    return (lambda c, dx, dy: translate_image(reference[c], dx, dy, "zeros")), labels


def turned_inputs(data, sweep, n_images: int | None = None):
    """(inputs(chunk, value), labels) of a rotate or scale sweep, value an angle (degrees) or a factor: drawn
    letters in canvas mode are drawn turned or scaled by the renderer (exact); the reference images of circular
    mode, image folders and boxes are turned or scaled as pixels (transforms.turn_image: bilinear)."""
    key = "angle" if sweep.transform == "rotate" else "scale"
    if data.source in ("folder", "boxes"):
        reference, labels = folder_test_set(data) if data.source == "folder" else evaluation_set(data, None)
        reference, labels = reference[:n_images], labels[:n_images]
        fill = data.fill if data.source == "folder" else "zeros"
        return (lambda c, v: turn_image(to_float(reference[c]), fill=fill, **{key: v})), labels
    table, test = glyph_table(data), reference_letters(data)
    if n_images is not None:
        test = test.select(slice(0, n_images))
    if sweep.mode == "circular":
        reference = draw(table, test, data.canvas)
        return (lambda c, v: turn_image(reference[c], **{key: v})), test.labels
    return (lambda c, v: draw(table, test.select(c), data.canvas, **{key: v})), test.labels


def sweep_inputs(data, sweep, kind: str = "translation", n_images: int | None = None):
    """(inputs(chunk, dx, dy), labels) for the first n_images test items (all by default); inputs(chunk, value)
    for a rotate or scale sweep (turned_inputs)."""
    check_sweep(data, sweep, kind)
    if sweep.transform != "translate":
        return turned_inputs(data, sweep, n_images)
    subpixel = sweep.subpixel  # circular mode's fractional shifts: band-limited (fft), or refused (bilinear)
    if data.source == "folder":
        return folder_inputs(data, sweep.mode, n_images, subpixel)
    if data.source == "boxes":
        return box_inputs(data, sweep.mode, n_images, subpixel)
    table = glyph_table(data)
    if data.task == "position":
        reference, labels = position_test_set(data, table)
        reference, labels = reference[:n_images], labels[:n_images]
        return (lambda c, dx, dy: circular_shift(reference[c], dx, dy, subpixel)), labels
    test = reference_letters(data)
    if n_images is not None:
        test = test.select(slice(0, n_images))
    if kind == "parts":
        return part_inputs(table, test, data.canvas), test.labels
    max_shift = max(abs(v) for v in sweep.dx[:2] + sweep.dy[:2])
    return shifted_inputs(table, test, data.canvas, sweep.mode, max_shift, subpixel), test.labels
