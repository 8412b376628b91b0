"""Run folders, the on-disk contract: every path and file name inside a run folder is named here and only here.

    results/<name>/<run id>/
        config.yaml        resolved config (every model factor filled in)
        meta.json          status, process (pid, host, heartbeat), versions, threads, seeds, protocol, timings
        checkpoints/       <model>-seed<seed>.pt: weights + resolved factors + data/train settings + fingerprint
        train.csv          per model x seed x epoch
        invariance.csv     per model x seed x shift
        summary.csv        per model x seed
        sweeps/<id>/       re-sweeps: sweep.yaml, meta.json, invariance.csv, summary.csv [, layers*.csv]
        units/             units trained by workers (--jobs, --executor; units.py): <key>.json (state, heartbeat),
                           <key>.log, data.pt (the images, while workers run), submitit/ (cluster job files)

    results/<name>/study-<time>/study.json   `invlab run --vary`: the varied keys and each combination's run folder

    results/measure/<name>-<time>/   `invlab measure` of a model of your own: measure.yaml, meta.json (kind
                                     "measure"), invariance.csv, summary.csv [, layers*.csv]

Every file is written to a temporary name and renamed, so a file that exists is complete; meta.json's status
says whether the whole run is ("running" -> "complete", or "failed" / "interrupted"). A folder left "running"
by a process that no longer exists (SIGKILL, power cut) reads as "interrupted (process gone)".

Files in a run folder may come from someone else: checkpoints are loaded with torch's weights_only loader (it
never runs code), every file is checked against the others (the fingerprint ties a checkpoint to config.yaml),
and anything malformed is an InvlabError naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Optional

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from ..core.errors import InvlabError, clip, quote

# ------------------------------------------------------------------------------------------- the file names
CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
CHECKPOINT_DIR = "checkpoints"
TRAIN_CSV = "train.csv"
INVARIANCE_CSV = "invariance.csv"
SUMMARY_CSV = "summary.csv"
LAYERS_CSV = "layers.csv"
LAYERS_SUMMARY_CSV = "layers_summary.csv"
SWEEP_DIR = "sweeps"
SWEEP_FILE = "sweep.yaml"
MEASURE_DIR = "measure"  # results/measure/<name>-<time>/: invlab measure
MEASURE_FILE = "measure.yaml"  # what invlab measure was asked: model, weights, images, shifts

UNIT_DIR = "units"  # units/<model>-seed<seed>.json: a unit's state as its worker last wrote it; .log: its log
UNIT_DATA = "data.pt"  # units/data.pt: the run's images, for worker processes and cluster jobs (removed at the end)
SUBMITIT_DIR = "submitit"  # units/submitit/: submitit's job files and logs (--executor slurm, submitit-local)
STUDY_FILE = "study.json"  # results/<name>/study-<time>/study.json: a study's overrides and its run folders
STUDY_PREFIX = "study-"

HEARTBEAT_S = 30.0  # meta.json's heartbeat is refreshed this often while a run or sweep is alive


def unit_key(model: str, seed: int) -> str:
    """The name of one (model, seed) unit, as used in meta.json and checkpoint file names."""
    return f"{model}-seed{seed}"


def checkpoint_path(run_dir: Path, model: str, seed: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"{unit_key(model, seed)}.pt"


def unit_state_path(run_dir: Path, key: str) -> Path:
    """units/<key>.json: the state a unit's worker last wrote (running, complete, failed, interrupted)."""
    return Path(run_dir) / UNIT_DIR / f"{key}.json"


def unit_log_path(run_dir: Path, key: str) -> Path:
    """units/<key>.log: what the unit's worker said, a failed unit's traceback last."""
    return Path(run_dir) / UNIT_DIR / f"{key}.log"


def unit_data_path(run_dir: Path) -> Path:
    return Path(run_dir) / UNIT_DIR / UNIT_DATA


def submitit_dir(run_dir: Path) -> Path:
    return Path(run_dir) / UNIT_DIR / SUBMITIT_DIR


