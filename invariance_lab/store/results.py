"""Loading a finished run or sweep folder for reports: meta.json and the tidy tables, each checked.

    r = load_result("results/seed_question/20261125-101500")
    r.summary     # one row per model x seed; r.invariance: one row per model x seed x shift

Files come from store/layout.py's contract (its names); a folder that is not finished, or a table that is damaged or
edited, is an InvlabError naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from ..core.columns import (CONSISTENT, CORRECT_FLIP, CORRECT_FLIP_SUMMARY, GRID_COLUMNS, LAYER_COLUMNS,
                            LAYER_SUMMARY_COLUMNS, LIE_COLUMNS, MAX_COLUMN, METRIC_COLUMNS, ROBUST, SUMMARY_METRICS, WORST_CASE_COLUMNS,
                            WORST_SHIFT_COLUMNS)
from ..core.errors import InvlabError, RunFolderError, clip, quote
from ..schema.fields import SEED_MAX
from .layout import INVARIANCE_CSV, LAYERS_CSV, LAYERS_SUMMARY_CSV, LIE_CSV, META_FILE, SUMMARY_CSV, SWEEP_DIR
from .meta import read_meta, run_state, still_running


# a fraction (accuracies, flip rates, total variation distances) outside [0, 1] is damage; ROUND_OFF lets a sum
# of float32 probabilities through
ROUND_OFF = 1e-5
GRID_COLUMNS_ALL = sorted({c for columns in GRID_COLUMNS.values() for c in columns})  # dx, dy; angle; scale

# What each number column of the tidy tables may hold, the one place it is checked (_check_values): a kind,
# (lowest, highest, whole numbers only, its words), and where the cell may be empty (NaN once read):
# NEVER; ALWAYS (the metric can be undefined: docs/metrics.md); UNLABELLED (accuracies: images without labels,
# `invlab measure` on a flat folder); NO_SHIFTS (the summary's means and worsts: a row whose n_shifts is 0).
MAX_COUNT = 10**12  # images, shifts, taps, strides: far beyond any measurement, far below float64's whole numbers
MAX_CLASSES = 10**7  # outputs of a classifier: more is not a network invlab measured
# A table larger than its rows could be (meta.json's models x seeds x shifts at ~300 bytes a row of invariance.csv,
# a row per tap in layers.csv) is refused before pandas reads it whole: a sparse file of gigabytes costs nothing
MiB, ROW_BYTES, MAX_TAPS = 2**20, 4096, 1000
FRACTION = (0.0, 1.0 + ROUND_OFF, False, "a fraction from 0 to 1")
FINITE = (-np.inf, np.inf, False, "a finite number")


def _whole(lo: int, hi: int) -> tuple:
    return (lo, hi, True, f"a whole number from {lo:,} to {hi:,}")


NEVER, ALWAYS, UNLABELLED, NO_SHIFTS = "never", "always", "unlabelled", "no shifts"
_EMPTY_WHY = {NEVER: "invlab writes one in every row",
              UNLABELLED: "it is empty only for images without labels, and this folder's were labelled",
              NO_SHIFTS: "it is empty only in a row whose n_shifts is 0"}
COLUMN_RULES = {
    "seed": (_whole(0, SEED_MAX), NEVER), "n_images": (_whole(1, MAX_COUNT), NEVER),
    "n_shifts": (_whole(0, MAX_COUNT), NEVER), "n_classes": (_whole(1, MAX_CLASSES), ALWAYS),  # empty: unknown
    "layer": (_whole(0, MAX_COUNT), NEVER), "stride": (_whole(1, MAX_COUNT), NEVER),  # layers_summary.csv
    **{c: (FINITE, NEVER) for c in GRID_COLUMNS_ALL},  # invariance.csv's grid point
    **{c: (FINITE, NO_SHIFTS) for c in [*WORST_SHIFT_COLUMNS, *(f"worst_{a}" for a in GRID_COLUMNS_ALL)]},
    # invariance.csv per shift (MAX_COLUMN: never empty there, a table without n_shifts)
    "accuracy": (FRACTION, UNLABELLED), "flip_rate": (FRACTION, NEVER), "prob_change": (FRACTION, NEVER),
    "neighbor_flip_rate": (FRACTION, ALWAYS), CORRECT_FLIP: (FRACTION, ALWAYS), MAX_COLUMN: (FRACTION, NO_SHIFTS),
    # summary.csv; mean_accuracy and worst_accuracy: empty allowed, as a report reads them (no accuracy to plot)
    "clean_accuracy": (FRACTION, UNLABELLED), ROBUST: (FRACTION, UNLABELLED), CONSISTENT: (FRACTION, NEVER),
    **{f"{agg}_{m}": (FRACTION, NO_SHIFTS) for m in ("flip_rate", "prob_change") for agg in ("mean", "worst")},
    **{f"{agg}_{m}": (FRACTION, ALWAYS) for m in ("accuracy", "neighbor_flip_rate") for agg in ("mean", "worst")},
    **{c: (FRACTION, ALWAYS) for c in CORRECT_FLIP_SUMMARY},
}
BOOLEANS = ("at_chance",)  # True, False, or empty (unknown: no labels, or no number of classes)


@dataclass
class Result:
    """One finished run or sweep, loaded from disk."""

    path: Path  # the result folder
    label: str  # "<name>/<run_id>" or "<name>/<run_id>/<sweep_id>": how tables and legends name it
    meta: dict  # meta.json as written by the run (holds the protocol)
    invariance: pd.DataFrame  # tidy: one row per model × seed × shift
    summary: pd.DataFrame  # one row per model × seed
    layers: pd.DataFrame | None = None  # layers_summary.csv when the sweep ran --layers: model × seed × tap
    layer_shifts: pd.DataFrame | None = None  # layers.csv beside it: model × seed × tap × shift
    lie: pd.DataFrame | None = None  # lie.csv when the sweep ran --metric lie: model × seed × transform × layer


def _read_csv(path: Path, required: list[str], numeric: list[str], text: tuple[str, ...] = (),
              labelled: bool | None = None, max_bytes: int | None = None) -> pd.DataFrame:
    """The CSV, checked: its required columns, at least one row, numbers in the `numeric` columns it has (older
    folders lack the later ones) and in every column of COLUMN_RULES, each value of the kind its rule says;
    `text` columns are read as strings (a tap named 0 stays "0", not 0.0), an empty cell as NaN. labelled: whether
    the images had labels (accuracies may be empty only without); None when unknown (then they may)."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "is missing"  # a folder or a FIFO at its name
        raise RunFolderError(f"{path.parent} is not a complete result folder: {path.name} {what}. "
                             f"A run or sweep folder holds {META_FILE}, {INVARIANCE_CSV} and {SUMMARY_CSV}.")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:  # a (sparse) file of gigabytes would be read whole first
        raise RunFolderError(f"{path} is {size:,} bytes, more than the rows its {META_FILE} measured can take "
                             f"(at most {max_bytes:,}); the folder was edited or is not invlab's")
    try:
        df = pd.read_csv(path, dtype=dict.fromkeys(text, str))
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # ParserError and EmptyDataError are ValueErrors
        raise RunFolderError(f"{path} could not be read as CSV ({clip(exc, 160)}).") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise RunFolderError(f"{path} lacks the column(s) {', '.join(missing)}; it needs {', '.join(required)}. "
                             f"Was it written by another version of invariance_lab, or edited?")
    if df.empty:
        raise RunFolderError(f"{path} is damaged: it has no rows")
    dtypes = df.dtypes
    ruled = [c for c in df.columns if c in COLUMN_RULES and c not in text]  # in the file's order
    bad = [c for c in dict.fromkeys([*numeric, *ruled]) if c in dtypes and (
        not pd.api.types.is_numeric_dtype(dtypes[c]) or pd.api.types.is_bool_dtype(dtypes[c]))]
    if bad:
        raise RunFolderError(f"{path} is damaged: column(s) {', '.join(bad)} hold values that are not numbers")
    _check_values(path, df, ruled, labelled)
    keys = [c for c in ("model", "seed", *GRID_COLUMNS_ALL, "layer", "transform") if c in df.columns]
    twice = df.duplicated(subset=keys)
    if twice.any():
        row = df[twice].iloc[0]
        raise RunFolderError(f"{path} is damaged: it has two rows for {', '.join(f'{k} {row[k]}' for k in keys)}; "
                             f"invlab writes one per {' x '.join(keys)}")
    return df


