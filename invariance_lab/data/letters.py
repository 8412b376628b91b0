"""Stroke-font capital letters and a vectorised, anti-aliased torch renderer.

Glyphs come from the Hershey stroke fonts (the `HersheyFonts` package): every
letter is a handful of polylines, so it can be drawn at any sub-pixel position,
size and stroke thickness exactly, with no resampling of a bitmap. That is what
a translation-invariance experiment needs: a shift of 0.25 px is a real 0.25 px.

Glyph coordinates are normalised per glyph: the bounding box of all its segments
is centred at (0, 0) and its height (the cap height) is 1.0; x points right and
y points down, as in images.

Each glyph also has a "part", used by part-deformation experiments (move one
piece of a letter relative to the rest). The rule, derived from the strokes and
not typed in per font: the part is the stroke (a polyline as the font gives it)
whose points have the largest mean x, i.e. the right-most stroke (the right
diagonal of A in futural, one of its two lines in futuram, whose strokes are
doubled, but the bottom-right serif in timesr; a bowl of B). A glyph drawn as a
single stroke has no separate piece, so its part is that stroke's segments whose
midpoint lies right of the glyph centre (x > 0); if there are none (a straight
vertical bar, the sans-serif I), it is the bar's lower half (y > 0), the bar
being cut in two at the centre.

Rendering: a pixel (row i, col j) has its centre at (x = j + 0.5, y = i + 0.5);
its intensity is clamp(thickness / 2 + 0.5 - d, 0, 1), d the distance from the
pixel centre to the nearest segment. That is a pen of width `thickness` with a
one-pixel linear ramp at its edge, which keeps ink mass nearly independent of
sub-pixel position.

A filled table (GlyphTable.filled, built by outlines.py for `data.glyphs: outline`)
holds the edges of closed contours instead; its part is a counter (a hole of the
letter, outlines.py says which), not a stroke. The same machinery
draws it with intensity clamp(0.5 + s, 0, 1): s the signed distance to the nearest
edge, + inside by the even-odd rule (_inside), thickness unused.
"""

from __future__ import annotations

import math
import os
import threading
from functools import lru_cache
from typing import Sequence

import torch

from ..core.errors import InvlabError, choose
from ..schema.fonts import LATIN_FONTS, LETTERS
from .glyphs import GlyphTable
from .outlines import build_outline_table


@lru_cache(maxsize=None)
def _hershey():
    """The process's one reader of the HersheyFonts package, and the lock under which a font is loaded into it.
    Before it loads a font, a reader lists the fonts the package holds, unpacking the package's whole archive;
    a reader of its own per font (18 for LATIN_FONTS) did that each time, about a third of a font's load."""
    from HersheyFonts import HersheyFonts  # imported lazily: only needed when glyphs are built

    return HersheyFonts(), threading.Lock()


# a child forked while another thread loads a font would inherit the lock held, for ever: it makes its own reader
os.register_at_fork(after_in_child=_hershey.cache_clear)


@lru_cache(maxsize=None)
def _font_strokes(font: str) -> dict[str, tuple]:
    """Raw strokes of A-Z in one font: letter -> tuple of polylines of (x, y) in font units."""
    h, lock = _hershey()
    with lock:  # loading replaces the reader's glyphs: one font at a time
        h.load_default_font(font)
        return {c: tuple(tuple((float(x), float(y)) for x, y in s) for s in h.strokes_for_text(c)) for c in LETTERS}


def _glyph_segments(strokes: tuple) -> tuple[list, list, list]:
    """Normalised segments, stroke indices and part flags of one glyph."""
    segs, groups = [], []
    for k, stroke in enumerate(strokes):
        pts = stroke if len(stroke) > 1 else stroke * 2  # a lone point is a dot: a zero-length segment
        for p, q in zip(pts[:-1], pts[1:]):
            segs.append((*p, *q))
            groups.append(k)
    t = torch.tensor(segs, dtype=torch.float64)  # float64 so normalisation adds no rounding of its own
    xs, ys = t[:, 0::2], t[:, 1::2]
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    scale = 1.0 / (y1 - y0)
    t[:, 0::2] = (xs - (x0 + x1) / 2) * scale
    t[:, 1::2] = (ys - (y0 + y1) / 2) * scale
    if len(strokes) > 1:
        right = max(range(len(strokes)), key=lambda k: sum(x for x, _ in strokes[k]) / len(strokes[k]))
        part = [g == right for g in groups]
    else:
        part = ((t[:, 0] + t[:, 2]) / 2 > 0).tolist()
        if not any(part):  # a straight vertical bar (sans-serif I): take its lower half instead
            t = _split_at_y0(t)
            groups = [0] * len(t)
            part = ((t[:, 1] + t[:, 3]) / 2 > 0).tolist()
    return t.float().tolist(), groups, part


