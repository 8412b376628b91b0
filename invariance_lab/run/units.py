"""Units: one (model, seed) network, trained and checkpointed on its own, and the scheduler that runs many at once
(on the executors of executors.py).

    invlab run configs/factorial.yaml --jobs 2                    # two worker processes on this machine
    invlab run configs/factorial.yaml --executor slurm --jobs 8 --partition cpu --time 60 --cpus 4
    invlab status results/factorial/<run id>                      # each unit: done, running, failed, missing

A unit is independent of every other (checkpoints.py: atomic and fingerprinted), so `run_experiment` hands the
units it has no checkpoint for to `train_units`, which runs them in worker processes (`processes`, --jobs N at
once, each with cores // N torch threads unless --threads says), as a SLURM job array through submitit (`slurm`),
or through submitit's local executor (`submitit-local`: the cluster path on this machine, for tests). Every
worker reads the run's images from units/data.pt, trains with `train_unit` (the code the in-process loop runs
too: the same seed gives the same weights, bit for bit with the same threads) and keeps units/<key>.json (its
state, with a heartbeat, like meta.json) and units/<key>.log (a failed unit's traceback last). The run itself
then loads the checkpoints and sweeps as ever.

Ctrl-C stops the workers; the run folder is resumable and a rerun trains only the units without a checkpoint. A
unit still alive elsewhere (a cluster job of an earlier, interrupted command) is waited for, not submitted again.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import torch

from ..core.errors import InvlabError, clip
from .executors import EXECUTORS, Resources, check_jobs, worker_threads
from ..store.runs import (UnitRecord, checkpoint_path, log_tail, read_unit_state, run_state, unit_data_path, unit_key,
    unit_log_path)

Say = Callable[[str], None]
POLL_S = 0.2  # how often the scheduler looks at its workers


class UnitData(NamedTuple):
    """What every unit trains and tests on: the run's images, drawn once."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]


# ------------------------------------------------------------------------------------------- one unit


def train_unit(cfg, name: str, seed: int, settings: dict, data: UnitData, device: torch.device, run_dir: Path,
               progress: bool = False):
    """Train one unit and save its checkpoint (atomic); (model, history). The one way a unit is trained: in the
    run's own process and in every worker alike."""
    from ..store.checkpoints import save_checkpoint
    from .train import train_model

    model, hist = train_model(settings["factors"], data.train_x, data.train_y, data.test_x, data.test_y, cfg.train,
                              noise=cfg.data.noise, seed=seed, num_classes=len(data.classes), canvas=cfg.data.canvas,
                              device=device, progress=progress, label=f"{name} seed {seed}")
    save_checkpoint(checkpoint_path(run_dir, name, seed), model, name=name, seed=seed, data=settings["data"],
                    train=settings["train"], factors=settings["factors"], classes=data.classes, history=hist)
    return model, hist


def save_unit_data(run_dir: Path, data: UnitData) -> None:
    """units/data.pt, written atomically: tensors and a list of names, read back with weights_only."""
    path = unit_data_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(data._asdict(), tmp)
    tmp.replace(path)


_DATA_CACHE: dict[tuple, UnitData] = {}  # a worker process trains several units on the same images


def load_unit_data(run_dir: Path) -> UnitData:
    path = unit_data_path(run_dir)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = UnitData(**torch.load(path, weights_only=True))
    return _DATA_CACHE[key]


@dataclass(frozen=True)
class Task:
    """Everything a worker needs, as plain values: it is pickled to another process or a cluster node."""

    config_text: str  # the run's config.yaml (every model resolved)
    run_dir: str
    model: str
    seed: int
    threads: int | None  # torch threads in the worker (None: torch's default, e.g. a cluster job's cpus)
    executor: str
    factory_dirs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return unit_key(self.model, self.seed)

    def run(self) -> dict:
        return run_task(self)


