"""units: --jobs N trains (model, seed) units in worker processes with the same numbers as --jobs 1; Ctrl-C and a
killed run resume with only the missing units; a failed unit is reported with its log and retried; invlab status."""

import gc
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from conftest import ROOT, SMALL_RUN
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.run import executors
from invariance_lab.store.claim import claim
from invariance_lab.store.meta import read_meta, run_state

runner = CliRunner()
SMALL = SMALL_RUN
# For the runs compared with no other run and whose outcome does not hang on how long a unit trains (the gate holds
# its unit until the test lets it go, the flaky model fails on its first batch, a submitit job has only to end): the
# least training that still has batches of 32 images, the shape the flaky unit's error names (the gate and the
# flaky model act on batches of more than the 2 images of invlab's check).
LEAST = ["--set", "data.train_images=64", "--set", "train.epochs=1", "--set", "data.test_images=20", "--threads", "1",
         "--quiet"]
UNITS = {"conv_only-seed0", "conv_only-seed1", "conv_gap-seed0", "conv_gap-seed1"}


def _run(results, *extra, config=ROOT / "configs" / "quick.yaml", sizes=SMALL):
    return runner.invoke(app, ["run", str(config), "--results-dir", str(results), *sizes, *extra])


def _same_tables(a, b):
    for name in ("invariance.csv", "summary.csv", "train.csv"):
        x, y = pd.read_csv(a / name), pd.read_csv(b / name)
        if name == "train.csv":
            x, y = x.drop(columns="seconds"), y.drop(columns="seconds")
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    assert (a / "invariance.csv").read_bytes() == (b / "invariance.csv").read_bytes()


@pytest.fixture
def one_job(small_quick_run):
    """The run with --jobs 1 (conftest.py: made once for this and test_experiment.py)."""
    return small_quick_run


def _ctrl_c_default():
    # A job started in the background by a non-interactive shell (as CI may start the tests) inherits SIGINT
    # ignored, and Python then leaves it ignored: give the run under test the Ctrl-C a terminal user has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


GATE = '''
import os
import pathlib
import time

import torch
from torch import nn


class Net(nn.Module):
    """A small net whose training waits while the `hold` file exists: a unit that cannot finish before the test
    has stopped the run, however fast or slow the machine is. It says so by writing `hold`.waiting."""

    def __init__(self, hold):
        super().__init__()
        self.hold = hold
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        if self.training and x.shape[0] > 2:  # not on invlab's 2-image check
            pathlib.Path(self.hold + ".waiting").touch()
            deadline = time.monotonic() + 180  # a test that failed before removing the file
            while os.path.exists(self.hold) and time.monotonic() < deadline:
                time.sleep(0.01)
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def net(hold):
    return Net(hold)
'''


