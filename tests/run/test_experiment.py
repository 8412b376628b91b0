"""run_experiment end to end: resume after Ctrl-C / SIGTERM / SIGKILL, reuse of finished checkpoints, --fresh."""

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import ROOT, SMALL_RUN
from invariance_lab.cli.main import app
from invariance_lab.core.processes import process_start
from invariance_lab.store.meta import read_meta, run_state

runner = CliRunner()
# Four units of a fraction of a second each (conftest.SMALL_RUN): time to kill the process between two of them.
SLOW = SMALL_RUN
# For the runs compared only with each other, never stopped: the least training with batches of 32 images.
LEAST = ["--set", "data.train_images=64", "--set", "train.epochs=1", "--set", "data.test_images=20", "--threads", "1",
         "--quiet"]


def _run(results, *extra, sizes=SLOW):
    return runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results), *sizes,
                               *extra])


def _start_and_stop_after_first_checkpoint(results, sig):
    """Start `invlab run` in a subprocess, send `sig` as soon as its first checkpoint exists; (run folder,
    checkpoint names present when the signal was sent)."""
    proc = subprocess.Popen([sys.executable, "-m", "invariance_lab", "run", str(ROOT / "configs" / "quick.yaml"),
                             "--results-dir", str(results), *SLOW], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = list(results.glob("quick/*/checkpoints/*.pt"))
        if done:
            proc.send_signal(sig)
            break
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.01)
    out, _ = proc.communicate(timeout=60)
    (run_dir,) = (results / "quick").iterdir()
    present = sorted(p.stem for p in (run_dir / "checkpoints").glob("*.pt"))
    assert 1 <= len(present) < 4, "the run finished before it could be stopped; units must take longer"
    return run_dir, present, proc.returncode, out.decode()


@pytest.fixture
def uninterrupted(small_quick_run):
    """The same run, never stopped (conftest.py: made once for this and test_units.py)."""
    return small_quick_run


def test_sigkill_then_rerun_trains_only_the_missing_units(tmp_path, uninterrupted, one_thread):
    run_dir, present, code, _ = _start_and_stop_after_first_checkpoint(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    meta = read_meta(run_dir)
    assert meta["status"] == "running" and run_state(meta) == "interrupted (process gone)"
    # the folder cannot be swept or reported, and says why
    res = runner.invoke(app, ["sweep", str(run_dir)])
    assert res.exit_code == 2 and "interrupted (process gone)" in res.output

    res = _run(tmp_path)
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "quick").iterdir()] == [run_dir.name]  # resumed in its own folder
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "complete"
    assert sorted(meta["reused"]) == present
    assert sorted(meta["trained"]) == sorted({"conv_only-seed0", "conv_only-seed1", "conv_gap-seed0",
                                              "conv_gap-seed1"} - set(present))
    assert meta["attempts"][0]["state"] == "interrupted (process gone)"
    for name in ("invariance.csv", "summary.csv", "train.csv"):
        a, b = pd.read_csv(run_dir / name), pd.read_csv(uninterrupted / name)
        if name == "train.csv":
            a, b = a.drop(columns="seconds"), b.drop(columns="seconds")
        pd.testing.assert_frame_equal(a, b)


def test_sigterm_marks_the_run_interrupted_and_it_resumes(tmp_path, one_thread):
    run_dir, present, code, out = _start_and_stop_after_first_checkpoint(tmp_path, signal.SIGTERM)
    assert code == 130 and "Traceback" not in out, out
    meta = read_meta(run_dir)
    assert meta["status"] == "interrupted" and run_state(meta) == "interrupted"
    assert meta["pid"] and meta["host"] and meta["heartbeat"]
    res = _run(tmp_path)
    assert res.exit_code == 0 and "resuming" not in res.output  # --quiet
    assert sorted(json.loads((run_dir / "meta.json").read_text())["reused"]) == present


def test_rerun_reuses_finished_checkpoints_and_fresh_retrains(tmp_path, one_thread):
    # a complete run of the same config elsewhere does not count: reuse is within one results folder
    res = _run(tmp_path / "elsewhere", sizes=LEAST)
    assert res.exit_code == 0, res.output
    results = tmp_path / "here"
    res = _run(results, sizes=LEAST)
    assert res.exit_code == 0, res.output
    first = json.loads(next((results / "quick").glob("*/meta.json")).read_text())
    assert len(first["trained"]) == 4 and not first["reused"]
    res = _run(results, sizes=LEAST)  # the first run is complete: a new folder, every unit reused
    assert res.exit_code == 0, res.output
    folders = sorted((results / "quick").iterdir())
    assert len(folders) == 2
    second = json.loads((folders[1] / "meta.json").read_text())
    assert len(second["reused"]) == 4 and not second["trained"]
    assert all(str(folders[0]) in src for src in second["reused"].values())
    pd.testing.assert_frame_equal(pd.read_csv(folders[0] / "invariance.csv"), pd.read_csv(folders[1] / "invariance.csv"))
    res = _run(results, "--fresh", sizes=LEAST)
    assert res.exit_code == 0, res.output
    third = json.loads((sorted((results / "quick").iterdir())[2] / "meta.json").read_text())
    assert len(third["trained"]) == 4 and not third["reused"]