def _check_values(path: Path, df: pd.DataFrame, ruled: list[str], labelled: bool | None) -> None:
    """Every value of the `ruled` columns (numeric, in the file's order) of the kind COLUMN_RULES gives, empty
    only where its rule allows, and BOOLEANS True, False or empty: else a RunFolderError naming the file, the
    column, the first bad row of the first bad column and what the column holds."""
    if ruled:  # one array for all of them: a loop of pandas operations per column cost milliseconds per file
        values = np.column_stack([df[c].to_numpy(dtype=float) for c in ruled])
        kinds, empties = zip(*(COLUMN_RULES[c] for c in ruled))
        lo, hi, whole = (np.array([k[i] for k in kinds]) for i in range(3))
        n = len(df)
        no_shifts = df["n_shifts"].to_numpy(dtype=float) == 0 if "n_shifts" in ruled else np.zeros(n, dtype=bool)
        may_be_empty = np.column_stack([no_shifts if e == NO_SHIFTS else
                                        np.full(n, e == ALWAYS or (e == UNLABELLED and labelled is not True))
                                        for e in empties])
        with np.errstate(invalid="ignore"):
            fine = (values >= lo) & (values <= hi) & np.isfinite(values) & (~whole | (values == np.floor(values)))
        out = np.where(np.isnan(values), ~may_be_empty, ~fine)
        if out.any():
            col = int(out.any(axis=0).argmax())
            row = int(out[:, col].argmax())
            value, name = values[row, col], ruled[col]
            why = f" ({_EMPTY_WHY[empties[col]]})" if np.isnan(value) else ""
            _damaged(path, name, row, "empty (or NaN)" if np.isnan(value) else f"{value:g}", kinds[col][3] + why)
    for name in (c for c in BOOLEANS if c in df.columns):
        cells = df[name]
        if not pd.api.types.is_bool_dtype(cells.dtype):
            ok = cells.isna() | cells.map(lambda v: isinstance(v, (bool, np.bool_)) or str(v).lower() in
                                          ("true", "false"))
            if not ok.all():
                row = int((~ok).to_numpy().argmax())
                _damaged(path, name, row, quote(cells.iloc[row], 40), "True, False or empty (not known)")


