"""`invlab models` and `invlab fonts`: what a config can name, listed.

    invlab models
    invlab fonts
"""

from __future__ import annotations

from rich.table import Table

from ..data.outlines import font_names
from ..nn.models import DEFAULTS, list_presets
from .options import out


def models_cli():
    """List the model presets and the factors each one sets."""
    t = Table(title=f"model presets: channels {DEFAULTS['channels']}, kernel {DEFAULTS['kernel']} unless set; "
                    "any factor can be overridden in the config")
    t.add_column("arch", no_wrap=True)
    t.add_column("downsample / head / padding")
    t.add_column("description")
    for name, p in list_presets().items():
        t.add_row(name, f"{p['downsample']} / {p['head']} / {p['padding']}", p["description"])
    out.print(t)


def fonts_cli():
    """List the fonts data.fonts takes: stroke fonts (data.glyphs: stroke) and outline fonts (glyphs: outline)."""
    for kind, names in font_names().items():
        out.print(f"[bold]{kind}[/bold] fonts (data.glyphs: {kind}; or a .ttf/.otf path for outline):" if
                  kind == "outline" else f"[bold]{kind}[/bold] fonts (data.glyphs: {kind}, the default):")
        out.print("  " + ", ".join(names), highlight=False)
