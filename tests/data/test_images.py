"""images.py: image folders (the ImageFolder layout), every bad file refused by name, read a batch at a time."""

import pytest
import torch
from PIL import Image

from invariance_lab.core.errors import InvlabError
from invariance_lab.data.images import from_tensor, open_folder, write_folder


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
    (lambda d: ((d / "a").mkdir(), write_folder(images(1), d)), "both files .* and subfolders"),
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
