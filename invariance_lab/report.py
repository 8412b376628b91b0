"""Aggregate finished runs over seeds (mean ± t confidence interval) and build display tables.

Input is a result folder written by a run or a sweep (meta.json, invariance.csv, summary.csv); output is
pandas DataFrames and formatted text. Nothing here prints: the CLI renders. Example (from Python):

    r = load_result("results/seed_question/20261125-101500")
    df = model_table([r])
    print(format_table(df, "markdown", caption="\\n".join(protocol_lines([r]))))
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from .errors import InvlabError

METRICS = ("accuracy", "flip_rate", "prob_change", "neighbor_flip_rate")
FORMATS = ("table", "markdown", "csv")
AXES = ("dx", "dy")
FACTORS = ("downsample", "head", "padding")
# Per-seed summary columns that model_table aggregates (mean over seeds ± CI half-width).
SUMMARY_METRICS = ("clean_accuracy", "mean_flip_rate", "worst_flip_rate", "mean_prob_change",
                   "worst_prob_change", "mean_neighbor_flip_rate")
MODE_WORDS = {
    "canvas": "canvas shift (letter re-rendered at the shifted position on a blank canvas)",
    "circular": "circular shift (image rolled with wrap-around, torch.roll)",
    "parts": "part displacement (right-most stroke moved by (dx, dy) px, rest of the letter fixed, on the canvas)",
}
GRID_WORDS = {"product": "every (dx, dy) combination", "axes": "along each axis"}
INVARIANCE_COLUMNS = ("model", "seed", "dx", "dy", *METRICS)
SUMMARY_COLUMNS = ("model", "seed", *FACTORS, *SUMMARY_METRICS)
# The layer profile (layerwise.py), written by `invlab sweep --layers` beside the sweep's CSVs.
LAYER_QUANTITIES = {
    "mean_equivariance_error": "equivariance error ||F(Tx) - T'F(x)|| / ||F(x)||",
    "mean_pooled_invariance_error": "pooled invariance error ||mean F(Tx) - mean F(x)|| / ||mean F(x)||",
    "normalized_variance": "normalised variance of the pooled activations (0 = invariant)",
}
LAYERS_SUMMARY_COLUMNS = ("model", "seed", "layer", "layer_name", "stride", *LAYER_QUANTITIES)


@dataclass
class Result:
    """One finished run or sweep, loaded from disk."""

    path: Path  # the result folder
    label: str  # "<name>/<run_id>" or "<name>/<run_id>/<sweep_id>": how tables and legends name it
    meta: dict  # meta.json as written by the run (holds the protocol)
    invariance: pd.DataFrame  # tidy: one row per model × seed × shift
    summary: pd.DataFrame  # one row per model × seed
    layers: pd.DataFrame | None = None  # layers_summary.csv when the sweep ran --layers: model × seed × tap


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise InvlabError(f"{path.parent} is not a complete result folder: {path.name} is missing. "
                          "A run or sweep folder holds meta.json, invariance.csv and summary.csv.")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvlabError(f"{path} could not be read as CSV ({exc}).") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InvlabError(f"{path} lacks the column(s) {', '.join(missing)}; it needs "
                          f"{', '.join(required)}. Was it written by another version of invariance_lab?")
    return df


def load_result(path: str | Path) -> Result:
    """Load a finished run folder (results/<name>/<run_id>) or sweep folder (.../sweeps/<sweep_id>).

    A run folder that also holds sweeps/ loads the run's own tables; pass a sweep folder to see a sweep."""
    path = Path(path)
    if not path.exists():
        raise InvlabError(f"result folder {path} does not exist. Pass a run folder results/<name>/<run_id>/ "
                          "or a sweep folder results/<name>/<run_id>/sweeps/<sweep_id>/.")
    if not (path / "meta.json").is_file():
        raise InvlabError(f"{path} is not a result folder: it has no meta.json. Pass a run folder "
                          "results/<name>/<run_id>/ or a sweep folder results/<name>/<run_id>/sweeps/<sweep_id>/.")
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvlabError(f"{path / 'meta.json'} is not valid JSON ({exc}).") from exc
    kind = meta.get("kind", "run")
    status = meta.get("status", "unknown")
    if status != "complete":
        raise InvlabError(f"{path} is not a finished {kind} (status: {status}); only folders whose meta.json "
                          "says status: complete can be reported. Wait for it to finish or re-run it.")
    invariance = _read_csv(path / "invariance.csv", INVARIANCE_COLUMNS)
    summary = _read_csv(path / "summary.csv", SUMMARY_COLUMNS)
    layers = (_read_csv(path / "layers_summary.csv", LAYERS_SUMMARY_COLUMNS)
              if (path / "layers_summary.csv").is_file() else None)
    resolved = path.resolve()
    if kind == "sweep" and resolved.parent.name == "sweeps":  # the folder layout names run and sweep
        run_dir = resolved.parent.parent
        label = f"{meta.get('name', run_dir.parent.name)}/{run_dir.name}/{resolved.name}"
    else:
        label = f"{meta.get('name', resolved.parent.name)}/{meta.get('run_id', resolved.name)}"
    return Result(path=path, label=label, meta=meta, invariance=invariance, summary=summary, layers=layers)


