"""Filled capital letters from TrueType/OpenType outlines (`data.glyphs: outline`), drawn by letters.render.

    invlab fonts                                   # the outline fonts by name, beside the stroke fonts
    invlab run configs/x.yaml --set data.glyphs=outline --set 'data.fonts=["DejaVu Sans", "DejaVu Serif Bold"]'

Fonts are the ones matplotlib ships (mpl-data/fonts/ttf) and the system's font folders, named by family and
style ("DejaVu Sans", "DejaVu Serif Bold"; the regular style is the bare family name), or a path to a .ttf/.otf
file. matplotlib's TextPath gives a letter's contours (lines and Bezier curves, cut here into chords within FLATTEN_TOL); each polygon edge becomes
one segment of a GlyphTable, so the stroke renderer's machinery (sub-pixel position, size, the window around the
glyph, chunking) draws outlines too. The pixel rule (letters.render): a pixel centre is inside by the even-odd
rule (holes are separate contours), its signed distance s to the outline is + inside and - outside, and its
intensity is clamp(0.5 + s, 0, 1): a one-pixel anti-aliasing ramp centred on the outline.

Normalisation as for strokes: the glyph's bounding box is centred at (0, 0) and its height is 1; x right, y down.
Stroke thickness does not apply to filled glyphs (the sampled value is ignored, so the data stream is unchanged).
Part displacement (`--kind parts`): a filled capital is one outer contour and its counters (holes), so its part
is a counter: the hole contour whose bounding-box centre is right-most (the lower one on a tie), moved alone,
the rest of the letter fixed (the lower bowl of B, the counter of A, D, O, P, Q, R). A letter without a counter
(C, E, F, ...) has no part, and a parts sweep of a config with one is refused, naming it (experiment.py).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..core.errors import InvlabError, choose
from ..schema.fonts import LATIN_FONTS
from .glyphs import GlyphTable

OUTLINE_SUFFIXES = (".ttf", ".otf")
FLATTEN_TOL = 0.004  # curves are cut into chords within this distance, in em (~1.4 cap heights): 0.09 px at 16 px
_REGULAR = {"Regular", "Book", "Roman", "Normal", "Medium", ""}


def _font_name(path: str) -> str | None:
    """'Family Style' of a font file ('Family' for the regular style); None if FreeType cannot read it."""
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(path)
    except Exception:
        return None
    style = font.style_name or ""
    family = font.family_name
    return family if style in _REGULAR or family.endswith(" " + style) else f"{family} {style}"


@lru_cache(maxsize=1)
def outline_fonts() -> dict[str, str]:
    """Outline font name -> file: matplotlib's own fonts first, then the system's (first file of a name wins)."""
    import matplotlib
    from matplotlib import font_manager

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    files = sorted(str(p) for p in ttf.iterdir() if p.suffix.lower() in OUTLINE_SUFFIXES)
    files += sorted(f for f in font_manager.findSystemFonts() if f.lower().endswith(OUTLINE_SUFFIXES))
    names: dict[str, str] = {}
    for f in files:
        name = _font_name(f)
        if name and name not in names:
            names[name] = f
    return dict(sorted(names.items()))


def font_names() -> dict[str, tuple[str, ...]]:
    """The names data.fonts takes, by data.glyphs: Hershey stroke fonts and the outline fonts that draw letters
    (`invlab fonts`; the others, symbol fonts and fonts without Latin letters, are refused by name)."""
    letters = tuple(n for n, f in outline_fonts().items() if _not_a_letter(f, "A") is None)
    return {"stroke": LATIN_FONTS, "outline": letters}


@lru_cache(maxsize=None)
def _not_a_letter(path: str, letter: str) -> str | None:
    """Why a font's glyph for `letter` is not that letter ("no glyph", or the glyph's own name), or None when it is:
    a math-extension or symbol font maps the letter's code to another shape (cmex10 draws A as 'parenrightbt').
    A glyph without a name, or named by its code point (uni0041), is taken for the letter."""
    from matplotlib.ft2font import FT2Font

    font = FT2Font(path)
    index = font.get_char_index(ord(letter))
    if index == 0:
        return "no glyph"
    name = font.get_glyph_name(index)
    return None if name in ("", letter, f"uni{ord(letter):04X}") or name.startswith("glyph") else name


def font_file(font: str) -> str:
    """The file of an outline font given by name or path; raises InvlabError naming the valid names."""
    if font.lower().endswith(OUTLINE_SUFFIXES) or os.sep in font:
        if not os.path.isfile(font):
            raise InvlabError(f"outline font file {font!r} does not exist; give a .ttf/.otf path or a name "
                              f"from `invlab fonts`")
        if _font_name(font) is None:
            raise InvlabError(f"outline font {font!r} is not a font FreeType can read (.ttf/.otf expected)")
        return font
    return outline_fonts()[choose("outline font", font, outline_fonts())]


@lru_cache(maxsize=None)
def _glyph_polygons(path: str, letter: str) -> tuple:
    """Contours of one letter, read once: tuple of polygons of (x, y) in em, y pointing DOWN; () if missing."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.ft2font import FT2Font
    from matplotlib.path import Path as MplPath
    from matplotlib.textpath import TextPath

    if FT2Font(path).get_char_index(ord(letter)) == 0:
        return ()
    polys: list[list] = []
    for curve, code in TextPath((0, 0), letter, prop=FontProperties(fname=path), size=1).iter_bezier():
        p = curve.control_points
        if code == MplPath.MOVETO:
            polys.append([tuple(p[0])])
        elif code != MplPath.CLOSEPOLY:  # the polygon is closed by _edges
            polys[-1] += [tuple(q) for q in curve(_chord_ends(p))]
    return tuple(tuple((float(x), -float(y)) for x, y in q) for q in polys if len(q) >= 3)


