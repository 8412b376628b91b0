"""status.py: a run folder's units and its sweeps, each with its state; a sweep stopped half-way is named."""

import json
import os
import shutil
import socket
from datetime import datetime

from conftest import untrained_quick_run
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.core.processes import process_start
from invariance_lab.run.status import folder_status
from invariance_lab.store.layout import META_FILE, SWEEP_DIR


def test_each_sweep_of_a_run_is_listed_with_its_state(tmp_path_factory):
    run_dir = untrained_quick_run(tmp_path_factory)
    meta = json.loads((run_dir / META_FILE).read_text())
    for name, fields in (("20260101-000000", dict(kind="sweep")), ("20260102-000000", dict(kind="sweep",
                                                                                         status="interrupted"))):
        (run_dir / SWEEP_DIR / name).mkdir(parents=True)
        (run_dir / SWEEP_DIR / name / META_FILE).write_text(json.dumps(dict(meta, **fields)))
    (run_dir / SWEEP_DIR / "20260103-000000").mkdir()  # no meta.json: a folder left by something else
    (run_dir / SWEEP_DIR / "latest").symlink_to(run_dir / SWEEP_DIR / "20260101-000000")  # not a sweep of its own
    (status,) = folder_status(run_dir)
    assert status.state == "complete" and {u.state for u in status.units} == {"done"}
    assert status.sweeps == [("20260101-000000", "complete"), ("20260102-000000", "interrupted"),
                             ("20260103-000000", "unreadable")]
    res = CliRunner().invoke(app, ["status", str(run_dir)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert ("sweeps: 20260101-000000 (complete), 20260102-000000 (interrupted), 20260103-000000 (unreadable)"
            in " ".join(res.output.split()))


def test_a_checkpoint_gone_from_a_finished_run_is_not_called_not_started(tmp_path_factory):
    run_dir = untrained_quick_run(tmp_path_factory)
    next((run_dir / "checkpoints").glob("conv_gap-seed0.pt")).unlink()
    (status,) = folder_status(run_dir)
    (gone,) = [u for u in status.units if u.key == "conv_gap-seed0"]
    assert status.state == "complete" and gone.state == "missing" and "gone since the run finished" in gone.detail


def test_a_unit_not_yet_trained_by_a_running_runs_own_process_is_not_called_not_started(tmp_path_factory):
    """With --jobs 1 the run's own process trains its units and writes no unit state: the one in training said
    "not started" under a run marked running."""
    run_dir = untrained_quick_run(tmp_path_factory)
    meta = json.loads((run_dir / META_FILE).read_text())
    meta.update(status="running", pid=os.getpid(), pid_start=process_start(os.getpid()), host=socket.gethostname(),
                heartbeat=datetime.now().isoformat(timespec="seconds"))
    (run_dir / META_FILE).write_text(json.dumps(meta))
    next((run_dir / "checkpoints").glob("conv_gap-seed0.pt")).unlink()
    (status,) = folder_status(run_dir)
    (waiting,) = [u for u in status.units if u.key == "conv_gap-seed0"]
    assert status.state == "running" and "the run's own process trains its units" in waiting.detail
    meta["training"] = "conv_gap-seed0"  # what the run's process writes while it trains that unit
    (run_dir / META_FILE).write_text(json.dumps(meta))
    (status,) = folder_status(run_dir)
    (training,) = [u for u in status.units if u.key == "conv_gap-seed0"]
    assert training.state == "running" and f"in the run's own process, pid {os.getpid()}" in training.detail


def test_a_jobs_1_run_records_the_unit_it_trains_while_it_trains_it(tmp_path, monkeypatch):
    """`invlab status` showed the unit a --jobs 1 run was training as missing: nothing on disk said which it was."""
    import invariance_lab.run.experiment as experiment
    from conftest import ROOT
    from invariance_lab.config.load import load_config

    seen = []
    real = experiment.train_unit

    def watched(cfg, name, seed, *args):
        seen.append(json.loads((next((tmp_path / "quick").iterdir()) / META_FILE).read_text()).get("training"))
        return real(cfg, name, seed, *args)

    monkeypatch.setattr(experiment, "train_unit", watched)
    cfg = load_config(ROOT / "configs" / "quick.yaml", ["train.epochs=0", "seeds=[0]", "data.test_images=12"])
    run_dir = experiment.run_experiment(cfg, results_dir=tmp_path, threads=1)
    assert seen == ["conv_only-seed0", "conv_gap-seed0"]
    assert "training" not in json.loads((run_dir / META_FILE).read_text())


def test_a_run_without_sweeps_lists_none(tmp_path_factory):
    (status,) = folder_status(untrained_quick_run(tmp_path_factory))
    assert status.sweeps == []


def test_without_a_folder_the_run_started_last_is_shown_whatever_its_state(tmp_path_factory):
    older = untrained_quick_run(tmp_path_factory)
    results = older.parent.parent
    newer = results / "other" / "20990101-000000"  # started later, and stopped half-way
    newer.parent.mkdir()
    shutil.copytree(older, newer)
    meta = json.loads((newer / META_FILE).read_text())
    meta.update(status="interrupted", started="2099-01-01T00:00:00")
    (newer / META_FILE).write_text(json.dumps(meta))
    (shown,) = folder_status(None, results_dir=results)
    assert shown.folder == newer and shown.state.startswith("interrupted")
    res = CliRunner().invoke(app, ["status", "--results-dir", str(results)])
    assert res.exit_code == 0 and f"{newer} (interrupted" in " ".join(res.output.split()), res.output
    empty = tmp_path_factory.mktemp("empty")
    res = CliRunner().invoke(app, ["status", "--results-dir", str(empty)])
    assert res.exit_code == 2 and f"no run under {empty}" in " ".join(res.output.split()), res.output