def read_unit_state(run_dir: Path, key: str) -> dict | None:
    """A unit's state file, or None when there is none (or it is not readable: a worker that never started)."""
    try:
        state = read_json(unit_state_path(run_dir, key))
    except InvlabError:
        return None
    return state if isinstance(state, dict) else None


def log_tail(path: Path, lines: int = 8) -> list[str]:
    """The last lines of a log file ([] when there is none)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def new_study_folder(results_dir: Path, name: str) -> Path:
    """results_dir/<name>/study-<time>/: beside the run folders of that name (it holds no meta.json, so it is
    never taken for a run)."""
    return new_folder(Path(results_dir) / name, prefix=STUDY_PREFIX)


def is_study(path: Path) -> bool:
    return (Path(path) / STUDY_FILE).is_file()


def read_study(path: Path) -> dict:
    """study.json of a study folder, or an InvlabError saying what the folder is not."""
    path = Path(path)
    raw = read_json(path / STUDY_FILE) if is_study(path) else None
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list) or not isinstance(raw.get("vary"), dict):
        raise InvlabError(f"{path} is not a study folder (no valid {STUDY_FILE}); give a folder made by "
                          "`invlab run CONFIG --vary KEY=V1,V2`, such as results/<name>/study-<time>")
    return raw


def studies(results_dir: Path, name: str) -> list[tuple[Path, dict]]:
    """(folder, study.json) of every readable study of this name, oldest first."""
    found = []
    for path in sorted(Path(results_dir).glob(f"{name}/{STUDY_PREFIX}*/{STUDY_FILE}")):
        try:
            found.append((path.parent, read_study(path.parent)))
        except InvlabError:
            continue
    return found


# ------------------------------------------------------------------------------------------- atomic writes
def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_csv(path: Path, df: pd.DataFrame) -> None:
    _atomic_write(path, lambda p: df.to_csv(p, index=False))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: bad JSON and bad UTF-8 alike
        raise InvlabError(f"cannot read {path}: {clip(e)}") from None


def new_folder(parent: Path, prefix: str = "") -> Path:
    """A new folder named by the current time; a suffix keeps two runs in the same second apart."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = prefix + datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise InvlabError(f"could not create a new folder under {parent}")


def new_run_folder(results_dir: Path, name: str, config_text: str) -> Path:
    """results_dir/<name>/<new run id>/ with its checkpoints/ folder and config.yaml."""
    run_dir = new_folder(Path(results_dir) / name)
    (run_dir / CHECKPOINT_DIR).mkdir()
    write_text(run_dir / CONFIG_FILE, config_text)
    return run_dir


def new_measure_folder(results_dir: Path, name: str) -> Path:
    """results_dir/measure/<name>-<time>/ for `invlab measure`."""
    return new_folder(Path(results_dir) / MEASURE_DIR, prefix=f"{name}-")


# ------------------------------------------------------------------------------------------- the meta schema
class Protocol(BaseModel):
    """How a table was measured: every printed table states it (display.protocol_lines)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["translation", "parts"] = "translation"
    mode: str  # canvas | circular | parts
    grid: str  # product | axes
    dx: list[float]  # [start, stop, step]
    dy: list[float]
    test_images: int
    seeds: list[int]
    models: list[str]
    n_shifts: int
    task: Optional[str] = None  # "position" for the paired position probe
    layers: Optional[dict] = None  # {"n_images": N} for sweeps with --layers


class MetaFile(BaseModel):
    """What meta.json must hold for invlab to use a folder; other keys are kept as they are."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["run", "sweep", "measure"]
    status: str
    name: str
    run_id: str
    protocol: Protocol
    seeds: list[int]
    fingerprints: dict[str, str] = {}
    ink_baseline: Optional[dict[str, float]] = None  # runs: {accuracy, chance} of total ink alone (ink.py)
    pid: Optional[int] = None
    host: Optional[str] = None
    heartbeat: Optional[str] = None


