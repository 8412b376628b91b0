"""One per-shift accumulator behind the three evaluators: brute force (sweep.run_sweep), streamed raster images
(stream.stream_sweep) and the all-shift engine (engine.allshift_sweep) fed the same logits give the same table,
every column exactly, and the metrics follow docs/metrics.md's definitions (reference, repeats, neighbour)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from invariance_lab.data.images import from_tensor
from invariance_lab.data.shifts import circular_shift, previous_on_line, value_lines
from invariance_lab.core.errors import FactoryError
from invariance_lab.eval.accumulate import ORIGIN, Grid, ShiftSums, sweep_result
from invariance_lab.eval.engine import allshift_plan, allshift_sweep
from invariance_lab.eval.stream import stream_sweep
from invariance_lab.eval.sweep import run_sweep

CPU = torch.device("cpu")
SIDE, CLASSES = 8, 3


class FirstRow(nn.Module):
    """Logits = the first pixels of the first row: a function of where the image has been rolled to."""

    def forward(self, x):
        return 4.0 * x[:, 0, 0, :CLASSES]


def probe() -> nn.Module:
    """A 1x1 convolution with weight 1 (exact: the engine's polyphase map is the input itself), then FirstRow,
    which the engine runs on each shift's rolled map: every evaluator computes the very same logits."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    nn.init.ones_(conv.weight)
    return nn.Sequential(conv, FirstRow()).eval()


GRIDS = {
    "product": value_lines([-2.0, -1.0, 0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], "product"),
    "axes (lines cross at the reference)": value_lines([-2.0, -1.0, 0.0, 1.0], [-1.0, 0.0, 1.0, 2.0], "axes"),
    "reference off the grid": value_lines([1.0, 2.0, 3.0], [1.0, 2.0], "product"),
    "a point met again": [[(1.0, 0.0), (2.0, 0.0), (0.0, 0.0), (1.0, 0.0)], [(3.0, 1.0), (1.0, 0.0), (2.0, 0.0)],
                          [(2.0, 0.0), (5.0, 5.0)]],
}


def evaluators(lines, batch_size=5, labelled=True):
    torch.manual_seed(0)
    images = torch.rand(23, 1, SIDE, SIDE)
    labels = torch.randint(CLASSES, (23,))
    images[:6] = images[:6, :, :1, :1].clone()  # flat images: one prediction (class 0) at every shift,
    labels[:3] = 0  # and correct at every shift: the worst-case columns are neither 0 nor 1
    models = {("probe", 0): probe(), ("other", 1): probe()}
    inputs = lambda c, dx, dy: circular_shift(images[c], dx, dy)  # noqa: E731
    plans = {k: allshift_plan(m, SIDE) for k, m in models.items()}
    assert all(p.chunk(batch_size, 50) == batch_size for p in plans.values())  # the same batches everywhere
    out = {"engine": allshift_sweep(plans, inputs, labels if labelled else None, lines, batch_size, CPU, n=23),
           "stream": stream_sweep(models, from_tensor(images, labels if labelled else None), lines,
                                  lambda x, dx, dy: circular_shift(x, dx, dy), batch_size, CPU)}
    if labelled:
        out["brute"] = run_sweep(models, inputs, labels, lines, batch_size, CPU)
    return out, images, labels


@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize("labelled", [True, False])
def test_the_three_evaluators_give_the_same_table_exactly(grid, labelled):
    results, _, _ = evaluators(GRIDS[grid], labelled=labelled)
    first, *rest = results.values()
    assert len(first.table) == 2 * len(Grid(GRIDS[grid]).points)
    for other in rest:
        pd.testing.assert_frame_equal(first.table, other.table, check_exact=True)
        assert first.clean_accuracy.keys() == other.clean_accuracy.keys()
        for k, v in first.clean_accuracy.items():
            assert v == other.clean_accuracy[k] or (np.isnan(v) and np.isnan(other.clean_accuracy[k]))
        assert first.worst_case.keys() == other.worst_case.keys() == first.clean_accuracy.keys()
        for k, v in first.worst_case.items():  # robust_accuracy, consistent_fraction: the per-image flags
            assert v.keys() == other.worst_case[k].keys() == {"robust_accuracy", "consistent_fraction"}
            for c, x in v.items():
                assert x == other.worst_case[k][c] or (np.isnan(x) and np.isnan(other.worst_case[k][c]))
    if not labelled:
        assert first.table.accuracy.isna().all() and first.table.flip_rate_correct.isna().all()


@pytest.mark.parametrize("grid", list(GRIDS))
def test_the_metrics_follow_their_definitions(grid):
    """Each column against a direct computation: the reference is (0, 0) (evaluated even off the grid), a point
    met again is one row, and the neighbour is the previous shift on the first line on which it has one."""
    lines = GRIDS[grid]
    results, images, labels = evaluators(lines)
    table = results["brute"].table.query("model == 'probe'").set_index(["dx", "dy"])
    model = probe()
    with torch.no_grad():
        probs = lambda p: torch.softmax(model(circular_shift(images, *p)), 1)  # noqa: E731
        ref = probs(ORIGIN)
        previous = previous_on_line(lines)
        for p in Grid(lines).points:
            q = probs(p)
            row = table.loc[p]
            assert row.accuracy == pytest.approx(float((q.argmax(1) == labels).double().mean()), abs=1e-12)
            assert row.flip_rate == pytest.approx(float((q.argmax(1) != ref.argmax(1)).double().mean()), abs=1e-12)
            right = ref.argmax(1) == labels  # the images correct at the reference: some, not all
            assert 0 < int(right.sum()) < len(labels)
            assert row.flip_rate_correct == pytest.approx(
                float((q.argmax(1) != ref.argmax(1))[right].double().mean()), abs=1e-12)
            tv = 0.5 * (q - ref).abs().sum(1)
            assert row.prob_change == pytest.approx(float(tv.double().mean()), abs=1e-6)
            assert row.max_prob_change == pytest.approx(float(tv.max()), abs=1e-7)
            if p in previous:
                before = probs(previous[p]).argmax(1)
                assert row.neighbor_flip_rate == pytest.approx(float((q.argmax(1) != before).double().mean()))
            else:
                assert np.isnan(row.neighbor_flip_rate)
        assert results["brute"].clean_accuracy[("probe", 0)] == pytest.approx(
            float((ref.argmax(1) == labels).double().mean()))
        # the worst case per image, over every shift of the grid and the reference
        preds = torch.stack([probs(p).argmax(1) for p in [ORIGIN, *Grid(lines).points]])
        robust = float((preds == labels).all(0).double().mean())
        consistent = float((preds == ref.argmax(1)).all(0).double().mean())
        assert results["brute"].worst_case[("probe", 0)] == {"robust_accuracy": robust,
                                                             "consistent_fraction": consistent}
        assert 0 < robust <= results["brute"].table.query("model == 'probe'").accuracy.min()  # not trivially 0
        assert robust <= consistent < 1


def test_the_axes_grids_reference_takes_its_neighbour_along_x():
    lines = GRIDS["axes (lines cross at the reference)"]
    assert previous_on_line(lines)[ORIGIN] == (-1.0, 0.0)
    walk = [s for s in Grid(lines).walk if s.shift == ORIGIN]
    assert [(s.before, s.new, s.neighbour) for s in walk] == [((-1.0, 0.0), False, True), ((0.0, -1.0), False, False)]


def test_a_rotate_grid_is_the_same_accumulator_with_one_column():
    """A rotate (or scale) sweep's points are 1-tuples from their own reference: the very sums of a translate grid
    whose inputs depend on dx alone, under the column angle (scale) in place of dx, dy."""
    torch.manual_seed(0)
    images, labels = torch.rand(23, 1, SIDE, SIDE), torch.randint(CLASSES, (23,))
    models = {("probe", 0): probe()}
    values = [-2.0, -1.0, 0.0, 1.0, 3.0]
    shifted = run_sweep(models, lambda c, dx, dy: circular_shift(images[c], dx, 0), labels,
                        [[(v, 0.0) for v in values]], 5, CPU)
    for transform, column, ref in (("rotate", "angle", 0.0), ("scale", "scale", 1.0)):
        turned = run_sweep(models, lambda c, v: circular_shift(images[c], v - ref, 0), labels,
                           [[(v + ref,) for v in values]], 5, CPU, transform=transform)
        assert list(turned.table.columns) == [c if c != "dx" else column for c in shifted.table.columns if c != "dy"]
        pd.testing.assert_frame_equal(turned.table.drop(columns=column), shifted.table.drop(columns=["dx", "dy"]))
        assert turned.table[column].tolist() == [v + ref for v in values]
        assert turned.clean_accuracy == shifted.clean_accuracy and turned.worst_case == shifted.worst_case
        assert Grid([[(v + ref,) for v in values]], transform).origin == (ref,)
        # invlab measure's streaming evaluator gives the same table, batches read once and turned at every value
        streamed = stream_sweep(models, from_tensor(images, labels), [[(v + ref,) for v in values]],
                                lambda x, v: circular_shift(x, v - ref, 0), 5, CPU, transform=transform)
        pd.testing.assert_frame_equal(streamed.table, turned.table, check_exact=True)
        assert streamed.clean_accuracy == turned.clean_accuracy and streamed.worst_case == turned.worst_case


def test_nan_probabilities_at_any_shift_are_refused_when_the_sums_are_read():
    """One NaN probability of one image at one shift leaves NaN in that shift's summed change: the sweep is refused
    naming the model and the shift, however the batch was evaluated (brute force, streaming, the engine)."""
    grid = Grid([[(-1.0, 0.0), (0.0, 0.0), (1.0, 0.0)]])
    ref = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    sums = ShiftSums(grid)
    sums.add([ORIGIN], ref[None], ref, None, slice(0, 2))
    sums.add([(-1.0, 0.0)], ref[None], ref, None, slice(0, 2))
    assert len(sweep_result({("m", 0): sums}, 2, False).table) == 3  # finite: read as usual
    bad = ref.clone()
    bad[1, 0] = float("nan")
    sums.add([(1.0, 0.0)], bad[None], ref, None, slice(0, 2))
    with pytest.raises(FactoryError, match=r"model m \(seed 0\) gave NaN or infinite logits at shift \(1.0, 0.0\)"):
        sweep_result({("m", 0): sums}, 2, False)


class Bar:
    """A stand-in progress bar: its total and what was counted."""

    def __init__(self, total, *args, **kwargs):
        self.total, self.n = total, 0

    def update(self, k):
        self.n += k

    def close(self):
        BARS.append(self)


BARS: list[Bar] = []


@pytest.mark.parametrize("grid", list(GRIDS))
def test_the_progress_bars_of_brute_force_and_streamed_images_end_at_their_totals(grid, monkeypatch):
    """Both count forward passes (per batch for streamed images): the reference once, then each step of the walk
    away from it, a point met again included (it is evaluated again for its neighbours)."""
    from invariance_lab.eval import stream, sweep

    monkeypatch.setattr(sweep, "progress_bar", Bar)
    monkeypatch.setattr(stream, "progress_bar", Bar)
    BARS.clear()
    evaluators(GRIDS[grid], batch_size=10)  # 23 images: 3 batches
    g = Grid(GRIDS[grid])
    assert [(b.total, b.n) for b in BARS] == [(3 * g.evaluations,) * 2, (g.evaluations,) * 2]
    assert g.evaluations >= len(g.shifts)


def _add_one_copy_at_a_time(sums: ShiftSums, shifts, probs, ref_probs, labels, images):
    """ShiftSums.add as it was first written (each sum copied to the host on its own): the reference its
    batched copies must equal."""
    from invariance_lab.core.metrics import tv_distance

    i = [sums.grid.index[p] for p in shifts]
    pred = probs.argmax(-1)
    tv = tv_distance(probs, ref_probs)
    s = sums.sums
    ref_pred = ref_probs.argmax(-1)
    flipped = pred != ref_pred
    sums._grow(images.stop)
    if labels is not None:
        right = pred == labels
        s[i, sums.CORRECT] += right.sum(1).cpu().numpy()
        sums.wrong[images] |= (~right).any(0).cpu().numpy()
        s[i, sums.CORRECT_FLIPS] += (flipped & (ref_pred == labels)).sum(1).cpu().numpy()
    sums.changed[images] |= flipped.any(0).cpu().numpy()
    s[i, sums.FLIPS] += flipped.sum(1).cpu().numpy()
    s[i, sums.TV_SUM] += tv.sum(1).double().cpu().numpy()
    s[i, sums.TV_MAX] = np.maximum(s[i, sums.TV_MAX], tv.amax(1).double().cpu().numpy())
    return pred


@pytest.mark.parametrize("labelled", [True, False])
def test_add_gives_the_sums_of_one_copy_at_a_time(labelled):
    """Batches in any order, several shifts at once (one given twice), images tied with the reference, a NaN
    output: every sum and flag, and the predictions, equal the reference implementation's, bit for bit."""
    grid = Grid(GRIDS["product"])
    fast, slow = ShiftSums(grid), ShiftSums(grid)
    g = torch.Generator().manual_seed(5)
    n = 23
    labels = torch.randint(0, CLASSES, (n,), generator=g) if labelled else None
    ref = torch.softmax(torch.randn(n, CLASSES, generator=g), -1)
    for shifts, images in [([ORIGIN], slice(0, 9)), (grid.shifts[:5], slice(9, 23)), (grid.shifts[3:9], slice(0, 9)),
                           ([(1.0, 1.0), (2.0, 0.0), (1.0, 1.0)], slice(9, 23)), (grid.shifts[-4:], slice(0, 23))]:
        m = images.stop - images.start
        probs = torch.softmax(3 * torch.randn(len(shifts), m, CLASSES, generator=g), -1)
        probs[:, ::4] = ref[images][::4]  # unchanged images: a distance of exactly 0
        if images.start == 9 and len(shifts) == 3:
            probs[1, 2] = float("nan")
        lab = labels[images] if labelled else None
        got = fast.add(shifts, probs, ref[images], lab, images)
        want = _add_one_copy_at_a_time(slow, shifts, probs, ref[images], lab, images)
        assert torch.equal(got, want)
    assert np.array_equal(fast.sums, slow.sums, equal_nan=True) and np.isnan(fast.sums).any()
    assert np.array_equal(fast.wrong, slow.wrong) and np.array_equal(fast.changed, slow.changed)


def test_a_zero_std_and_a_roll_by_the_whole_side_are_refused():
    """Catches `s < 0` (a zero std divides every pixel by 0) and `abs(d) > side` (a roll by the side is no roll)."""
    from invariance_lab.core.errors import InvlabError
    from invariance_lab.eval.stream import check_grid, preparer
    with pytest.raises(InvlabError, match="std must be positive"):
        preparer("circular", std=[0.0])
    check_grid([(7.0, 0.0), (-7.0, 0.0)], (1, 8, 8), "circular")
    with pytest.raises(InvlabError, match="repeats a roll by 0 px"):
        check_grid([(8.0, 0.0)], (1, 8, 8), "circular")