# --- Student-t quantile (scipy-free: one quantile does not justify a 40 MB dependency) -------------------

def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b): Lentz continued fraction (Numerical Recipes, betacf)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only below this point: use symmetry
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return math.exp(log_front) * h / a


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """Inverse of t_cdf, by bisection (monotone, so this cannot fail; 200 halvings reach float precision)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def ci_halfwidth(values, confidence: float = 0.95) -> float:
    """Half-width of the t confidence interval of the mean: t_{(1+c)/2, n-1} · s / √n (s with ddof=1).

    NaNs are skipped (as pandas' mean skips them); NaN when fewer than two values remain."""
    if not 0.0 < confidence < 1.0:
        raise InvlabError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence}.")
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n < 2:
        return float("nan")
    return t_quantile((1.0 + confidence) / 2.0, n - 1) * float(np.std(x, ddof=1)) / math.sqrt(n)


# --- tables -----------------------------------------------------------------------------------------------

def model_table(results: list[Result], confidence: float = 0.95) -> pd.DataFrame:
    """One row per (run, model): factors, n_seeds, and each summary metric as mean over seeds + `_ci`."""
    rows = []
    for r in results:
        for model, g in r.summary.groupby("model", sort=False):
            row = {"run": r.label, "model": model, **{f: g[f].iloc[0] for f in FACTORS},
                   "n_seeds": int(g["seed"].nunique())}
            for m in SUMMARY_METRICS:
                row[m] = float(g[m].mean())
                row[f"{m}_ci"] = ci_halfwidth(g[m], confidence)
            rows.append(row)
    return pd.DataFrame(rows)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise InvlabError(f"unknown metric '{metric}'; choose one of: {', '.join(METRICS)}.")


def _check_axis(axis: str) -> None:
    if axis not in AXES:
        raise InvlabError(f"unknown shift axis '{axis}'; choose one of: {', '.join(AXES)}.")


def axis_slice(df: pd.DataFrame, axis: str) -> pd.DataFrame:
    """The 1-D cut of a tidy shift table: axis "dx" keeps rows with dy == 0, "dy" rows with dx == 0."""
    _check_axis(axis)
    other = "dy" if axis == "dx" else "dx"
    return df[np.isclose(df[other].astype(float), 0.0)]