def _damaged(path: Path, column: str, row: int, value: str, what: str) -> NoReturn:
    """The message of a bad value; row + 2: the file's line (the header is line 1), the row a spreadsheet shows."""
    raise RunFolderError(f"{path}: column {column} row {row + 2}: {value} is not {what}; the file is damaged or was "
                         f"not written by invlab")


# what makes an unfinished folder of each kind complete: a run resumes in its own folder; a sweep or a measurement
# starts again in a new one
_AGAIN = {"run": "run `invlab run` on its config again to resume it",
          "sweep": "run the same `invlab sweep` again (it writes a new sweep folder; this one can be deleted)",
          "measure": "run the same `invlab measure` again (it writes a new folder; this one can be deleted)"}


def load_result(path: str | Path) -> Result:
    """Load a finished run folder (results/<name>/<run_id>) or sweep folder (.../sweeps/<sweep_id>).

    A run folder that also holds sweeps/ loads the run's own tables; pass a sweep folder to see a sweep."""
    path = Path(path)
    meta = read_meta(path)
    state = run_state(meta)
    if state == "running":  # its process is alive: running it again would duplicate the work
        raise InvlabError(f"{still_running(path, meta)}: only complete folders can be reported")
    if state != "complete":
        raise InvlabError(f"{path} is not a finished {meta['kind']} (status: {state}); only complete folders "
                          f"can be reported: {_AGAIN.get(meta['kind'], _AGAIN['run'])}.")
    # dx, dy; or angle, or scale
    axes = list(GRID_COLUMNS.get(meta["protocol"].get("transform"), GRID_COLUMNS["translate"]))
    # runs and sweeps measure labelled letters or class folders; invlab measure records whether its images had
    # labels (a folder from before it did: unknown, so its accuracies may be empty)
    labels = meta["protocol"].get("labels")
    labelled = labels if isinstance(labels, bool) else (True if meta["kind"] != "measure" else None)
    units = len(meta["protocol"]["models"]) * len(meta["protocol"]["seeds"])
    limit = {"shifts": MiB + units * meta["protocol"]["n_shifts"] * ROW_BYTES, "units": MiB + units * ROW_BYTES}
    limit["layers"] = MiB + limit["shifts"] * MAX_TAPS
    invariance = _read_csv(path / INVARIANCE_CSV, ["model", "seed", *axes, *METRIC_COLUMNS],
                           ["seed", *axes, "n_images", *METRIC_COLUMNS, MAX_COLUMN, CORRECT_FLIP], labelled=labelled,
                           max_bytes=limit["shifts"])
    summary = _read_csv(path / SUMMARY_CSV, ["model", "seed", "downsample", "head", "padding", *SUMMARY_METRICS],
                        ["seed", "n_images", "n_shifts", "n_classes", *SUMMARY_METRICS, *WORST_SHIFT_COLUMNS,
                         *(f"worst_{a}" for a in axes), MAX_COLUMN, *CORRECT_FLIP_SUMMARY, *WORST_CASE_COLUMNS],
                        labelled=labelled, max_bytes=limit["units"])
    layers = None
    if (path / LAYERS_SUMMARY_CSV).is_file():
        layers = _read_csv(path / LAYERS_SUMMARY_CSV, ["model", "seed", *LAYER_SUMMARY_COLUMNS],
                           ["seed", "layer", "stride", "n_images", "n_shifts", *LAYER_SUMMARY_COLUMNS[-3:]],
                           text=("layer_name",), max_bytes=limit["layers"])  # a tap of an nn.Sequential: 0, 1, ...
    layer_shifts = None
    if layers is not None and (path / LAYERS_CSV).is_file():
        layer_shifts = _read_csv(path / LAYERS_CSV, ["model", "seed", *LAYER_COLUMNS],
                                 ["seed", "layer", "stride", "dx", "dy", "n_images", *LAYER_COLUMNS[-2:]],
                                 text=("layer_name",), max_bytes=limit["layers"])
    lie = None
    if (path / LIE_CSV).is_file():  # layer: empty (NaN once read) for the output; a tap's name with --layers
        lie = _read_csv(path / LIE_CSV, LIE_COLUMNS, ["seed", "value"], text=("layer",))
        lie["layer"] = lie["layer"].fillna("")
    for name, df in (("invariance", invariance), ("summary", summary)):
        unknown = set(df["model"].astype(str)) - set(meta["protocol"]["models"])
        if unknown:
            raise InvlabError(f"{path / (INVARIANCE_CSV if name == 'invariance' else SUMMARY_CSV)} names model(s) "
                              f"{quote(sorted(unknown))} that {META_FILE} does not list; the folder was edited")
    _check_complete(path, meta["protocol"], invariance, summary, layers, layer_shifts)
    resolved = path.resolve()
    if meta["kind"] == "sweep" and resolved.parent.name == SWEEP_DIR:  # the folder layout names run and sweep
        label = f"{meta['name']}/{resolved.parent.parent.name}/{resolved.name}"
    else:
        label = f"{meta['name']}/{meta['run_id']}"
    return Result(path=path, label=label, meta=meta, invariance=invariance, summary=summary, layers=layers,
                  layer_shifts=layer_shifts, lie=lie)


