"""data.source: folder — your own images as the data set (data/folder.py)."""

import json
import os
import re
import shutil
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError, DataError
from invariance_lab.config.load import parse_config
from invariance_lab.data.datasets import class_names, evaluation_set, glyph_table, training_set
from invariance_lab.data.folder import folder_split, read_pixels, to_float
from invariance_lab.data.write import write_folder
from invariance_lab.nn.models import build_model
from invariance_lab.data.shifts import sweep_inputs
from invariance_lab.data.transforms import translate_image

runner = CliRunner()


def _images(n: int, channels: int = 1, side: int = 20, seed: int = 0) -> torch.Tensor:
    """n random blobs, 8-bit exact (k / 255), so a PNG round trip gives the same floats."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, channels, side, side, generator=g) * 255).round() / 255


@pytest.fixture
def folder(tmp_path):
    """Three classes of 10 grey 20 x 20 images each, in DIR/<class>/<image>."""
    x = _images(30)
    write_folder(x, tmp_path / "imgs", torch.arange(30) % 3, ["cat", "dog", "owl"])
    return tmp_path / "imgs"


def _data(path, **extra):
    return {"source": "folder", "path": str(path), "canvas": 20, **extra}


def _cfg(path, **data):
    return parse_config({"data": _data(path, **data), "models": {"g": {"arch": "conv_gap"}}})


def test_random_split_is_stratified_seeded_and_disjoint(folder):
    cfg = _cfg(folder)
    split = folder_split(cfg.data)
    assert split.classes == ("cat", "dog", "owl") and not split.given
    assert (split.train.n, split.test.n) == (24, 6)  # round(10 * 0.2) = 2 test images per class
    assert torch.bincount(split.test.labels).tolist() == [2, 2, 2]
    assert not set(split.train.files) & set(split.test.files)
    assert cfg.data.train_images == 24 and cfg.data.test_images == 6  # the folder decides, and the config says so
    other = folder_split(_cfg(folder, seed=1).data)
    assert set(other.test.files) != set(split.test.files)  # the split follows data.seed
    assert class_names(cfg.data) == ["cat", "dog", "owl"]


def test_given_train_test_split_is_used_as_is(tmp_path):
    write_folder(_images(6), tmp_path / "d" / "train", torch.tensor([0, 1] * 3), ["a", "b"])
    write_folder(_images(4, seed=1), tmp_path / "d" / "test", torch.tensor([0, 1] * 2), ["a", "b"])
    split = folder_split(_cfg(tmp_path / "d").data)
    assert split.given and (split.train.n, split.test.n) == (6, 4)
    x, y = evaluation_set(_cfg(tmp_path / "d").data, None)
    # the test split is test/ as written, in folder order (a/0, a/2, b/1, b/3), 8-bit exact
    assert x.dtype == torch.uint8 and torch.equal(to_float(x), _images(4, seed=1)[[0, 2, 1, 3]])
    assert y.tolist() == [0, 0, 1, 1]


def test_pixels_are_the_files_exactly_and_rgb_has_three_channels(tmp_path):
    x = _images(4, channels=3)
    write_folder(x, tmp_path / "c", torch.tensor([0, 1, 0, 1]), ["p", "q"])
    cfg = _cfg(tmp_path / "c", colour="rgb", test_fraction=0.5)
    split = folder_split(cfg.data)
    pixels = read_pixels(split.train)
    assert pixels.dtype == torch.uint8 and pixels.shape == (2, 3, 20, 20)
    order = [int(f.stem) for f in split.train.files]
    assert torch.equal(to_float(pixels), x[order])  # 8-bit exact: no resampling at the canvas size


def test_images_are_resized_to_the_canvas(folder):
    x, _ = training_set(_cfg(folder, canvas=16).data, None)
    assert x.shape[1:] == (1, 16, 16)


def test_train_shift_moves_each_training_image_by_its_own_offset(folder):
    plain, _ = training_set(_cfg(folder).data, None)
    moved, _ = training_set(_cfg(folder, train_shift=3, train_mode="circular").data, None)
    assert not torch.equal(plain, moved)
    for a, b in zip(plain, moved):  # every image is a roll of its unshifted self by at most 3 px
        assert any(torch.equal(torch.roll(a, (dy, dx), (-2, -1)), b) for dx in range(-3, 4) for dy in range(-3, 4))


@pytest.mark.parametrize("data, key, says", [
    (dict(fonts=["futural"]), "fonts", "describes drawn letters"),
    (dict(letters=["A", "B"]), "letters", "describes drawn letters"),
    (dict(task="position"), "task", "task: letter"),
    (dict(train_images=5), "train_images", "the folder decides"),
    (dict(path="/no/such/folder"), "path", "no such folder"),
])
def test_bad_folder_configs_name_the_key(folder, data, key, says):
    with pytest.raises(ConfigError) as e:
        parse_config({"data": {**_data(folder), **data}, "sweep": {"mode": "circular"}})
    assert f"data.{key}" in str(e.value) and says in str(e.value)


def test_folder_keys_without_source_folder_are_refused():
    with pytest.raises(ConfigError, match=r"data.path.*belongs to source: folder"):
        parse_config({"data": {"path": "x"}})
    with pytest.raises(ConfigError, match=r"data.path.*needs data.path"):
        parse_config({"data": {"source": "folder"}})


@pytest.mark.parametrize("damage, says", [
    ("corrupt", "is not a readable image (no image format Pillow knows)"),
    ("text", "is not a PNG or JPEG image"),
    ("empty_class", "holds no images"),
    ("one_image", "needs at least two per class"),
    ("flat", "no class subfolders"),
])
def test_bad_files_are_named(tmp_path, folder, damage, says):
    d = tmp_path / "bad"
    shutil.copytree(folder, d)
    if damage == "corrupt":
        victim = next((d / "cat").iterdir())
        victim.write_bytes(victim.read_bytes()[:40])
    elif damage == "text":
        victim = d / "dog" / "notes.txt"
        victim.write_text("hello")
    elif damage == "empty_class":
        victim = d / "emu"
        victim.mkdir()
    elif damage == "one_image":
        victim = d / "emu"
        victim.mkdir()
        Image.fromarray(np.zeros((20, 20), np.uint8)).save(victim / "0.png")
    else:
        shutil.rmtree(d)
        write_folder(_images(3), d)
        victim = d
    with pytest.raises(ConfigError) as e:
        _cfg(d)
    assert says in str(e.value) and str(victim) in str(e.value)


def test_a_png_whose_pixels_do_not_fit_its_header_is_named_when_decoded(folder, tmp_path):
    """Pillow's verify reads chunks and checksums, not pixels: a PNG whose header says 64 x 64 over 20 x 20 pixels
    (checksums recomputed) passes the config's check and is refused, by name, where the images are decoded."""
    victim = next((folder / "cat").iterdir())
    raw = victim.read_bytes()
    header = struct.pack(">II", 64, 64) + raw[24:29]  # IHDR: width, height, then depth, colour type, ...
    victim.write_bytes(raw[:8] + struct.pack(">I", 13) + b"IHDR" + header
                       + struct.pack(">I", zlib.crc32(b"IHDR" + header)) + raw[33:])
    cfg = _cfg(folder)  # verify passes it (docs/bad_inputs.md says where it stops)
    with pytest.raises(DataError, match=rf"{re.escape(str(victim))}: cannot read this image .*remove or replace it"):
        training_set(cfg.data, glyph_table(cfg.data))


