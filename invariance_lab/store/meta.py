"""meta.json and units/<key>.json: what a run, sweep or measure folder (and each unit of a run) says about itself,
and whether the process writing it is still alive.

meta.json's status says whether the whole run is complete ("running" -> "complete", or "failed" / "interrupted");
a folder left "running" by a process that no longer exists (SIGKILL, power cut) reads as "interrupted (process
gone)". A heartbeat thread refreshes the file while work runs, so another host can tell a live run from a dead one.

    meta = Meta(run_dir, kind="run", name="quick", run_id=run_dir.name, protocol=..., seeds=[0])
    with meta.recording():        # complete when the block ends, failed or interrupted when it does not
        ...
    run_state(read_meta(run_dir))  # "complete"

Files in a run folder may come from someone else: read_meta checks meta.json against MetaFile, and anything
malformed is a RunFolderError naming the file.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, StrictInt, StringConstraints, ValidationError, field_validator,
                      model_validator)

from ..core.errors import DiskFullError, InvlabError, RunFolderError, clip, quote
from ..core.open_flags import NOFOLLOW, READ
from ..core.processes import process_gone, terminate_as_interrupt, this_process
from ..schema.fields import check_range
from .atomic import read_json, write_json
from .layout import META_FILE, unit_state_path

HEARTBEAT_S = 30.0  # meta.json's heartbeat is refreshed this often while a run or sweep is alive


# ------------------------------------------------------------------------------------------- the meta schema
class Protocol(BaseModel):
    """How a table was measured: every printed table states it (report/protocol.protocol_lines)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["translation", "parts"] = "translation"
    mode: str  # canvas | circular | parts
    grid: str  # product | axes
    dx: Optional[list[float]] = None  # [start, stop, step]; needed unless transform is rotate or scale
    dy: Optional[list[float]] = None
    transform: Literal["translate", "rotate", "scale"] = "translate"
    angles: Optional[list[float]] = None  # transform rotate: [start, stop, step], degrees
    scales: Optional[list[float]] = None  # transform scale: [start, stop, step], factors
    test_images: int
    seeds: list[int]
    models: list[str]
    n_shifts: int
    task: Optional[str] = None  # "position" for the paired position probe
    layers: Optional[dict] = None  # {"n_images": N} for sweeps with --layers
    # what the tables' captions print (report/protocol.protocol_lines), when a folder has them
    engine: Optional[str] = None  # allshift | brute | mixed (eval/engine.engine_protocol)
    engines: Optional[dict[str, str]] = None  # model -> its engine
    engine_notes: Optional[dict[str, Optional[str]]] = None  # model -> why not the all-shift engine
    images: Optional[str] = None  # invlab measure, image folders, boxes: what was measured
    labels: Optional[bool] = None  # invlab measure: whether the images had labels
    fill: Optional[str] = None
    interpolation: Optional[str] = None
    drawing: Optional[str] = None  # a rotate or scale grid: how the images were turned or scaled
    subpixel: Optional[str] = None
    part: Optional[str] = None  # "counter" for outline letters' part displacement
    all_shifts: Optional[bool] = None
    n_classes: Optional[int] = None
    # canvas shifts of letters: {"dx": [lo, hi], "dy": [lo, hi]}, the whole-pixel shifts within which every test
    # letter stays whole (data/shifts.whole_shifts); past them the frame cuts some
    whole: Optional[dict[Literal["dx", "dy"], tuple[StrictInt, StrictInt]]] = None

    @field_validator("dx", "dy", "angles", "scales")
    @classmethod
    def _a_range(cls, v: Optional[list[float]], info) -> Optional[list[float]]:
        """[start, stop] or [start, stop, step] of finite numbers, as the tables' captions print them, checked as a
        config's ranges are (schema/fields.check_range: at most 10000 steps, which the report lists one by one)."""
        if v is not None:
            check_range(v, info.field_name)
        return v

    @field_validator("whole")
    @classmethod
    def _around_zero(cls, v):
        if v is not None and not all(lo <= 0 <= hi for lo, hi in v.values()):
            raise ValueError(f"whole must give each axis a range [lo, hi] of shifts with lo <= 0 <= hi; got {v}")
        return v

    @model_validator(mode="after")
    def _grid_given(self) -> "Protocol":
        """The grid's ranges: dx and dy for a translation, angles or scales for a rotate or scale measurement (a
        rotate or scale sweep keeps its run's dx and dy beside them)."""
        need = {"translate": ("dx", "dy"), "rotate": ("angles",), "scale": ("scales",)}[self.transform]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} missing: a {self.transform} protocol gives its grid's ranges")
        return self