def _pairs(df: pd.DataFrame) -> set[tuple[str, int]]:
    return set(zip(df["model"].astype(str), df["seed"].astype(int)))


def _check_complete(path: Path, protocol: dict, invariance: pd.DataFrame, summary: pd.DataFrame,
                    layers: pd.DataFrame | None, layer_shifts: pd.DataFrame | None) -> None:
    """Every model x seed the protocol measured has its rows: a summary row, n_shifts rows of invariance.csv, and
    as many taps in layers.csv as in layers_summary.csv; a folder with some deleted or relabelled would answer
    questions (a report, a claim) from part of what it says it measured."""
    want = {(str(m), int(s)) for m in protocol["models"] for s in protocol["seeds"]}
    for file, df in ((SUMMARY_CSV, summary), (INVARIANCE_CSV, invariance)):
        if _pairs(df) != want:
            odd = sorted(_pairs(df) ^ want)[0]
            raise RunFolderError(f"{path / file}: model {odd[0]} seed {odd[1]} is {'missing' if odd in want else 'extra'}"
                                 f"; its {META_FILE} measured models {', '.join(map(str, protocol['models']))} x seeds "
                                 f"{', '.join(map(str, protocol['seeds']))}, a row each. The folder was edited")
    rows = invariance.groupby(["model", "seed"]).size()
    short = rows[rows != protocol["n_shifts"]]
    if len(short):
        (m, s), n = short.index[0], int(short.iloc[0])
        raise RunFolderError(f"{path / INVARIANCE_CSV}: model {m} seed {s} has {n} shifts where {META_FILE} says "
                             f"{protocol['n_shifts']}; the folder was edited")
    if layers is not None and layer_shifts is not None:
        taps, at = layers.groupby(["model", "seed"]).size(), layer_shifts.groupby(["model", "seed"])["layer"].nunique()
        if not taps.sort_index().equals(at.sort_index()):
            raise RunFolderError(f"{path / LAYERS_CSV} and {path / LAYERS_SUMMARY_CSV} give other models, seeds or "
                                 "taps; the folder was edited")