@pytest.mark.parametrize("where", ["class", "file"])
def test_a_name_that_is_not_utf8_is_refused_naming_it(folder, where):
    """A folder or file named in another system's encoding gave "[data] 'utf-8' codec can't encode character
    '\\udcff' in position 1: surrogates not allowed", naming neither."""
    odd = os.fsdecode(b"dog\xff") if where == "class" else os.fsdecode(b"0\xfe.png")
    if where == "class":
        (folder / "dog").rename(folder / odd)
    else:
        shutil.copy(next((folder / "dog").iterdir()), folder / "dog" / odd)
    with pytest.raises(ConfigError, match=r"\[data.path\] .*: the name '(dog\\xff|0\\xfe.png)' is not UTF-8"):
        _cfg(folder)


def test_circular_stride_one_global_pool_net_is_exactly_invariant_on_folder_images(folder):
    cfg = _cfg(folder)
    inputs, labels = sweep_inputs(cfg.data, cfg.sweep.model_copy(update=dict(mode="circular")))
    net = build_model(dict(channels=[4, 4], kernel=3, padding="circular", downsample="none", head="global_avg",
                           blur_size=1), num_classes=3, canvas=20).double().eval()
    with torch.no_grad():
        ref = net(inputs(slice(None), 0, 0).double())
        for dx, dy in [(1, 0), (0, 7), (-5, 3), (19, 19)]:
            assert torch.allclose(net(inputs(slice(None), dx, dy).double()), ref, rtol=0, atol=1e-12)