def read_meta(folder: Path) -> dict:
    """meta.json of a run or sweep folder, checked against MetaFile; an InvlabError naming the file if not."""
    folder = Path(folder)
    path = folder / META_FILE
    if not folder.exists():
        raise InvlabError(f"folder not found: {folder}")
    if not folder.is_dir() or not path.is_file():
        raise InvlabError(f"{folder} is not a run folder (no {META_FILE}); give a folder made by `invlab run`, "
                          f"such as results/<name>/<run id>, or one of its sweeps/<id>")
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise InvlabError(f"{path} is not an invlab meta.json: it holds a JSON {type(raw).__name__}, not an object; "
                          f"the folder was not written by invlab or was edited")
    try:
        MetaFile.model_validate(raw)
    except ValidationError as e:
        where = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'top level'}: {x['msg']}" for x in e.errors()[:3])
        raise InvlabError(f"{path} is not an invlab meta.json ({where}); the folder was not written by invlab "
                          f"or was edited") from None
    return raw


# ------------------------------------------------------------------------------------------- status
def _process_start(pid: int) -> str | None:
    """The start time of a process (Linux /proc), so a recycled pid is not taken for the original process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists, but not ours (or the pid is nonsense): do not claim it is gone
    if _zombie(pid):  # killed, not yet reaped by its parent: gone all the same
        return False
    now = _process_start(pid)
    return start is None or now is None or now == start


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def run_state(meta: dict) -> str:
    """complete | running | failed | interrupted | interrupted (process gone).

    A folder marked running whose process is gone (same host, pid no longer alive) was killed without a chance
    to say so; on another host the heartbeat tells: silent for 10 heartbeats means gone.
    """
    status = meta.get("status")
    if status != "running":
        return str(status)
    pid, host = meta.get("pid"), meta.get("host")
    if isinstance(pid, int) and host == socket.gethostname():
        return "running" if _alive(pid, meta.get("pid_start")) else "interrupted (process gone)"
    try:
        age = (datetime.now() - datetime.fromisoformat(str(meta.get("heartbeat")))).total_seconds()
    except ValueError:
        return "interrupted (process gone)"  # no heartbeat at all: not a live invlab process
    return "running" if age < 10 * HEARTBEAT_S else "interrupted (process gone)"


class Meta:
    """meta.json, rewritten atomically whenever it changes; a heartbeat thread refreshes it while work runs."""

    def __init__(self, folder: Path, data: dict | None = None, **fields):
        self.path = Path(folder) / META_FILE
        self.data = dict(data) if data is not None else {}
        self.data.update(status="running", **fields)
        self.data.setdefault("started", _now())
        pid = os.getpid()
        self.data.update(pid=pid, pid_start=_process_start(pid), host=socket.gethostname(), heartbeat=_now())
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()
        self.save()

    def save(self) -> None:
        with self._lock:
            self.data["heartbeat"] = _now()
            write_json(self.path, self.data)

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                self.save()
            except (RuntimeError, OSError):  # the run changed meta.data mid-write, or the disk hiccuped: next beat
                continue

    @contextmanager
    def recording(self):
        """Mark the folder complete when the block ends normally, failed or interrupted when it does not.
        SIGTERM counts as Ctrl-C inside the block, so a terminated run is marked interrupted and can resume."""
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True)
        beat.start()
        try:
            with _terminate_as_interrupt():
                yield self
        except KeyboardInterrupt:  # Ctrl-C, and SIGTERM
            self.finish("interrupted", stop)
            raise
        except BaseException as e:
            self.finish("failed", stop, error=f"{type(e).__name__}: {clip(e, 500)}")
            raise
        self.finish("complete", stop)

    def finish(self, status: str, stop: threading.Event | None = None, **fields) -> None:
        if stop is not None:
            stop.set()
        self.data.update(fields)
        self.data["status"] = status
        self.data["finished"] = _now()
        self.data.setdefault("timings", {})["total_s"] = round(time.perf_counter() - self._t0, 2)
        self.save()


class UnitRecord(Meta):
    """units/<key>.json for one (model, seed) unit, kept like meta.json (status, pid, host, heartbeat), so that
    run_state tells a live unit from a dead one; `recording()` marks it complete, failed or interrupted."""

    def __init__(self, run_dir: Path, key: str, **fields):
        self._file = unit_state_path(run_dir, key)
        self._file.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(run_dir, key=key, **fields)
        self.path = self._file

    def save(self) -> None:
        with self._lock:
            self.data["heartbeat"] = _now()
            write_json(self._file, self.data)


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


@contextmanager
def _terminate_as_interrupt():
    """Treat SIGTERM like Ctrl-C inside the block (main thread only: signals are delivered there)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


