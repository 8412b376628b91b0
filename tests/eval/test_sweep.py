import numpy as np
import pandas as pd
import pytest
import torch

from invariance_lab.nn.models import build_model, resolve_spec
from invariance_lab.data.shifts import circular_shift, grid_points, shift_lines
from invariance_lab.core.columns import FACTOR_COLUMNS, METRIC_COLUMNS, SUMMARY_METRICS
from invariance_lab.eval.sweep import run_sweep
from invariance_lab.eval.tables import summarize


def tiny_models():
    torch.manual_seed(0)
    f = resolve_spec({"arch": "conv_maxpool", "channels": [3, 4]})
    g = resolve_spec({"arch": "conv_gap", "channels": [3]})
    return {("a", 0): build_model(f, 2, 12).eval(), ("b", 1): build_model(g, 2, 12).eval()}


def brute_force(models, images, labels, points):
    rows = []
    with torch.no_grad():
        for (name, seed), m in models.items():
            ref = torch.softmax(m(images), 1)
            for dx, dy in points:
                p = torch.softmax(m(circular_shift(images, dx, dy)), 1)
                rows.append(dict(model=name, seed=seed, dx=dx, dy=dy,
                                 accuracy=float((p.argmax(1) == labels).float().mean()),
                                 flip_rate=float((p.argmax(1) != ref.argmax(1)).float().mean()),
                                 prob_change=float(0.5 * (p - ref).abs().sum(1).mean())))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_streaming_sweep_matches_brute_force(batch_size):
    models = tiny_models()
    images = torch.rand(20, 1, 12, 12)
    labels = torch.randint(2, (20,))
    lines = shift_lines([-3, 3, 1], [-1, 1, 1], "product")
    res = run_sweep(models, lambda c, dx, dy: circular_shift(images[c], dx, dy), labels, lines, batch_size,
                    torch.device("cpu"))
    expect = brute_force(models, images, labels, grid_points(lines))
    got = res.table.merge(expect, on=["model", "seed", "dx", "dy"], suffixes=("", "_bf"))
    assert len(got) == len(expect) == len(res.table) == 2 * 7 * 3
    for m in ("accuracy", "flip_rate", "prob_change"):
        np.testing.assert_allclose(got[m], got[m + "_bf"], atol=1e-6)
    assert (res.table.loc[(res.table.dx == 0) & (res.table.dy == 0), "flip_rate"] == 0).all()


def test_neighbor_flip_rate_compares_with_previous_step():
    # a fake "model" whose prediction is the sign of a pixel that moves with the shift
    class Probe(torch.nn.Module):
        def forward(self, x):
            v = x[:, 0, 0, 0]
            return torch.stack([v, 1 - v], 1)

    images = torch.zeros(4, 1, 1, 6)
    images[:, 0, 0, 0] = 1.0  # pixel 0 lit; rolling by dx lights pixel dx
    lines = shift_lines([0, 3, 1], [0, 0], "product")
    res = run_sweep({("p", 0): Probe()}, lambda c, dx, dy: circular_shift(images[c], dx, dy), torch.zeros(4).long(),
                    lines, 4, torch.device("cpu"))
    t = res.table.set_index("dx")
    assert np.isnan(t.loc[0, "neighbor_flip_rate"])  # first point of the line has no neighbour
    assert t.loc[1, "neighbor_flip_rate"] == 1.0  # prediction changes from dx 0 to 1
    assert t.loc[2, "neighbor_flip_rate"] == 0.0  # and stays the same from 1 to 2
    assert list(t.flip_rate) == [0, 1, 1, 1]


def test_summarize_uses_nonzero_shifts_only():
    t = pd.DataFrame(dict(model="m", seed=0, downsample="none", head="flatten", padding="zeros", mode="canvas",
                          dx=[0.0, 1.0, 2.0], dy=0.0, n_images=10, accuracy=[1.0, 0.8, 0.6],
                          flip_rate=[0.0, 0.2, 0.4], prob_change=[0.0, 0.1, 0.3], neighbor_flip_rate=[np.nan, 0.2, 0.2]))
    s = summarize(t, {("m", 0): 1.0}).iloc[0]
    assert s.n_shifts == 2 and s.clean_accuracy == 1.0
    assert s.mean_flip_rate == pytest.approx(0.3) and s.worst_flip_rate == pytest.approx(0.4)
    assert s.worst_accuracy == pytest.approx(0.6) and s.mean_prob_change == pytest.approx(0.2)


def _two_seeds(clean):
    t = pd.DataFrame(dict(model="m", seed=[0, 0, 1, 1], downsample="none", head="flatten", padding="zeros",
                          mode="canvas", dx=[0.0, 1.0, 0.0, 1.0], dy=0.0, n_images=10, accuracy=[1.0, 0.9, 0.5, 0.5],
                          flip_rate=[0.0, 0.1, 0.0, 0.0], prob_change=0.0,
                          neighbor_flip_rate=[np.nan, 0.1, np.nan, 0.0]))
    return t, {("m", 0): clean[0], ("m", 1): clean[1]}