def run_task(task: Task) -> dict:
    """A worker's entry point: train one unit into the run folder; {key, seconds, test_accuracy}. Raises what
    the unit raised, after recording it in units/<key>.json and .log."""
    import yaml

    from ..store.checkpoints import unit_settings
    from ..config.load import parse_config
    from .experiment import resolve_device, set_threads
    from ..nn.factory import is_custom, load

    run_dir = Path(task.run_dir)
    set_threads(task.threads)
    log = unit_log_path(run_dir, task.key)
    record = UnitRecord(run_dir, task.key, executor=task.executor, threads=torch.get_num_threads(),
                        job_id=os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID"))
    _log(log, f"start on {socket.gethostname()}, pid {os.getpid()}, {torch.get_num_threads()} torch threads")
    t0 = time.perf_counter()
    with record.recording():
        try:
            cfg = parse_config(yaml.safe_load(task.config_text), f"{run_dir}/config.yaml")
            settings = unit_settings(cfg)[(task.model, task.seed)]
            if is_custom(settings["factors"]):  # imported from the config's folder, as the run itself did
                load(settings["factors"]["factory"], task.factory_dirs)
            _, hist = train_unit(cfg, task.model, task.seed, settings, load_unit_data(run_dir),
                                 resolve_device(cfg.device), run_dir)
        except BaseException as e:
            what = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            _log(log, f"{what} after {time.perf_counter() - t0:.1f}s:\n" + traceback.format_exc().rstrip())
            raise
        seconds = round(time.perf_counter() - t0, 2)
        accuracy = float(hist.iloc[-1].test_accuracy)
        record.data.update(seconds=seconds, test_accuracy=accuracy)
    _log(log, f"done in {seconds}s: test accuracy {accuracy:.3f}")
    return dict(key=task.key, seconds=seconds, test_accuracy=accuracy)


def _log(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"[{datetime.now().isoformat(timespec='seconds')}] {line}\n")


# ------------------------------------------------------------------------------------------- scheduling


@dataclass
class Progress:
    """Counts for the progress line."""

    total: int
    done: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)

    def eta(self) -> str:
        finished = self.done + self.failed
        if not finished:
            return "estimating the time left"
        left = (time.perf_counter() - self.started) / finished * (self.total - finished)
        return f"about {_duration(left)} left"


