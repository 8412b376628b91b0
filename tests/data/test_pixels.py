"""pixels.py: every Pillow mode read as what it holds (16-bit scaled, transparency composited on black)."""

import numpy as np
import pytest
from PIL import Image

from invariance_lab.data.pixels import image_array


def _glyph_in_alpha(mode: str) -> Image.Image:
    im = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    im.paste((0, 0, 0, 255), (2, 2, 6, 6))  # black ink, opaque where drawn
    return im.convert(mode) if mode != "RGBA" else im


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_ink_held_in_alpha_reads_as_alpha_in_every_mode(mode):
    for colour in ("L", "RGB"):
        a = image_array(_glyph_in_alpha(mode), colour, None)
        grey = a if colour == "L" else a[..., 0]
        assert grey[2:6, 2:6].min() == 1 and grey.sum() == 16  # the square, light on black; nothing else


def test_sixteen_bit_modes_divide_by_the_16_bit_range_and_resize_on_floats():
    values = np.array([[0, 32768], [65535, 1000]], dtype=np.uint16)
    a = image_array(Image.fromarray(values), "L", None)
    assert np.allclose(a, values / 65535, atol=1e-7)
    big = image_array(Image.fromarray(np.full((4, 4), 30000, np.uint16)), "RGB", (2, 2))
    assert big.shape == (2, 2, 3) and np.allclose(big, 30000 / 65535, atol=1e-6)


def test_eight_bit_modes_are_read_as_pillow_converts_them():
    im = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert np.array_equal(image_array(im, "L", None), np.asarray(im, dtype=np.float32) / 255)


def _three_colours_half_seen() -> Image.Image:
    """Opaque red, green at half alpha, transparent blue: colours that differ, so not a picture held in alpha."""
    rgba = np.array([[[255, 0, 0, 255], [0, 255, 0, 128], [0, 0, 255, 0]]], dtype=np.uint8)
    return Image.fromarray(rgba, "RGBA")


def test_transparent_colours_are_composited_over_black():
    """Catches the compositing dropped: a half-transparent or invisible pixel read as its full colour."""
    a = image_array(_three_colours_half_seen(), "RGB", None)
    assert np.allclose(a[0], [[1, 0, 0], [0, 128 / 255, 0], [0, 0, 0]], atol=1e-6)


def test_transparent_colours_read_as_grey_with_pillows_weights():
    """Catches the grey of a composited image taken as the channels' plain mean, not ITU-R 601-2 as Pillow's L."""
    a = image_array(_three_colours_half_seen(), "L", None)
    assert np.allclose(a[0], [0.299, 0.587 * 128 / 255, 0.0], atol=1e-6)
