"""Load finished runs and sweeps and aggregate them over seeds: the mean, its 95% t interval cut to the range the
quantity can take, and the seeds that answer at chance. Everything here returns DataFrames; display.py renders
them (only the CLI prints) and plots.py draws them. Example (from Python):

    r = load_result("results/seed_question/20261125-101500")
    model_table([r])   # per model: n_seeds, n_chance, each summary metric with _ci, _lo, _hi
    rep = build_report([r.path], by="shift", metric="flip_rate", drop_chance=True)
    rep.views[0].table  # model x shift, the same columns per shift
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.load import read_yaml
from ..core.errors import InvlabError, choose
from ..core.stats import ci_halfwidth, is_at_chance, with_bounds
from ..store.results import Result, load_result, load_results  # noqa: F401  (load_result: part of this API)
from ..store.layout import CONFIG_FILE, SWEEP_DIR, is_study
from ..core.columns import (CORRECT_FLIP_SUMMARY, FACTOR_COLUMNS, METRIC_COLUMNS, SUMMARY_METRICS, WORST_CASE_COLUMNS,
                            grid_columns)

AXES = ("dx", "dy", "angle", "scale")  # a translate sweep's two axes; a rotate or scale sweep's one (sweep.transform)
BY = ("model", "shift", "layer")
RATE_RANGE = (0.0, 1.0)  # every metric of invariance.csv and summary.csv is a fraction
LAYER_RANGE = (0.0, math.inf)  # layer errors and normalised variance are >= 0 and can exceed 1
CHANCE_MARK = "†"  # after the name of a model with seeds at chance (and a paper row all of whose seeds are)
# The model table: clean accuracy and accuracy under shift beside every consistency metric (a model at chance
# is perfectly consistent), all but the worst neighbour flip, which adds width and little information.
MODEL_METRICS = [m for m in SUMMARY_METRICS if m != "worst_neighbor_flip_rate"]
# and after them the worst case per image (robust accuracy, consistent fraction) where a summary.csv has it (older
# folders do not: their cells are empty); the terminal leaves them out (display.py), markdown, csv and HTML show them
# The layer profile (layerwise.py), written by `invlab sweep --layers` beside the sweep's CSVs.
LAYER_QUANTITIES = {
    "mean_equivariance_error": "equivariance error ||F(Tx) - T'F(x)|| / ||F(x)||",
    "mean_pooled_invariance_error": "pooled invariance error ||mean F(Tx) - mean F(x)|| / ||mean F(x)||",
    "normalized_variance": "normalised variance of the pooled activations (0 = invariant)",
}
ASSUMED_CLASSES = 2  # when nothing on disk says how many classes a run had (the default config's A vs B)
# lie.csv (`invlab sweep --metric lie`, eval/lie.py): the output's Lie derivative per transform, >= 0, unbounded
LIE_TITLE = "Lie derivative: mean over images of ||d/dt softmax f(T_t x) at t=0||^2, mean ± 95% CI over seeds"


# --- seeds at chance --------------------------------------------------------------------------------------

def configured_classes(result: Result) -> int | None:
    """The number of classes from meta.json or the run's config.yaml (data.letters; 2 for task: position), for
    folders whose summary.csv predates its n_classes column; None when nothing on disk says."""
    protocol = result.meta.get("protocol", {})
    written = result.meta.get("n_classes") or protocol.get("n_classes")
    if written or protocol.get("task") == "position":
        return int(written or 2)
    resolved = result.path.resolve()
    run_dir = resolved.parent.parent if resolved.parent.name == SWEEP_DIR else resolved
    try:  # read_yaml: a regular file of a config's size, UTF-8, YAML of bounded depth
        data = (read_yaml(run_dir / CONFIG_FILE) or {}).get("data") or {}
        letters = ["top", "bottom"] if data.get("task") == "position" else data.get("letters", ["A", "B"])
    except (InvlabError, AttributeError):  # no config (a copied folder), or not ours
        return None
    return len(letters) if isinstance(letters, list) and letters else None


def seed_flags(results: list[Result]) -> pd.DataFrame:
    """Per run × model × seed: clean_accuracy, n_classes, at_chance (clean accuracy ≤ 1/n_classes + 0.05),
    `assumed`: True where no file said how many classes there were and ASSUMED_CLASSES was taken, and
    class_order: the note `invlab measure` recorded for a model far below chance (eval/class_order.py; "" if
    none): such a model learned the classes in another order, so it is not at chance."""
    parts = []
    for r in results:
        s = r.summary
        notes = r.meta.get("class_order")
        notes = notes if isinstance(notes, dict) else {}  # an edited meta.json: no notes rather than a traceback
        order = pd.Series([str(notes.get(m) or "") for m in s["model"]], index=s.index, dtype=object)
        written = pd.to_numeric(s["n_classes"], errors="coerce") if "n_classes" in s else pd.Series(np.nan, s.index)
        known = configured_classes(r) if written.isna().any() else None
        n = written.fillna(known if known is not None else ASSUMED_CLASSES).astype(int)
        parts.append(pd.DataFrame(dict(run=r.label, model=s["model"], seed=s["seed"],
                                       clean_accuracy=s["clean_accuracy"].astype(float), n_classes=n,
                                       at_chance=is_at_chance(s["clean_accuracy"], n) & (order == ""),
                                       assumed=written.isna() & (known is None), class_order=order)))
    columns = ["run", "model", "seed", "clean_accuracy", "n_classes", "at_chance", "assumed", "class_order"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def seed_counts(flags: pd.DataFrame) -> pd.DataFrame:
    """Index (run, model): n_seeds and n_chance (how many of them are at chance)."""
    g = flags.groupby(["run", "model"], sort=False)
    return pd.DataFrame({"n_seeds": g["seed"].nunique(), "n_chance": g["at_chance"].sum().astype(int)})


def without_seeds(result: Result, seeds: pd.DataFrame) -> Result:
    """The result with the (model, seed) pairs of `seeds` (rows of seed_flags for this result) left out."""
    mine = seeds[seeds["run"] == result.label]
    gone = set(zip(mine["model"], mine["seed"]))

    def keep(df: pd.DataFrame | None) -> pd.DataFrame | None:
        return df if df is None else df[[k not in gone for k in zip(df["model"], df["seed"])]].reset_index(drop=True)

    return replace(result, summary=keep(result.summary), invariance=keep(result.invariance), layers=keep(result.layers),
                   lie=keep(result.lie))


# --- tables -----------------------------------------------------------------------------------------------

def model_metrics(results: list[Result]) -> list[str]:
    """The model table's value columns: MODEL_METRICS, then the later columns any of the summaries has (the mean
    flip rate on the images correct at the reference, the worst-case columns)."""
    later = [CORRECT_FLIP_SUMMARY[0], *WORST_CASE_COLUMNS]
    return MODEL_METRICS + [c for c in later if any(c in r.summary for r in results)]


def model_table(results: list[Result], confidence: float = 0.95) -> pd.DataFrame:
    """One row per (run, model): factors, n_seeds, n_chance, and each of model_metrics as the mean over seeds,
    `_ci` (the t half-width) and `_lo`, `_hi` (the interval cut to [0, 1]); NaN where a summary lacks it."""
    counts = seed_counts(seed_flags(results))
    metrics = model_metrics(results)
    rows = []
    for r in results:
        for model, g in r.summary.groupby("model", sort=False):
            row = {"run": r.label, "model": model, **{f: g[f].iloc[0] for f in FACTOR_COLUMNS},
                   **counts.loc[(r.label, model)].astype(int).to_dict()}
            for m in metrics:
                values = g[m].astype(float) if m in g else pd.Series(np.nan, g.index)
                row[m] = float(values.mean())
                row[f"{m}_ci"] = ci_halfwidth(values, confidence)
            rows.append(row)
    return with_bounds(pd.DataFrame(rows), metrics, RATE_RANGE)


def axis_slice(df: pd.DataFrame, axis: str) -> pd.DataFrame:
    """The 1-D cut of a tidy shift table: axis "dx" keeps rows with dy == 0, "dy" rows with dx == 0; "angle" and
    "scale" (a rotate or scale sweep's only axis) every row; none (an empty frame) when the table lacks the axis."""
    choose("shift axis", axis, AXES)
    if axis not in df:  # a rotate or scale sweep has no dx, dy; a translate sweep no angle or scale
        return df.iloc[:0].assign(**{axis: np.array([], dtype=float)})
    other = {"dx": "dy", "dy": "dx"}.get(axis)
    return df if other is None else df[np.isclose(df[other].astype(float), 0.0)]


def _wide(tidy: pd.DataFrame, column: str, order) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(means, ci) pivoted from a tidy (run, model, column, mean, ci) frame; rows (run, model) in file order."""
    rows = pd.MultiIndex.from_tuples(list(dict.fromkeys(zip(tidy["run"], tidy["model"]))), names=["run", "model"])
    out = []
    for value in ("mean", "ci"):
        wide = tidy.pivot_table(index=["run", "model"], columns=column, values=value, dropna=False, sort=False)
        wide = wide.reindex(index=rows, columns=order)
        out.append(wide)
    return out[0], out[1]


def shift_table(results: list[Result], metric: str, axis: str,
                confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(means, ci): rows indexed by (run, model), one column per shift value along `axis` (the other shift
    is 0), cell = mean over seeds of `metric`; `ci` holds the matching CI half-widths, same shape."""
    choose("metric", metric, METRIC_COLUMNS)
    choose("shift axis", axis, AXES)
    parts = []
    for r in results:
        cut = axis_slice(r.invariance, axis)
        if cut.empty and axis not in r.invariance:
            raise InvlabError(f"{r.label} has no {axis} column (its grid: {', '.join(grid_columns(r.invariance))}), "
                              f"so there is no view along {axis}; compare sweeps of one transform")
        if cut.empty:
            other = "dy" if axis == "dx" else "dx"
            raise InvlabError(f"{r.label} has no shifts with {other} = 0, so there is no 1-D view along {axis}.")
        agg = (cut.groupby(["model", axis], sort=False)[metric]
               .agg(mean="mean", ci=lambda v: ci_halfwidth(v, confidence)).reset_index())
        agg.insert(0, "run", r.label)
        parts.append(agg)
    tidy = pd.concat(parts, ignore_index=True)
    means, ci = _wide(tidy, axis, sorted(tidy[axis].astype(float).unique()))
    means.columns.name = ci.columns.name = axis
    return means, ci


_PRESET_TAP = re.compile(r"block\d+\.(conv|down)|head")  # a preset's taps (layerwise.layer_taps)


def _layer_order(name: str) -> tuple:
    """block1.conv < block1.down < block2.conv < ... < head, whatever the models' depths."""
    if name == "head":
        return (math.inf, 0)
    block, _, tap = name.partition(".")
    return (int(block.removeprefix("block") or 0), 0 if tap == "conv" else 1)


def layer_table(results: list[Result], quantity: str = "mean_equivariance_error",
                confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(means, ci): rows (run, model), one column per tap (block1.conv ... head), cell = mean over seeds of the
    per-seed `quantity` (already a mean over the non-zero shifts where it is defined), ci = its half-width."""
    choose("layer quantity", quantity, LAYER_QUANTITIES)
    with_layers = [r for r in results if r.layers is not None]
    if not with_layers:
        raise InvlabError("no layer profile in these results: make one with `invlab sweep RUN_DIR --layers` (a "
                          "run's networks) or `invlab measure ... --layers` (your model), and report the folder it "
                          "writes (it holds layers_summary.csv).")
    parts = []
    for r in with_layers:
        agg = (r.layers.groupby(["model", "layer_name"], sort=False)[quantity]
               .agg(mean="mean", ci=lambda v: ci_halfwidth(v, confidence)).reset_index())
        agg.insert(0, "run", r.label)
        parts.append(agg)
    tidy = pd.concat(parts, ignore_index=True)
    names = list(dict.fromkeys(tidy["layer_name"]))  # first appearance: depth order within each model
    preset = sorted((n for n in names if _PRESET_TAP.fullmatch(n)), key=_layer_order)
    # a preset's taps in depth order whatever the models' depths, then other models' hooked taps (taps.py)
    means, ci = _wide(tidy, "layer_name", preset + [n for n in names if n not in preset])
    means.columns.name = ci.columns.name = "layer"
    return means, ci


def lie_table(results: list[Result], confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(means, ci): rows (run, model), one column per transform of lie.csv's output rows (layer empty), cell = the
    mean over seeds of the per-seed value, ci = its half-width. Results without lie.csv are left out."""
    parts = []
    for r in (r for r in results if r.lie is not None):
        agg = (r.lie[r.lie["layer"] == ""].groupby(["model", "transform"], sort=False)["value"]
               .agg(mean="mean", ci=lambda v: ci_halfwidth(v, confidence)).reset_index())
        agg.insert(0, "run", r.label)
        parts.append(agg)
    if not parts:
        raise InvlabError("no Lie derivative in these results: make one with `invlab sweep RUN_DIR --metric lie` and "
                          "report that sweep folder (it holds lie.csv).")
    tidy = pd.concat(parts, ignore_index=True)
    means, ci = _wide(tidy, "transform", list(dict.fromkeys(tidy["transform"])))
    means.columns.name = ci.columns.name = "transform"
    return means, ci


# --- the `invlab report` command as a function ------------------------------------------------------------

@dataclass
class View:
    """One table of a report, as numbers (display.py renders it; csv prints `table` as it is)."""

    title: str  # what each cell is
    table: pd.DataFrame  # [run,] model, [factors,] n_seeds, n_chance, then per value column v: v, v_ci, v_lo, v_hi
    values: list[str]  # the value columns (metric names, shifts as text like "-0.5", or layer taps)
    bounds: tuple[float, float]  # the range of the values: v_lo and v_hi are cut to it
    key: tuple[str, str] | None = None  # ("axis", "dx") or ("quantity", q): labels the view in a stacked CSV


def wide_view(title: str, means: pd.DataFrame, ci: pd.DataFrame, counts: pd.DataFrame,
              bounds: tuple[float, float], key: tuple[str, str] | None = None) -> View:
    """A View of a (means, ci) pair from shift_table or layer_table, with the seed counts of each row."""
    names = [f"{c:g}" if isinstance(c, (float, np.floating)) else str(c) for c in means.columns]
    table = counts.reindex(means.index).fillna(0).astype(int).reset_index()
    for name, c in zip(names, means.columns):
        table[name] = means[c].to_numpy(float)
        table[f"{name}_ci"] = ci[c].to_numpy(float)
    return View(title, with_bounds(table, names, bounds), names, bounds, key)


@dataclass
class Report:
    results: list[Result]  # as reported: seeds at chance left out under drop_chance
    views: list[View]
    flags: pd.DataFrame  # seed_flags of the seeds in the tables
    dropped: pd.DataFrame  # the seeds that drop_chance left out (seed_flags rows; empty without it)


def folder_list(paths) -> list[str | Path]:
    """The folders a report is asked for: one path (a str is one folder, not its characters) or a list of them;
    none is an InvlabError."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise InvlabError("no folder to report: give one or more run, sweep or measure folders (or one study)")
    return paths


def _refuse_repeats(paths: list[str | Path]) -> None:
    """The same folder named twice (another spelling, a link to it) would count every seed of it twice."""
    seen: dict[Path, str | Path] = {}
    for p in paths:
        real = Path(p).resolve()
        if real in seen:
            raise InvlabError(f"{p} and {seen[real]} are the same folder; name each run or sweep once (given twice, "
                              f"its seeds would be counted twice)")
        seen[real] = p


def build_report(paths: list[str | Path], *, by: str = "model", metric: str = "flip_rate", axis: str | None = None,
                 drop_chance: bool = False) -> Report:
    """Load results and compute the comparison tables that `invlab report` shows (plots: plots.plot_all on
    Report.results, so that --drop-chance applies to them too)."""
    choose("--by", by, BY)
    choose("metric", metric, METRIC_COLUMNS)
    if axis is not None:
        choose("shift axis", axis, AXES)
        if by != "shift":  # only the shift table has an axis to pick
            raise InvlabError(f"--axis {axis} picks the axis of --by shift; with --by {by} it would be ignored: add "
                              "--by shift, or leave --axis out")
    paths = folder_list(paths)
    studies = [p for p in paths if is_study(p)]
    if studies:  # report/study.py compares a study's runs (a column per varied key); it calls this on the runs
        raise InvlabError(f"{studies[0]} is a study folder: report.study.compare_folders (what `invlab report` "
                          "calls) compares its runs; or name run folders here")
    _refuse_repeats(paths)
    results = load_results(paths)
    flags = seed_flags(results)
    dropped = flags[flags["at_chance"]] if drop_chance else flags.iloc[:0]
    if len(dropped):
        results = [r for r in (without_seeds(r, dropped) for r in results) if len(r.summary)]
        flags = flags[~flags["at_chance"]]
        if not results:
            raise InvlabError(f"every seed of {', '.join(dict.fromkeys(dropped['run']))} is at chance, so "
                              "--drop-chance leaves nothing to report; leave it out to see them flagged.")
    views = _views(results, seed_counts(flags), by, metric, axis)
    if len(results) == 1:  # one result: the run column says nothing
        views = [replace(v, table=v.table.drop(columns="run")) for v in views]
    return Report(results=results, views=views, flags=flags, dropped=dropped)


def _views(results: list[Result], counts: pd.DataFrame, by: str, metric: str, axis: str | None) -> list[View]:
    if by == "model":
        views = [View("per model: mean ± 95% CI over seeds (mean/worst over non-zero shifts)",
                      model_table(results), model_metrics(results), RATE_RANGE)]
        if any(r.lie is not None for r in results):  # a sweep with --metric lie: model x transform
            views.append(wide_view(LIE_TITLE, *lie_table(results), counts, LAYER_RANGE, ("metric", "lie")))
        return views
    if by == "layer":
        views = []
        for q, words in LAYER_QUANTITIES.items():
            over = "over the shift grid" if q == "normalized_variance" else "mean over non-zero shifts"
            views.append(wide_view(f"per layer: {words}; {over}, mean ± 95% CI over seeds",
                                   *layer_table(results, q), counts, LAYER_RANGE, ("quantity", q)))
        return views
    axes = [axis] if axis else [a for a in AXES if any(axis_slice(r.invariance, a)[a].nunique() > 1 for r in results)]
    if not axes:
        raise InvlabError("these results sweep no axis with more than one shift; use --by model")
    return [wide_view(f"{metric} along {a}{' (the other shift 0)' if a in ('dx', 'dy') else ''}: mean ± 95% CI over seeds",
                      *shift_table([r for r in results if a in r.invariance] or results, metric, a), counts, RATE_RANGE,
                      ("axis", a)) for a in axes]  # along angle: the rotate sweeps among the results (dx: the others)