def _quick_with(tmp_path, name: str, source: str, kwargs: dict):
    """configs/quick.yaml with seed 0 and a third model `name`, built by `net` in the module `source` (written
    beside the config) with `kwargs`."""
    (tmp_path / f"{name}.py").write_text(source)
    raw = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())
    raw["seeds"] = [0]
    raw["models"][name] = {"factory": f"{name}:net", "kwargs": kwargs}
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def test_ctrl_c_stops_the_workers_and_a_rerun_trains_only_the_missing_units(tmp_path):
    # quick.yaml with seed 0 and a third model whose unit waits until the test lets it go: Ctrl-C is sent while
    # at least one unit is done and the gate's is running, on a quiet machine or a starved one
    hold = tmp_path / "hold"
    hold.write_text("")
    config = _quick_with(tmp_path, "gate", GATE, {"hold": str(hold)})
    units = {"conv_only-seed0", "conv_gap-seed0", "gate-seed0"}
    results = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "invariance_lab", "run", str(config), "--results-dir",
                             str(results), *LEAST, "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_ctrl_c_default)
    waiting = tmp_path / "hold.waiting"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (waiting.exists() and list(results.glob("quick/*/checkpoints/*.pt"))):
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.01)
    (run_dir,) = (results / "quick").iterdir()
    assert claim(run_dir) is None  # held by the live run: a rerun started now makes a folder of its own
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
    out, _ = proc.communicate(timeout=60)  # returns once the workers, which share its stdout, are gone too
    assert proc.returncode == 130 and "Traceback" not in out.decode(), out.decode()
    claim(run_dir).release()  # released with the process: the rerun below resumes here
    meta = read_meta(run_dir)
    assert run_state(meta) == "interrupted"
    present = {p.stem for p in (run_dir / "checkpoints").glob("*.pt")}
    assert 1 <= len(present) < 3 and "gate-seed0" not in present
    for key in units - present:  # stopped units are not left "running"
        state_file = run_dir / "units" / f"{key}.json"
        assert not state_file.exists() or run_state(json.loads(state_file.read_text())) != "running"
    res = runner.invoke(app, ["status", str(run_dir)])
    assert res.exit_code == 0 and f"{len(present)} done" in res.output and "missing" in res.output

    hold.unlink()
    res = _run(results, config=config, sizes=LEAST)  # in this process: a rerun's workers are test_sigkill's subject
    assert res.exit_code == 0, res.output
    assert [p.name for p in (results / "quick").iterdir()] == [run_dir.name]  # resumed in its own folder
    meta = read_meta(run_dir)
    assert set(meta["trained"]) == units - present and set(meta["reused"]) == present


