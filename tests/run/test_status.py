"""status.py: a run folder's units and its sweeps, each with its state; a sweep stopped half-way is named."""

import json

from conftest import untrained_quick_run
from typer.testing import CliRunner

from invariance_lab.cli.main import app
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


def test_a_run_without_sweeps_lists_none(tmp_path_factory):
    (status,) = folder_status(untrained_quick_run(tmp_path_factory))
    assert status.sweeps == []
