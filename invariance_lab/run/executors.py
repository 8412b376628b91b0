"""Executors: where a run's units train when there are several at once (units.py schedules them).

    processes        worker processes on this machine (--jobs N at once, each forked from a clean fork server)
    slurm            a SLURM job array through submitit (pip install -e '.[slurm]' in the checkout)
    submitit-local   submitit's local executor: the slurm code path on this machine (the tests use it)

Each executor is an entry of EXECUTORS (register_executor); its backend takes a list of units.Task and returns
handles whose result() is the task's outcome, and can stop them (Ctrl-C) or be closed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..core.processes import processes_with_env
from ..core.runtime import usable_cores
from ..core.errors import InvlabError, RunFolderError, choose, clip
from ..core.speed import keep_freed_memory
from ..core.open_flags import NOFOLLOW
from ..store.atomic import refuse_link
from ..store.layout import CONTROLLER_LOG, submitit_dir
from .workers import WorkerPool


def _run_task(task):
    """A worker's entry point: the task's own run() (units.Task trains a unit, sweep_jobs.SweepTask sweeps), with
    the allocator set as the `invlab` command sets its own (speed.py: without it a worker spent a quarter of its
    time in page faults)."""
    keep_freed_memory()
    return task.run()


DEFAULT_TIME_MIN = 60  # --time: minutes per unit's job
CONTROLLER_EXIT_S = 5.0  # how long a cancelled submitit-local controller gets to end its tasks (it waits 1 s for them)
ORPHAN_WINDOW_S = 0.5  # how long after that a task its controller forked, still starting python, is looked for


@dataclass
class Resources:
    """What a cluster job asks for (--partition, --time, --cpus, --gpus, --mem); unused by `processes`."""

    partition: str | None = None
    time_min: int = DEFAULT_TIME_MIN
    cpus: int | None = None  # per unit; default: the --threads given, else 1
    gpus: int = 0
    mem_gb: float | None = None


@dataclass(frozen=True)
class Executor:
    name: str
    description: str
    submit_all: bool  # every unit submitted at once (a job array), or at most --jobs at a time
    # (run_dir, jobs, resources, n_units) -> a backend with submit(tasks), stop() and close(); one with
    # wait(timeout) is waited on between the scheduler's looks (else it looks every POLL_S)
    start: Callable[..., Any]
    detached: bool = False  # its jobs outlive this process: Ctrl-C leaves them running


def _ignore_ctrl_c() -> None:
    """A worker ignores Ctrl-C (the terminal sends it to the whole process group): the run's own process stops
    its workers (_Processes.stop), so a worker never prints a traceback of its own half-way through a unit."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_worker() -> None:
    """A worker's set-up: Ctrl-C ignored (above), and tqdm's lock a thread lock. tqdm's default is a named
    semaphore; a worker that is killed (SIGKILL, the out-of-memory killer) leaves it behind, and the run then ends
    with a resource_tracker warning about it. A worker's progress bars are off anyway."""
    _ignore_ctrl_c()
    tqdm.set_lock(threading.RLock())


# What a fork server imports once, before it forks each worker: the code every worker runs (a unit, a sweep share),
# torch with it. Spawned workers each imported it again, ~1.8 s of CPU per worker on a 2-core machine. Not
# torch._dynamo: the default optimizer does not import it (optimizer.py), and it would add ~70 MB to every worker.
# fork_server last: it freezes what the others imported (its docstring says why).
WORKER_MODULES = ["invariance_lab.run.units", "invariance_lab.run.sweep_jobs", "invariance_lab.run.fork_server"]


