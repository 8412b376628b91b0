"""data/glyphs.py's same_drawings: letters a font draws alike are found (in any segment order or direction), and
no two distinct letters of the default fonts are."""

import torch

from invariance_lab.data.glyphs import GlyphTable, same_drawings
from invariance_lab.data.letters import load_glyphs
from invariance_lab.schema.fonts import DEFAULT_FONTS, LETTERS


def _table(glyphs):
    """A table of one font from per-letter lists of segments."""
    S = max(len(g) for g in glyphs)
    segments, mask = torch.zeros(len(glyphs), S, 4), torch.zeros(len(glyphs), S, dtype=torch.bool)
    for i, g in enumerate(glyphs):
        segments[i, : len(g)], mask[i, : len(g)] = torch.tensor(g), True
    letters = tuple("ABC"[: len(glyphs)])
    return GlyphTable(letters, ("box",), segments, mask, torch.where(mask, 0, -1), mask.clone())


def test_the_same_segments_in_another_order_and_direction_are_the_same_drawing():
    box = [(0, 0, 1, 0), (1, 0, 1, 1), (1, 1, 0, 1)]
    turned = [(0, 1, 1, 1), (1, 0, 0, 0), (1, 1, 1, 0)]  # each reversed, listed in another order
    other = [(0, 0, 1, 0), (1, 0, 1, 1), (1, 1, 0, 0.9)]
    assert same_drawings(_table([box, turned, other])) == [("box", ("A", "B"))]
    assert same_drawings(_table([box, other])) == []


def test_gothicger_draws_i_and_j_alike_and_the_default_fonts_draw_every_letter_apart():
    assert same_drawings(load_glyphs(("H", "I", "J"), ("futural", "gothicger"))) == [("gothicger", ("I", "J"))]
    assert same_drawings(load_glyphs(LETTERS, DEFAULT_FONTS)) == []
