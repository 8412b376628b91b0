"""The font files a config's letters are drawn from, and their digests: what a trained network depends on beyond
its settings (an update of the font package redraws the letters, so its checkpoints are not reused unseen).

    font_digests(cfg.data)        # {"futural": "9c1e...", ...}: font name -> sha256 of the file it is read from

Stroke fonts (Hershey) are read from the data held in the HersheyFonts package's module (letters.py,
_font_strokes: `load_default_font` unpacks it from that file); outline fonts from their .ttf/.otf file
(outlines.font_file). An image folder draws nothing: no fonts ({}); its files are covered by data.folder_digest.
"""

from __future__ import annotations

import importlib.util

from .digests import file_digest
from .outlines import font_file

HERSHEY_MODULE = "HersheyFonts.HersheyFonts"  # the module whose embedded archive holds every Hershey font


def hershey_file() -> str | None:
    """The file the Hershey stroke fonts are read from; None if the package is not installed."""
    try:
        spec = importlib.util.find_spec(HERSHEY_MODULE)
    except ImportError:
        return None
    return spec.origin if spec is not None else None


def font_files(data) -> dict[str, str | None]:
    """Font name -> the file its glyphs are read from, for a data section (DataConfig)."""
    if data.source != "letters":
        return {}
    if data.glyphs == "outline":
        return {f: font_file(f) for f in data.fonts}
    return {f: hershey_file() for f in data.fonts}


def font_digests(data) -> dict[str, str | None]:
    """Font name -> sha256 of its file (digests.file_digest: hashed once per process while unchanged); None for
    a file that is missing."""
    out = {}
    for name, path in font_files(data).items():
        try:
            out[name] = file_digest(path) if path is not None else None
        except OSError:
            out[name] = None
    return out
