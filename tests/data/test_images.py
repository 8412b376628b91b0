"""images.py: image folders (the ImageFolder layout), every bad file refused by name, read a batch at a time."""

import pytest
import torch
from PIL import Image

from invariance_lab.core.errors import DataError, InvlabError
from invariance_lab.data.images import from_tensor, image_size, open_folder, relabel
from invariance_lab.data.write import write_folder


def images(n=6, c=1, side=8, seed=0):
    """n images whose pixels are multiples of 1/255: an 8-bit PNG keeps them exactly."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, side, side), generator=g).float() / 255


def test_class_subfolders_give_labels_and_a_flat_folder_none(tmp_path):
    x, y = images(6), torch.tensor([1, 0, 1, 1, 0, 1])
    write_folder(x, tmp_path / "lab", y, ["cat", "dog"])
    src = open_folder(tmp_path / "lab")
    assert src.classes == ["cat", "dog"] and len(src) == 6 and src.shape == (1, 8, 8)
    assert sorted(src.labels.tolist()) == sorted(y.tolist())
    batch = src(slice(0, 6))
    for img, label in zip(batch, src.labels):  # every image read back exactly, under its own class
        assert any(torch.equal(img, x[i]) for i in range(6) if y[i] == label)
    write_folder(x[:3], tmp_path / "flat")
    (tmp_path / "flat" / ".DS_Store").write_text("skipped: a hidden name")
    flat = open_folder(tmp_path / "flat")
    assert flat.labels is None and flat.classes is None and torch.equal(flat(slice(0, 3)), x[:3])


def test_rgb_and_resizing(tmp_path):
    write_folder(images(2, c=3), tmp_path / "rgb")
    assert open_folder(tmp_path / "rgb", colour="rgb")(slice(0, 2)).shape == (2, 3, 8, 8)
    assert open_folder(tmp_path / "rgb", colour="grey")(slice(0, 2)).shape == (2, 1, 8, 8)
    Image.new("L", (5, 7)).save(tmp_path / "rgb" / "small.png")
    with pytest.raises(InvlabError, match=r"differ in size: .* is 8 x 8 px, .*small.png is 5 x 7.*--size"):
        open_folder(tmp_path / "rgb")
    assert open_folder(tmp_path / "rgb", size=(16, 12))(slice(0, 3)).shape == (3, 1, 16, 12)
    with pytest.raises(InvlabError, match="unknown colour 'RGB'"):
        open_folder(tmp_path / "rgb", colour="RGB")


@pytest.mark.parametrize("make, needle", [
    (lambda d: None, "holds no images"),
    (lambda d: (d / "notes.txt").write_text("hi"), "notes.txt is not a PNG or JPEG image"),
    (lambda d: (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really"), "broken.png is not a readable image"),
    (lambda d: Image.new("L", (4, 4)).save(d / "anim.png", format="GIF"), "anim.png holds a GIF image"),
    (lambda d: ((d / "a").mkdir(), (d / "b").mkdir(), write_folder(images(1), d / "a")), "class folder .*b holds no images"),
    (lambda d: ((d / "a" / "deeper").mkdir(parents=True),), "a folder inside class folder"),
    (lambda d: ((d / "a").mkdir(), Image.new("L", (4, 4)).save(d / "x.png")), "both files .* and subfolders"),
])
def test_bad_folders_are_refused_by_name(tmp_path, make, needle):
    folder = tmp_path / "imgs"
    folder.mkdir()
    make(folder)
    with pytest.raises(InvlabError, match=needle):
        open_folder(folder)


def test_missing_folder_and_reading_a_batch_once(tmp_path):
    with pytest.raises(InvlabError, match="no such folder"):
        open_folder(tmp_path / "nope")
    write_folder(images(4), tmp_path / "f")
    src = open_folder(tmp_path / "f")
    a = src(slice(0, 2))
    assert src(slice(0, 2)) is a  # the layer profile asks for one batch at every shift: decoded once
    assert src(slice(2, 4)) is not a


def test_tensors_and_labels():
    src = from_tensor(torch.zeros(3, 8, 8), [0, 1, 1])
    assert src.shape == (1, 8, 8) and src.labels.tolist() == [0, 1, 1]
    with pytest.raises(InvlabError, match="2 labels for 3 images"):
        from_tensor(torch.zeros(3, 8, 8), [0, 1])
    with pytest.raises(InvlabError, match=r"\(N, C, H, W\)"):
        from_tensor(torch.zeros(8))


def test_the_layouts_numpy_pil_and_datasets_give_are_taken_or_named():
    """Each was a raw ValueError, a message about shifts ("moves the whole 1 px image out of its frame") or a
    wrong count ("18 labels for 6 images")."""
    listed = from_tensor(list(images(4, c=3)), [0, 1, 0, 1])  # a list of (C, H, W) images, as a dataset gives
    assert listed.shape == (3, 8, 8) and torch.equal(listed(slice(0, 4)), images(4, c=3))
    with pytest.raises(InvlabError, match=r"a list of images of one shape; got list"):
        from_tensor([torch.zeros(1, 8, 8), torch.zeros(1, 9, 9)])
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3)
    with pytest.raises(InvlabError, match=r"shape \(N,\); got shape \(6, 3\) \(one-hot .*argmax\(1\)"):
        from_tensor(images(6), one_hot)
    assert from_tensor(images(6), one_hot.argmax(1)[:, None]).labels.tolist() == [0, 1, 2, 0, 1, 2]  # (N, 1)
    with pytest.raises(InvlabError, match=r"got shape \(1, 3\) \(one-hot"):  # one image: "3 labels for 1 images"
        from_tensor(images(1), one_hot[:1])


def test_a_size_is_n_hxw_or_a_pair_in_python_as_on_the_command_line(tmp_path):
    assert image_size(16) == image_size("16") == (16, 16) and image_size("12x20") == image_size([12, 20]) == (12, 20)
    for bad in ("16px", "0", "12x", (12, 20, 3), 4097, 2.5, True, "1x2x3"):
        with pytest.raises(InvlabError, match=r"size .*: expected N or HxW in px, each 1 .. 4096, e.g. 32, "):
            image_size(bad)
    with pytest.raises(InvlabError, match=r"--size '16px': .* e.g. --size 32 or --size 224x224$"):  # typed as such
        image_size("16px", "--size")
    write_folder(images(2), tmp_path / "f")
    assert open_folder(tmp_path / "f", size="12x20")(slice(0, 2)).shape == (2, 1, 12, 20)


def test_uint8_pixels_are_scaled_as_image_files_are_and_other_integers_refused():
    pixels = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(from_tensor(pixels).tensor, pixels.float() / 255)
    assert torch.equal(from_tensor(pixels > 127).tensor, (pixels > 127).float())
    with pytest.raises(InvlabError, match="images of dtype int64: give float pixels"):
        from_tensor(pixels.long())


# -------------------------------------------------------------------------------------- pixels read as what they are
def _one(tmp_path, save, name="x.png", colour="grey", size=None):
    """Writes one image with `save(path)` into a fresh folder and reads it back: (C, H, W) floats."""
    folder = tmp_path / "one"
    folder.mkdir()
    save(folder / name)
    return open_folder(folder, colour=colour, size=size)(slice(0, 1))[0]


def test_a_16_bit_png_is_scaled_by_its_range_not_clipped(tmp_path):
    import numpy as np

    ramp = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    x = _one(tmp_path, lambda p: Image.fromarray(ramp).save(p))
    assert Image.open(tmp_path / "one" / "x.png").mode in ("I;16", "I")
    assert torch.allclose(x[0], torch.from_numpy(ramp.astype("float32") / 65535), atol=1e-6)
    assert (x == 1).float().mean() < 0.01  # clipped at 255 it was 99% ones
    rgb = open_folder(tmp_path / "one", colour="rgb", size=(16, 16))(slice(0, 1))[0]
    assert rgb.shape == (3, 16, 16) and torch.equal(rgb[0], rgb[2]) and 0.4 < rgb.mean() < 0.6


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_a_picture_held_in_alpha_is_read_as_ink_equal_to_alpha(tmp_path, mode):
    # black ink drawn in alpha over a transparent background: read as the drawing (ink = alpha, light on black)
    im = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    im.paste((0, 0, 0, 255), (4, 4, 12, 12))
    im.paste((0, 0, 0, 128), (0, 0, 2, 2))
    # P: a palette PNG with a transparent entry (what Pillow reads as P plus "transparency", or PA)
    x = _one(tmp_path, lambda p: (im if mode == "RGBA" else im.convert(mode)).save(p))[0]
    assert x[4:12, 4:12].eq(1).all() and x[0, 0] == pytest.approx(128 / 255, abs=1 / 255)
    assert x[14:, 14:].eq(0).all() and x.sum() > 60  # not blank


def test_coloured_pixels_over_transparency_are_composited_on_black(tmp_path):
    im = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (0, 0, 4, 8))
    im.paste((0, 0, 255, 255), (4, 0, 8, 4))  # two colours: the colours are the picture, alpha the coverage
    x = _one(tmp_path, lambda p: im.save(p), colour="rgb")
    assert x[:, 0, 0].tolist() == [1, 0, 0] and x[:, 0, 7].tolist() == [0, 0, 1] and x[:, 7, 7].tolist() == [0, 0, 0]


@pytest.mark.parametrize("make, name, grey", [
    (lambda: Image.new("P", (8, 8), 3), "p.png", None),  # palette: its colours, not its indices
    (lambda: Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "c.jpg", 1.0),  # no ink in CMYK: white
    (lambda: Image.new("LA", (8, 8), (200, 255)), "la.png", 200 / 255),  # opaque grey with alpha: its grey
])
def test_palette_cmyk_and_la_images_read_as_their_colours(tmp_path, make, name, grey):
    im = make()
    if im.mode == "P":
        im.putpalette([0, 0, 0] * 3 + [255, 255, 255] + [0, 0, 0] * 252)
        grey = 1.0
    x = _one(tmp_path, lambda p: im.save(p), name=name)
    assert torch.allclose(x, torch.full_like(x, grey), atol=1.5 / 255)


def test_multi_frame_images_are_refused_by_name(tmp_path):
    frames = [Image.new("L", (8, 8), v) for v in (0, 255)]
    with pytest.raises(DataError, match=r"apng\.png holds 2 frames"):
        _one(tmp_path, lambda p: frames[0].save(p, save_all=True, append_images=frames[1:]), name="apng.png")


def test_a_fifo_named_png_is_refused_without_opening_it(tmp_path):
    import os

    folder = tmp_path / "f"
    folder.mkdir()
    Image.new("L", (8, 8)).save(folder / "a.png")
    os.mkfifo(folder / "b.png")  # opening it for reading would wait for a writer forever
    with pytest.raises(DataError, match=r"b\.png is a FIFO \(named pipe\), not an image file"):
        open_folder(folder)


def test_a_fifo_swapped_in_after_the_check_is_refused_when_read(tmp_path):
    import os

    folder = tmp_path / "f"
    folder.mkdir()
    Image.new("L", (8, 8)).save(folder / "a.png")
    images = open_folder(folder)
    (folder / "a.png").unlink()
    os.mkfifo(folder / "a.png")
    with pytest.raises(DataError, match="FIFO"):
        images(slice(0, 1))


def test_the_pixel_limit_is_invlabs_own_and_checked_on_the_header(tmp_path, monkeypatch):
    import invariance_lab.data.images as images_module

    before = Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(images_module, "MAX_PIXELS", 63)  # an 8 x 8 image has 64 pixels
    with pytest.raises(DataError, match="x.png is 8 x 8 px"):
        _one(tmp_path, lambda p: Image.new("L", (8, 8)).save(p))
    assert Image.MAX_IMAGE_PIXELS == before  # Pillow's global is left as it was


def test_relabel_gives_each_class_folder_the_models_output_index(tmp_path):
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    folder = write_folder(x, tmp_path / "f", torch.tensor([0, 1, 1, 0]), ["cat", "dog"])
    src = open_folder(folder)
    relabel(src, {"dog": 207, "cat": 281})
    assert src.labels.tolist() == [281, 281, 207, 207] and src.classes is None  # read folder by folder: cat, dog
    for mapping, words in [({"cat": 1}, r"\['dog'\] not named"),
                           ({"cat": 1, "dog": 2, "cow": 3}, r"no folder \['cow'\]"),
                           ({"cat": 1, "dog": 1}, "distinct whole numbers"), ({"cat": -1, "dog": 2}, "distinct whole")]:
        with pytest.raises(DataError, match=words):
            relabel(open_folder(folder), mapping)
    with pytest.raises(DataError, match="has no class folders"):
        relabel(open_folder(write_folder(x, tmp_path / "flat")), {"cat": 1})


@pytest.mark.parametrize("side", [(10000, 9000), (30000, 30000)])
def test_a_picture_past_pillows_own_limits_gets_invlabs_words_not_pillows_warning(tmp_path, side, recwarn):
    """Over Image.MAX_IMAGE_PIXELS Pillow warned (printing its source line) before invlab's refusal, and over twice
    that raised its DecompressionBombError ("could be decompression bomb DOS attack") in place of it."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    w, h = side
    folder = tmp_path / "imgs"
    folder.mkdir()
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))  # the pixels are never decoded
    (folder / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                                     + chunk(b"IEND", b""))
    with pytest.raises(InvlabError, match="big.png is .*images of at most 4096 px a side are read"):
        open_folder(folder)
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]