def test_summarize_flags_seeds_at_chance():
    t, clean = _two_seeds((1.0, 0.5))
    s = summarize(t, clean, n_classes=2)
    assert s.n_classes.tolist() == [2, 2]
    assert s.at_chance.tolist() == [False, True]  # seed 1 answers at 0.50: its flip rate 0 says nothing
    s3 = summarize(*_two_seeds((0.40, 0.38)), n_classes=3)
    assert s3.at_chance.tolist() == [False, True]  # chance 1/3 + 0.05 = 0.383
    assert list(s.columns[list(s.columns).index("n_shifts"):][:4]) == ["n_shifts", "n_classes", "clean_accuracy",
                                                                       "at_chance"]


def test_summarize_without_class_count_leaves_the_chance_columns_empty():
    s = summarize(*_two_seeds((1.0, 0.5)))  # an old caller: report/tables.py fills these in from the run's config
    assert s.n_classes.isna().all() and s.at_chance.isna().all()


def test_summary_columns_are_the_named_vocabulary():
    t, clean = _two_seeds((1.0, 0.9))
    s = summarize(t, clean, n_classes=2)
    assert list(s.columns[:2 + len(FACTOR_COLUMNS)]) == ["model", "seed", *FACTOR_COLUMNS]  # the unit, its factors
    assert [c for c in s.columns if c in SUMMARY_METRICS] == SUMMARY_METRICS  # every one, file order = vocabulary order
    # every per-shift metric of invariance.csv is summarised by its mean and its worst over the shifts
    assert {f"{a}_{m}" for m in METRIC_COLUMNS for a in ("mean", "worst")} <= set(s.columns)


def test_a_circular_grid_that_gives_a_roll_twice_records_the_distinct_rolls():
    """dx -8..8 on a 16 px canvas: 17 values, 16 rolls (-8 and 8 are one): every roll, and the protocol says how
    many distinct ones there are, since the means count the repeated roll twice."""
    from types import SimpleNamespace

    from invariance_lab.eval.sweep import protocol
    from invariance_lab.report.protocol import protocol_lines
    from invariance_lab.schema.config import SweepConfig
    from invariance_lab.schema.data import DataConfig

    data = DataConfig(canvas=16)
    twice = protocol(SweepConfig(mode="circular", dx=[-8, 8], dy=[-8, 8]), data, [0], ["m"])
    assert twice["all_shifts"] is True and twice["n_shifts"] == 289 and twice["rolls"] == 256
    once = protocol(SweepConfig(mode="circular", dx=[-7, 8], dy=[-7, 8]), data, [0], ["m"])
    assert once["all_shifts"] is True and once["n_shifts"] == 256 and "rolls" not in once
    # along one axis (not every roll of the canvas): the distinct rolls are recorded and the caption says so
    line = protocol(SweepConfig(mode="circular", dx=[-8, 8], dy=[0, 0]), data, [0], ["m"])
    assert "all_shifts" not in line and line["n_shifts"] == 17 and line["rolls"] == 16
    assert ("17 shifts over 16 distinct rolls: a shift and that shift plus or minus the side are one roll, and the "
            "means count such a roll twice") in protocol_lines([SimpleNamespace(meta={"protocol": line}, label="r")])[0]
    for sweep in (SweepConfig(mode="circular", dx=[-7, 8], dy=[0, 0]), SweepConfig(mode="canvas", dx=[-8, 8])):
        assert "rolls" not in protocol(sweep, data, [0], ["m"])


def test_the_correct_flip_rate_is_summarised_by_its_mean_and_highest_over_the_moved_shifts():
    """mean_flip_rate_correct is the mean over the non-zero shifts (defined ones: NaN where no image was correct),
    worst_flip_rate_correct the highest; the per-shift values differ, so a mean is neither the max nor diluted by
    (0, 0)."""
    t = pd.DataFrame(dict(model="m", seed=0, downsample="none", head="flatten", padding="zeros", mode="canvas",
                          dx=[0.0, 1.0, 2.0, 3.0, 4.0], dy=0.0, n_images=10, accuracy=[1.0, 0.8, 0.6, 0.7, 0.9],
                          flip_rate=[0.0, 0.2, 0.4, 0.3, 0.1], prob_change=[0.0, 0.1, 0.3, 0.2, 0.1],
                          neighbor_flip_rate=[np.nan, 0.2, 0.2, 0.1, 0.1], max_prob_change=0.5,
                          flip_rate_correct=[0.0, 0.1, 0.5, np.nan, 0.3]))
    s = summarize(t, {("m", 0): 1.0}).iloc[0]
    assert s.mean_flip_rate_correct == pytest.approx(0.3) and s.worst_flip_rate_correct == pytest.approx(0.5)