def test_canvas_sweep_translates_the_image_with_the_fill(folder):
    cfg = _cfg(folder, fill="edge")
    inputs, _ = sweep_inputs(cfg.data, cfg.sweep)
    ref = inputs(slice(0, 3), 0, 0)
    assert torch.equal(inputs(slice(0, 3), 2, -1), translate_image(ref, 2, -1, "edge"))
    assert torch.equal(inputs(slice(0, 3), 2, 0)[..., :2], ref[..., :1].expand(-1, -1, -1, 2))  # edge fill


def test_a_folder_trains_and_sweeps_end_to_end_and_a_changed_folder_is_refused(folder, tmp_path, one_thread):
    config = tmp_path / "f.yaml"
    config.write_text(yaml.safe_dump({
        "name": "fold", "seeds": [0], "data": _data(folder),
        "models": {"gap": {"arch": "conv_gap", "padding": "circular", "channels": [4]}},
        "train": {"epochs": 1}, "sweep": {"mode": "circular", "dx": [-2, 2], "dy": [0, 0]}}))
    res = runner.invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "r" / "fold").iterdir()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["classes"] == ["cat", "dog", "owl"] and meta["protocol"]["fill"] == "zeros"
    summary = pd.read_csv(run / "summary.csv")
    assert summary.n_classes.tolist() == [3] and summary.mean_flip_rate.tolist() == [0.0]
    res = runner.invoke(app, ["sweep", str(run), "--mode", "canvas", "--dx", "-1.5:1.5:0.5", "--quiet"])
    assert res.exit_code == 0, res.output
    # the folder changes: the run's models were trained on other images, so sweeping it is refused
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(folder / "owl" / "extra.png")
    res = runner.invoke(app, ["sweep", str(run), "--quiet"])
    assert res.exit_code == 2 and "folder_digest" in res.output and "changed" in res.output
    assert "Traceback" not in res.output


def test_rgb_folder_trains_a_three_channel_network(tmp_path, one_thread):
    write_folder(_images(8, channels=3), tmp_path / "c", torch.arange(8) % 2, ["p", "q"])
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "name": "rgb", "data": _data(tmp_path / "c", colour="rgb", test_fraction=0.25),
        "models": {"m": {"arch": "conv_maxpool", "channels": [4]}}, "train": {"epochs": 1},
        "sweep": {"dx": [-1, 1], "dy": [0, 0]}}))
    res = runner.invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "r" / "rgb").iterdir()
    state = torch.load(next((run / "checkpoints").iterdir()), weights_only=True)["state_dict"]
    assert next(v for k, v in state.items() if k.endswith("weight")).shape[1] == 3


def test_config_of_letters_is_unchanged():
    d = parse_config({}).model_dump(mode="json")["data"]
    assert not {"source", "path", "colour", "test_fraction", "fill", "folder_digest"} & set(d)
    assert glyph_table(parse_config({}).data) is not None


def test_splits_with_different_classes_are_refused(tmp_path):
    write_folder(_images(4), tmp_path / "d" / "train", torch.arange(4) % 2, ["cat", "dog"])
    write_folder(_images(4), tmp_path / "d" / "test", torch.arange(4) % 2, ["cat", "owl"])
    with pytest.raises(ConfigError, match=r"\[data.path\].*hold different classes \(\['dog', 'owl'\] in only one\)"):
        _cfg(tmp_path / "d")


def test_part_displacement_refuses_folders(folder):
    from invariance_lab.core.errors import InvlabError

    cfg = _cfg(folder)
    with pytest.raises(InvlabError, match="--kind parts moves one stroke of a drawn letter"):
        sweep_inputs(cfg.data, cfg.sweep, kind="parts")


def test_a_folder_that_cannot_be_read_is_named(folder, monkeypatch):
    # permissions do not stop root (these tests may run as root): the listing's OSError is raised directly
    import invariance_lab.data.folder as fd

    def refuse(*args):
        raise PermissionError(13, "Permission denied", str(folder / "cat"))

    monkeypatch.setattr(fd, "_open", refuse)
    with pytest.raises(ConfigError, match=r"\[data.path\] .*/cat cannot be read \(Permission denied\)"):
        _cfg(folder)


# ------------------------------------------------------------------------------------- changed inputs are noticed
def _two_classes_of_equal_sized_files(root):
    """cat/ all white, dog/ all black, stored uncompressed: every file has the same size."""
    for cls, value in (("cat", 255), ("dog", 0)):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((20, 20), value, np.uint8)).save(root / cls / f"{i}.png", compress_level=0)
    return root