def shift_table(results: list[Result], metric: str, axis: str,
                confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(means, ci): rows indexed by (run, model), one column per shift value along `axis` (the other shift
    is 0), cell = mean over seeds of `metric`; `ci` holds the matching CI half-widths, same shape."""
    _check_metric(metric)
    _check_axis(axis)
    parts = []
    for r in results:
        cut = axis_slice(r.invariance, axis)
        if cut.empty:
            other = "dy" if axis == "dx" else "dx"
            raise InvlabError(f"{r.label} has no shifts with {other} = 0, so there is no 1-D view along {axis}.")
        agg = (cut.groupby(["model", axis], sort=False)[metric]
               .agg(mean="mean", ci=lambda v: ci_halfwidth(v, confidence)).reset_index())
        agg.insert(0, "run", r.label)
        parts.append(agg)
    tidy = pd.concat(parts, ignore_index=True)
    row_order = list(dict.fromkeys(zip(tidy["run"], tidy["model"])))
    shifts = sorted(tidy[axis].astype(float).unique())
    out = []
    for value in ("mean", "ci"):
        wide = tidy.pivot_table(index=["run", "model"], columns=axis, values=value, dropna=False, sort=False)
        wide = wide.reindex(index=pd.MultiIndex.from_tuples(row_order, names=["run", "model"]), columns=shifts)
        wide.columns.name = axis
        out.append(wide)
    return out[0], out[1]


def protocol_lines(results: list[Result]) -> list[str]:
    """One sentence per result stating the shift protocol, so every printed table says how it was measured."""
    def span(name: str, spec) -> str:
        start, stop, step = (float(v) for v in spec)
        return f"{name} {start:g}" if start == stop else f"{name} {start:g}..{stop:g} step {step:g}"

    lines = []
    for r in results:
        p = r.meta.get("protocol", {})
        mode = p.get("mode", "?")
        parts = [MODE_WORDS.get(mode, f"{mode} shift")]
        if "dx" in p and "dy" in p:
            parts.append(f"{span('dx', p['dx'])}, {span('dy', p['dy'])} "
                         f"({GRID_WORDS.get(p.get('grid'), str(p.get('grid')))})")
        if p.get("task") == "position":
            parts.append("task position (label = top/bottom half; paired test images, bottom = top rolled by half "
                         "the canvas, so an invariant model scores exactly 0.5)")
        if "test_images" in p:
            parts.append(f"{p['test_images']} test images")
        if "layers" in p:
            parts.append(f"layer profile on the first {p['layers'].get('n_images')} of them")
        if "seeds" in p:
            parts.append("seeds " + ",".join(str(s) for s in p["seeds"]))
        lines.append(f"{r.meta.get('kind', 'run')} {r.label}: " + ", ".join(parts))
    return lines


# --- formatting -------------------------------------------------------------------------------------------

def _display_frame(df: pd.DataFrame, ci_df: pd.DataFrame | None) -> tuple[pd.DataFrame, dict]:
    """Flatten the index into columns; return (frame, {value column: ci Series}) with string column names."""
    def flat(d: pd.DataFrame) -> pd.DataFrame:
        d = d.reset_index() if not isinstance(d.index, pd.RangeIndex) else d.reset_index(drop=True)
        d.columns = [f"{c:g}" if isinstance(c, (float, np.floating)) else str(c) for c in d.columns]
        return d

    frame = flat(df)
    if ci_df is not None:
        ci = flat(ci_df)
        cis = {c: ci[c] for c in ci.columns if c in frame.columns and pd.api.types.is_float_dtype(ci[c])}
    else:
        cis = {c: frame[f"{c}_ci"] for c in frame.columns if f"{c}_ci" in frame.columns}
        frame = frame.drop(columns=[f"{c}_ci" for c in cis])
    return frame, cis


def _cell(value, ci=None) -> str:
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        text = f"{value:.3f}"
        return text if ci is None or math.isnan(ci) else f"{text} ± {ci:.3f}"
    return str(value)


def _text_rows(frame: pd.DataFrame, cis: dict) -> list[list[str]]:
    return [[_cell(frame[c].iloc[i], cis[c].iloc[i] if c in cis else None) for c in frame.columns]
            for i in range(len(frame))]


# Short headers for the terminal, where width is scarce (markdown and csv keep the column names).
SHORT_HEADERS = {"clean_accuracy": "clean acc", "mean_flip_rate": "flip mean", "worst_flip_rate": "flip worst",
                 "mean_prob_change": "Δp mean", "worst_prob_change": "Δp worst",
                 "mean_neighbor_flip_rate": "step flip", "n_seeds": "seeds"}


def brief_model_table(results: list[Result]) -> pd.DataFrame:
    """The few columns `invlab run` and `invlab sweep` print at the end (`invlab report` shows them all)."""
    df = model_table(results)
    keep = ["model", *FACTORS, "clean_accuracy", "mean_flip_rate", "worst_flip_rate", "mean_prob_change"]
    return df[keep + [f"{c}_ci" for c in keep[4:]]]


def to_rich_table(df: pd.DataFrame, title: str, caption: str, ci_df: pd.DataFrame | None = None) -> Table:
    """A rich Table: numbers as "mean ± ci" (CI from `<col>_ci` columns or from `ci_df`), caption below.
    The three factor columns are shown as one (downsample/head/padding) to fit a terminal."""
    frame, cis = _display_frame(df, ci_df)
    if all(f in frame.columns for f in FACTORS):
        at = list(frame.columns).index(FACTORS[0])
        joined = frame[list(FACTORS)].astype(str).agg(" / ".join, axis=1)  # spaces let it wrap
        frame = frame.drop(columns=list(FACTORS))
        frame.insert(at, "/".join(FACTORS), joined)
    table = Table(title=title, caption=caption, caption_justify="left")
    for c in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[c])
        # numbers wrap as "0.381 / ± 0.089" in narrow terminals rather than being cut
        table.add_column(SHORT_HEADERS.get(c, c), justify="right" if numeric else "left",
                         no_wrap=c in ("model", "run"), min_width=5 if numeric else None)
    for row in _text_rows(frame, cis):
        table.add_row(*row)
    return table


def format_table(df: pd.DataFrame, fmt: str, ci_df: pd.DataFrame | None = None,
                 caption: str | None = None, title: str | None = None) -> str:
    """Render a model/shift table as text.

    "markdown": GitHub pipe table, "mean ± ci" cells, caption (protocol lines) below as a paragraph.
    "csv": plain numbers, CI in separate `<col>_ci` columns next to each value, readable by pandas.read_csv;
           the caption is left out so the file stays machine-readable (print the protocol elsewhere).
    "table": the rich table rendered to plain text (use to_rich_table for colour)."""
    if fmt not in FORMATS:
        raise InvlabError(f"unknown table format '{fmt}'; choose one of: {', '.join(FORMATS)}.")
    frame, cis = _display_frame(df, ci_df)
    if fmt == "csv":
        cols = {}
        for c in frame.columns:
            cols[c] = frame[c]
            if c in cis:
                cols[f"{c}_ci"] = cis[c].to_numpy()
        return pd.DataFrame(cols).to_csv(index=False)
    if fmt == "table":
        console = Console(file=io.StringIO(), width=200, color_system=None)
        console.print(to_rich_table(df, title or "", caption or "", ci_df))
        return console.file.getvalue()
    head = list(frame.columns)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in head]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(head) + " |",
              "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in _text_rows(frame, cis)]
    if caption:
        for line in caption.splitlines():  # one paragraph per protocol line (markdown merges adjacent lines)
            lines += ["", line]
    return "\n".join(lines) + "\n"


# --- the `invlab report` command as a function ------------------------------------------------------------

BY = ("model", "shift", "layer")


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
    if quantity not in LAYER_QUANTITIES:
        raise InvlabError(f"unknown layer quantity '{quantity}'; choose one of: {', '.join(LAYER_QUANTITIES)}.")
    with_layers = [r for r in results if r.layers is not None]
    if not with_layers:
        raise InvlabError("no layer profile in these results: make one with `invlab sweep RUN_DIR --layers` and "
                          "report that sweep folder (it holds layers_summary.csv).")
    parts = []
    for r in with_layers:
        agg = (r.layers.groupby(["model", "layer_name"], sort=False)[quantity]
               .agg(mean="mean", ci=lambda v: ci_halfwidth(v, confidence)).reset_index())
        agg.insert(0, "run", r.label)
        parts.append(agg)
    tidy = pd.concat(parts, ignore_index=True)
    rows = pd.MultiIndex.from_tuples(list(dict.fromkeys(zip(tidy["run"], tidy["model"]))), names=["run", "model"])
    cols = sorted(tidy["layer_name"].unique(), key=_layer_order)
    out = []
    for value in ("mean", "ci"):
        wide = tidy.pivot_table(index=["run", "model"], columns="layer_name", values=value, dropna=False, sort=False)
        wide = wide.reindex(index=rows, columns=cols)
        wide.columns.name = "layer"
        out.append(wide)
    return out[0], out[1]


@dataclass
class Report:
    tables: list[Table]  # rich tables, for fmt "table"
    text: str  # the markdown or csv text (empty for fmt "table")
    protocol: list[str]
    plots: list[Path]


def newest_run(results_dir: str | Path) -> Path:
    """The most recently finished run under results_dir (for `invlab report` with no folder)."""
    from .runs import finished_runs

    runs = finished_runs(Path(results_dir))
    if not runs:
        raise InvlabError(f"no finished run under {results_dir}; run `invlab run CONFIG` first or name a run folder")
    return runs[-1][0]


def build_report(paths: list[str | Path], *, by: str = "model", metric: str = "flip_rate", axis: str | None = None,
                 fmt: str = "table", plot_dir: str | Path | None = None) -> Report:
    """Load results and build the comparison tables (and plots) that `invlab report` shows."""
    if by not in BY:
        raise InvlabError(f"unknown --by '{by}'; choose one of: {', '.join(BY)}.")
    if fmt not in FORMATS:
        raise InvlabError(f"unknown table format '{fmt}'; choose one of: {', '.join(FORMATS)}.")
    _check_metric(metric)
    if axis is not None:
        _check_axis(axis)
    results = [load_result(p) for p in paths]
    protocol = protocol_lines(results)
    caption = "\n".join(protocol)
    several = len(results) > 1
    views = []  # (title, frame, ci_frame)
    if by == "model":
        df = model_table(results)
        views.append(("per model: mean ± 95% CI over seeds (mean/worst over non-zero shifts)",
                      df if several else df.drop(columns="run"), None))
    elif by == "layer":
        axes = []
        for q, words in LAYER_QUANTITIES.items():
            mean, ci = layer_table(results, q)
            if not several:
                mean, ci = mean.droplevel("run"), ci.droplevel("run")
            over = "over the shift grid" if q == "normalized_variance" else "mean over non-zero shifts"
            views.append((f"per layer: {words}; {over}, mean ± 95% CI over seeds", mean, ci))
    else:
        axes = [axis] if axis else [a for a in AXES
                                    if any(axis_slice(r.invariance, a)[a].nunique() > 1 for r in results)]
        if not axes:
            raise InvlabError("these results sweep no axis with more than one shift; use --by model")
        for a in axes:
            mean, ci = shift_table(results, metric, a)
            if not several:
                mean, ci = mean.droplevel("run"), ci.droplevel("run")
            views.append((f"{metric} along {a} (the other shift 0): mean ± 95% CI over seeds", mean, ci))
    tables = [to_rich_table(df, title, caption, ci) for title, df, ci in views] if fmt == "table" else []
    if fmt == "csv":
        parts = []
        labels = axes if by == "shift" else list(LAYER_QUANTITIES) if by == "layer" else [None]
        for (title, df, ci), a in zip(views, labels):
            text = format_table(df, "csv", ci_df=ci)
            frame = pd.read_csv(io.StringIO(text))
            if a is not None:
                frame.insert(0, "quantity" if by == "layer" else "axis", a)
            parts.append(frame)
        text = pd.concat(parts, ignore_index=True).to_csv(index=False)
    elif fmt == "markdown":
        text = "\n".join(format_table(df, "markdown", ci_df=ci, caption=caption, title=title) for title, df, ci in views)
    else:
        text = ""
    plots = []
    if plot_dir is not None:
        from .plots import plot_all

        plots = plot_all(results, plot_dir, metrics=tuple(dict.fromkeys([metric, "flip_rate", "prob_change"])))
    return Report(tables=tables, text=text, protocol=protocol, plots=plots)
