"""The names data.letters and data.fonts take: the capitals, the Hershey stroke fonts, the default fonts.

    "timesr" in LATIN_FONTS      # True: a stroke font the schema accepts
    DEFAULT_OUTLINE_FONTS        # what glyphs: outline gets when no fonts are given

They are plain names, so the schema checks a config against them without loading a font; data/letters.py draws
them, and data/outlines.py finds the outline fonts (those are checked when the config is read: schema/checks.py).
"""

from __future__ import annotations

LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# Hershey fonts whose character set is the Latin alphabet (the font names say so:
# Futura, Roman, Times, Script, Cursive, Gothic English/German/Italian), each
# checked by data.letters._has_capitals() to draw all of A-Z (a test runs the check;
# it is not run at import because parsing 18 fonts takes ~0.8 s). The other Hershey
# fonts map A-Z to Greek, Cyrillic, Japanese or symbols, or (astrology, mathupp,
# meteorology) copy another font's capitals beside symbols. Beware: some names here
# are the same A-Z strokes twice: futural = rowmans, futuram = rowmand, rowmant =
# timesrb, scripts = cursive, gothiceng = gothgbt, gothicger = gothgrt, gothicita = gothitt.
LATIN_FONTS: tuple[str, ...] = (
    "futural", "futuram", "rowmans", "rowmand", "rowmant",
    "timesr", "timesrb", "timesi", "timesib",
    "scripts", "scriptc", "cursive",
    "gothiceng", "gothicger", "gothicita", "gothgbt", "gothgrt", "gothitt",
)
# Three distinct designs: single-stroke sans, double-stroke sans, serif roman.
DEFAULT_FONTS: tuple[str, ...] = ("futural", "futuram", "timesr")
DEFAULT_OUTLINE_FONTS = ("DejaVu Sans", "DejaVu Serif")  # used when glyphs: outline is given without fonts
