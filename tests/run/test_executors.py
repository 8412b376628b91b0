"""executors: a worker process of `--jobs N` that dies (SIGKILL, the out-of-memory killer) fails only the unit it
held, with the cause; the other units finish and are kept, and a rerun trains only the failed one. A unit state
left "running" by a process that is gone, or with a heartbeat in the future, never blocks a rerun."""

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from functools import partial
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.config.load import load_config
from invariance_lab.run import executors, scheduler
from invariance_lab.run.scheduler import running_elsewhere
from invariance_lab.run.units import UnitData
from invariance_lab.run.workers import WorkerDied, WorkerPool
from invariance_lab.core.errors import RunFolderError
from invariance_lab.core.processes import process_start, processes_with_env
from invariance_lab.store.layout import CONTROLLER_LOG, submitit_dir
from invariance_lab.store.meta import read_meta, read_unit_state

# Two units that train at once: `killer` kills its own worker with SIGKILL (as the out-of-memory killer would)
# while `armed` exists; `patient` waits, mid-training, until the killer's worker is dead, so a healthy unit is
# certainly in flight when its neighbour's worker dies.
KILLER = '''
import os
import pathlib
import signal
import time

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, role, armed):
        super().__init__()
        self.role, self.armed = role, armed
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        if self.training and x.shape[0] > 2:  # not on invlab's 2-image check
            dying = pathlib.Path(self.armed + ".dying")
            if self.role == "killer" and os.path.exists(self.armed):
                dying.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            deadline = time.monotonic() + 60  # a killer that never came
            while self.role == "patient" and not _dead(dying) and time.monotonic() < deadline:
                time.sleep(0.01)
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def _dead(dying):
    """The killer's worker is gone (not even a zombie): it wrote its pid, then killed itself."""
    try:
        pid = int(dying.read_text())
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except ValueError:  # not written yet, or half-written
        return False
    except OSError:
        return dying.exists()  # no /proc entry: the process is gone


def net(role, armed):
    return Net(role, armed)
'''


# The killed-worker run's sizes: its units' models, not their training time, decide what happens, so the least
# training with batches of more than the 2 images of invlab's check (the models act on those) will do.
LEAST = ["--set", "data.train_images=64", "--set", "train.epochs=1", "--set", "data.test_images=20", "--threads", "1",
         "--quiet"]


def _square_or_die(n):
    if n < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    if n == 13:
        raise ValueError("unlucky")
    return n * n


def test_a_dead_worker_fails_only_its_task_and_a_fresh_worker_takes_the_rest():
    # forked workers (milliseconds to start; the pool is the same with invlab's fork server)
    pool = WorkerPool(_square_or_die, 2, multiprocessing.get_context("fork"))
    handles = pool.submit([2, -1, 3, 13, 4, -1, 5])
    outcomes = []
    for handle in handles:
        try:
            outcomes.append(handle.result())
        except Exception as e:
            outcomes.append(e)
    pool.close()
    assert [outcomes[i] for i in (0, 2, 4, 6)] == [4, 9, 16, 25]
    for died in (outcomes[1], outcomes[5]):
        assert isinstance(died, WorkerDied) and "killed by signal 9 (SIGKILL" in str(died)
    assert isinstance(outcomes[3], ValueError) and "unlucky" in str(outcomes[3])
    assert "_square_or_die" in str(outcomes[3].__cause__)  # the worker's traceback, for --debug


def test_the_scheduler_waits_on_its_workers_not_a_fixed_pause(monkeypatch):
    # a unit is seen the moment its worker answers: the processes backend waits on the workers' pipes, and sleeps
    # only when it holds none (then, as for a cluster's jobs, the scheduler looks again after POLL_S)
    slept = []
    monkeypatch.setattr(executors.time, "sleep", slept.append)
    monkeypatch.setattr(scheduler.time, "sleep", slept.append)
    backend = executors._Processes.__new__(executors._Processes)
    backend.pool = WorkerPool(_square_or_die, 1, multiprocessing.get_context("fork"))
    (handle,) = backend.pool.submit([3])
    scheduler._pause(backend)  # waits (up to POLL_S) until the worker's answer is in
    assert slept == [] and handle.done() and handle.result() == 9
    scheduler._pause(backend)  # no worker busy: a plain pause
    scheduler._pause(None)  # no backend that can wait (a cluster's jobs, units running elsewhere)
    assert slept == [scheduler.POLL_S, scheduler.POLL_S]
    backend.close()


