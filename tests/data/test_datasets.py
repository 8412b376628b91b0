"""Properties of the letter data sets (invariance_lab.data.datasets): determinism, balance, placement, test-set stability."""

from __future__ import annotations

import functools
from collections import Counter

import pytest
import torch

from invariance_lab.schema.config import DataConfig
from invariance_lab.data.datasets import glyph_table, training_set
from invariance_lab.data.datasets import draw as draw_letters
from invariance_lab.data.datasets import reference_letters as make_test_letters

C = 32
BASE = dict(canvas=C, size=14, letters=["A", "B", "C"], train_images=200, test_images=60)


pytestmark = pytest.mark.usefixtures("one_thread")


def cfg(**kw) -> DataConfig:
    return DataConfig(**{**BASE, **kw})


@functools.lru_cache(maxsize=None)
def table():
    return glyph_table(cfg())


@functools.lru_cache(maxsize=None)
def train(**kw) -> tuple[torch.Tensor, torch.Tensor]:
    return training_set(cfg(**kw), table())


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    """(N, 2) intensity centre of mass (x, y) in px, pixel (i, j) having its centre at (j + 0.5, i + 0.5)."""
    w = images[:, 0].double()
    mass = w.sum(dim=(1, 2))
    pos = torch.arange(C, dtype=torch.float64) + 0.5
    x = (w.sum(1) * pos).sum(1) / mass
    y = (w.sum(2) * pos).sum(1) / mass
    return torch.stack([x, y], dim=1)


# ----------------------------------------------------------------------------------------------- determinism

def test_training_set_is_deterministic_given_the_data_seed():
    x1, y1 = training_set(cfg(), table())
    x2, y2 = training_set(cfg(), table())
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, y3 = training_set(cfg(seed=1), table())
    assert not torch.equal(x1, x3) and not torch.equal(y1, y3)


def test_training_set_ignores_the_global_torch_seed():
    """Model seeds set the global RNG (train_model calls torch.manual_seed); the data must not follow it."""
    torch.manual_seed(0)
    x1, y1 = training_set(cfg(train_shift=3), table())
    torch.manual_seed(12345)
    torch.rand(17)
    x2, y2 = training_set(cfg(train_shift=3), table())
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_images_are_in_the_unit_interval_and_have_ink():
    x, y = train()
    assert x.shape == (200, 1, C, C) and x.dtype == torch.float32 and y.shape == (200,)
    assert x.min().item() >= 0.0 and x.max().item() <= 1.0
    assert (x.sum(dim=(1, 2, 3)) > 5).all()  # every image has a letter on it


# ----------------------------------------------------------------------------------------------- balance

@pytest.mark.parametrize("n", [2, 7, 200, 201])
@pytest.mark.parametrize("letters", [["A", "B"], ["A", "B", "C"], ["K", "X", "Q", "W", "E"]])
def test_classes_are_balanced(letters, n):
    data = cfg(letters=letters, train_images=max(n, 2), test_images=n)
    labels = [training_set(data, glyph_table(data))[1], make_test_letters(data).labels]
    for y in labels:
        counts = Counter(y.tolist())
        per_class = [counts.get(k, 0) for k in range(len(letters))]
        assert sum(per_class) == len(y) and set(counts) <= set(range(len(letters)))
        assert max(per_class) - min(per_class) <= 1, per_class


