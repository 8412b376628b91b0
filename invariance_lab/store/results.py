"""Loading a finished run or sweep folder for reports: meta.json and the tidy tables, each checked.

    r = load_result("results/seed_question/20261125-101500")
    r.summary     # one row per model x seed; r.invariance: one row per model x seed x shift

Files come from store/layout.py's contract (its names); a folder that is not finished, or a table that is damaged or
edited, is an InvlabError naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.columns import (CORRECT_FLIP, CORRECT_FLIP_SUMMARY, GRID_COLUMNS, LAYER_SUMMARY_COLUMNS, LIE_COLUMNS,
                            MAX_COLUMN, METRIC_COLUMNS,
                            SUMMARY_METRICS, WORST_CASE_COLUMNS, WORST_SHIFT_COLUMNS)
from ..core.errors import InvlabError, clip, quote
from .layout import INVARIANCE_CSV, LAYERS_SUMMARY_CSV, LIE_CSV, META_FILE, SUMMARY_CSV, SWEEP_DIR
from .meta import read_meta, run_state


# columns that are fractions (accuracies, flip rates, total variation distances): a value outside [0, 1] is damage;
# ROUND_OFF lets a sum of float32 probabilities through
FRACTIONS = {*METRIC_COLUMNS, *SUMMARY_METRICS, MAX_COLUMN, *WORST_CASE_COLUMNS, CORRECT_FLIP, *CORRECT_FLIP_SUMMARY}
ROUND_OFF = 1e-5
GRID_COLUMNS_ALL = sorted({c for columns in GRID_COLUMNS.values() for c in columns})  # dx, dy; angle; scale


@dataclass
class Result:
    """One finished run or sweep, loaded from disk."""

    path: Path  # the result folder
    label: str  # "<name>/<run_id>" or "<name>/<run_id>/<sweep_id>": how tables and legends name it
    meta: dict  # meta.json as written by the run (holds the protocol)
    invariance: pd.DataFrame  # tidy: one row per model × seed × shift
    summary: pd.DataFrame  # one row per model × seed
    layers: pd.DataFrame | None = None  # layers_summary.csv when the sweep ran --layers: model × seed × tap
    lie: pd.DataFrame | None = None  # lie.csv when the sweep ran --metric lie: model × seed × transform × layer


def _read_csv(path: Path, required: list[str], numeric: list[str], text: tuple[str, ...] = ()) -> pd.DataFrame:
    """The CSV, checked: its required columns, at least one row, numbers in the `numeric` columns it has (older
    folders lack the later ones); `text` columns are read as strings (a tap named 0 stays "0", not 0.0), an empty
    cell as NaN."""
    if not path.is_file():
        raise InvlabError(f"{path.parent} is not a complete result folder: {path.name} is missing. "
                          f"A run or sweep folder holds {META_FILE}, {INVARIANCE_CSV} and {SUMMARY_CSV}.")
    try:
        df = pd.read_csv(path, dtype=dict.fromkeys(text, str))
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # ParserError and EmptyDataError are ValueErrors
        raise InvlabError(f"{path} could not be read as CSV ({clip(exc, 160)}).") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InvlabError(f"{path} lacks the column(s) {', '.join(missing)}; it needs {', '.join(required)}. "
                          f"Was it written by another version of invariance_lab, or edited?")
    if df.empty:
        raise InvlabError(f"{path} is damaged: it has no rows")
    dtypes = df.dtypes
    bad = [c for c in numeric if c in dtypes and not pd.api.types.is_numeric_dtype(dtypes[c])]
    if bad:
        raise InvlabError(f"{path} is damaged: column(s) {', '.join(bad)} hold values that are not numbers")
    fractions = [c for c in df.columns if c in FRACTIONS]  # older folders lack the later columns
    if fractions:  # one array for all of them: a loop of pandas operations per column cost milliseconds per file
        values = np.column_stack([df[c].to_numpy(dtype=float) if pd.api.types.is_numeric_dtype(dtypes[c])
                                  else pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) for c in fractions])
        with np.errstate(invalid="ignore"):
            out = ~np.isnan(values) & ~((values >= 0) & (values <= 1 + ROUND_OFF))  # NaN: not measured (no labels)
        if out.any():
            col = int(out.any(axis=0).argmax())
            row = int(out[:, col].argmax())
            raise InvlabError(f"{path} is damaged: {fractions[col]} is {values[row, col]:g} in row {row + 2}; it "
                              f"is a fraction, from 0 to 1")  # row + 2: the file's line, the header is line 1
    keys = [c for c in ("model", "seed", *GRID_COLUMNS_ALL, "layer", "transform") if c in df.columns]
    twice = df.duplicated(subset=keys)
    if twice.any():
        row = df[twice].iloc[0]
        raise InvlabError(f"{path} is damaged: it has two rows for {', '.join(f'{k} {row[k]}' for k in keys)}; "
                          f"invlab writes one per {' x '.join(keys)}")
    return df


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
    if state != "complete":
        raise InvlabError(f"{path} is not a finished {meta['kind']} (status: {state}); only complete folders "
                          f"can be reported. Wait for it to finish, or {_AGAIN.get(meta['kind'], _AGAIN['run'])}.")
    axes = list(GRID_COLUMNS.get(meta["protocol"].get("transform"), GRID_COLUMNS["translate"]))  # dx, dy; or angle, or scale
    invariance = _read_csv(path / INVARIANCE_CSV, ["model", "seed", *axes, *METRIC_COLUMNS],
                           ["seed", *axes, "n_images", *METRIC_COLUMNS, MAX_COLUMN, CORRECT_FLIP])
    summary = _read_csv(path / SUMMARY_CSV, ["model", "seed", "downsample", "head", "padding", *SUMMARY_METRICS],
                        ["seed", "n_images", "n_shifts", "n_classes", *SUMMARY_METRICS, *WORST_SHIFT_COLUMNS,
                         *(f"worst_{a}" for a in axes), MAX_COLUMN, *CORRECT_FLIP_SUMMARY, *WORST_CASE_COLUMNS])
    layers = None
    if (path / LAYERS_SUMMARY_CSV).is_file():
        layers = _read_csv(path / LAYERS_SUMMARY_CSV, ["model", "seed", *LAYER_SUMMARY_COLUMNS],
                           ["seed", "layer", "stride", "n_images", "n_shifts", *LAYER_SUMMARY_COLUMNS[-3:]])
    lie = None
    if (path / LIE_CSV).is_file():  # layer: empty (NaN once read) for the output; a tap's name with --layers
        lie = _read_csv(path / LIE_CSV, LIE_COLUMNS, ["seed", "value"], text=("layer",))
        lie["layer"] = lie["layer"].fillna("")
    for name, df in (("invariance", invariance), ("summary", summary)):
        unknown = set(df["model"].astype(str)) - set(meta["protocol"]["models"])
        if unknown:
            raise InvlabError(f"{path / (INVARIANCE_CSV if name == 'invariance' else SUMMARY_CSV)} names model(s) "
                              f"{quote(sorted(unknown))} that {META_FILE} does not list; the folder was edited")
    resolved = path.resolve()
    if meta["kind"] == "sweep" and resolved.parent.name == SWEEP_DIR:  # the folder layout names run and sweep
        label = f"{meta['name']}/{resolved.parent.parent.name}/{resolved.name}"
    else:
        label = f"{meta['name']}/{meta['run_id']}"
    return Result(path=path, label=label, meta=meta, invariance=invariance, summary=summary, layers=layers, lie=lie)