# ------------------------------------------------------------------------------------------- finding runs
def all_runs(results_dir: Path, name: str = "*") -> list[tuple[Path, dict]]:
    """(folder, meta) of every readable run folder under results_dir/<name>/, oldest first."""
    found = []
    for meta_path in Path(results_dir).glob(f"{name}/*/{META_FILE}"):
        try:
            meta = read_meta(meta_path.parent)
        except InvlabError:
            continue  # a folder being written, or not ours
        if meta.get("kind") == "run":
            found.append((meta_path.parent, meta))
    return sorted(found, key=lambda fm: (str(fm[1].get("finished", fm[1].get("started", ""))), fm[0].name))


def finished_runs(results_dir: Path, name: str = "*") -> list[tuple[Path, dict]]:
    """(folder, meta) of every complete run under results_dir/<name>/, oldest first (by finishing time)."""
    return [(f, m) for f, m in all_runs(results_dir, name) if m.get("status") == "complete"]


def newest_run(results_dir: Path) -> Path:
    """The most recently finished run under results_dir (for `invlab report` with no folder)."""
    runs = finished_runs(Path(results_dir))
    if not runs:
        raise InvlabError(f"no finished run under {results_dir}; run `invlab run CONFIG` first or name a run folder")
    return runs[-1][0]


def config_digest(config_text: str) -> str:
    """Identifies a run's whole resolved config (models, seeds, data, training, sweep)."""
    return hashlib.sha256(config_text.encode()).hexdigest()[:16]


def resumable_run(results_dir: Path, name: str, digest: str) -> tuple[Path, dict] | None:
    """The newest run of this exact config that stopped before finishing and whose process is gone."""
    for folder, meta in reversed(all_runs(results_dir, name)):
        if meta.get("config_digest") == digest and run_state(meta) in ("interrupted", "failed",
                                                                       "interrupted (process gone)"):
            return folder, meta
    return None


def matching_checkpoints(results_dir: Path, name: str, exclude: Path | None = None) -> dict[str, Path]:
    """Checkpoints of earlier runs of this name (complete or not: a checkpoint that exists is whole), by
    fingerprint; a complete run's wins over an unfinished one's, the newest over older ones."""
    found: dict[str, tuple[tuple, Path]] = {}
    for folder, meta in all_runs(results_dir, name):
        if exclude is not None and folder.resolve() == Path(exclude).resolve():
            continue
        rank = (meta.get("status") == "complete", str(meta.get("finished", meta.get("started", ""))))
        for key, fp in meta.get("fingerprints", {}).items():
            path = Path(folder) / CHECKPOINT_DIR / f"{key}.pt"
            if path.is_file() and (fp not in found or rank >= found[fp][0]):
                found[fp] = (rank, path)
    return {fp: path for fp, (_, path) in found.items()}


def require_finished_run(path: Path) -> dict:
    """The meta of a finished run folder, or a clear error saying what state it is in."""
    meta = read_meta(path)
    if meta.get("kind") != "run":
        raise InvlabError(f"{path} is a {quote(meta.get('kind'))} folder, not a run folder made by `invlab run`")
    state = run_state(meta)
    if state == "running":
        raise InvlabError(f"{path} is still running (pid {meta.get('pid')} on {meta.get('host')}); "
                          f"wait for it to finish")
    if state != "complete":
        raise InvlabError(f"{path} is not a finished run (status: {state}); run `invlab run` on its config again "
                          f"to resume it: finished checkpoints are reused")
    return meta