def test_a_worker_that_frees_up_takes_the_next_unit_before_the_scheduler_waits_again(tmp_path, monkeypatch):
    # a backend whose oldest unit ends during each wait: the next pending unit is submitted in the same look that
    # collects the finished one, not after another wait with a worker idle (up to POLL_S a unit)
    events = []

    class Handle:
        finished = False

        def done(self):
            return self.finished

        def result(self):
            return {"seconds": 0.0, "test_accuracy": 1.0}

    class Backend:
        def __init__(self, run_dir, jobs, resources, n_units):
            self.running = []

        def submit(self, tasks):
            events.append(["submit", *(t.key for t in tasks)])
            handles = [Handle() for _ in tasks]
            self.running += handles
            return handles

        def wait(self, timeout):
            events.append("wait")
            self.running.pop(0).finished = True

        def close(self):
            events.append("close")

    monkeypatch.setitem(executors.EXECUTORS, "processes", executors.Executor("processes", "fake", False, Backend))
    images = torch.zeros(2, 1, 24, 24)
    data = UnitData(images, torch.zeros(2, dtype=torch.long), images, torch.zeros(2, dtype=torch.long), ["A", "B"])
    finished = scheduler.train_units(load_config(ROOT / "configs" / "quick.yaml"), tmp_path,
                                     [("m", 0), ("m", 1), ("m", 2)], data, jobs=2, threads=1)
    assert set(finished) == {"m-seed0", "m-seed1", "m-seed2"}
    assert events == [["submit", "m-seed0", "m-seed1"], "wait", ["submit", "m-seed2"], "wait", "wait", "close"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), BrokenPipeError(32, "Broken pipe"),
                                   KeyboardInterrupt()])
def test_any_error_of_the_scheduler_stops_the_workers(tmp_path, monkeypatch, error):
    """Only Ctrl-C stopped them: any other error (a unit state it could not write, stdout piped into `head`) was
    printed, then the command waited forever on its idle workers at exit."""
    events = []

    class Handle:
        def done(self):
            return False

    class Backend:
        def __init__(self, run_dir, jobs, resources, n_units):
            pass

        def submit(self, tasks):
            return [Handle() for _ in tasks]

        def wait(self, timeout):
            raise error

        def stop(self):
            events.append("stop")

        def close(self):
            events.append("close")

    monkeypatch.setitem(executors.EXECUTORS, "processes", executors.Executor("processes", "fake", False, Backend))
    images = torch.zeros(2, 1, 24, 24)
    data = UnitData(images, torch.zeros(2, dtype=torch.long), images, torch.zeros(2, dtype=torch.long), ["A", "B"])
    with pytest.raises(type(error)):
        scheduler.train_units(load_config(ROOT / "configs" / "quick.yaml"), tmp_path, [("m", 0), ("m", 1)], data,
                              jobs=2, threads=1)
    assert events == ["stop"]