def _duration(seconds: float) -> str:
    s = math.ceil(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def train_units(cfg, run_dir: Path, units: list[tuple[str, int]], data: UnitData, *, jobs: int = 2,
                executor: str = "processes", threads: int | None = None, resources: Resources | None = None,
                factory_dirs: list[Path] | None = None, say: Say | None = None) -> dict[str, float]:
    """Train `units` (model, seed) of a run into its folder with an executor; {unit key: seconds} of those that
    finished. Units alive elsewhere (units/<key>.json running) are waited for, not started again. When some fail,
    the others still finish, then an InvlabError names them with their errors (a rerun retries them). Ctrl-C stops
    the workers (a cluster's jobs keep running: a rerun waits for them)."""
    from ..config.load import to_yaml

    say = say or (lambda msg: None)
    check_jobs(jobs, executor)
    resources = resources or Resources()
    entry = EXECUTORS[executor]
    n_threads = worker_threads(jobs, threads, executor, resources)
    if not units:
        return {}
    save_unit_data(run_dir, data)
    config_text = to_yaml(cfg)
    dirs = tuple(str(Path(d).resolve()) for d in factory_dirs or ())
    tasks, elsewhere = [], []
    for model, seed in units:
        state = read_unit_state(run_dir, unit_key(model, seed))
        if state is not None and run_state(state) == "running":
            elsewhere.append(unit_key(model, seed))
        else:
            tasks.append(Task(config_text, str(run_dir), model, seed, n_threads, executor, dirs))
    say(f"training {len(units)} units with --executor {executor}, {jobs} at once"
        f"{f', {n_threads} torch threads each' if n_threads else ''}"
        f"{f'; waiting for {len(elsewhere)} still running elsewhere' if elsewhere else ''}")
    backend = entry.start(run_dir, jobs, resources, len(tasks)) if tasks else None
    progress, finished, failures = Progress(len(units)), {}, {}
    pending, inflight = list(tasks), {}
    cap = len(tasks) if entry.submit_all else jobs

    def counts() -> str:
        running = sum(1 for t in inflight.values() if _is_running(run_dir, t.key)) + len(elsewhere)
        left = progress.total - progress.done - progress.failed - running
        return (f"units: {progress.done} done, {running} running, {left} left"
                f"{f', {progress.failed} failed' if progress.failed else ''} of {progress.total}; {progress.eta()}")
    try:
        while pending or inflight or elsewhere:
            if pending and len(inflight) < cap:
                batch, pending = pending[:cap - len(inflight)], pending[cap - len(inflight):]
                inflight.update(zip(backend.submit(batch), batch))
            for handle in [h for h in inflight if h.done()]:
                task = inflight.pop(handle)
                try:
                    result = handle.result()
                except Exception as e:  # the unit's own error (a worker re-raises it), or its worker died
                    failures[task.key] = _failure(run_dir, task.key, e)
                    progress.failed += 1
                    say(f"unit {task.key} FAILED: {failures[task.key]} ({counts()})")
                else:
                    finished[task.key] = result["seconds"]
                    progress.done += 1
                    say(f"trained {task.model} seed {task.seed}: test accuracy {result['test_accuracy']:.3f} "
                        f"({result['seconds']:.1f}s); {counts()}")
            for key in list(elsewhere):
                outcome = _outcome_elsewhere(run_dir, key)
                if outcome is None:
                    continue
                elsewhere.remove(key)
                if outcome == "complete":
                    finished[key] = float((read_unit_state(run_dir, key) or {}).get("seconds") or 0.0)
                    progress.done += 1
                    say(f"unit {key} (started by an earlier command) finished; {counts()}")
                else:  # it stopped without a checkpoint: train it here
                    pending.append(Task(config_text, str(run_dir), *_split(key), n_threads, executor, dirs))
                    backend = backend or entry.start(run_dir, jobs, resources, len(units))
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        if backend is not None and not entry.detached:
            backend.stop()
        elif entry.detached and inflight:
            say(f"the {len(inflight)} submitted jobs keep running; `invlab status {run_dir}` shows them, and the same "
                "command again gathers them (running units are waited for, not submitted again)")
        raise
    if backend is not None:
        backend.close()
    if failures:
        lines = "; ".join(f"{k}: {v}" for k, v in list(failures.items())[:5])
        raise InvlabError(f"{len(failures)} of {len(units)} units failed ({lines}{'; ...' if len(failures) > 5 else ''})."
                          f" `invlab status {run_dir}` shows each one's log; run the same command again to retry "
                          "them: the units that finished are kept")
    unit_data_path(run_dir).unlink(missing_ok=True)
    return finished


def _failure(run_dir: Path, key: str, e: BaseException) -> str:
    """A failed unit in one line: its recorded error, else what the executor said (a worker killed, ...)."""
    state = read_unit_state(run_dir, key) or {}
    if state.get("status") == "failed" and state.get("error"):
        return clip(state["error"], 300)
    return clip(f"{type(e).__name__}: {e}", 300)


def _is_running(run_dir: Path, key: str) -> bool:
    state = read_unit_state(run_dir, key)
    return state is not None and state.get("status") == "running"


def _outcome_elsewhere(run_dir: Path, key: str) -> str | None:
    """None while a unit started by another process still runs; then 'complete', or how it stopped."""
    state = read_unit_state(run_dir, key) or {}
    now = run_state(state) if state else "missing"
    if now == "running":
        return None
    return "complete" if now == "complete" and checkpoint_path(run_dir, *_split(key)).is_file() else now


def _split(key: str) -> tuple[str, int]:
    model, _, seed = key.rpartition("-seed")
    return model, int(seed)


# ------------------------------------------------------------------------------------------- status


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
        model, seed = _split(key)
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
        else:
            out.append(UnitStatus(key, "missing", f"stopped ({now})" if now else "not started"))
    return out


def units_to_train(run_dir: Path, settings: dict[tuple[str, int], dict], earlier: dict[str, Path],
                   fingerprints: dict[str, str]) -> list[tuple[str, int]]:
    """The units of a run with no usable checkpoint: none in the run folder that matches its settings, and none of
    the same fingerprint in an earlier run (run_experiment reuses those, as it always has)."""
    from ..store.checkpoints import read_checkpoint

    todo = []
    for (model, seed), expect in settings.items():
        key = unit_key(model, seed)
        path = checkpoint_path(run_dir, model, seed)
        if fingerprints[key] in earlier:
            continue
        if path.is_file():
            try:
                read_checkpoint(path, torch.device("cpu"), expect)
                continue
            except InvlabError:
                pass  # damaged or foreign: trained again
        todo.append((model, seed))
    return todo
