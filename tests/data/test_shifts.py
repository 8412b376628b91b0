"""shifts.py: shift grids, circular rolls, and the sweep's shifted inputs (canvas crops equal redrawing)."""

import pytest
import torch

from invariance_lab.schema.config import DataConfig, SweepConfig
from invariance_lab.data.datasets import draw, glyph_table, reference_letters
from invariance_lab.core.errors import InvlabError
from invariance_lab.data.shifts import (CanvasShifts, axis_values, check_sweep, circular_shift,
                                        every_roll, grid_points, part_inputs, roll_count, roll_protocol, shift_lines,
                                        shifted_inputs, sweep_inputs,
                                        sweep_lines, whole_shifts)
from invariance_lab.eval.sweep import protocol


def test_axis_values_inclusive_and_fractional():
    assert axis_values([-2, 2, 1]) == [-2, -1, 0, 1, 2]
    assert axis_values([0, 1, 0.25]) == [0, 0.25, 0.5, 0.75, 1.0]
    assert axis_values([0, 1, 0.3]) == pytest.approx([0, 0.3, 0.6, 0.9])
    assert axis_values([3, 3]) == [3]


def test_grids():
    prod = shift_lines([-1, 1, 1], [0, 1, 1], "product")
    assert len(grid_points(prod)) == 6 and prod[0] == [(-1, 0), (0, 0), (1, 0)]
    axes = shift_lines([-1, 1, 1], [-2, 2, 1], "axes")
    assert len(grid_points(axes)) == 3 + 5 - 1  # the two axes share (0, 0)


@pytest.mark.parametrize("dx, dy", [(0, 0), (3, -2), (-4, 4), (0.5, 0), (-2.25, 1.75), (3.9, -3.1)])
def test_canvas_crops_equal_drawing_at_the_shifted_position(dx, dy):
    data = DataConfig(canvas=24, size=10, test_images=12)
    table, test = glyph_table(data), reference_letters(data)
    inputs = shifted_inputs(table, test, data.canvas, "canvas", max_shift=4)
    direct = draw(table, test.select(slice(2, 9)), data.canvas, dx, dy)
    got = inputs(slice(2, 9), dx, dy)
    assert got.shape == direct.shape
    assert float((got - direct).abs().max()) < 1e-5


def test_a_grid_along_dy_alone_is_one_vertical_line():
    lines = shift_lines([0, 0], [-2, 2, 1], "product")
    assert lines == [[(0, -2), (0, -1), (0, 0), (0, 1), (0, 2)]]  # neighbours along y, not single-point rows


def test_circular_shift_is_a_roll_and_refuses_fractions():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(circular_shift(x, 1, -1), torch.roll(x, (-1, 1), (-2, -1)))
    assert torch.equal(circular_shift(circular_shift(x, 3, 2), -3, -2), x)
    with pytest.raises(ValueError, match="whole pixels"):
        circular_shift(x, 0.5, 0)


def test_canvas_shifts_refuse_shifts_beyond_their_margin():
    shifts = CanvasShifts(lambda fx, fy: torch.zeros(2, 1, 12, 12), canvas=8, margin=2)
    assert shifts(slice(0, 2), -2, 2).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="margin"):
        shifts(slice(0, 2), 2.5, 0)


def test_with_the_order_announced_the_phase_needed_last_is_dropped():
    """A 0.25 px line walks 4 phases in turn; with room for 2, dropping the oldest redrew a phase at every step.
    With the order announced (run_sweep does), the phase needed last is dropped: fewer draws, the same pixels; with
    room for a row's phases each is drawn once."""
    def counted(room):
        draws = []

        def draw(fx, fy):
            draws.append((fx, fy))
            g = torch.Generator().manual_seed(int(100 * fx + 10 * fy))
            return torch.rand(4, 1, 12, 12, generator=g)
        return CanvasShifts(draw, canvas=8, margin=2, cache_bytes=room * 4 * 12 * 12 * 4), draws

    xs = [i / 4 for i in range(-8, 9)]
    shifts = [(dx, 0.0) for dx in xs] + [(dx, 0.5) for dx in xs]
    seen, reference = {}, None
    for room, announce in ((2, False), (2, True), (4, True), (8, True)):
        inputs, draws = counted(room)
        if announce:
            inputs.expect(shifts)
        images = [inputs(c, dx, dy) for dx, dy in shifts for c in (slice(0, 2), slice(2, 4))]
        seen[room, announce] = len(draws)
        reference = reference or images  # the first: dropping the oldest, as before
        assert all(torch.equal(a, b) for a, b in zip(images, reference))
    assert seen[2, False] == len(shifts)  # every step redrew its phase
    assert seen[2, True] < 0.75 * seen[2, False]
    assert seen[4, True] == 8 and seen[8, True] == 8  # the 4 phases of each row, each drawn once