def _chord_ends(p) -> "np.ndarray":
    """Parameters t of the chord ends that keep a Bezier curve (control points p) within FLATTEN_TOL: a chord
    over 1/n of the parameter strays at most (d / 8) / n**2 from the curve, d the largest second difference of
    the control points times degree * (degree - 1)."""
    import numpy as np

    deg = len(p) - 1
    if deg < 2:
        return np.ones(1)
    d = max(float(np.hypot(*(p[i] - 2 * p[i + 1] + p[i + 2]))) for i in range(deg - 1)) * deg * (deg - 1)
    n = max(1, int(np.ceil(np.sqrt(d / (8 * FLATTEN_TOL)))))
    return np.linspace(0, 1, n + 1)[1:]


def _inside(pt: tuple, poly: tuple) -> bool:
    """Even-odd test of a point against a closed polygon (ray to +x)."""
    x, y = pt
    n, hit = len(poly), False
    for i in range(n):
        (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % n]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            hit = not hit
    return hit


def _part_contour(polys: tuple) -> int | None:
    """The contour a part displacement moves: the glyph's counter (a hole: a contour inside an odd number of
    others) whose bounding-box centre is right-most, the lower one on a tie; None for a glyph without one."""
    holes = [i for i, p in enumerate(polys) if sum(_inside(p[0], q) for j, q in enumerate(polys) if j != i) % 2]
    if not holes:
        return None
    centre = lambda p: ((min(x for x, _ in p) + max(x for x, _ in p)) / 2,  # noqa: E731
                        (min(y for _, y in p) + max(y for _, y in p)) / 2)
    return max(holes, key=lambda i: centre(polys[i]))


def _edges(polys: tuple) -> tuple[torch.Tensor, list[bool]]:
    """Closed polygons -> ((S, 4) float32 normalised edges (bbox centred at 0, height 1), per edge: is it on
    the part contour (_part_contour))."""
    segs, part = [], []
    moving = _part_contour(polys)
    for i, p in enumerate(polys):
        closed = p if p[0] == p[-1] else p + (p[0],)
        edges = [(*a, *b) for a, b in zip(closed[:-1], closed[1:]) if a != b]
        segs += edges
        part += [i == moving] * len(edges)
    t = torch.tensor(segs, dtype=torch.float64)
    xs, ys = t[:, 0::2], t[:, 1::2]
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    t[:, 0::2] = (xs - (x0 + x1) / 2) / (y1 - y0)
    t[:, 1::2] = (ys - (y0 + y1) / 2) / (y1 - y0)
    return t.float(), part


@lru_cache(maxsize=32)
def build_outline_table(letters: tuple[str, ...], fonts: tuple[str, ...]):
    """GlyphTable (filled=True) of letters x fonts; raises InvlabError for an unknown font or a missing letter."""
    files = [font_file(f) for f in fonts]
    glyphs = []
    for c in letters:
        for f, path in zip(fonts, files):
            polys = _glyph_polygons(path, c)
            if not polys:
                raise InvlabError(f"outline font {f!r} has no glyph for letter {c!r}; choose another font "
                                  f"(`invlab fonts`) or drop the letter")
            shape = _not_a_letter(path, c)
            if shape is not None:  # a symbol font: the letter's code draws another shape
                raise InvlabError(f"outline font {f!r} draws {c!r} as the glyph {shape!r}, not the letter (a "
                                  "symbol, fallback or math-extension font); choose a font that draws letters "
                                  "(`invlab fonts`)")
            glyphs.append(_edges(polys))
    G, S = len(glyphs), max(len(s) for s, _ in glyphs)
    segments = torch.zeros(G, S, 4)
    mask = torch.zeros(G, S, dtype=torch.bool)
    part = torch.zeros(G, S, dtype=torch.bool)
    for g, (s, p) in enumerate(glyphs):
        segments[g, : len(s)] = s
        mask[g, : len(s)] = True
        part[g, : len(s)] = torch.tensor(p, dtype=torch.bool)
    groups = torch.where(mask, 0, -1)
    return GlyphTable(letters, fonts, segments, mask, groups, part, filled=True)