def test_a_killed_worker_fails_only_its_unit_and_a_rerun_trains_only_that_one(tmp_path):
    armed = tmp_path / "armed"
    armed.write_text("")
    (tmp_path / "killer.py").write_text(KILLER)
    raw = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())
    raw["seeds"] = [0]
    raw["models"] = {role: {"factory": "killer:net", "kwargs": {"role": role, "armed": str(armed)}}
                     for role in ("patient", "killer")}
    config = tmp_path / "killer.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    results = tmp_path / "r"
    # the real command in its own process: the workers' output (a traceback of theirs) is caught too
    proc = subprocess.run([sys.executable, "-m", "invariance_lab", "run", str(config), "--results-dir", str(results),
                           *LEAST, "--jobs", "2"], capture_output=True, text=True, timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out and "BrokenProcessPool" not in out, out
    assert "leaked" not in out, out  # no resource_tracker warning about the dead worker's semaphore
    assert "1 of 2 units failed" in out and "killer-seed0" in out and "signal 9" in out and "SIGKILL" in out, out
    (run_dir,) = (results / "quick").iterdir()
    assert (run_dir / "checkpoints" / "patient-seed0.pt").is_file()  # the healthy neighbour finished and was kept
    assert not (run_dir / "checkpoints" / "killer-seed0.pt").exists()
    state = read_unit_state(run_dir, "killer-seed0")
    assert state["status"] == "failed" and "signal 9" in state["error"]  # not left "running"
    res = CliRunner().invoke(app, ["status", str(run_dir)])
    assert "failed" in res.output and "signal 9" in res.output, res.output

    armed.unlink()
    res = CliRunner().invoke(app, ["run", str(config), "--results-dir", str(results), *LEAST])
    assert res.exit_code == 0, res.output
    meta = read_meta(run_dir)
    assert meta["trained"] == ["killer-seed0"] and set(meta["reused"]) == {"patient-seed0"}


def _unit_state(run_dir, key, **fields):
    state = dict(dict(status="running", key=key, host=socket.gethostname(), started="2026-01-01T00:00:00",
                      heartbeat=datetime.now().isoformat(timespec="seconds")), **fields)
    (run_dir / "units").mkdir(exist_ok=True)
    (run_dir / "units" / f"{key}.json").write_text(json.dumps(state))


def test_a_running_unit_whose_process_is_gone_or_whose_heartbeat_is_in_the_future_is_trained_again(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    future = (datetime.now() + timedelta(days=365)).isoformat(timespec="seconds")
    me, start = os.getpid(), process_start(os.getpid())
    _unit_state(tmp_path, "dead-seed0", pid=gone.pid, pid_start="1")
    _unit_state(tmp_path, "future-seed0", pid=1, host="elsewhere", heartbeat=future)
    _unit_state(tmp_path, "future_here-seed0", pid=me, pid_start=start, heartbeat=future)
    _unit_state(tmp_path, "alive-seed0", pid=me, pid_start=start)
    _unit_state(tmp_path, "alive_elsewhere-seed0", pid=1, host="elsewhere")
    assert not running_elsewhere(tmp_path, "dead-seed0")
    assert not running_elsewhere(tmp_path, "future-seed0")
    assert not running_elsewhere(tmp_path, "future_here-seed0")
    assert not running_elsewhere(tmp_path, "none-seed0")  # no state at all
    assert running_elsewhere(tmp_path, "alive-seed0")  # a live unit is waited for, not trained twice
    assert running_elsewhere(tmp_path, "alive_elsewhere-seed0")  # a fresh heartbeat from another host


def test_a_unit_running_elsewhere_is_looked_at_soon_then_every_poll_s_until_it_ends(tmp_path, monkeypatch):
    _unit_state(tmp_path, "alive-seed0", pid=os.getpid(), pid_start=process_start(os.getpid()))
    slept = []

    def sleep(seconds):  # the other process ends its unit during the seventh pause
        slept.append(seconds)
        if len(slept) == 7:
            (tmp_path / "checkpoints").mkdir()
            (tmp_path / "checkpoints" / "alive-seed0.pt").write_bytes(b"")
            _unit_state(tmp_path, "alive-seed0", status="complete", seconds=1.5)

    monkeypatch.setattr(scheduler.time, "sleep", sleep)
    assert scheduler.wait_elsewhere(tmp_path, [("alive", 0)], lambda msg: None) == {"alive-seed0": 1.5}
    assert len(slept) == 7 and slept[0] < scheduler.POLL_S and slept == sorted(slept)
    assert slept[-2:] == [scheduler.POLL_S] * 2  # never more often than that once the unit has run a while


@pytest.mark.parametrize("ends", [True, False])
def test_a_unit_that_ends_between_reading_its_state_and_checking_its_process_counts_as_finished(tmp_path,
                                                                                               monkeypatch, ends):
    """The state read said running; by the time its process was checked, the process had written its end and
    exited: it read as lost ("process gone"), and a rerun recorded the worker's unit as reused, not trained (one
    run in ten of tests/run/test_experiment.py's rerun test under load). A process gone for good still reads so."""
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    _unit_state(tmp_path, "u-seed0", pid=gone.pid)  # running, by a process that is gone by the time it is checked
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "u-seed0.pt").write_bytes(b"")
    reads = []
    real = scheduler.read_unit_state

    def read(run_dir, key):  # the process writes its end just after the first read
        reads.append(key)
        if len(reads) == 2 and ends:
            _unit_state(tmp_path, "u-seed0", pid=gone.pid, status="complete", seconds=1.5)
        return real(run_dir, key)

    monkeypatch.setattr(scheduler, "read_unit_state", read)
    expected = [("u-seed0", 1.5)] if ends else [("u-seed0", None)]
    assert scheduler._ended_elsewhere(tmp_path, ["u-seed0"]) == expected


def test_a_stopped_submitit_local_job_prints_no_traceback(tmp_path, capfd):
    """submitit-local's controller, a python process of the terminal's process group, ends on Ctrl-C and on a cancel
    (SIGINT both) with a KeyboardInterrupt traceback; the executor starts it with units/submitit/controllers.log as
    its stderr, and gives this process its own stderr back."""
    pytest.importorskip("submitit")
    terminal = os.fstat(2)
    backend = executors.EXECUTORS["submitit-local"].start(tmp_path, 1, executors.Resources(), 1)
    backend.ex.update_parameters(timeout_min=1)
    # Tests started in the background by a non-interactive shell (as CI may start them) inherit SIGINT ignored, and
    # a controller started so would too: deaf to the cancel, it ran its job to the timeout (30 s) with nothing in
    # its log. A signal this process handles is reset to the default in a new program; an ignored one is not.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        (job,) = backend.submit([SimpleNamespace(run=partial(time.sleep, 60))])  # still running when it is stopped
    finally:
        signal.signal(signal.SIGINT, before)
    assert (os.fstat(2).st_dev, os.fstat(2).st_ino) == (terminal.st_dev, terminal.st_ino)
    deadline = time.monotonic() + 60
    try:
        while not list((submitit_dir(tmp_path) / job.job_id).glob("*_log.out")) and time.monotonic() < deadline:
            time.sleep(0.01)  # until the controller has started the task
    finally:
        backend.stop()
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.done()
    if os.path.isdir("/proc"):  # no task left sleeping on, whenever the cancel came (the next test plants one)
        assert processes_with_env({"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": job.job_id}) == []
    time.sleep(0.2)  # the controller's last words, if any, reach the terminal
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    assert "KeyboardInterrupt" in (submitit_dir(tmp_path) / CONTROLLER_LOG).read_text()  # as the controller said


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="tasks are found through Linux's /proc")
def test_stop_kills_a_task_its_cancelled_controller_did_not_hold(tmp_path):
    """A cancel that reaches submitit-local's controller while it starts its task ends the controller before it
    holds the task, which then trains on alone (seen under load): stop() kills the processes submitit started for
    its jobs (their job id in the environment); a task of a job that had ended is left alone."""
    pytest.importorskip("submitit")
    backend = executors.EXECUTORS["submitit-local"].start(tmp_path, 1, executors.Resources(), 1)

    def task(job_id):
        env = {**os.environ, "SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": job_id}
        p = subprocess.Popen([sys.executable, "-c", "print(flush=True); import time; time.sleep(60)"], env=env,
                             stdout=subprocess.PIPE)
        p.stdout.readline()  # it runs python: its environment is its own, not the one it was forked with
        return p

    controller = subprocess.Popen([sys.executable, "-c", "pass"])  # a cancelled controller: it ends at once
    orphan, other = task(str(controller.pid)), task(str(controller.pid + 10**7))  # Linux's pids stop at 2**22
    ours = SimpleNamespace(job_id=str(controller.pid), _process=controller, done=lambda: False,
                           cancel=lambda check: None)
    done = SimpleNamespace(job_id=str(controller.pid + 10**7), done=lambda: True)  # finished: not cancelled or scanned
    backend.submitted = [ours, done]
    try:
        backend.stop()
        assert orphan.wait(5) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for p in (orphan, other):
            p.kill()
            p.wait()
            p.stdout.close()


