"""The glyph table both glyph sources build and the renderer draws: letters x fonts as padded segment tensors.

    table = load_glyphs(["A", "B"], ["futural", "timesr"])     # data/letters.py (strokes) or outlines.py (filled)
    table.segments.shape                                       # (G, S, 4): G = letters x fonts glyphs

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
