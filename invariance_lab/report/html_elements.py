"""The HTML page's building blocks: escaped text, `command` quotes set as code, and pictures embedded as data:
URIs, so the page needs no other file.

    f"<p>{text_html('run `invlab sweep RUN --layers` first')}</p>"
    image(png, "image/png", "flip rate against dx", size=pixel_size(png))
"""

from __future__ import annotations

import base64
import html
import re
from io import BytesIO

from PIL import Image


def e(text) -> str:
    return html.escape(str(text), quote=True)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image(data: bytes, mime: str, alt: str, cls: str = "", size: tuple[int, int] | None = None,
          attrs: dict[str, str] | None = None) -> str:
    """An <img> whose picture is inside the page; width and height let the browser lay out before decoding.
    `attrs`: more attributes (style, data-*), escaped."""
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    klass = f' class="{cls}"' if cls else ""
    more = "".join(f' {k}="{e(v)}"' for k, v in (attrs or {}).items())
    return f'<img{klass} src="{data_uri(data, mime)}" alt="{e(alt)}"{dims}{more}>'


def pixel_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG or GIF."""
    with Image.open(BytesIO(data)) as im:
        return im.size


def text_html(text: str) -> str:
    """Escaped text, with display.py's `command` quotes set as code."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", e(text))
