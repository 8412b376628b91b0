"""The tidy tables every evaluator returns, finished the same way: rows in model order, the architecture factor
columns, and the summary per model x seed (docs/metrics.md defines each column).

    result = SweepResult(table, clean_accuracy)        # what run_sweep, stream_sweep and allshift_sweep return
    inv = add_factors(result.table, factors, "circular")   # downsample, head, padding, mode after model, seed
    summary = summarize(inv, result.clean_accuracy, n_classes=10)   # summary.csv
    il.summarize(il.measure(model, images))            # the same function: clean accuracy from the table's attrs
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.columns import (CORRECT_FLIP, CORRECT_FLIP_SUMMARY, CUSTOM, FACTOR_COLUMNS, MAX_COLUMN, METRIC_COLUMNS,
                            REFERENCE, WORST_CASE_COLUMNS,
                            WORST_SHIFT_COLUMNS, grid_columns, table_transform)
from ..core.stats import first_max, is_at_chance
from ..core.errors import InvlabError, whole

ModelKey = tuple[str, int]  # (model name, seed)


def model_words(key: ModelKey) -> str:
    """A (model, seed) key as messages name it: "model conv_gap (seed 1)"."""
    return f"model {key[0]} (seed {key[1]})"


@dataclass
class SweepResult:
    table: pd.DataFrame  # one row per model x seed x shift
    clean_accuracy: dict[ModelKey, float]  # accuracy at (0, 0), evaluated even when (0, 0) is not in the grid
    # {key: {robust_accuracy, consistent_fraction}}: per-image worst cases over the grid (accumulate.py)
    worst_case: dict[ModelKey, dict[str, float]] = field(default_factory=dict)


def tidy_table(rows: list[dict], models: list[ModelKey]) -> pd.DataFrame:
    """The invariance table of `rows` (one per model x seed x shift): models in the given order, then dy, dx (the
    angle or scale of a rotate or scale sweep)."""
    table = pd.DataFrame(rows)
    order = {k: i for i, k in enumerate(models)}
    table["_order"] = [order[(m, s)] for m, s in zip(table.model, table.seed)]
    return table.sort_values(["_order", *grid_columns(table)[::-1]], kind="stable").drop(columns="_order").reset_index(drop=True)


def add_factors(df: pd.DataFrame, factors: dict[str, dict], mode: str) -> pd.DataFrame:
    """Insert downsample, head, padding and mode after model, seed ("custom" for a factory model's factors)."""
    for i, col in enumerate(FACTOR_COLUMNS):
        df.insert(2 + i, col, [factors[m].get(col, CUSTOM) for m in df.model])
    df.insert(2 + len(FACTOR_COLUMNS), "mode", mode)
    return df


def summarize(table: pd.DataFrame, clean_accuracy: dict[ModelKey, float] | None = None,
              n_classes: int | None = None, worst_case: dict[ModelKey, dict] | None = None) -> pd.DataFrame:
    """Per model x seed: clean accuracy, and mean and worst of each metric over the non-zero shifts (summary.csv).

    clean_accuracy: {(model, seed): accuracy at (0, 0)}; by default what il.measure kept in table.attrs (it is
    evaluated even when (0, 0) is not among the shifts), else read from the (0, 0) rows (NaN without them).
    n_classes (default: table.attrs' n_classes) gives chance = 1 / n_classes, and `at_chance` flags a seed whose
    clean accuracy is at most chance + stats.CHANCE_MARGIN: its flip rate says nothing about invariance. Without
    it both columns are left empty (a report then reads the number of classes from the run's config).
    worst_case: SweepResult.worst_case (default: what il.measure kept in table.attrs), appended as
    robust_accuracy and consistent_fraction; left out when unknown (a table read back from invariance.csv)."""
    if not isinstance(table, pd.DataFrame):
        raise InvlabError(f"summarize takes the per-shift table il.measure returns (a pandas DataFrame, or "
                          f"invariance.csv read back); got a {type(table).__name__}")
    missing = [c for c in ("model", "seed", *METRIC_COLUMNS) if c not in table.columns]
    if missing or table.empty:
        raise InvlabError(f"summarize takes the per-shift table il.measure returns (or invariance.csv read back); "
                          f"this one {'has no rows' if not missing else 'lacks the columns ' + ', '.join(missing)}")
    if clean_accuracy is None:
        clean_accuracy = _clean_accuracy(table)
    if n_classes is None:
        n_classes = table.attrs.get("n_classes")
    if n_classes is not None:
        whole("n_classes", n_classes, minimum=2)  # chance is 1 / n_classes: a classifier tells two or more apart
    if worst_case is None and "worst_case" in table.attrs:
        worst_case = {(m, int(s)): v for k, v in table.attrs["worst_case"].items() for m, _, s in [k.rpartition("/")]}
    axes = list(grid_columns(table))  # dx, dy; a rotate or scale sweep's angle or scale
    origin = REFERENCE[table_transform(table)]
    keys = [c for c in table.columns if c not in METRIC_COLUMNS + axes + [MAX_COLUMN, CORRECT_FLIP]]
    worst_columns = WORST_SHIFT_COLUMNS if axes == ["dx", "dy"] else [f"worst_{axes[0]}"]
    out = []
    for key, g in table.groupby(["model", "seed"], sort=False):
        moved = g[(g[axes].to_numpy(float) != origin).any(axis=1)]
        row = {c: g[c].iloc[0] for c in keys}
        clean = clean_accuracy[key]
        row.update(n_shifts=len(moved), n_classes=n_classes, clean_accuracy=clean,
                   # unknown (empty) without the number of classes, or without labels (no clean accuracy)
                   at_chance=None if n_classes is None or not np.isfinite(clean)
                   else bool(is_at_chance(clean, n_classes)))
        for m in METRIC_COLUMNS:
            vals = moved[m].dropna()
            row[f"mean_{m}"] = vals.mean() if len(vals) else np.nan
            row[f"worst_{m}"] = (vals.min() if m == "accuracy" else vals.max()) if len(vals) else np.nan
        # the first in table order (within core/stats.TIE of the largest: float noise does not pick it); none when
        # every shift's value is NaN
        worst = moved.loc[first_max(moved.prob_change)] if moved.prob_change.notna().any() else None
        row.update(zip(worst_columns, [np.nan] * len(axes) if worst is None else worst[axes]))
        if MAX_COLUMN in moved:
            row[MAX_COLUMN] = moved[MAX_COLUMN].max() if len(moved) else np.nan
        if CORRECT_FLIP in moved:  # tables since the column: the flip rate on the images correct at the reference
            vals = moved[CORRECT_FLIP].dropna()
            row.update(zip(CORRECT_FLIP_SUMMARY, (vals.mean(), vals.max()) if len(vals) else (np.nan, np.nan)))
        if worst_case is not None:
            row.update({c: worst_case.get(key, {}).get(c, np.nan) for c in WORST_CASE_COLUMNS})
        out.append(row)
    return pd.DataFrame(out)


def _clean_accuracy(table: pd.DataFrame) -> dict[ModelKey, float]:
    """{(model, seed): accuracy at (0, 0)}: kept in table.attrs by il.measure, else from the (0, 0) rows."""
    kept = table.attrs.get("clean_accuracy", {})
    clean = {}
    axes = list(grid_columns(table))
    at = REFERENCE[table_transform(table)]
    for (m, s), g in table.groupby(["model", "seed"], sort=False):
        origin = g[(g[axes].to_numpy(float) == at).all(axis=1)]
        clean[(m, s)] = kept.get(f"{m}/{s}", float(origin.accuracy.iloc[0]) if len(origin) else np.nan)
    return clean
