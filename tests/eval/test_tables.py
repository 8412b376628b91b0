"""eval/tables.py's summarize: a model whose every moved shift is NaN is summarised, not a pandas traceback; the
worst-case columns are appended."""

import math

import pandas as pd

from invariance_lab.core.columns import CONSISTENT, METRIC_COLUMNS, ROBUST, WORST_CASE_COLUMNS
from invariance_lab.eval.tables import summarize


def test_a_model_with_nan_at_every_shift_has_no_worst_shift():
    rows = [dict(model="m", seed=0, dx=dx, dy=0, **{c: math.nan for c in METRIC_COLUMNS}) for dx in (0, 1, 2)]
    summary = summarize(pd.DataFrame(rows), {("m", 0): 0.5}, n_classes=2)
    assert len(summary) == 1 and math.isnan(summary.worst_shift_dx.iloc[0])


def test_the_worst_case_columns_come_last_and_leave_the_others_as_they_were():
    """robust_accuracy and consistent_fraction are appended to summary.csv (nothing reads it by position), from
    the evaluators' per-image flags or, for il.summarize(il.measure(...)), the table's attrs; unknown: left out."""
    rows = [dict(model=m, seed=s, dx=dx, dy=0, n_images=4, accuracy=0.75, flip_rate=dx / 4, prob_change=0.1,
                 neighbor_flip_rate=0.0) for m, s in (("a", 0), ("b/c", 1)) for dx in (0, 1, 2)]
    table = pd.DataFrame(rows)
    before = summarize(table, None, n_classes=2)
    worst = {("a", 0): {ROBUST: 0.5, CONSISTENT: 0.25}, ("b/c", 1): {ROBUST: 0.75, CONSISTENT: 1.0}}
    after = summarize(table, None, n_classes=2, worst_case=worst)
    assert list(after.columns) == list(before.columns) + WORST_CASE_COLUMNS
    pd.testing.assert_frame_equal(after[before.columns], before)
    assert after[ROBUST].tolist() == [0.5, 0.75] and after[CONSISTENT].tolist() == [0.25, 1.0]
    table.attrs["worst_case"] = {f"{m}/{s}": v for (m, s), v in worst.items()}  # as il.measure keeps them
    pd.testing.assert_frame_equal(summarize(table, None, n_classes=2), after)


def test_a_rotate_sweeps_summary_leaves_out_angle_0_and_names_the_worst_angle():
    inv = pd.DataFrame(dict(model="m", seed=0, angle=[-20.0, 0.0, 20.0], n_images=4, accuracy=[0.5, 1.0, 0.75],
                            flip_rate=[0.5, 0.0, 0.25], prob_change=[0.3, 0.0, 0.2],
                            neighbor_flip_rate=[math.nan, 0.5, 0.25]))
    row = summarize(inv).iloc[0]
    assert row.n_shifts == 2 and row.clean_accuracy == 1.0 and row.mean_accuracy == 0.625
    assert row.worst_angle == -20.0 and "worst_shift_dx" not in row and "angle" not in row


def test_the_worst_shift_is_the_first_of_those_equal_within_float_noise():
    """An exactly invariant model's changes are float noise (~1e-7), whose largest depended on the engine that
    summed them: two engines named two worst shifts for the same numbers. Within core/stats.TIE they are one
    value, and the first shift in table order is named; a change larger by more than that still wins."""
    def table(changes):
        return pd.DataFrame([dict(model="m", seed=0, dx=dx, dy=0, accuracy=1.0, flip_rate=0.0, prob_change=p,
                                  neighbor_flip_rate=math.nan) for dx, p in zip((0, 1, 2, 3), changes)])

    for noise in ([0.0, 3e-8, 9e-8, 5e-8], [0.0, 9e-8, 3e-8, 5e-8]):  # the same values summed in another order
        assert summarize(table(noise), {("m", 0): 1.0}, n_classes=2).worst_shift_dx.iloc[0] == 1
    assert summarize(table([0.0, 0.1, 0.3, 0.2]), {("m", 0): 1.0}, n_classes=2).worst_shift_dx.iloc[0] == 2
