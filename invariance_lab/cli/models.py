"""`invlab models` and `invlab fonts`: what a config can name, listed.

    invlab models
    invlab fonts
"""

from __future__ import annotations

from rich.table import Table

from ..data.outlines import font_names
from ..nn.downsample import DOWNSAMPLES
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
    kinds = Table(title="downsample kinds (models: {m: {downsample: KIND}}): what each block does after its conv")
    kinds.add_column("downsample", no_wrap=True)
    kinds.add_column("stride")
    kinds.add_column("what it is")
    kinds.add_column("from")
    for name, d in DOWNSAMPLES.items():
        kinds.add_row(name, str(d.stride), d.describe(), d.literature)
    out.print(kinds)


def fonts_cli():
    """List the fonts data.fonts takes: stroke fonts (data.glyphs: stroke) and outline fonts (glyphs: outline)."""
    for kind, names in font_names().items():
        out.print(f"[bold]{kind}[/bold] fonts (data.glyphs: {kind}; or a .ttf/.otf path for outline):" if
                  kind == "outline" else f"[bold]{kind}[/bold] fonts (data.glyphs: {kind}, the default):")
        out.print("  " + ", ".join(names), highlight=False)
