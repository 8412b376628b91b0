"""A glyph's parts: which piece of a letter a part experiment moves, chosen by stroke, and the letter drawn without it.

The glyph table's own part (letters.py: the right-most stroke) is a rule about shape, not about what a network
reads: a stroke no network uses cannot show whether a displaced part is brought back into focus. Here every stroke
or pair of strokes of a glyph is a candidate, a table can carry any of them as its part, and a glyph can be drawn
with its part removed (the control: how much the networks rely on it).

    table = load_glyphs(["A", "B"], ["futural"])
    candidates(table, 0)                       # [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]: glyph 0 (A in futural)
    chosen = with_part(table, [(1,), (0, 2)])  # glyph 0's part is stroke 1, glyph 1's strokes 0 and 2
    images = draw(without_part(chosen), batch, 32)   # every letter with its part gone, the rest in place
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import combinations

import torch

from ..core.errors import InvlabError
from .glyphs import GlyphTable


def strokes(table: GlyphTable, g: int) -> list[int]:
    """The stroke indices of glyph g, in font order (none for a filled table: its part is a counter)."""
    if table.filled:
        return []
    return sorted(int(k) for k in table.groups[g][table.mask[g]].unique())


def stroke_share(table: GlyphTable, g: int, ks: Sequence[int]) -> float:
    """The strokes' share of glyph g's drawn length (about their share of its ink)."""
    seg = table.segments[g][table.mask[g]]
    length = (seg[:, 2:] - seg[:, :2]).norm(dim=1)
    mine = torch.isin(table.groups[g][table.mask[g]], torch.tensor(list(ks)))
    return float(length[mine].sum() / length.sum().clamp_min(1e-12))


def candidates(table: GlyphTable, g: int, most: int = 2, share: float = 0.5) -> list[tuple[int, ...]]:
    """The candidate parts of glyph g: every set of 1..`most` of its strokes that is at most `share` of its drawn
    length, so that a part stays a part (a duplex font draws one line as two strokes, so a part the networks
    rely on may need two); () alone, the table's own part, when none qualifies or the glyph is filled."""
    ks = strokes(table, g)
    return [c for n in range(1, most + 1) for c in combinations(ks, n)
            if len(c) < len(ks) and stroke_share(table, g, c) <= share] or [()]


def with_part(table: GlyphTable, chosen: Sequence[Sequence[int]]) -> GlyphTable:
    """The table with glyph g's part set to its strokes chosen[g] (() keeps the table's own part). A choice that
    is all of its glyph is refused: without a rest there is nothing for the part to move against."""
    if len(chosen) != table.part.shape[0]:
        raise InvlabError(f"one part per glyph is needed: {table.part.shape[0]} glyphs, {len(chosen)} given")
    part = table.part.clone()
    for g, ks in enumerate(chosen):
        if not ks:
            continue
        if not set(ks) <= set(strokes(table, g)):
            raise InvlabError(f"glyph {g} has strokes {strokes(table, g)}; {list(ks)} is not among them")
        part[g] = table.mask[g] & torch.isin(table.groups[g], torch.tensor(list(ks)))
        if bool(part[g].sum() == table.mask[g].sum()):
            raise InvlabError(f"strokes {list(ks)} are all of glyph {g}: no rest to move against")
    return dataclasses.replace(table, part=part)


def without_part(table: GlyphTable) -> GlyphTable:
    """The table with every glyph's part removed. Each part segment becomes a copy of the glyph's first segment
    off the part: the nearest-segment distance the renderer takes is then that of the rest alone, so the image is
    exactly the letter without its part (not the part moved out of the frame, which would widen the drawing
    window), and the segments stay contiguous as the renderer needs."""
    if table.filled:  # a filled glyph's edges are counted by parity (letters._inside): copies would flip it
        raise InvlabError("a filled (outline) glyph cannot be drawn without its part here; use data.glyphs: stroke")
    segments = table.segments.clone()
    for g in range(segments.shape[0]):
        rest = table.mask[g] & ~table.part[g]
        if not rest.any():
            raise InvlabError(f"glyph {g}'s part is all of it: removing it leaves nothing to draw")
        segments[g, table.part[g]] = segments[g, int(rest.int().argmax())].clone()
    return dataclasses.replace(table, segments=segments)
