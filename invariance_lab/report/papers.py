"""The report's tables of a run held against other test sets and against a paper: a column per test set
(data.test_sets) and, for a config with a `paper:` block, ours beside the published numbers.

    views = per_test_set_views([load_result(run_dir)])   # [] when no run measured other test sets
    views = paper_views([load_result(run_dir)])      # [] when no run's config has a paper: block

Ours is the mean over seeds with its 95% t interval, in percent as papers print them; "in CI" says whether the
published mean lies in our interval (widened by 0.05, half the paper's last printed digit). A block with
`compare: order` (numbers from another setup) is held by ranks instead: per metric, each model's rank among the
block's models in ours and in the paper's (1 = the highest), and whether the two orders are the same.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..core.stats import ci_halfwidth, with_bounds
from ..core.errors import InvlabError, RunFolderError
from ..schema.paper import check_paper, comparison, entries, published
from ..schema.safeyaml import load_yaml
from ..schema.test_sets import OWN
from ..store.layout import CONFIG_FILE
from ..store.results import Result
from ..store.test_sets import load_test_sets, other_test_sets
from .tables import CHANCE_MARK, RATE_RANGE, View

PRINTED = 0.05  # half of a paper's last printed digit (one decimal of a percentage)
PAPER_HEAD = ("ours beside the paper (config paper:), in %: ours the mean ± 95% CI over seeds, the paper's mean ± "
              "std as printed")
IN_CI_NOTE = "; in_ci: the paper's mean lies in our interval"
PAPER_TITLE = PAPER_HEAD + IN_CI_NOTE
# labels the paper table in a stacked CSV (a first column `table`: its own column `paper` holds the paper's number)
PAPER_KEY = ("table", "paper")
ORDER_NOTE = ("; compare: order (the paper's numbers come from another setup): rank, ours / the paper's among the "
              "block's models (1 = the highest); same_order: the two rankings agree")


def _summaries(result: Result) -> dict[str, pd.DataFrame]:
    """{test set: summary table}: the run's own first (OWN), then data.test_sets in config order, each with the
    seeds of the run's own table only (--drop-chance leaves a seed out of every column)."""
    kept = pd.MultiIndex.from_frame(result.summary[["model", "seed"]].astype({"model": str, "seed": int}))
    others = {name: t[pd.MultiIndex.from_frame(t[["model", "seed"]].astype({"model": str, "seed": int})).isin(kept)]
              for name, t in load_test_sets(result).items()}
    return {OWN: result.summary, **others}


def per_test_set_views(results: list[Result], metric: str = "clean_accuracy") -> list[View]:
    """One view, per (run,) model: `metric` on the run's own test set (default) and on each of data.test_sets."""
    measured = [r for r in results if other_test_sets(r)]
    if not measured:
        return []
    names = list(dict.fromkeys(n for r in measured for n in [OWN, *other_test_sets(r)]))
    rows = []
    for r in measured:
        tables = _summaries(r)
        for model, g in r.summary.groupby("model", sort=False):
            row = {"run": r.label, "model": model, "n_seeds": int(g["seed"].nunique())}
            for name in names:
                t = tables.get(name)
                values = t.loc[t["model"] == model, metric].astype(float) if t is not None else pd.Series([], float)
                row[name] = float(values.mean()) if len(values) else math.nan
                row[f"{name}_ci"] = ci_halfwidth(values)
            rows.append(row)
    table = with_bounds(pd.DataFrame(rows), names, RATE_RANGE)
    if len(results) == 1:
        table = table.drop(columns="run")
    return [View(f"{metric} per test set: mean ± 95% CI over seeds ({OWN}: the run's own test set; the others: "
                 "data.test_sets, in test_sets/<name>/)", table, names, RATE_RANGE, ("test_sets", metric))]


def paper_block(result: Result) -> dict | None:
    """The `paper:` block of a run's config.yaml, or None (a sweep or measure folder, a config without one, or one
    that cannot be read: the report's tables come from the CSVs, which do not need it). A block that is there but
    is not one is a RunFolderError naming the file: the folder may come from anyone."""
    path = result.path / CONFIG_FILE
    if result.meta.get("kind") != "run" or not path.is_file():
        return None
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"), str(path))  # invlab's loader: size and alias limits
    except (InvlabError, OSError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict) or raw.get("paper") is None:
        return None
    try:
        return check_paper(raw["paper"])
    except ValueError as e:
        raise RunFolderError(f"{path}: its paper: block is not one ({e}); the folder was not written by invlab or "
                             "was edited") from None