def _worker_context():
    """forkserver where the platform has it (Linux, macOS): each worker is forked from a clean server process that
    imported WORKER_MODULES once, so it shares no state with the run's own process, as a spawned one would not;
    spawn elsewhere (Windows)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(WORKER_MODULES)  # ignored once this process's server runs: it has them already
    return ctx


class _Processes:
    """Worker processes on this machine, forked from a clean fork server (or spawned): no state shared with the
    run's own process. Each holds one unit at a time (workers.py), so a worker that dies (SIGKILL, the
    out-of-memory killer) fails only its own unit, with the cause, and the others finish."""

    def __init__(self, run_dir, jobs, resources, n_units):
        self.pool = WorkerPool(_run_task, min(jobs, n_units), _worker_context(), initializer=_start_worker)

    def submit(self, tasks: list) -> list:
        return self.pool.submit(tasks)

    def wait(self, timeout: float) -> None:
        """Until a worker finishes its unit (or dies), at most `timeout` seconds."""
        if self.pool.busy:
            self.pool.poll(timeout)
        else:
            time.sleep(timeout)

    def stop(self) -> None:
        """Ctrl-C: kill the workers now. SIGKILL, since a worker takes SIGTERM (and the Ctrl-C it also got) as the
        end of its unit only (runs.Meta.recording), then would start the next one."""
        self.pool.stop()

    def close(self) -> None:
        self.pool.close()


class _Submitit:
    """submitit: a SLURM job array (`slurm`), or the same code path run locally (`submitit-local`)."""

    def __init__(self, run_dir, jobs, resources: Resources, n_units, cluster: str):
        try:
            import submitit
        except ImportError:
            raise InvlabError(f"--executor {'slurm' if cluster == 'slurm' else 'submitit-local'} submits units "
                              "through submitit, which is not installed; install it with "
                              "`pip install -e '.[slurm]'` in invlab's checkout (or `pip install submitit`), or use "
                              "--executor processes") from None
        folder = submitit_dir(run_dir) / "%j"
        self.controllers_log = None if cluster == "slurm" else submitit_dir(run_dir) / CONTROLLER_LOG
        if cluster == "slurm":
            try:
                self.ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
            except RuntimeError as e:  # no srun / sbatch here
                raise InvlabError(f"--executor slurm: {clip(e)} Run the command on a SLURM login node (the results "
                                  "folder on a filesystem the nodes share), or use --executor processes here") from None
            params: dict[str, Any] = dict(timeout_min=resources.time_min, cpus_per_task=resources.cpus or 1,
                                          slurm_array_parallelism=jobs, name=f"invlab-{Path(run_dir).parent.name}")
            if resources.partition:
                params["slurm_partition"] = resources.partition
            if resources.gpus:
                params["gpus_per_node"] = resources.gpus
            if resources.mem_gb:
                params["mem_gb"] = resources.mem_gb
        else:
            self.ex = submitit.LocalExecutor(folder=folder)
            params = dict(timeout_min=resources.time_min, gpus_per_node=resources.gpus)
        self.ex.update_parameters(**params)
        self.submitted: list = []

    def submit(self, tasks: list) -> list:
        try:
            with _stderr_into(self.controllers_log) if self.controllers_log else nullcontext():
                jobs = self.ex.map_array(_run_task, tasks)
        except (OSError, RuntimeError) as e:  # sbatch refused the array (a bad partition, time or memory, ...)
            raise InvlabError(f"submitting {len(tasks)} units failed: {clip(e, 500)}; check --partition, --time, "
                              "--cpus, --gpus and --mem against the cluster's limits (sinfo)") from None
        self.submitted += jobs
        return jobs

    def stop(self) -> None:
        """Ctrl-C: cancel every job not done. submitit-local's controller, cancelled, ends the tasks it holds; a
        cancel that comes while it starts a task ends it before it holds that task, which would train on alone (and
        write its checkpoint later). Once the controllers are gone, such a task is killed too (Linux: found by
        the job id submitit gives it in its environment; looked for over ORPHAN_WINDOW_S, since a task forked but
        not yet running python still has its controller's environment)."""
        live = [job for job in self.submitted if not job.done()]
        for job in live:
            job.cancel(check=False)
        if self.controllers_log is None or not live:  # slurm: scancel ends the whole job, tasks included
            return
        deadline = time.monotonic() + CONTROLLER_EXIT_S
        for job in live:
            controller = getattr(job, "_process", None)  # submitit's LocalJob: the controller, a child of this process
            try:
                if controller is not None:
                    controller.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:  # still ending its tasks: the scan below finds what it left
                pass
        ids = [str(job.job_id) for job in live]
        end = time.monotonic() + ORPHAN_WINDOW_S
        while True:
            for job_id in ids:
                for pid in processes_with_env({"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": job_id}):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:  # ended meanwhile
                        pass
            if time.monotonic() >= end:
                return
            time.sleep(0.05)

    def close(self) -> None:
        pass


@contextmanager
def _stderr_into(path: Path):
    """This process's stderr (file descriptor 2) appended to `path` inside the block, as it was after. submitit-local
    starts each job's controller, a python process in the terminal's process group, with this process's stderr;
    Ctrl-C, and a cancel (SIGINT too), end the controller with a KeyboardInterrupt traceback, which would land
    between invlab's own lines. Started inside this block, the controllers write to the log instead."""
    refuse_link(path)  # the house message; O_NOFOLLOW below refuses one planted since
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | NOFOLLOW, 0o644)
    except OSError as e:  # a folder at the name, a folder it cannot write: not the cluster's refusal (submit)
        raise RunFolderError(f"{path}: cannot open it to log submitit's job controllers ({e.strerror or e}); invlab "
                             "writes it in the run folder: make the folder writable, or remove what is at that "
                             "name") from None
    saved = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log, 2)
        yield
    finally:
        if saved is not None:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):  # a closed pipe: this process's stderr comes back all the same
                pass
            os.dup2(saved, 2)
            os.close(saved)
        os.close(log)


