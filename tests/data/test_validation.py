"""data/validation.py: the validation images are held out of the training images (by data.seed, stratified,
disjoint from the training and test images), or read from an image folder's val/."""

import pytest
import torch

from invariance_lab.config.load import load_config, parse_config
from invariance_lab.core.errors import ConfigError
from invariance_lab.data.datasets import evaluation_set, glyph_table, training_set
from invariance_lab.data.folder import folder_split
from invariance_lab.data.write import write_folder
from invariance_lab.data.validation import held_out, validation_split


def test_held_out_is_stratified_seeded_and_disjoint():
    labels = torch.arange(50) % 2
    kept, out = held_out(labels, 0.2, seed=0)
    assert sorted(kept.tolist() + out.tolist()) == list(range(50))  # every image once, on one side
    assert torch.bincount(labels[out]).tolist() == [5, 5]  # round(25 * 0.2) of each class
    assert torch.equal(held_out(labels, 0.2, seed=0)[1], out)  # the same split every time: every model and seed
    assert not torch.equal(held_out(labels, 0.2, seed=1)[1], out)  # another data.seed, another split


def _rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) for img in x}


def test_letters_validation_images_are_neither_trained_on_nor_tested(quick_config_path):
    cfg = load_config(quick_config_path, overrides=["data.val_fraction=0.25", "data.train_images=80",
                                                    "data.test_images=20"])
    table = glyph_table(cfg.data)
    all_x, all_y = training_set(cfg.data, table)
    train_x, train_y, (val_x, val_y) = validation_split(cfg.data, all_x, all_y)
    assert (len(train_x), len(val_x)) == (60, 20) and torch.bincount(val_y).tolist() == [10, 10]
    test_x, _ = evaluation_set(cfg.data, table)
    assert len(_rows(val_x)) == 20 and not _rows(val_x) & _rows(train_x) and not _rows(val_x) & _rows(test_x)
    assert _rows(val_x) | _rows(train_x) == _rows(all_x)  # held out of the training images, nothing else
    same, _, none = validation_split(load_config(quick_config_path).data, all_x, all_y)
    assert same is all_x and none is None  # no val_fraction: the training set exactly as before


def _images(n, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 12, 12, generator=g) * 255).round() / 255


def test_an_image_folder_val_folder_is_the_validation_set(tmp_path):
    for split, seed in [("train", 0), ("test", 1)]:
        write_folder(_images(8, seed), tmp_path / "imgs" / split, torch.arange(8) % 2, ["a", "b"])
    config = {"data": {"source": "folder", "path": str(tmp_path / "imgs"), "canvas": 12},
              "train": {"select": "best_val"}, "models": {"g": {"arch": "conv_gap"}}}
    with pytest.raises(ConfigError, match=r"\[train.select\].*needs a validation set"):
        parse_config(config)
    before = folder_split(parse_config({**config, "train": {}}).data).digest
    write_folder(_images(6, 2), tmp_path / "imgs" / "val", torch.arange(6) % 2, ["a", "b"])
    cfg = parse_config(config)
    split = folder_split(cfg.data)
    assert split.val.n == 6 and split.digest != before  # the val/ images are part of the fingerprint
    x, y = training_set(cfg.data, None)
    train_x, _, (val_x, val_y) = validation_split(cfg.data, x, y)
    assert train_x is x and len(val_x) == 6 and torch.bincount(val_y).tolist() == [3, 3]  # all training kept
    with pytest.raises(ConfigError, match=r"\[data.val_fraction\].*has a val/ folder"):
        parse_config({**config, "data": {**config["data"], "val_fraction": 0.2}})


def test_held_out_holds_out_at_least_one_and_keeps_at_least_one_image_of_every_class():
    """Catches the bounds on the held-out count removed: a small fraction held out nothing of a class, a large one
    held out every training image of a class."""
    labels = torch.tensor([0, 0, 0, 0, 1, 1])
    for fraction in (0.01, 0.9):
        kept, out = held_out(labels, fraction, seed=0)
        assert torch.bincount(labels[out], minlength=2).tolist() == ([1, 1] if fraction < 0.5 else [3, 1])
        assert torch.bincount(labels[kept], minlength=2).min() >= 1


def test_a_split_that_holds_out_nothing_is_refused():
    """Catches the empty-validation-set check removed: one image per class left best_val with no images."""
    from types import SimpleNamespace

    from invariance_lab.core.errors import DataError

    data = SimpleNamespace(val_fraction=0.5, seed=0, source="letters")
    with pytest.raises(DataError, match="holds out no image"):
        validation_split(data, torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))
