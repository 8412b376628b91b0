"""How a decoded image becomes pixels in [0, 1]: each of Pillow's modes read as what it holds.

    with Image.open(path) as im:
        a = image_array(im, "L", (32, 32))     # float32 (32, 32) in [0, 1]; "RGB" gives (32, 32, 3)

The rules (the same for training folders and `invlab measure --images`):
- 8-bit modes (L, RGB, P, CMYK, YCbCr, 1): Pillow's own conversion to L or RGB, divided by 255 (the numbers of
  runs on 8-bit files are what they always were).
- 16-bit grey (I;16, I;16B, I;16L, and I, the mode Pillow gives 16-bit PNGs): divided by 65535, the range of 16
  bits, so 40000 reads as 0.61 rather than being clipped to 1.0.
- Transparency (LA, La, RGBA, RGBa, PA, or a palette/grey/RGB image with a transparent colour) is composited over
  black, invlab's background (letters are light ink on 0; `fill: zeros` brings 0 in at a shift): value = alpha x
  colour. A picture held in alpha alone - every pixel that is not fully transparent has one colour and some
  pixels are transparent, as a glyph or icon exported with a transparent background, usually black ink - means
  ink = alpha: value = alpha in every channel, whatever that colour is. Black ink on transparency so reads as
  the drawing (light on dark, like invlab's letters), never as a blank image.
Resizing (bilinear) happens after these rules, on floats, for the last two kinds.
"""

from __future__ import annotations

import numpy as np

SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}  # modes of 16-bit grey PNGs (I: how Pillow decodes them)
SIXTEEN_BIT_RANGE = 65535.0
ALPHA_MODES = {"LA", "La", "RGBA", "RGBa", "PA"}
ONE_COLOUR = 2 / 255  # visible pixels whose colours spread less than this share one colour (rounding in exports)
GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, what Pillow's RGB -> L conversion uses


def has_alpha(im) -> bool:
    return im.mode in ALPHA_MODES or "transparency" in im.info


def image_array(im, mode: str, size: tuple[int, int] | None):
    """float32 pixels in [0, 1] of a Pillow image: (H, W) for mode "L", (H, W, 3) for "RGB"; `size` (H, W) to
    resize to (bilinear), or None."""
    from PIL import Image  # Pillow: optional at import time (images.py says how to install it)

    if im.mode not in SIXTEEN_BIT and not has_alpha(im):  # the 8-bit path, as it always was
        im = im.convert(mode)
        if size is not None and im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.float32) / 255.0
    if im.mode in SIXTEEN_BIT:
        grey = np.clip(np.asarray(im, dtype=np.float32) / SIXTEEN_BIT_RANGE, 0.0, 1.0)
        channels = [grey] if mode == "L" else [grey] * 3
    else:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        rgb, alpha = rgba[..., :3], rgba[..., 3]
        visible = alpha > 0
        held_in_alpha = (visible.any() and (alpha < 1).any()
                         and bool((np.ptp(rgb[visible], axis=0) <= ONE_COLOUR).all()))
        rgb = np.repeat(alpha[..., None], 3, axis=2) if held_in_alpha else rgb * alpha[..., None]
        channels = [rgb @ GREY] if mode == "L" else [rgb[..., c] for c in range(3)]
    if size is not None and channels[0].shape != tuple(size):
        channels = [np.asarray(Image.fromarray(np.ascontiguousarray(c, dtype=np.float32))
                               .resize((size[1], size[0]), Image.Resampling.BILINEAR)) for c in channels]
    a = channels[0] if mode == "L" else np.stack(channels, axis=2)
    return np.clip(a, 0.0, 1.0).astype(np.float32, copy=False)