def paper_rows(result: Result, paper: dict) -> list[dict]:
    """One row per (model, metric) of the block: ours (mean, CI, interval), the paper's, the difference, in CI;
    under compare: order, the ranks instead of the difference (_ranked)."""
    tables, rows, means = _summaries(result), [], []
    for model, metrics in entries(paper).items():
        for key, value in metrics.items():
            test_set, _, metric = str(key).rpartition(".")
            t = tables.get(test_set or OWN)
            x = 100 * t.loc[t["model"] == model, metric].astype(float) if t is not None and metric in t else []
            mean, half = (float(np.mean(x)), ci_halfwidth(x)) if len(x) else (math.nan, math.nan)
            lo, hi = max(0.0, mean - half), min(100.0, mean + half)
            theirs, std = published(value)
            inside = "–" if math.isnan(half) else "yes" if lo - PRINTED <= theirs <= hi + PRINTED else "no"
            if inside != "–" and _all_at_chance(result.summary, model):
                inside += f" {CHANCE_MARK}"  # a network at chance agrees with any consistency: the "yes" says nothing
            rows.append(dict(run=result.label, model=model, test_set=test_set or OWN, metric=metric,
                             n_seeds=len(x), ours=_pm(mean, half, cut=True), paper=_pm(theirs, std),
                             difference=f"{mean - theirs:+.1f}", in_ci=inside))
            means.append((mean, theirs))
    return _ranked(rows, means) if comparison(paper) == "order" else rows


def _all_at_chance(summary: pd.DataFrame, model: str) -> bool:
    """Whether every seed of `model` in the run's own table is at chance (summary.csv's at_chance)."""
    flags = summary.loc[summary["model"].astype(str) == model, "at_chance"] if "at_chance" in summary else []
    return len(flags) > 0 and bool((flags == True).all())  # noqa: E712 (empty cells: unknown, not at chance)


def _ranked(rows: list[dict], means: list[tuple[float, float]]) -> list[dict]:
    """compare: order: the rows without the value comparison, with each model's rank among the block's models per
    (test set, metric), ours / the paper's (1 = the highest; ties share the better rank), and per group whether the
    two orders are the same ("–" while a model is unmeasured)."""
    table = pd.DataFrame(rows).assign(_ours=[m for m, _ in means], _paper=[p for _, p in means])
    out = [dict(r) for r in rows]
    for _, g in table.groupby(["test_set", "metric"], sort=False):
        ours, theirs = g["_ours"].rank(ascending=False, method="min"), g["_paper"].rank(ascending=False, method="min")
        same = "–" if g["_ours"].isna().any() else "yes" if (ours == theirs).all() else "no"
        for i in g.index:
            rank = "–" if math.isnan(ours[i]) else f"{int(ours[i])} / {int(theirs[i])}"
            out[i].update(difference="–", in_ci="–", rank=rank, same_order=same)
    return out


def _pm(mean: float, spread: float | None, cut: bool = False) -> str:
    """"73.7 ± 1.0", "100.0" (no spread: one seed, or a paper that prints none), "–" (not measured); with `cut`,
    an interval reaching past 0 or 100 % is cut there and shown as "0.9 [0, 2.5]", as the model table does."""
    if math.isnan(mean):
        return "–"
    if spread is None or math.isnan(spread):
        return f"{mean:.1f}"
    if cut and (mean - spread < 0 or mean + spread > 100):
        return f"{mean:.1f} [{round(max(0.0, mean - spread), 1):g}, {round(min(100.0, mean + spread), 1):g}]"
    return f"{mean:.1f} ± {spread:.1f}"


def paper_views(results: list[Result]) -> list[View]:
    """One view of every run whose config holds a paper: block; [] when none does."""
    rows = [row for r in results if (block := paper_block(r)) for row in paper_rows(r, block)]
    if not rows:
        return []
    table = pd.DataFrame(rows)
    if len(results) == 1:
        table = table.drop(columns="run")
    if "rank" in table:  # a compare: order block: its rows hold ranks, the others none
        title = PAPER_TITLE + ORDER_NOTE
        if table["rank"].notna().all():  # order blocks only: nothing is compared by value
            table, title = table.drop(columns=["difference", "in_ci"]), PAPER_HEAD + ORDER_NOTE
        table[["rank", "same_order"]] = table[["rank", "same_order"]].fillna("–")
        return [View(title, table, [], (0.0, 100.0), PAPER_KEY)]
    return [View(PAPER_TITLE, table, [], (0.0, 100.0), PAPER_KEY)]
