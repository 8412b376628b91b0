"""`invlab status` as a library call: each unit of a run folder (or of every run of a study) done, running, failed
(with its log's last lines) or missing; and the state of each of its sweeps.

    for run in folder_status(Path("results/factorial/20261127-160351")):
        print(run.folder, run.state, [(u.key, u.state) for u in run.units])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import RunFolderError, clip
from ..store.find import newest_started_run, read_study
from ..store.layout import SWEEP_DIR, checkpoint_path, is_study, unit_log_path
from ..store.meta import log_tail, read_meta, read_unit_state, run_state
from .study import study_runs, study_state
from .units import split_key


@dataclass
class UnitStatus:
    key: str
    state: str  # done | running | failed | missing
    detail: str = ""  # where / how long / the error
    log: list[str] = field(default_factory=list)  # a failed unit's last log lines


def unit_status(run_dir: Path, meta: dict, log_lines: int = 8) -> list[UnitStatus]:
    """Each unit of a run folder (meta.json's fingerprints name them): done (its checkpoint exists), running (its
    worker is alive), failed (with its log's last lines) or missing (never started, or stopped: a rerun trains it)."""
    out = []
    for key in meta.get("fingerprints", {}):
        model, seed = split_key(key)
        state = read_unit_state(run_dir, key)
        if checkpoint_path(run_dir, model, seed).is_file():
            reused = meta.get("reused", {}).get(key)
            detail = f"reused from {reused}" if reused else (
                f"{state.get('seconds')}s on {state.get('host')}" if state and state.get("seconds") is not None else "")
            out.append(UnitStatus(key, "done", detail))
            continue
        now = run_state(state) if state else None
        if now == "running":
            out.append(UnitStatus(key, "running", f"pid {state.get('pid')} on {state.get('host')} since "
                                  f"{state.get('started')}" + (f", job {state['job_id']}" if state.get("job_id") else "")))
        elif now == "failed":
            out.append(UnitStatus(key, "failed", clip(state.get("error") or "", 300),
                                  log_tail(unit_log_path(run_dir, key), log_lines)))
        elif meta.get("status") == "complete":  # it had finished: its checkpoint was moved or deleted since
            out.append(UnitStatus(key, "missing", "its checkpoint is gone since the run finished (moved or deleted)"))
        elif now is None and run_state(meta) == "running" and meta.get("training") == key:  # --jobs 1: here
            out.append(UnitStatus(key, "running", f"in the run's own process, pid {meta.get('pid')} on "
                                                  f"{meta.get('host')}"))
        elif now is None and run_state(meta) == "running":  # --jobs 1 trains in the run's process, with no unit state
            out.append(UnitStatus(key, "missing", "no checkpoint yet: the run's own process trains its units one "
                                                  "after another, and has not come to this one"))
        else:
            out.append(UnitStatus(key, "missing", f"stopped ({now})" if now else "not started"))
    return out


@dataclass
class RunStatus:
    values: dict  # a study's varied values for this run ({} for a lone run folder)
    folder: Path | None  # None: no run folder named in the study yet (the run has not finished)
    state: str = ""  # the run's state (meta.json), or the study's word for a run with no folder yet ("" if not started)
    units: list[UnitStatus] = field(default_factory=list)
    sweeps: list[tuple[str, str]] = field(default_factory=list)  # (sweep id, its state) of <run>/sweeps/, oldest first


def sweep_states(run_dir: Path) -> list[tuple[str, str]]:
    """Each sweep folder of a run and its state (complete, running, interrupted, failed; unreadable: its meta.json
    is damaged or missing), so that a sweep stopped half-way is not hidden behind a complete run."""
    out = []
    folder = run_dir / SWEEP_DIR
    for sweep in sorted(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else []:
        if not sweep.is_dir() or sweep.is_symlink():  # a link kept beside the sweeps (latest -> <id>) is not one
            continue
        try:
            out.append((sweep.name, run_state(read_meta(sweep))))
        except (RunFolderError, OSError):
            out.append((sweep.name, "unreadable"))
    return out


def folder_status(path: Path | None, *, lines: int = 8, results_dir: Path = Path("results")) -> list[RunStatus]:
    """The units of a run folder, or of each run of a study folder (in the study's order); `lines` log lines for
    each failed unit. A sweep or measure folder is refused: it has no units. path None: the run started last
    under results_dir (store/find.newest_started_run), whatever its state."""
    path = Path(path) if path is not None else newest_started_run(results_dir)
    folders = [({}, path)] if not is_study(path) else study_runs(path)
    study = read_study(path) if is_study(path) else {"runs": [{}]}
    out = []
    for (values, folder), entry in zip(folders, study["runs"]):
        if folder is None:  # study.json names a run folder once the run finishes: say how far this one got
            state = str(entry.get("status", "missing"))
            if state == "running" and study_state(study).startswith("interrupted"):  # killed: the study's word
                state = study_state(study)
            out.append(RunStatus(values, None, "" if state == "missing" else state))
            continue
        meta = read_meta(folder)
        if meta.get("kind") != "run":
            raise RunFolderError(f"{folder} is a {meta.get('kind')} folder; status shows the units of a run folder "
                                 "(results/<name>/<run id>) or of a study")
        out.append(RunStatus(values, folder, run_state(meta), unit_status(folder, meta, lines), sweep_states(folder)))
    return out
