"""runs.py, the run folder's contract: meta.json schema, status of dead processes, finding runs, atomic writes."""

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from invariance_lab.core.errors import InvlabError
from invariance_lab.store.runs import (META_FILE, Meta, all_runs, checkpoint_path, finished_runs,
    matching_checkpoints, read_meta, resumable_run, run_state, write_json)

PROTOCOL = dict(kind="translation", mode="canvas", grid="product", dx=[-1, 1, 1], dy=[0, 0, 1], test_images=4,
                seeds=[0], models=["m"], n_shifts=3)


def _meta(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    m = dict(kind="run", status="complete", name="x", run_id=folder.name, protocol=PROTOCOL, seeds=[0],
             fingerprints={"m-seed0": "abc"}, started="2026-01-01T00:00:00", finished="2026-01-01T00:01:00")
    m.update(fields)
    if m["status"] == "running":
        del m["finished"]
    write_json(folder / META_FILE, m)
    return m


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("content, needle", [
    ("[1, 2]", "not an invlab meta.json"),
    ('{"kind": "run"}', "not an invlab meta.json"),
    ("{not json", "cannot read"),
    ("", "cannot read"),
    ('{"kind": "banana", "status": "complete"}', "kind"),
])
def test_malformed_meta_is_refused(tmp_path, content, needle):
    (tmp_path / META_FILE).write_text(content)
    with pytest.raises(InvlabError, match=needle) as e:
        read_meta(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_random_bytes_meta_is_refused(tmp_path):
    (tmp_path / META_FILE).write_bytes(os.urandom(300))
    with pytest.raises(InvlabError, match="cannot read"):
        read_meta(tmp_path)


def test_a_folder_without_meta_is_not_a_run(tmp_path):
    with pytest.raises(InvlabError, match="not a run folder"):
        read_meta(tmp_path)
    with pytest.raises(InvlabError, match="not found"):
        read_meta(tmp_path / "nope")


def test_status_of_a_dead_process_is_interrupted(tmp_path):
    host = socket.gethostname()
    alive = dict(status="running", pid=os.getpid(), host=host)
    assert run_state(alive) == "running"
    assert run_state(dict(status="running", pid=_dead_pid(), host=host)) == "interrupted (process gone)"
    # a recycled pid: the process that lives there now started at another time
    assert run_state(dict(alive, pid_start="1")) == "interrupted (process gone)"
    old = (datetime.now() - timedelta(hours=1)).isoformat(timespec="seconds")
    assert run_state(dict(status="running", pid=1, host="elsewhere", heartbeat=old)) == "interrupted (process gone)"
    fresh = datetime.now().isoformat(timespec="seconds")
    assert run_state(dict(status="running", pid=1, host="elsewhere", heartbeat=fresh)) == "running"
    assert run_state(dict(status="complete")) == "complete"


def test_meta_records_process_and_finishes(tmp_path):
    meta = Meta(tmp_path, kind="run", name="x", run_id="r", protocol=PROTOCOL, seeds=[0])
    on_disk = json.loads((tmp_path / META_FILE).read_text())
    assert on_disk["status"] == "running" and on_disk["pid"] == os.getpid() and on_disk["host"] == socket.gethostname()
    with pytest.raises(ValueError):
        with meta.recording():
            raise ValueError("boom")
    on_disk = read_meta(tmp_path)
    assert on_disk["status"] == "failed" and "boom" in on_disk["error"]
    with pytest.raises(KeyboardInterrupt):
        with meta.recording():
            raise KeyboardInterrupt
    assert read_meta(tmp_path)["status"] == "interrupted"


def test_finding_runs(tmp_path):
    _meta(tmp_path / "x" / "a")
    _meta(tmp_path / "x" / "b", status="interrupted", config_digest="d", finished="2026-01-02T00:00:00")
    _meta(tmp_path / "x" / "c", status="running", pid=_dead_pid(), host=socket.gethostname(), config_digest="d",
          started="2026-01-03T00:00:00")
    _meta(tmp_path / "x" / "d", kind="sweep")
    (tmp_path / "x" / "e").mkdir()
    (tmp_path / "x" / "e" / META_FILE).write_text("[]")  # not ours: skipped, not an error
    for name in ("a", "b"):
        path = checkpoint_path(tmp_path / "x" / name, "m", 0)
        path.parent.mkdir()
        path.write_bytes(b"x")
    assert [f.name for f, _ in all_runs(tmp_path, "x")] == ["a", "b", "c"]
    assert [f.name for f, _ in finished_runs(tmp_path)] == ["a"]
    assert resumable_run(tmp_path, "x", "d")[0].name == "c"  # the newest stopped run of that config
    assert resumable_run(tmp_path, "x", "other") is None
    # the complete run's checkpoint wins over the interrupted one's
    assert matching_checkpoints(tmp_path, "x") == {"abc": checkpoint_path(tmp_path / "x" / "a", "m", 0)}
    assert matching_checkpoints(tmp_path, "x", exclude=tmp_path / "x" / "a") == {
        "abc": checkpoint_path(tmp_path / "x" / "b", "m", 0)}
