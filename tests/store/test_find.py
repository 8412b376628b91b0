"""find.py: finding runs under a results folder (finished, resumable, reusable checkpoints) and refusing a
folder that is not a finished run or a study, with a RunFolderError."""

import socket
import subprocess
import sys

import pytest

from invariance_lab.core.errors import RunFolderError
from invariance_lab.store.atomic import write_json
from invariance_lab.store.find import (all_runs, finished_runs, matching_checkpoints, newest_run, read_study,
    require_finished_run, resumable_run, studies)
from invariance_lab.store.layout import META_FILE, STUDY_FILE, checkpoint_path

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


def test_newest_run_is_the_last_finished(tmp_path):
    with pytest.raises(RunFolderError, match="no finished run"):
        newest_run(tmp_path)
    _meta(tmp_path / "x" / "a", finished="2026-01-02T00:00:00")
    _meta(tmp_path / "y" / "b", finished="2026-01-01T00:00:00")
    _meta(tmp_path / "y" / "c", status="failed", finished="2026-01-03T00:00:00")
    assert newest_run(tmp_path) == tmp_path / "x" / "a"


@pytest.mark.parametrize("fields, needle", [
    (dict(kind="sweep"), "not a run folder made by `invlab run`"),
    (dict(status="failed"), r"not a finished run \(status: failed\)"),
    (dict(status="running", pid=None, host="elsewhere"), r"status: interrupted \(process gone\)"),
])
def test_require_finished_run_says_what_state_a_folder_is_in(tmp_path, fields, needle):
    _meta(tmp_path / "r", **fields)
    with pytest.raises(RunFolderError, match=needle):
        require_finished_run(tmp_path / "r")
    _meta(tmp_path / "ok")
    assert require_finished_run(tmp_path / "ok")["status"] == "complete"


@pytest.mark.parametrize("content", [None, "{not json", "[]", '{"runs": {}, "vary": {}}', '{"runs": []}',
                                     '{"runs": [1], "vary": {}}', '{"runs": [{"run": 5}], "vary": {}}',
                                     '{"runs": [{"values": []}], "vary": {}}'])
def test_a_folder_without_a_valid_study_json_is_not_a_study(tmp_path, content):
    folder = tmp_path / "x" / "study-1"
    folder.mkdir(parents=True)
    if content is not None:
        (folder / STUDY_FILE).write_text(content)
    with pytest.raises(RunFolderError, match="not a study folder|cannot read"):
        read_study(folder)
    assert studies(tmp_path, "x") == []  # skipped while searching, not an error


def test_studies_lists_readable_studies_oldest_first(tmp_path):
    for name in ("study-2", "study-1"):
        (tmp_path / "x" / name).mkdir(parents=True)
        write_json(tmp_path / "x" / name / STUDY_FILE, dict(vary={"seeds": ["[0]"]}, runs=[]))
    assert [f.name for f, s in studies(tmp_path, "x")] == ["study-1", "study-2"]
