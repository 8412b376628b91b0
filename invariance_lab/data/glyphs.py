"""The glyph table both glyph sources build and the renderer draws: letters x fonts as padded segment tensors.

    table = load_glyphs(["A", "B"], ["futural", "timesr"])     # data/letters.py (strokes) or outlines.py (filled)
    table.segments.shape                                       # (G, S, 4): G = letters x fonts glyphs
    same_drawings(table)                                       # [("gothicger", ("I", "J"))]: drawn alike

It sits below letters.py and outlines.py so that each builds one without importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class GlyphTable:
    letters: tuple[str, ...]  # class order
    fonts: tuple[str, ...]
    segments: torch.Tensor  # (G, S, 4) float32: x0, y0, x1, y1; zero padding, see mask
    mask: torch.Tensor  # (G, S) bool, True for real segments
    groups: torch.Tensor  # (G, S) long: stroke index in font order, -1 for padding
    part: torch.Tensor  # (G, S) bool: the glyph's part: a stroke (letters.py) or a counter (outlines.py)
    filled: bool = False  # True: segments are closed outlines, drawn filled (outlines.py); False: pen strokes

    def index(self, letter_idx: torch.Tensor, font_idx: torch.Tensor) -> torch.Tensor:
        """Glyph index g = letter_index * len(fonts) + font_index."""
        return letter_idx.long() * len(self.fonts) + font_idx.long()


def same_drawings(table: GlyphTable) -> list[tuple[str, tuple[str, ...]]]:
    """(font, letters) for every font that draws two or more of the table's letters alike: the same segments,
    in any order or direction, to within DRAWN_ALIKE of the cap height, so they render to the same pixels. Such
    letters cannot be told apart (the Hershey gothicger draws I and J with the same strokes; "Last Resort"
    draws every letter as the same box), so a class of them is a coin toss."""
    out = []
    for f, font in enumerate(table.fonts):
        seen: dict[tuple, list[str]] = {}
        for i, letter in enumerate(table.letters):
            g = table.index(torch.tensor(i), torch.tensor(f))
            seen.setdefault(_drawing(table, int(g)), []).append(letter)
        out += [(font, tuple(group)) for group in seen.values() if len(group) > 1]
    return out


DRAWN_ALIKE = 1e-4  # of the cap height: 0.01 px on a 100 px letter, far below any visible difference


def _drawing(table: GlyphTable, g: int) -> tuple:
    """A glyph's segments as a hashable key: in units of DRAWN_ALIKE, each from its lower end, sorted (the part
    is left out: it matters only when moved, and the letters' training images are alike anyway)."""
    seg = (table.segments[g][table.mask[g]].double() / DRAWN_ALIKE).round().long().tolist()
    return tuple(sorted((min((a, b), (c, d)), max((a, b), (c, d))) for a, b, c, d in seg))