def test_sweep_inputs_serve_the_reference_at_zero_and_the_first_n_images():
    data = DataConfig(canvas=24, size=10, test_images=12)
    inputs, labels = sweep_inputs(data, SweepConfig(mode="circular", dx=[-2, 2]), n_images=5)
    reference = draw(glyph_table(data), reference_letters(data), data.canvas)
    assert len(labels) == 5 and torch.equal(inputs(slice(0, 5), 0, 0), reference[:5])
    assert torch.equal(inputs(slice(0, 5), 2, 0), torch.roll(reference[:5], 2, -1))


def test_unknown_sweep_kind_lists_the_kinds():
    with pytest.raises(InvlabError, match="did you mean 'parts'"):
        check_sweep(DataConfig(), SweepConfig(), "part")


# ------------------------------------------------------------------------------ raster images (invlab measure)
def test_translate_image_moves_pixels_exactly_and_fills_what_enters():
    from invariance_lab.data.transforms import translate_image

    x = torch.arange(1.0, 26.0).reshape(1, 1, 5, 5)
    moved = translate_image(x, 2, -1)  # right 2, up 1: the same direction as torch.roll
    assert torch.equal(moved[..., :4, 2:], x[..., 1:, :3]) and moved[..., :, :2].eq(0).all() and moved[..., 4, :].eq(0).all()
    assert torch.equal(moved[..., :4, 2:], circular_shift(x, 2, -1)[..., :4, 2:])
    edge = translate_image(x, 2, 0, "edge")
    assert torch.equal(edge[..., 0], x[..., 0]) and torch.equal(edge[..., 1], x[..., 0])
    reflect = translate_image(x, 2, 0, "reflect")
    assert torch.equal(reflect[..., 0], x[..., 2]) and torch.equal(reflect[..., 1], x[..., 1])
    assert torch.equal(translate_image(x, 0, 0), x)
    half = translate_image(x, 0.5, 0)  # bilinear: the mean of the two nearest whole-pixel shifts
    assert torch.allclose(half, (translate_image(x, 0, 0) + translate_image(x, 1, 0)) / 2)
    with pytest.raises(ValueError, match="leaves nothing"):
        translate_image(x, 5, 0)
    with pytest.raises(InvlabError, match="unknown fill"):
        translate_image(x, 1, 0, "wrap")


# ------------------------------------------------------------------------ rotate and scale sweeps (transform)
def test_rotate_and_scale_sweeps_draw_the_letter_turned_and_serve_it_unturned_at_the_reference():
    data = DataConfig(canvas=24, size=10, test_images=12)
    reference = draw(glyph_table(data), reference_letters(data), data.canvas)
    every = slice(0, 12)
    for mode in ("canvas", "circular"):
        turn, labels = sweep_inputs(data, SweepConfig(mode=mode, transform="rotate", angles=[-30, 30, 15]))
        grow, _ = sweep_inputs(data, SweepConfig(mode=mode, transform="scale"))
        assert torch.equal(turn(every, 0.0), reference) and torch.equal(grow(every, 1.0), reference)
        assert not torch.equal(turn(every, 15.0), reference) and not torch.equal(grow(every, 1.2), reference)
    turned = draw(glyph_table(data), reference_letters(data), data.canvas, angle=15.0)  # canvas: drawn, exact
    assert torch.equal(sweep_inputs(data, SweepConfig(transform="rotate"))[0](every, 15.0), turned)
    assert torch.equal(sweep_inputs(data, SweepConfig(transform="rotate"))[0](slice(3, 5), 15.0), turned[3:5])
    assert sweep_lines(SweepConfig(transform="rotate", angles=[-30, 30, 15])) == [[(-30.0,), (-15.0,), (0.0,),
                                                                                  (15.0,), (30.0,)]]
    assert sweep_lines(SweepConfig(dx=[-1, 1])) == shift_lines([-1, 1], [0, 0], "product")