def test_labels_match_the_drawn_glyphs():
    data = cfg()
    batch = make_test_letters(data)
    assert torch.equal(batch.glyph // len(data.fonts), batch.labels)  # glyph = letter * n_fonts + font
    assert set((batch.glyph % len(data.fonts)).tolist()) == set(range(len(data.fonts)))  # fonts drawn at random


# ----------------------------------------------------------------------------------------------- placement

def test_train_shift_zero_centres_the_letters():
    x, _ = train()
    offset = centre_of_mass(x) - C / 2
    assert offset.mean(0).abs().max().item() < 1.0  # on average within a pixel of the canvas centre
    assert offset.abs().mean().item() < 1.0
    assert offset.abs().max().item() < 3.0  # any one letter: its ink is not symmetric about its bbox centre


def test_train_shift_zero_is_the_same_in_both_modes():
    assert torch.equal(train()[0], train(train_mode="circular")[0])


@pytest.mark.parametrize("shift", [1, 2, 4])
def test_canvas_train_shift_spreads_the_letters_uniformly(shift):
    """The same letters (same glyph, size, stroke: drawn first from the data seed) as with train_shift 0, moved by
    an offset uniform in [-s, s] on each axis; measured as the change of the ink's centre of mass."""
    centred_x, centred_y = train()
    x, y = train(train_shift=shift)
    assert torch.equal(y, centred_y)
    offset = centre_of_mass(x) - centre_of_mass(centred_x)
    assert offset.abs().max().item() <= shift + 0.25  # within +-s (the renderer is sub-pixel accurate)
    mean_abs = offset.abs().mean(0)  # uniform on [-s, s]: E|u| = s / 2
    assert ((mean_abs > 0.4 * shift) & (mean_abs < 0.6 * shift)).all(), mean_abs
    assert offset.mean(0).abs().max().item() < 0.15 * shift  # no drift to one side
    fractional = (offset - offset.round()).abs()
    assert fractional.max().item() > 0.3  # canvas mode places letters at sub-pixel positions


@pytest.mark.parametrize("shift", [1, 3])
def test_circular_mode_images_are_whole_pixel_rolls_of_centred_letters(shift):
    centred, centred_y = train()
    x, y = train(train_mode="circular", train_shift=shift)
    assert torch.equal(y, centred_y)
    found = []
    for i in range(len(x)):
        matches = [(dx, dy) for dx in range(-shift, shift + 1) for dy in range(-shift, shift + 1)
                   if torch.equal(torch.roll(centred[i], (dy, dx), dims=(-2, -1)), x[i])]
        assert matches, f"image {i} is not a roll of its centred letter by at most {shift} px"
        found.append(matches[0])
    found = torch.tensor(found)
    # every whole-pixel offset in [-s, s] is used on each axis, and not always the same one
    for axis in range(2):
        assert set(found[:, axis].tolist()) == set(range(-shift, shift + 1))
    # a roll keeps every pixel value: the same multiset of pixels (nothing re-rendered, nothing cut)
    assert torch.equal(x.flatten(1).sort(dim=1).values, centred.flatten(1).sort(dim=1).values)


# ----------------------------------------------------------------------------------------------- test letters

def test_test_letters_are_the_same_for_every_call_and_centred():
    a, b = make_test_letters(cfg()), make_test_letters(cfg())
    for field in ("labels", "glyph", "cx", "cy", "height", "thickness"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert (a.cx == C / 2).all() and (a.cy == C / 2).all()
    images = draw_letters(table(), a, C)
    assert torch.equal(images, draw_letters(table(), b, C))
    offset = centre_of_mass(images) - C / 2
    assert offset.mean(0).abs().max().item() < 1.0 and offset.abs().max().item() < 3.0


@pytest.mark.parametrize("change", [dict(train_images=50), dict(train_images=999), dict(train_shift=4),
                                    dict(train_mode="circular", train_shift=2), dict(noise=0.3)])
def test_training_settings_do_not_change_the_test_letters(change):
    a, b = make_test_letters(cfg()), make_test_letters(cfg(**change))
    for field in ("labels", "glyph", "cx", "cy", "height", "thickness"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_test_letters_depend_on_the_data_seed_and_differ_from_the_training_letters():
    a, b = make_test_letters(cfg()), make_test_letters(cfg(seed=1))
    assert not torch.equal(a.height, b.height)
    # separate random streams: the test letters are not the first training letters
    train_x, _ = train()
    test_x = draw_letters(table(), a, C)
    assert not torch.equal(train_x[:10], test_x[:10])


# ----------------------------------------------------------------------------------------------- mutation audit
def test_test_letters_are_not_the_training_letters_when_both_sets_are_the_same_size():
    """Catches the test letters drawn from the training stream: with as many test as training images the test set
    was the training set, image for image."""
    data = cfg(train_images=12, test_images=12)
    train_x, _ = training_set(data, table())
    test_x = draw_letters(table(), make_test_letters(data), C)
    assert not any(torch.equal(train_x[i], test_x[i]) for i in range(12))


def test_a_scaled_letter_is_drawn_with_its_pen_scaled_too():
    """Catches draw(scale=s) scaling the height alone: a scale sweep's letters kept their pen width."""
    import dataclasses

    batch = make_test_letters(cfg(test_images=6))
    grown = dataclasses.replace(batch, height=batch.height * 1.5, thickness=batch.thickness * 1.5)
    assert torch.equal(draw_letters(table(), batch, C, scale=1.5), draw_letters(table(), grown, C))


def test_size_jitter_draws_heights_on_both_sides_of_the_size():
    """Catches a one-sided jitter: heights uniform in size x [1 - j, 1 + j], not only above the size."""
    data = cfg(test_images=60, size_jitter=0.2)
    h = make_test_letters(data).height
    assert (h >= 14 * 0.8 - 1e-4).all() and (h <= 14 * 1.2 + 1e-4).all()
    assert (h < 14 * 0.95).any() and (h > 14 * 1.05).any()


def test_roll_each_moves_image_i_by_dx_along_columns_and_dy_along_rows():
    """Catches roll_each's axes swapped (offsets are (dx, dy), as everywhere in invlab)."""
    from invariance_lab.data.datasets import roll_each

    x = torch.arange(2 * 16.0).reshape(2, 1, 4, 4)
    out = roll_each(x, torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    assert torch.equal(out[0], torch.roll(x[0], 1, -1)) and torch.equal(out[1], torch.roll(x[1], -1, -2))