def _split_at_y0(t: torch.Tensor) -> torch.Tensor:
    """Cut segments that cross y = 0 in two there; collinear halves draw exactly the same ink."""
    out = []
    for x0, y0, x1, y1 in t.tolist():
        if y0 * y1 < 0:
            xm = x0 + (x1 - x0) * y0 / (y0 - y1)
            out += [(x0, y0, xm, 0.0), (xm, 0.0, x1, y1)]
        else:
            out.append((x0, y0, x1, y1))
    return torch.tensor(out, dtype=t.dtype)


def _has_capitals(font: str) -> bool:
    """True if the installed font draws every capital A-Z with at least one stroke."""
    return font in _hershey()[0].default_font_names and all(_font_strokes(font)[c] for c in LETTERS)


@lru_cache(maxsize=32)
def _build_table(letters: tuple[str, ...], fonts: tuple[str, ...]) -> GlyphTable:
    glyphs = [_glyph_segments(_font_strokes(f)[c]) for c in letters for f in fonts]
    G, S = len(glyphs), max(len(s) for s, _, _ in glyphs)
    segments = torch.zeros(G, S, 4)
    mask = torch.zeros(G, S, dtype=torch.bool)
    groups = torch.full((G, S), -1, dtype=torch.long)
    part = torch.zeros(G, S, dtype=torch.bool)
    for g, (s, k, p) in enumerate(glyphs):
        n = len(s)
        segments[g, :n] = torch.tensor(s)
        mask[g, :n] = True
        groups[g, :n] = torch.tensor(k)
        part[g, :n] = torch.tensor(p)
    empty = [f"{letters[g // len(fonts)]}/{fonts[g % len(fonts)]}" for g in range(G) if not part[g].any()]
    if empty:
        raise InvlabError(f"glyphs with an empty part (rule in invariance_lab.data.letters): {', '.join(empty)}")
    return GlyphTable(letters, fonts, segments, mask, groups, part)


# data.glyphs: the glyph sources, each building a GlyphTable from (letters, fonts).
GLYPH_SOURCES = {"stroke": _build_table, "outline": build_outline_table}


def load_glyphs(letters: Sequence[str], fonts: Sequence[str], glyphs: str = "stroke") -> GlyphTable:
    """Glyph table for letters x fonts (cached: the returned tensors are shared, do not modify them)."""
    build = GLYPH_SOURCES[choose("glyphs", glyphs, GLYPH_SOURCES)]
    letters, fonts = tuple(letters), tuple(fonts)
    if not letters or not fonts:
        raise InvlabError("need at least one letter and one font")
    bad = [c for c in letters if c not in LETTERS]
    if bad:
        raise InvlabError(f"unknown letter(s) {bad}: letters must be capitals A-Z, one of {''.join(LETTERS)}")
    bad = [f for f in fonts if f not in LATIN_FONTS]
    if bad and glyphs == "stroke":
        raise InvlabError(f"unknown or non-Latin font(s) {bad}: choose from {', '.join(LATIN_FONTS)}")
    for name, items in (("letter", letters), ("font", fonts)):
        if len(set(items)) != len(items):
            raise InvlabError(f"duplicate {name} in {list(items)}: each may appear once")
    return build(letters, fonts)


RENDER_CHUNK = 32  # images render draws at once by default (the fastest of 32-256 measured, and the leanest)