def test_rotate_sweeps_refuse_parts_and_the_position_task():
    with pytest.raises(InvlabError, match="--kind parts.*--transform translate"):
        check_sweep(DataConfig(), SweepConfig(transform="rotate"), "parts")
    with pytest.raises(InvlabError, match="task: position"):
        check_sweep(DataConfig(task="position"), SweepConfig(transform="scale", mode="circular"), "translation")


@pytest.mark.parametrize("height, width", [(6, 10), (7, 7), (1, 4)])
def test_every_roll_covers_the_translation_group_and_nothing_less_does(height, width):
    xs, ys = axis_values(every_roll(width)), axis_values(every_roll(height))
    assert len(xs) == width and len(ys) == height and 0.0 in xs and 0.0 in ys
    full = [(x, y) for y in ys for x in xs]
    every = height * width
    assert roll_count(full, height, width) == every
    assert roll_count(full[1:], height, width) == every - 1  # one roll missing
    assert roll_count([(x + width, y) for x, y in full[:-1]] + [(0.5, 0.0)], height, width) is None  # a fraction
    assert roll_count([(x + width, y - height) for x, y in full], height, width) == every  # rolls by any multiple
    assert roll_count(full + [(xs[0] + width, ys[0])], height, width) == height * width  # one roll given twice
    assert roll_count([(0.0, 0.0), (0.5, 0.0)], height, width) is None  # a fraction: more than the group


def test_whole_pixel_redraws_are_the_reference_moved_and_sub_pixel_ones_also_change_the_ink():
    """The canvas protocol's limit, as docs/metrics.md states it: a letter drawn again a whole number of pixels
    away is the reference translated (to float round-off), one drawn half a pixel away is sampled at a new phase, so
    its total ink changes too (by up to a few percent per letter: bench/subpixel_ink.py)."""
    data = DataConfig(canvas=32, size=14, test_images=60)
    table, test = glyph_table(data), reference_letters(data)
    reference = draw(table, test, data.canvas)
    for dx, dy in [(1, 0), (3, -2), (-4, 4)]:
        moved = draw(table, test, data.canvas, dx, dy)
        assert float((moved - torch.roll(reference, (dy, dx), (-2, -1))).abs().max()) < 1e-5
    ink = draw(table, test, data.canvas, 0.5, 0).sum((1, 2, 3)) / reference.sum((1, 2, 3)) - 1
    assert 0.01 < float(ink.abs().max()) < 0.15


@pytest.mark.parametrize("data", [DataConfig(canvas=24, size=12, test_images=60),
                                  DataConfig(canvas=32, size=14, test_images=40, glyphs="outline",
                                             fonts=["DejaVu Sans"])], ids=["stroke", "outline"])
def test_whole_shifts_are_exactly_those_that_cut_no_letter(data):
    """Brute force: every whole-pixel shift along an axis, the test letters redrawn there (as the sweep draws them);
    inside the range no letter loses ink, one pixel past either end some letter does. The protocol of a canvas
    sweep of letters records it (the tables' caption names shifts past it)."""
    sweep = SweepConfig(dx=[-14, 14], dy=[-14, 14], grid="axes")
    inputs, labels = sweep_inputs(data, sweep)
    every = slice(0, len(labels))
    ink = inputs(every, 0.0, 0.0).flatten(1).sum(1)
    whole = whole_shifts(inputs(every, 0.0, 0.0))
    for key in ("dx", "dy"):
        lo, hi = whole[key]
        assert -14 < lo < 0 < hi < 14  # one pixel past each end is on the sweep's grid
        for d in range(lo - 1, hi + 2):
            moved = inputs(every, float(d), 0.0) if key == "dx" else inputs(every, 0.0, float(d))
            cut = bool(((ink - moved.flatten(1).sum(1)) > 1e-4 * ink).any())
            assert cut == (not lo <= d <= hi), (key, d, whole)
    assert protocol(sweep, data, [0], ["m"])["whole"] == whole
    assert "whole" not in protocol(SweepConfig(mode="circular", dx=[-2, 2], dy=[0, 0]), data, [0], ["m"])