def test_a_controllers_log_that_is_a_link_is_refused(tmp_path):
    pytest.importorskip("submitit")
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    log = submitit_dir(tmp_path / "run") / CONTROLLER_LOG
    log.parent.mkdir(parents=True)
    log.symlink_to(notes)
    backend = executors.EXECUTORS["submitit-local"].start(tmp_path / "run", 1, executors.Resources(), 1)
    with pytest.raises(RunFolderError, match="is a symbolic link .* invlab never writes through a link"):
        backend.submit([SimpleNamespace(run=partial(time.sleep, 0))])
    assert notes.read_text() == "mine\n" and not backend.submitted


def test_a_controllers_log_that_cannot_be_opened_is_the_run_folders_fault_not_the_clusters(tmp_path):
    """A folder at controllers.log was 'submitting 1 units failed: Is a directory ... check --partition'."""
    pytest.importorskip("submitit")
    (submitit_dir(tmp_path) / CONTROLLER_LOG).mkdir(parents=True)
    terminal = os.fstat(2)
    backend = executors.EXECUTORS["submitit-local"].start(tmp_path, 1, executors.Resources(), 1)
    with pytest.raises(RunFolderError, match="cannot open it to log submitit's job controllers .Is a directory"):
        backend.submit([SimpleNamespace(run=partial(time.sleep, 0))])
    assert not backend.submitted and (os.fstat(2).st_dev, os.fstat(2).st_ino) == (terminal.st_dev, terminal.st_ino)