def render(
    table: GlyphTable,
    glyph: torch.Tensor,
    cx: torch.Tensor,
    cy: torch.Tensor,
    height: torch.Tensor,
    thickness: torch.Tensor,
    canvas: int,
    part_offset: torch.Tensor | None = None,
    chunk: int = RENDER_CHUNK,
    angle: float = 0.0,
    linear: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw N glyphs onto an (N, 1, canvas, canvas) float32 tensor in [0, 1], ink 1 on background 0.

    glyph (N,) long indexes the table; cx, cy (N,) place the glyph's bbox centre in
    pixel coordinates (canvas centre = canvas / 2); height (N,) is its height in
    pixels, thickness (N,) the pen width in pixels. part_offset (N, 2) optionally
    moves the glyph's part by (dx, dy) pixels. angle turns every glyph about its centre by
    that many degrees, counterclockwise on screen, before drawing (_turn: exact coordinates,
    no resampling). linear (N, 2, 2) optionally maps each glyph's (x, y), about its centre and
    before turning, e.g. a width scale and a slant (data.ink: invariant). Ink outside the canvas is cut.

    A pixel farther than thickness / 2 + 0.5 from every segment is exactly 0, so each
    image is computed only on the window of pixels around its segments' bounding box
    (part moved, pen and anti-aliasing ramp included, clipped to the canvas) and pasted
    onto a zero canvas. Work is done `chunk` images at a time on a common P x P patch,
    P the largest window side in the chunk (about height * 1.2 + thickness + 3, at most
    canvas), so memory is about chunk * P**2 * S floats per intermediate, S the chunk's
    largest segment count (chunk 32: the fastest of 32-256 measured, and the leanest). Every
    pixel depends only on its own image, never on the chunking or on the other images: the
    result is bit-identical for any `chunk`.
    """
    device = cx.device
    N = glyph.shape[0]
    segments, mask, part = (t.to(device) for t in (table.segments, table.mask, table.part))
    glyph = glyph.to(device)
    n_seg = mask.sum(1)[glyph]
    # Glyphs have 1-100+ segments but are padded to the longest: rendering them in order
    # of segment count lets each chunk drop the padding it does not need (several times
    # faster), and within a segment count in order of height, so that a chunk's patch
    # is not set by one tall letter. The order does not change any pixel.
    order = torch.argsort(height.to(device), stable=True)
    order = order[torch.argsort(n_seg[order], stable=True)]
    out = torch.zeros(N * canvas * canvas + 1, device=device)  # + 1: a slot for pixels outside the window
    ramp = torch.arange(canvas, device=device)
    for i in range(0, N, chunk):
        idx = order[i : i + chunk]
        n, g, S = idx.shape[0], glyph[idx], int(n_seg[idx].max())
        h, r = height[idx].float()[:, None], thickness[idx].float()[:, None]
        if table.filled:  # no pen: the ramp alone reaches 0.5 px beyond the outline
            r = torch.zeros_like(r)
        seg = segments[g, :S] * h[:, :, None]  # (n, S, 4) in pixels, still centred on 0
        if linear is not None:  # (x, y) -> m @ (x, y) for each end of each segment
            m = linear[idx].float()[:, None]  # (n, 1, 2, 2)
            seg = (m @ seg.reshape(n, S, 2, 2).transpose(-1, -2)).transpose(-1, -2).reshape(n, S, 4)
        if angle:
            seg = _turn(seg, angle)
        seg[..., 0::2] += cx[idx].float()[:, None, None]
        seg[..., 1::2] += cy[idx].float()[:, None, None]
        if part_offset is not None:
            shift = part_offset[idx].float().repeat(1, 2)[:, None, :] * part[g, :S, None]  # zero off the part
            seg = seg + shift
        # Padding becomes a copy of the glyph's first real segment: the minimum distance is
        # unchanged, no masking pass is needed and the bounding box below is the real one.
        real = mask[g, :S]
        first = seg[torch.arange(n, device=device), real.int().argmax(1)]  # (n, 4)
        seg = torch.where(real[:, :, None], seg, first[:, None, :])
        # Window: pixels whose centre is within reach = thickness / 2 + 0.5 of the bbox can
        # have ink; the window goes 0.5 px further on each side so that the pixels left out
        # are exactly 0 despite float round-off. lo, hi: first and last row/column, clipped.
        reach = r / 2 + 0.5  # (n, 1)
        lo = (seg[..., 0::2].flatten(1).amin(1, keepdim=True), seg[..., 1::2].flatten(1).amin(1, keepdim=True))
        hi = (seg[..., 0::2].flatten(1).amax(1, keepdim=True), seg[..., 1::2].flatten(1).amax(1, keepdim=True))
        lo = torch.cat(lo, 1).sub_(reach).floor_().clamp_(0, canvas)  # (n, 2): x, y
        hi = torch.cat(hi, 1).add_(reach).floor_().clamp_(-1, canvas - 1)
        size = (hi - lo + 1).clamp_(min=0).long()  # (n, 2) window width, height
        P = max(int(size.max()), 1)
        lo = lo.long()
        k = ramp[:P]
        px = (lo[:, 0:1] + k).float().add_(0.5)[:, None, :, None]  # (n, 1, P, 1) pixel centres
        py = (lo[:, 1:2] + k).float().add_(0.5)[:, :, None, None]  # (n, P, 1, 1)
        ax, ay, bx, by = (seg[:, None, None, :, j] for j in range(4))  # each (n, 1, 1, S)
        abx, aby = bx - ax, by - ay
        # clamp_min keeps zero-length segments finite: then t = 0 and d is the distance to the point.
        inv_len2 = 1.0 / (abx * abx + aby * aby).clamp_min(1e-12)
        # x terms vary along columns only, y terms along rows only: compute them on (n, 1, P, S)
        # and (n, P, 1, S), and only the few passes that need both on the full (n, P, P, S).
        apx, apy = px - ax, py - ay
        t = torch.add(apx * abx * inv_len2, apy * aby * inv_len2).clamp_(0, 1)  # (n, P, P, S)
        ex = (t * abx).neg_().add_(apx).square_()  # (apx - t * abx) ** 2
        d2 = t.mul_(aby).neg_().add_(apy).square_().add_(ex)
        del ex
        d = d2.amin(dim=-1).sqrt_()  # sqrt once, after the min: same result, S times cheaper
        if table.filled:
            val = (0.5 + torch.where(_inside(ax, ay, bx, by, real, px, py), d, -d)).clamp_(0, 1)
        else:
            val = (r[:, :, None] / 2 + 0.5 - d).clamp_(0, 1)  # (n, P, P)
        inside = (k < size[:, 1:2])[:, :, None] & (k < size[:, 0:1])[:, None, :]
        pos = (idx[:, None, None] * canvas + (lo[:, 1:2] + k)[:, :, None]) * canvas + (lo[:, 0:1] + k)[:, None, :]
        out[torch.where(inside, pos, N * canvas * canvas).flatten()] = val.flatten()
    return out[:-1].reshape(N, 1, canvas, canvas)


def _turn(seg: torch.Tensor, angle: float) -> torch.Tensor:
    """Segments (..., 4) centred on 0 turned by `angle` degrees counterclockwise on screen (y points down):
    (x, y) -> (x cos + y sin, -x sin + y cos). Multiples of 90 degrees use exact cos and sin (0, +-1), so a
    quarter turn is a swap and a sign, as torch.rot90 is for pixels."""
    quarter = angle / 90
    if quarter == int(quarter):
        c, s = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))[int(quarter) % 4]
    else:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    x, y = seg[..., 0::2], seg[..., 1::2]
    out = torch.empty_like(seg)
    out[..., 0::2], out[..., 1::2] = x * c + y * s, y * c - x * s
    return out


def _inside(ax, ay, bx, by, real, px, py) -> torch.Tensor:
    """(n, P, P) bool: the pixel centre is inside the closed outline by the even-odd rule.

    A rightward ray from the centre crosses an odd number of real edges (padding copies are masked: a duplicated
    edge would flip the parity back). An edge crosses a pixel row at one x, xc, found on (n, P, S); it counts for
    the row's pixels with centre px < xc, the first k = ceil(xc - px_0) of them: a histogram of k per row,
    summed from the right, gives every pixel's count without an (n, P, P, S) pass.
    """
    n, P = px.shape[0], px.shape[2]
    up = ((ay > py) != (by > py)) & real[:, None, None, :]  # (n, P, 1, S): the edge spans the pixel row
    xc = ax + (py - ay) * (bx - ax) / torch.where(up, by - ay, torch.ones_like(ay))
    k = (xc - px[:, :, :1]).ceil_().clamp_(0, P).masked_fill_(~up, 0).long().squeeze(2)  # (n, P, S)
    hist = torch.zeros(n, P, P + 1, device=px.device).scatter_add_(2, k, torch.ones_like(k, dtype=torch.float32))
    count = hist[..., 1:].flip(-1).cumsum(-1).flip(-1)  # count[j] = crossings right of pixel j
    return count.remainder_(2).bool()