def test_whole_shifts_of_blank_images_and_a_corner_dot():
    assert whole_shifts(torch.zeros(3, 1, 8, 8)) == {}
    dot = torch.zeros(2, 1, 8, 8)
    dot[1, 0, 0, 6] = 1.0  # row 0, column 6: one px of room to the right, none upwards
    assert whole_shifts(dot) == {"dx": [-6, 1], "dy": [0, 7]}


# ------------------------------------------------------------------------------ mutation audit
def test_roll_protocol_names_the_whole_group_and_counts_rolls_only_when_one_is_given_twice():
    """Catches 'rolls' recorded for every circular grid (<= for <): meta.json would claim a roll counted twice."""
    every = [(x, y) for y in axis_values(every_roll(4)) for x in axis_values(every_roll(6))]
    assert roll_protocol(every, 4, 6) == {"all_shifts": True}
    assert roll_protocol(every + [(every[0][0] + 6, every[0][1])], 4, 6) == {"all_shifts": True, "rolls": 24}
    assert roll_protocol(every[:5], 4, 6) == {}
    assert roll_protocol([(-3.0, 0.0), (3.0, 0.0)], 4, 6) == {"rolls": 1}  # -3 and 3 are one roll on 6 px
    assert roll_protocol([(0.0, 0.0), (0.5, 0.0)], 4, 6) == {}  # a fraction: not rolls


def test_a_canvas_sweep_to_a_fractional_extreme_serves_it_on_both_sides():
    """Catches the canvas margin rounded down (int, not ceil): a sweep to +-2.5 px refused its own end points."""
    data = DataConfig(canvas=16, size=8, test_images=4)
    table, test = glyph_table(data), reference_letters(data)
    inputs = shifted_inputs(table, test, data.canvas, "canvas", max_shift=2.5)
    for dx, dy in ((2.5, 0.0), (-2.5, 2.5)):
        assert float((inputs(slice(0, 4), dx, dy) - draw(table, test, data.canvas, dx, dy)).abs().max()) < 1e-5


def test_a_canvas_sweep_wider_along_dy_than_dx_serves_its_dy_extremes():
    """Catches the canvas margin taken from dx alone: a grid along dy past dx's range was refused."""
    data = DataConfig(canvas=16, size=8, test_images=4)
    inputs, _ = sweep_inputs(data, SweepConfig(dx=[-1, 1], dy=[-3, 3], grid="axes"))
    table, test = glyph_table(data), reference_letters(data)
    for dy in (-3.0, 3.0):
        assert float((inputs(slice(0, 4), 0.0, dy) - draw(table, test, data.canvas, 0.0, dy)).abs().max()) < 1e-5


def test_part_inputs_move_the_part_by_dx_along_x_and_dy_along_y():
    """Catches the part offset's axes swapped: a parts sweep along dx moved the part vertically."""
    data = DataConfig(canvas=16, size=8, test_images=4)
    table, test = glyph_table(data), reference_letters(data)
    got = part_inputs(table, test, data.canvas)(slice(0, 4), 2.0, 0.0)
    along_x = draw(table, test, data.canvas, part_offset=torch.tensor([[2.0, 0.0]]).expand(4, 2))
    along_y = draw(table, test, data.canvas, part_offset=torch.tensor([[0.0, 2.0]]).expand(4, 2))
    assert torch.equal(got, along_x) and not torch.equal(got, along_y)