class MetaFile(BaseModel):
    """What meta.json must hold for invlab to use a folder; other keys are kept as they are."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["run", "sweep", "measure"]
    status: str
    name: str
    run_id: str
    protocol: Protocol
    seeds: list[int]
    # unit key (<model>-seed<seed>, layout.unit_key) -> its settings' fingerprint
    fingerprints: dict[Annotated[str, StringConstraints(pattern=r"^.+-seed[0-9]+$")], str] = {}
    reused: dict[str, str] = {}  # unit key -> where its checkpoint came from
    # runs: {accuracy, chance} of total ink alone (data/ink.py), and since the ink battery {battery: {statistic:
    # accuracy}} (data/ink_stats.py)
    ink_baseline: Optional[dict[str, Union[float, dict[str, float]]]] = None
    pid: Optional[int] = None
    host: Optional[str] = None
    heartbeat: Optional[str] = None

    @field_validator("name", "run_id")
    @classmethod
    def _printable(cls, v: str, info) -> str:
        """Printed in every table's title and caption: a control character (an escape sequence that clears the
        screen, a line break) would let the file drive the terminal."""
        if any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in v):
            raise ValueError(f"{info.field_name} holds a control character ({quote(v, 60)}); invlab writes names "
                             f"without them")
        return v


def _runs_inside(folder: Path) -> list[str]:
    """The names of the last few folders inside `folder` that hold a meta.json (none when it is not a folder)."""
    try:
        return sorted(p.name for p in folder.iterdir() if (p / META_FILE).is_file())[-3:] if folder.is_dir() else []
    except OSError:
        return []


def read_meta(folder: Path) -> dict:
    """meta.json of a run or sweep folder, checked against MetaFile; a RunFolderError naming the file if not."""
    folder = Path(folder)
    path = folder / META_FILE
    if not folder.exists():
        raise RunFolderError(f"folder not found: {folder}")
    if not folder.is_dir() or not path.is_file():
        inside = _runs_inside(folder)  # results/<name> given for one of its runs
        raise RunFolderError(f"{folder} is not a run folder ({'a file' if not folder.is_dir() else 'no ' + META_FILE})"
                             + (f"; it holds the folders {', '.join(inside)}: give one of them, e.g. "
                                f"{folder / inside[-1]}" if inside else
                                "; give a folder made by `invlab run`, such as results/<name>/<run id> (`invlab "
                                "report` also takes its sweeps/<id> and the folders of `invlab measure`, "
                                "results/measure/<name>-<time>)"))
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise RunFolderError(f"{path} is not an invlab meta.json: it holds a JSON {type(raw).__name__}, not an "
                             f"object; the folder was not written by invlab or was edited")
    try:
        MetaFile.model_validate(raw)
    except ValidationError as e:
        where = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'top level'}: {x['msg']}" for x in e.errors()[:3])
        raise RunFolderError(f"{path} is not an invlab meta.json ({where}); the folder was not written by invlab "
                             f"or was edited") from None
    return raw


# ------------------------------------------------------------------------------------------- status
def still_running(path: Path, meta: dict) -> str:
    """The words for a folder whose process is alive: no advice to run it again, which would duplicate its work."""
    return f"{path} is still running (pid {meta.get('pid')} on {meta.get('host')}); wait for it to finish"


def run_state(meta: dict) -> str:
    """complete | running | failed | interrupted | interrupted (process gone).

    A folder (or unit) marked running whose process is gone (same host, pid no longer alive) was killed without
    a chance to say so; on another host the heartbeat tells: silent for 10 heartbeats means gone. A heartbeat
    further in the future than one beat (clocks of two hosts may differ a little) was not written by a live invlab
    process, which writes its own clock's time: gone too, so an edited or copied file never blocks a rerun.
    """
    status = meta.get("status")
    if status != "running":
        return str(status)
    try:
        age = (datetime.now() - datetime.fromisoformat(str(meta.get("heartbeat")))).total_seconds()
    except (TypeError, ValueError):  # TypeError: a heartbeat with a time zone, which invlab never writes
        age = None  # no heartbeat at all: not a live invlab process, unless its pid here says otherwise
    if age is not None and age < -HEARTBEAT_S:
        return "interrupted (process gone)"
    gone = process_gone(meta)
    if gone is not None:
        return "interrupted (process gone)" if gone else "running"
    return "running" if age is not None and age < 10 * HEARTBEAT_S else "interrupted (process gone)"


def record_unit_failure(run_dir: Path, key: str, error: str) -> None:
    """units/<key>.json marked failed with `error`, for a unit whose worker could not say so itself (killed, out of
    memory): `invlab status` then shows the cause, and a rerun trains the unit again."""
    state = read_unit_state(run_dir, key) or dict(key=key)
    state.update(status="failed", error=error, finished=_now())
    path = unit_state_path(run_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, state)


class Meta:
    """meta.json, rewritten atomically whenever it changes; a heartbeat thread refreshes it while work runs."""

    def __init__(self, folder: Path, data: dict | None = None, **fields):
        self.path = Path(folder) / META_FILE
        self.data = dict(data) if data is not None else {}
        self.data.update(status="running", **fields)
        self.data.setdefault("started", _now())
        self.data.update(**this_process(), heartbeat=_now())
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
            except (RuntimeError, OSError, InvlabError):  # meta.data changed mid-write, the disk hiccuped, or a link
                continue  # was planted at meta.json (refused, and reported by the next save outside this thread)

    @contextmanager
    def recording(self):
        """Mark the folder complete when the block ends normally, failed or interrupted when it does not.
        SIGTERM counts as Ctrl-C inside the block, so a terminated run is marked interrupted and can resume."""
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True)
        beat.start()
        try:
            with terminate_as_interrupt():
                yield self
        except KeyboardInterrupt:  # Ctrl-C, and SIGTERM
            self.finish("interrupted", stop)
            raise
        except BaseException as e:
            try:
                self.finish("failed", stop, error=f"{type(e).__name__}: {clip(e, 500)}")
            except DiskFullError:  # meta.json cannot say so: e, raised below, names the file it was writing
                pass
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


# ------------------------------------------------------------------------------------------- units
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


def read_unit_state(run_dir: Path, key: str) -> dict | None:
    """A unit's state file, or None when there is none (or it is not readable: a worker that never started)."""
    try:
        state = read_json(unit_state_path(run_dir, key))
    except InvlabError:
        return None
    return state if isinstance(state, dict) else None


LOG_TAIL_BYTES = 64 * 1024  # what log_tail reads of a log: its end, however long the log (one line may be huge)


def log_tail(path: Path, lines: int = 8) -> list[str]:
    """The last `lines` lines of a log file, from its last LOG_TAIL_BYTES ([] when there is none, when lines is 0,
    and for anything that is not a regular file: a FIFO planted at a log's name must not hang `invlab status`)."""
    if lines <= 0:
        return []
    try:
        fd = os.open(path, READ | NOFOLLOW)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        size = os.fstat(fd).st_size
        f.seek(max(size - LOG_TAIL_BYTES, 0))
        tail = f.read(LOG_TAIL_BYTES).decode("utf-8", errors="replace").splitlines()
    return tail[-lines:]


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