def _swap(a, b):
    """Swaps two files as `mv` would: the names stay, the pixels change places."""
    tmp = a.with_name("swap.tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def test_swapping_two_images_of_equal_size_changes_the_digest_and_is_refused(tmp_path):
    folder = _two_classes_of_equal_sized_files(tmp_path / "d")
    cfg = _cfg(folder, test_fraction=0.34)
    recorded = cfg.data.folder_digest
    _swap(folder / "cat" / "0.png", folder / "dog" / "0.png")  # same names, sizes and labels: other pixels
    assert folder_split(_cfg(folder, test_fraction=0.34).data).digest != recorded
    with pytest.raises(ConfigError, match=r"data.folder_digest.*changed since this config was written"):
        parse_config({"data": _data(folder, test_fraction=0.34, folder_digest=recorded)})


def test_a_file_rewritten_inside_a_class_folder_is_read_anew(tmp_path):
    # the in-process cache keys on the whole tree: a class folder's file rewritten in place (the class folder's
    # own mtime does not move) is noticed
    folder = _two_classes_of_equal_sized_files(tmp_path / "d")
    before = folder_split(_cfg(folder, test_fraction=0.34).data)
    Image.fromarray(np.full((20, 20), 128, np.uint8)).save(folder / "cat" / "1.png")  # compressed: another size
    after = folder_split(_cfg(folder, test_fraction=0.34).data)
    assert after is not before and after.digest != before.digest
    changed = folder / "cat" / "1.png"
    part = after.train if changed in after.train.files else after.test
    assert read_pixels(part)[part.files.index(changed)].unique().tolist() == [128]


def test_an_unchanged_file_is_hashed_once(tmp_path, monkeypatch):
    import invariance_lab.data.digests as digests

    folder = _two_classes_of_equal_sized_files(tmp_path / "d")
    opened = []
    real_open = open
    monkeypatch.setattr(digests, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k), raising=False)
    first = [digests.file_digest(p) for p in sorted(folder.rglob("*.png"))]
    assert [digests.file_digest(p) for p in sorted(folder.rglob("*.png"))] == first and len(opened) == 6
    assert len(set(first)) == 2  # white and black files: two contents


def test_a_rotate_sweep_turns_the_folder_image_as_pixels_with_the_fill(folder):
    cfg = _cfg(folder, fill="edge")
    inputs, labels = sweep_inputs(cfg.data, cfg.sweep.model_copy(update={"transform": "rotate"}))
    reference = to_float(evaluation_set(cfg.data, glyph_table(cfg.data))[0])
    assert torch.equal(inputs(slice(0, len(labels)), 0.0), reference)
    torch.testing.assert_close(inputs(slice(0, 4), 90.0), torch.rot90(reference[:4], 1, dims=(-2, -1)), atol=1e-5,
                               rtol=0)
    turned = inputs(slice(0, 4), 45.0)
    assert (turned[..., 0, 0] > 0).all()  # the corner comes from outside: the edge fill, not zeros


def test_a_random_split_keeps_a_training_image_of_every_class_whatever_the_test_fraction(folder):
    """Catches the test share not capped at all but one image: test_fraction 0.96 of 10 sent every image of every
    class to the test side, leaving nothing to train on."""
    split = folder_split(_cfg(folder, test_fraction=0.96).data)
    assert torch.bincount(split.train.labels).tolist() == [1, 1, 1]
    assert torch.bincount(split.test.labels).tolist() == [9, 9, 9]


def test_to_bytes_rounds_to_the_nearest_level_and_round_trips_every_8_bit_value():
    """Catches truncation for rounding: k / 255 in float32 times 255 can land just under k, and became k - 1."""
    from invariance_lab.data.folder import to_bytes

    levels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_bytes(to_float(levels.clone())), levels)
    assert to_bytes(torch.tensor([0.5, 0.6 / 255, 254.6 / 255, -0.1, 1.2])).tolist() == [128, 1, 255, 0, 255]


def test_training_offsets_of_a_given_split_follow_the_data_seed(tmp_path):
    """Catches the training offsets drawn from a constant seed: with train/ and test/ given (no split to draw),
    data.seed still moves the training images."""
    write_folder(_images(6), tmp_path / "d" / "train", torch.tensor([0, 1] * 3), ["a", "b"])
    write_folder(_images(4, seed=1), tmp_path / "d" / "test", torch.tensor([0, 1] * 2), ["a", "b"])
    moved = {s: training_set(_cfg(tmp_path / "d", train_shift=2, train_mode="circular", seed=s).data, None)[0]
             for s in (0, 3)}
    assert torch.equal(moved[3], training_set(_cfg(tmp_path / "d", train_shift=2, train_mode="circular",
                                                   seed=3).data, None)[0])
    assert not torch.equal(moved[0], moved[3])
