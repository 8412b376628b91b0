"""Tests for invariance_lab.data.boxes: the Red-Green data of Kayhan & van Gemert 2020 (Exp2), pixel by pixel, and
its place among the data sources (schema, data sets, sweep inputs)."""

from __future__ import annotations

import pytest
import torch

from invariance_lab.config.load import parse_config
from invariance_lab.core.errors import InvlabError
from invariance_lab.data.boxes import GREEN, RED, box_set, dissimilar, draw_boxes, layout, sample_boxes
from invariance_lab.data.datasets import class_names, evaluation_set, glyph_table, training_set
from invariance_lab.data.shifts import sweep_inputs
from invariance_lab.schema.sweep import SweepConfig


def boxes_of(image: torch.Tensor, channel: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the lit pixels of one channel; they must form one filled rectangle."""
    lit = image[channel].nonzero()
    top, left = lit.min(0).values.tolist()
    bottom, right = lit.max(0).values.tolist()
    assert len(lit) == (bottom - top + 1) * (right - left + 1)  # filled, one box
    return top, left, bottom - top + 1, right - left + 1


def test_the_papers_layout_on_32_px():
    g = layout(32)
    assert (g.box, g.bands, g.jitter, g.left_columns) == (4, (7, 23), 4, 10)


def test_exact_pixel_layout_colours_box_size_and_offsets():
    """Every image: black, one 4x4 red and one 4x4 green box of value 1, blue empty; class 0 has red on the left in
    rows 3..10 (7 - 4 .. 7 + 3), class 1 green on the left in rows 19..26; the left box starts in columns 0..9, the
    right one at least one blank column later and inside the frame (columns up to 27)."""
    images, labels = box_set(32, 400, seed=0, split="train")
    assert images.shape == (400, 3, 32, 32) and images.dtype == torch.float32
    assert set(images.unique().tolist()) == {0.0, 1.0} and not images[:, 2].any()
    assert labels.tolist() == [0, 1] * 200
    seen_rows, seen_left = set(), set()
    for image, label in zip(images, labels.tolist()):
        (ry, rx, rh, rw), (gy, gx, gh, gw) = boxes_of(image, RED), boxes_of(image, GREEN)
        assert (rh, rw, gh, gw) == (4, 4, 4, 4)
        left, right = (rx, gx) if label == 0 else (gx, rx)
        assert (rx < gx) == (label == 0)  # the class is which colour is on the left
        assert 0 <= left <= 9 and left + 5 <= right <= 27
        band = 7 if label == 0 else 23
        for y in (ry, gy):
            assert band - 4 <= y <= band + 3
            seen_rows.add(y - band)
        seen_left.add(left)
    assert seen_rows == set(range(-4, 4)) and seen_left == set(range(10))  # the whole ranges are drawn


def test_deterministic_by_seed_and_split():
    a, la = box_set(32, 50, seed=3, split="train")
    b, lb = box_set(32, 50, seed=3, split="train")
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, box_set(32, 50, seed=4, split="train")[0])
    assert not torch.equal(a, box_set(32, 50, seed=3, split="test")[0])  # the test set is not training images


def test_the_dissimilar_set_moves_every_box_into_the_other_band():
    """The same test images, each box moved 16 rows: class 0 down into rows 19..26, class 1 up into 3..10; columns,
    colours and labels unchanged."""
    similar, labels = box_set(32, 200, seed=1, split="test")
    moved, moved_labels = box_set(32, 200, seed=1, split="test", test_set="dissimilar")
    assert torch.equal(labels, moved_labels)
    for a, b, label in zip(similar, moved, labels.tolist()):
        shift = 16 if label == 0 else -16
        assert torch.equal(torch.roll(a, shift, dims=-2), b)  # a move, not a wrap: no box ever crosses the frame
        assert 19 - (label * 16) <= boxes_of(b, RED)[0] <= 26 - (label * 16)


@pytest.mark.parametrize("canvas", [16, 24, 40, 64, 128])
def test_every_canvas_keeps_both_sets_in_the_frame(canvas):
    g = layout(canvas)
    boxes = sample_boxes(canvas, 400, torch.Generator().manual_seed(0))
    for b in (boxes, dissimilar(boxes, canvas)):
        assert b.x.min() >= 0 and b.y.min() >= 0 and (b.x + g.box).max() <= canvas and (b.y + g.box).max() <= canvas
        images = draw_boxes(b, canvas)
        assert (images.sum((2, 3))[:, :2] == g.box ** 2).all()  # nothing cut, boxes never overlap


def config(**data) -> dict:
    return dict(name="boxes", seeds=[0], data=dict(source="boxes", **data),
                models={"m": {"arch": "strided_conv", "padding": "full", "bias": False, "head": "global_max"}})


def test_a_boxes_config_is_rgb_with_the_papers_counts_and_reads_back():
    cfg = parse_config(config())
    d = cfg.data
    assert (d.canvas, d.train_images, d.test_images, d.colour, d.test_set) == (32, 2000, 1000, "rgb", "similar")
    dumped = d.model_dump(mode="json")
    assert "letters" not in dumped and "test_set" not in dumped and dumped["colour"] == "rgb"
    assert parse_config({**config(), "data": dumped}).data == d  # a run folder's config.yaml reads back


def test_data_sets_and_sweep_inputs_of_boxes():
    d = parse_config(config(train_images=20, test_images=10, test_set="dissimilar")).data
    assert class_names(d) == ["red_left", "green_left"] and glyph_table(d) is None
    x, y = training_set(d, None)
    assert x.shape == (20, 3, 32, 32) and torch.equal(x, box_set(32, 20, 0, "train")[0])
    test_x, test_y = evaluation_set(d, None)
    assert torch.equal(test_x, box_set(32, 10, 0, "test", "dissimilar")[0])
    canvas = SweepConfig(mode="canvas", dx=[-3, 3], dy=[0, 0])
    inputs, labels = sweep_inputs(d, canvas)
    assert torch.equal(labels, test_y)
    # a whole-pixel canvas shift is the boxes drawn 2 px further right (none reaches the right border)
    boxes = dissimilar(sample_boxes(32, 10, torch.Generator().manual_seed(1_000_003)), 32)
    boxes.x += 2
    assert torch.equal(inputs(slice(0, 10), 2.0, 0.0), draw_boxes(boxes, 32))
    rolled, _ = sweep_inputs(d, SweepConfig(mode="circular", dx=[-3, 3], dy=[0, 0]))
    assert torch.equal(rolled(slice(0, 10), -5.0, 0.0), torch.roll(test_x, -5, dims=-1))
    with pytest.raises(InvlabError, match="no parts"):
        sweep_inputs(d, canvas, kind="parts")


@pytest.mark.parametrize("data, key", [
    (dict(canvas=36), "canvas"), (dict(letters=["A", "B"]), "letters"), (dict(colour="grey"), "colour"),
    (dict(path="/tmp"), "path"), (dict(train_shift=2.0), "train_shift"),
])
def test_what_boxes_cannot_take_is_refused_by_key(data, key):
    with pytest.raises(InvlabError, match=rf"\[data.{key}\]"):
        parse_config(config(**data))


def test_test_set_belongs_to_boxes():
    raw = config(test_set="dissimilar")
    raw["data"].pop("source")
    with pytest.raises(InvlabError, match=r"\[data.test_set\].*source: boxes"):
        parse_config(raw)