EXECUTORS: dict[str, Executor] = {}


def register_executor(name: str, description: str, start: Callable, submit_all: bool = False,
                      detached: bool = False) -> Executor:
    EXECUTORS[name] = entry = Executor(name, description, submit_all, start, detached)
    return entry


register_executor("processes", "worker processes on this machine, --jobs at once", _Processes)
register_executor("slurm", "a SLURM job array through submitit (pip install -e '.[slurm]' in the checkout)",
                  lambda *a: _Submitit(*a, cluster="slurm"), submit_all=True, detached=True)
register_executor("submitit-local", "submitit's local executor: the slurm code path on this machine",
                  lambda *a: _Submitit(*a, cluster="local"))


def check_jobs(jobs: int, executor: str) -> None:
    """--jobs and --executor, checked before anything is written."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InvlabError(f"--jobs must be a whole number of units to run at once, at least 1 (1: one after another "
                          f"in this process; N: N worker processes); got {jobs!r}")
    choose("--executor", executor, EXECUTORS)
    if executor != "processes":
        import importlib.util
        import shutil

        if importlib.util.find_spec("submitit") is None:
            raise InvlabError(f"--executor {executor} submits units through submitit, which is not installed; "
                              "install it with `pip install submitit` (the package's slurm extra), or use "
                              "--executor processes")
        if executor == "slurm" and not (shutil.which("sbatch") and shutil.which("srun")):
            raise InvlabError("--executor slurm: no sbatch/srun here, so this is not a SLURM login node; run the "
                              "command on one (the results folder on a filesystem the nodes share), or use "
                              "--executor processes (this machine) or submitit-local (the slurm path, here)")


def worker_threads(jobs: int, threads: int | None, executor: str, resources: Resources) -> int | None:
    """torch threads per worker: --threads, else cores // jobs here, else the cluster job's cpus."""
    if threads is not None:
        return threads
    if EXECUTORS[executor].detached:
        return resources.cpus  # None: torch's default inside the job, which SLURM limits to its cpus
    return max(1, usable_cores() // jobs)