def test_sigkill_of_a_jobs_run_then_a_rerun_trains_only_the_missing_units_with_the_csvs_of_one_job(tmp_path, one_job):
    # every unit is trained in a worker (of the killed run or of the rerun) and the rerun sweeps in two workers:
    # --jobs 2 must give byte for byte the tables --jobs 1 gives
    proc = subprocess.Popen([sys.executable, "-m", "invariance_lab", "run", str(ROOT / "configs" / "quick.yaml"),
                             "--results-dir", str(tmp_path), *SMALL, "--jobs", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not list(tmp_path.glob("quick/*/checkpoints/*.pt")):
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # a killed job: the run and its workers, with no chance to say so
    proc.communicate(timeout=60)  # returns once the workers, which share its stdout, are gone too
    (run_dir,) = (tmp_path / "quick").iterdir()
    assert run_state(read_meta(run_dir)) == "interrupted (process gone)"
    present = {p.stem for p in (run_dir / "checkpoints").glob("*.pt")}
    assert 1 <= len(present) < 4
    res = _run(tmp_path, "--jobs", "2")
    assert res.exit_code == 0, res.output
    meta = read_meta(run_dir)
    assert set(meta["trained"]) == UNITS - present and set(meta["reused"]) == present
    _same_tables(run_dir, one_job)
    assert meta["sweep_workers"] == 2  # the sweep ran in two workers too (sweep_jobs.py), with the same tables
    assert meta["worker_threads"] == 1  # what each worker ran (SMALL_RUN's --threads 1), not this process's count
    assert not (run_dir / "units" / "data.pt").exists()  # the workers' copy of the images is gone at the end
    # the units the rerun's workers trained (a unit killed between its checkpoint and its state file may say
    # "running" in its state file, and is reused as it is)
    states = [json.loads((run_dir / "units" / f"{k}.json").read_text()) for k in UNITS - present]
    assert {s["status"] for s in states} == {"complete"} and {s["threads"] for s in states} == {1}
    res = runner.invoke(app, ["status", str(run_dir)])
    assert res.exit_code == 0 and "4 done" in res.output


def test_the_workers_are_forked_from_a_server_that_froze_what_it_imported(tmp_path):
    # run/fork_server.py, the fork server's last import: a worker starts with torch's and invlab's objects out of
    # the garbage collector's reach; the run's own process never imports it (its objects are not frozen)
    backend = executors.EXECUTORS["processes"].start(tmp_path, 1, executors.Resources(), 1)
    try:
        (handle,) = backend.submit([SimpleNamespace(run=gc.get_freeze_count)])  # as a unit's Task.run is called
        assert handle.result() > 0
    finally:
        backend.close()
    assert "invariance_lab.run.fork_server" not in sys.modules


FLAKY = '''
import os

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, flag):
        super().__init__()
        self.flag = flag
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        if self.training and x.shape[0] > 2 and os.path.exists(self.flag):  # not on invlab's 2-image check
            raise RuntimeError("flaky unit: the flag file is there")
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def net(flag):
    return Net(flag)
'''


def test_a_failed_unit_is_reported_with_its_log_and_retried_on_rerun(tmp_path, one_thread):
    flag = tmp_path / "fail-now"
    flag.write_text("")
    config = _quick_with(tmp_path, "flaky", FLAKY, {"flag": str(flag)})
    res = _run(tmp_path / "r", "--jobs", "2", config=config, sizes=LEAST)
    assert res.exit_code == 2 and "Traceback" not in res.output
    said = " ".join(res.output.split())
    # the model's own error, inside the message that names the model and the batch (nn/forward.py)
    assert ("1 of 3 units failed (flaky-seed0: FactoryError: model flaky seed 0 failed on a batch of shape "
            "(32, 1, 24, 24) (RuntimeError: flaky unit: the flag file is there)") in said, said
    assert "run the same command again to retry" in said
    (run_dir,) = (tmp_path / "r" / "quick").iterdir()
    assert read_meta(run_dir)["status"] == "failed"
    res = runner.invoke(app, ["status", str(run_dir)])
    assert res.exit_code == 0, res.output
    shown = " ".join(res.output.split())
    assert "2 done" in shown and "1 failed" in shown and "flag file is there" in shown
    assert "raise RuntimeError" in shown  # the log's last lines: where it failed
    assert "Traceback" in (run_dir / "units" / "flaky-seed0.log").read_text()

    flag.unlink()  # the cause is fixed: the rerun trains only the failed unit
    res = _run(tmp_path / "r", "--jobs", "2", config=config, sizes=LEAST)
    assert res.exit_code == 0, res.output
    meta = read_meta(run_dir)
    assert meta["status"] == "complete" and meta["trained"] == ["flaky-seed0"]
    assert set(meta["reused"]) == {"conv_only-seed0", "conv_gap-seed0"}
    assert "3 done" in runner.invoke(app, ["status", str(run_dir)]).output


@pytest.mark.parametrize("args, words", [
    (["--jobs", "0"], "--jobs must be a whole number of units to run at once, at least 1"),
    (["--executor", "slurmm"], "unknown --executor 'slurmm'; did you mean 'slurm'? choose one of: processes, slurm"),
    (["--executor", "submitit-local", "--time", "0"], "--time must be at least 1"),
    (["--executor", "submitit-local", "--mem", "-1"], "--mem must be more than 0"),
    (["--executor", "slurm"], "--executor slurm: no sbatch/srun here, so this is not a SLURM login node"),
])
def test_bad_options_are_one_paragraph_and_exit_2(tmp_path, args, words):
    res = _run(tmp_path, *args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert words in " ".join(res.output.split())
    assert not (tmp_path / "quick").exists()  # refused before anything is written


def test_status_of_a_folder_that_is_not_a_run(tmp_path):
    res = runner.invoke(app, ["status", str(tmp_path)])
    assert res.exit_code == 2 and "not a run folder" in res.output


def test_the_submitit_local_executor_completes_a_run(tmp_path, one_thread):
    pytest.importorskip("submitit")
    # one model and one seed: the unit is a job, a fresh interpreter that imports torch (seconds)
    raw = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())
    raw["seeds"] = [0]
    del raw["models"]["conv_only"]
    config = tmp_path / "one_model.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    res = _run(tmp_path, "--executor", "submitit-local", "--jobs", "2", config=config, sizes=LEAST)
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "quick").iterdir()
    meta = read_meta(run_dir)
    assert meta["status"] == "complete" and meta["trained"] == ["conv_gap-seed0"]
    assert json.loads((run_dir / "units" / "conv_gap-seed0.json").read_text())["status"] == "complete"
    # submitit's own job files and logs: the unit was one job, which left its result
    assert len(list((run_dir / "units" / "submitit").glob("*/*_result.pkl"))) == 1


def test_invlab_sweep_jobs_2_gives_the_same_tables_as_one(one_job, tmp_path):
    args = ["sweep", str(one_job), "--mode", "circular", "--dx", "-3:3", "--dy", "-1:1", "--engine", "brute",
            "--threads", "1", "--quiet"]
    one, two = runner.invoke(app, args), runner.invoke(app, [*args, "--jobs", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    a, b = sorted((one_job / "sweeps").iterdir())[-2:]
    assert read_meta(b).get("sweep_workers") == 2 and "sweep_workers" not in read_meta(a)
    for name in ("invariance.csv", "summary.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    res = runner.invoke(app, ["sweep", str(one_job), "--jobs", "0"])
    assert res.exit_code == 2 and "--jobs" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("args, words", [
    (["--partition", "gpu"], "--partition: the size of each unit's job under --executor slurm; worker processes "
                             "(--executor processes) would ignore it"),
    (["--gpus", "1", "--mem", "2.5"], "--gpus, --mem: the size of each unit's job under --executor slurm"),
    (["--fresh", "--reuse-old"], "give one of them"),
    (["--set", "train.epochs=3", "--vary", "train.epochs=0,1"], "train.epochs is given both by --set and by --vary"),
])
def test_options_that_would_be_ignored_or_contradict_are_refused(tmp_path, args, words):
    """An option invlab would drop (a SLURM size with worker processes, a --set that --vary overrides) or a pair
    that contradicts itself is refused before anything is made."""
    res = _run(tmp_path, *args)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert words in " ".join(res.output.split())
    assert not any(tmp_path.iterdir())  # the results folder given to _run: nothing written


# --------------------------------------------------------------------------- mutation audit: keys, resumes, data cache
def test_split_key_takes_the_seed_after_the_last_seed_marker():
    """Catches the key split at the first '-seed': a model named 'conv-seed9' lost its name and seed on resume."""
    from invariance_lab.run.units import split_key
    from invariance_lab.store.layout import unit_key

    assert split_key("conv_gap-seed1") == ("conv_gap", 1)
    assert split_key(unit_key("conv-seed9", 12)) == ("conv-seed9", 12)


def test_units_to_train_skips_earlier_runs_and_retrains_only_missing_or_damaged_checkpoints(tmp_path):
    """Catches a unit of an earlier run's fingerprint trained again, and a damaged checkpoint taken as done."""
    from invariance_lab.run.units import units_to_train
    from invariance_lab.store.layout import checkpoint_path

    settings = {("m", 0): {}, ("m", 1): {}, ("m", 2): {}}
    fingerprints = {"m-seed0": "f0", "m-seed1": "f1", "m-seed2": "f2"}
    damaged = checkpoint_path(tmp_path, "m", 1)
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a checkpoint")
    assert units_to_train(tmp_path, settings, {"f0": tmp_path / "earlier"}, fingerprints) == [("m", 1), ("m", 2)]


def test_unit_data_written_again_is_read_again_not_served_from_the_cache(tmp_path):
    """Catches the worker's data cache keyed on the path alone: a rerun's new units/data.pt read as the old one."""
    import torch

    from invariance_lab.run.units import UnitData, load_unit_data, save_unit_data
    from invariance_lab.store.layout import unit_data_path

    def data(v):
        x = torch.full((2, 1, 4, 4), float(v))
        return UnitData(x, torch.tensor([0, 1]), x, torch.tensor([0, 1]), ["a", "b"])

    save_unit_data(tmp_path, data(1))
    assert float(load_unit_data(tmp_path).train_x[0, 0, 0, 0]) == 1.0
    save_unit_data(tmp_path, data(2))
    path = unit_data_path(tmp_path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later write, on a coarse clock too
    assert float(load_unit_data(tmp_path).train_x[0, 0, 0, 0]) == 2.0