def load_results(paths: list[str | Path]) -> list[Result]:
    """load_result of each folder, each with a label of its own: folders of one name and run id (a run copied into
    two results folders) are named by the shortest ends of their paths, as given, that tell them apart and name
    no other folder (a/quick/<run id>, b/quick/<run id>); else tables, legends and seed counts would merge them.
    The paths must be distinct folders (tables.build_report refuses one named twice)."""
    results = [load_result(p) for p in paths]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(results):
        groups.setdefault(r.label, []).append(i)
    taken = {label for label, members in groups.items() if len(members) == 1}
    for members in (m for m in groups.values() if len(m) > 1):
        # as typed, made absolute without resolving: `..` and links stay as the user wrote them
        labels = _distinct_ends([(Path.cwd() / results[i].path).parts for i in members], taken)
        taken |= set(labels)
        for i, label in zip(members, labels):
            results[i] = replace(results[i], label=label)
    return results


def _distinct_ends(paths: list[tuple[str, ...]], taken: set[str]) -> list[str]:
    """The shortest ends (the last n parts) of the paths that are all different and none in `taken`; a path of
    fewer parts is named whole (with its root or drive, which no label starts with); then numbered (#2, #3, ...)
    should whole paths still be alike (two spellings of one folder, which build_report refuses first)."""
    labels: list[str] = []
    for n in range(1, max(map(len, paths)) + 1):
        labels = [Path(*p[-n:]).as_posix() if n < len(p) else Path(*p).as_posix() for p in paths]
        if len(set(labels)) == len(labels) and not taken & set(labels):
            return labels
    return [f"{label} #{k}" for k, label in enumerate(labels, 1)]
