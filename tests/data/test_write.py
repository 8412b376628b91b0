"""write_folder (data/write.py): images saved as PNGs that open_folder reads back exactly, into a folder of its own;
names, labels and pixels it cannot write as given are a DataError before any file is written."""

import pytest
import torch

from invariance_lab.core.errors import DataError
from invariance_lab.data.images import open_folder
from invariance_lab.data.write import write_folder


def pixels(n=4, c=1, seed=0):
    return (torch.rand(n, c, 6, 5, generator=torch.Generator().manual_seed(seed)) * 255).round() / 255


def test_float_and_uint8_pixels_are_read_back_exactly_with_their_labels(tmp_path):
    x, y = pixels(4, 3), torch.tensor([1, 0, 1, 1])
    back = open_folder(write_folder(x, tmp_path / "f", y, ["cat", "dog"]), colour="rgb")
    order = torch.tensor([1, 0, 2, 3])  # read class by class: cat's image first
    assert back.classes == ["cat", "dog"] and torch.equal(back.labels, y[order])
    assert torch.equal(back(slice(0, 4)), x[order])
    as_bytes = (x * 255).round().to(torch.uint8)  # uint8 pixels as they are (had been clamped to 0 or 1)
    assert torch.equal(open_folder(write_folder(as_bytes, tmp_path / "u"), colour="rgb")(slice(0, 4)), x)


@pytest.mark.parametrize("labels, classes, needle", [
    ([0, 1], ["A", "../escaped"], "no '/'"),  # had been written outside the folder
    ([0, 1], ["A", ".."], "no '/'"),
    ([0, 1], ["A", "A"], "distinct names"),
    ([0, 2], ["A", "B"], "3 at least for these labels"),
    ([0, 1], "AB", "got 'AB'"),
    ([0], None, "4 images, got 1 labels"),
    ([0, -1, 0, 0], None, "a negative one"),
    (["a", "b", "a", "b"], None, "one class index per image"),
])
def test_labels_and_class_names_it_cannot_write_are_refused_before_any_file(tmp_path, labels, classes, needle):
    labels = labels if len(labels) == 4 or classes is None else labels * 2
    with pytest.raises(DataError) as e:
        write_folder(pixels(), tmp_path / "f", labels, classes)
    assert needle in str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value, needle", [(float("nan"), "NaN or infinite"), (1.5, "to 1.5"), (-0.2, "from -0.2")])
def test_pixels_outside_0_1_are_refused_not_clipped(tmp_path, value, needle):
    x = pixels()
    x[0, 0, 0, 0] = value
    with pytest.raises(DataError, match=needle):
        write_folder(x, tmp_path / "f")
    write_folder(pixels() + 1e-7, tmp_path / "g")  # round-off past 1 is clamped


def test_a_folder_that_holds_files_a_file_or_a_link_is_refused_and_left_as_it_was(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "00000.png").write_bytes(b"someone else's")
    with pytest.raises(DataError, match="holds files already; give a new or empty folder"):
        write_folder(pixels(), used)
    assert [p.name for p in used.iterdir()] == ["00000.png"] and (used / "00000.png").read_bytes() == b"someone else's"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="file is a file"):
        write_folder(pixels(), tmp_path / "file")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(DataError, match="link is a link"):
        write_folder(pixels(), tmp_path / "link")
    assert list((tmp_path / "empty").iterdir()) == []
    assert len(list(write_folder(pixels(), tmp_path / "empty").iterdir())) == 4  # an empty folder is taken