def test_a_damaged_checkpoint_is_trained_again_not_reused(tmp_path, uninterrupted, one_thread):
    first = tmp_path / "quick" / uninterrupted.name  # a finished run of this config in this results folder
    shutil.copytree(uninterrupted, first)
    (first / "checkpoints" / "conv_gap-seed1.pt").write_bytes(b"\x00" * 100)
    res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path),
                              *[a for a in SLOW if a != "--quiet"]])
    assert res.exit_code == 0, res.output
    assert "not reusing" in res.output and "conv_gap-seed1.pt" in res.output
    newest = max((tmp_path / "quick").iterdir())
    meta = json.loads((newest / "meta.json").read_text())
    assert meta["trained"] == ["conv_gap-seed1"] and len(meta["reused"]) == 3


def test_threads_are_recorded(uninterrupted):
    env = json.loads((uninterrupted / "meta.json").read_text())["environment"]  # run with --threads 1
    assert env["torch_threads"] == 1 and env["versions"]["torch"] and env["cpu"]


def test_a_rerun_with_one_job_waits_for_a_unit_that_an_earlier_commands_worker_still_trains(tmp_path, uninterrupted,
                                                                                           one_thread):
    """The workers of a `--jobs 2` run whose own process was killed go on training. A rerun with --jobs 1 trained
    the same unit into the same checkpoint beside one of them (and a late worker could then replace a finished
    run's checkpoint); it waits for that unit, as a --jobs 2 rerun does, and keeps what the worker wrote."""
    run_dir = tmp_path / "quick" / uninterrupted.name
    shutil.copytree(uninterrupted, run_dir, ignore=shutil.ignore_patterns("sweeps", ".lock"))
    meta = read_meta(run_dir)
    meta.update(status="interrupted")
    (run_dir / "meta.json").write_text(json.dumps(meta))
    key = "conv_gap-seed0"
    checkpoint = run_dir / "checkpoints" / f"{key}.pt"
    kept = checkpoint.read_bytes()
    checkpoint.unlink()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the earlier command's worker
    state = dict(status="running", key=key, host=socket.gethostname(), pid=worker.pid,
                 pid_start=process_start(worker.pid), started=datetime.now().isoformat(timespec="seconds"),
                 heartbeat=datetime.now().isoformat(timespec="seconds"))
    state_file = run_dir / "units" / f"{key}.json"
    state_file.parent.mkdir(exist_ok=True)
    state_file.write_text(json.dumps(state))

    ran, here = threading.Event(), threading.get_ident()

    def waiting() -> bool:  # the rerun (in this thread) waits in wait_elsewhere: it has looked and said so
        frame = sys._current_frames().get(here)
        while frame is not None and frame.f_code.co_name != "wait_elsewhere":
            frame = frame.f_back
        return frame is not None and "finished" in frame.f_locals  # set only after the look: not mid-look

    def finish():  # once the rerun waits (or has ended without waiting), the worker writes its unit and ends
        while not (ran.is_set() or waiting()):
            time.sleep(0.01)
        checkpoint.write_bytes(kept)
        done = state_file.with_suffix(".tmp")
        done.write_text(json.dumps({**state, "status": "complete", "seconds": 1.5}))
        done.replace(state_file)  # at once, as a worker writes it: never an empty state between two looks
        worker.kill()

    finisher = threading.Thread(target=finish)
    finisher.start()
    try:
        res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path),
                                  *[a for a in SLOW if a != "--quiet"]])  # what it says it waits for
    finally:
        ran.set()
        finisher.join()
        worker.kill()
        worker.wait()
    assert res.exit_code == 0, res.output
    assert f"waiting for 1 units still running elsewhere (started by an earlier command): {key}" in res.output
    assert checkpoint.read_bytes() == kept  # the worker's, not trained again here
    meta = read_meta(run_dir)
    assert meta["trained"] == [key] and meta["timings"]["train_s"][key] == 1.5  # the worker's seconds


def test_a_run_folders_own_config_yaml_resumes_it_and_a_folder_of_the_older_digest_is_found(tmp_path, one_thread):
    """Models sharing a default list (channels) were written to config.yaml as YAML aliases (&id001, *id001), so
    the file read back gave other text and another digest: `invlab run RUN/config.yaml` started a new folder
    instead of resuming RUN. A folder whose meta.json records the aliased text's digest (made before) is resumed."""
    from invariance_lab.config.load import aliased_yaml, load_config
    from invariance_lab.store.find import config_digest

    given = ["--set", "models={a: {arch: conv_gap}, b: {arch: conv_only}}", "--set", "train.epochs=0",
             "--set", "seeds=[0]", "--set", "data.test_images=12"]
    res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path), *given,
                              "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "quick").iterdir()
    assert "&id" not in (run / "config.yaml").read_text()

    def stop(digest=None):  # as a run stopped before its last unit: meta.json says so, a checkpoint is missing
        meta = json.loads((run / "meta.json").read_text())
        meta.update(status="interrupted", **({"config_digest": digest} if digest else {}))
        (run / "meta.json").write_text(json.dumps(meta))
        (run / "checkpoints" / "a-seed0.pt").unlink()

    old = config_digest(aliased_yaml(load_config(ROOT / "configs" / "quick.yaml", [g for g in given if g != "--set"])))
    for config, digest in ((ROOT / "configs" / "quick.yaml", old), (run / "config.yaml", None)):
        stop(digest)
        args = given if config.name == "quick.yaml" else []
        res = runner.invoke(app, ["run", str(config), "--results-dir", str(tmp_path), *args, "--threads", "1",
                                  "--quiet"])
        assert res.exit_code == 0, res.output
        assert [p.name for p in (tmp_path / "quick").iterdir()] == [run.name], config  # resumed: no new folder
        assert json.loads((run / "meta.json").read_text())["trained"] == ["a-seed0"]
