"""The scheduler: many units of a run trained at once on an executor (executors.py), with a progress line, failures
gathered and reported together, and units still alive elsewhere waited for rather than started again.

    finished = train_units(cfg, run_dir, [("conv_gap", 0), ("conv_gap", 1)], data, jobs=2)   # {key: seconds}

Ctrl-C stops the workers; the run folder is resumable and a rerun trains only the units without a checkpoint. A
unit still alive elsewhere (a cluster job of an earlier, interrupted command) is waited for, not submitted again;
one whose process is gone is trained again. A worker that dies (SIGKILL, the out-of-memory killer) fails only its
own unit, recorded in units/<key>.json with the cause; the other units finish and are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.progress import time_left
from ..config.load import to_yaml
from ..core.errors import InvlabError, clip
from ..store.layout import checkpoint_path, unit_data_path, unit_key
from ..store.meta import read_unit_state, record_unit_failure, run_state
from .executors import EXECUTORS, Resources, check_jobs, worker_threads
from .units import Task, UnitData, save_unit_data, split_key

Say = Callable[[str], None]
POLL_S = 0.2  # how often the scheduler looks at its workers
FIRST_LOOK_S = 0.01  # wait_elsewhere's first pause, doubled at each look up to POLL_S


@dataclass
class Progress:
    """Counts for the progress line."""

    total: int
    done: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)

    def eta(self) -> str:
        return time_left(self.done + self.failed, self.total, time.perf_counter() - self.started)


def train_units(cfg, run_dir: Path, units: list[tuple[str, int]], data: UnitData, *, jobs: int = 2,
                executor: str = "processes", threads: int | None = None, resources: Resources | None = None,
                factory_dirs: list[Path] | None = None, say: Say | None = None) -> dict[str, float]:
    """Train `units` (model, seed) of a run into its folder with an executor; {unit key: seconds} of those that
    finished. Units alive elsewhere (units/<key>.json running) are waited for, not started again. When some fail,
    the others still finish, then an InvlabError names them with their errors (a rerun retries them). Ctrl-C stops
    the workers (a cluster's jobs keep running: a rerun waits for them)."""
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
        if running_elsewhere(run_dir, unit_key(model, seed)):
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
            for handle in [h for h in inflight if h.done()]:
                task = inflight.pop(handle)
                try:
                    result = handle.result()
                except Exception as e:  # the unit's own error (a worker re-raises it), or its worker died
                    failures[task.key] = _failure(run_dir, task.key, e)
                    if (read_unit_state(run_dir, task.key) or {}).get("status") in (None, "running"):
                        record_unit_failure(run_dir, task.key, failures[task.key])  # its worker could not say so
                    progress.failed += 1
                    say(f"unit {task.key} FAILED: {failures[task.key]} ({counts()})")
                else:
                    finished[task.key] = result["seconds"]
                    progress.done += 1
                    say(f"trained {task.model} seed {task.seed}: test accuracy {result['test_accuracy']:.3f} "
                        f"({result['seconds']:.1f}s); {counts()}")
            for key, seconds in _ended_elsewhere(run_dir, elsewhere):
                if seconds is not None:
                    finished[key] = seconds
                    progress.done += 1
                    say(f"unit {key} (started by an earlier command) finished; {counts()}")
                else:  # it stopped without a checkpoint: train it here
                    pending.append(Task(config_text, str(run_dir), *split_key(key), n_threads, executor, dirs))
                    backend = backend or entry.start(run_dir, jobs, resources, len(units))
            if pending and len(inflight) < cap:  # after collecting: a worker just freed takes its next unit now
                batch, pending = pending[:cap - len(inflight)], pending[cap - len(inflight):]
                inflight.update(zip(backend.submit(batch), batch))
            if pending or inflight or elsewhere:
                _pause(backend if inflight else None)
    except BaseException:  # Ctrl-C, or an error here (a unit state it cannot write, stdout closed): idle workers
        if backend is not None and not entry.detached:  # left alive would keep this process from exiting
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


def _pause(backend) -> None:
    """Wait before looking again: until one of the backend's units finishes, at most POLL_S, where the backend can
    wait on its workers (a unit is seen the moment it ends); else POLL_S."""
    if hasattr(backend, "wait"):
        backend.wait(POLL_S)
    else:
        time.sleep(POLL_S)


def _failure(run_dir: Path, key: str, e: BaseException) -> str:
    """A failed unit in one line: its recorded error, else what the executor said (a worker killed, ...)."""
    state = read_unit_state(run_dir, key) or {}
    if state.get("status") == "failed" and state.get("error"):
        return clip(state["error"], 300)
    return clip(str(e) if isinstance(e, InvlabError) else f"{type(e).__name__}: {e}", 300)  # InvlabError: a sentence


def running_elsewhere(run_dir: Path, key: str) -> bool:
    """A unit whose state says running and whose process is alive (store/meta.run_state: its pid here, or a recent
    heartbeat from another host): waited for, not started again. A state left running by a process that is gone,
    or with a heartbeat in the future, does not count: that unit is trained again."""
    state = read_unit_state(run_dir, key)
    return state is not None and run_state(state) == "running"


def _is_running(run_dir: Path, key: str) -> bool:
    state = read_unit_state(run_dir, key)
    return state is not None and state.get("status") == "running"


def wait_elsewhere(run_dir: Path, units: list[tuple[str, int]], say: Say) -> dict[str, float]:
    """Before this process trains `units` one after another itself (--jobs 1): the units another process still
    trains (the workers of an earlier command that was killed go on with theirs) are waited for, as train_units
    waits for them, not trained a second time into the same checkpoint; {key: seconds} of those that finished
    there (the others are trained here)."""
    elsewhere = [unit_key(m, s) for m, s in units if running_elsewhere(run_dir, unit_key(m, s))]
    if elsewhere:
        say(f"waiting for {len(elsewhere)} units still running elsewhere (started by an earlier command): "
            f"{', '.join(elsewhere)}")
    finished, pause = {}, FIRST_LOOK_S
    while elsewhere:  # soon at first (a unit about to end is not waited on for a whole POLL_S), then every POLL_S
        time.sleep(pause)
        pause = min(2 * pause, POLL_S)
        for key, seconds in _ended_elsewhere(run_dir, elsewhere):
            if seconds is not None:
                finished[key] = seconds
                say(f"unit {key} (started by an earlier command) finished")
    return finished


def _ended_elsewhere(run_dir: Path, elsewhere: list[str]) -> list[tuple[str, float | None]]:
    """The units of `elsewhere` that have stopped, removed from it: (key, seconds it trained, None when it stopped
    without a checkpoint)."""
    ended = []
    for key in list(elsewhere):
        outcome = _outcome_elsewhere(run_dir, key)
        if outcome is not None:
            elsewhere.remove(key)
            state = (read_unit_state(run_dir, key) or {}) if outcome == "complete" else None
            ended.append((key, None if state is None else float(state.get("seconds") or 0.0)))
    return ended


def _outcome_elsewhere(run_dir: Path, key: str) -> str | None:
    """None while a unit started by another process still runs; then 'complete', or how it stopped."""
    state = read_unit_state(run_dir, key) or {}
    now = run_state(state) if state else "missing"
    if now == "running":
        return None
    if now == "interrupted (process gone)":  # read running, then its process was gone: it may have written its
        again = read_unit_state(run_dir, key) or {}  # end and exited in between (a unit that finished, not one lost)
        now = "complete" if again.get("status") == "complete" else now
    return "complete" if now == "complete" and checkpoint_path(run_dir, *split_key(key)).is_file() else now
