"""meta.py: meta.json's schema (anything malformed is refused naming the file) and the status of a run whose
process is gone."""

import json
import os
import re
import socket
from datetime import datetime, timedelta

import pytest
from conftest import PROTOCOL, dead_pid

from invariance_lab.core.errors import InvlabError, RunFolderError
from invariance_lab.store.layout import META_FILE
from invariance_lab.store.meta import (LOG_TAIL_BYTES, Meta, Protocol, log_tail, read_meta, read_unit_state,
                                       run_state)


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


@pytest.mark.parametrize("change, needle", [
    (dict(dx=[5]), "protocol.dx: Value error, dx must be [start, stop] or [start, stop, step]; got [5.0]"),
    (dict(dy=[0, float("inf")]), "protocol.dy: Value error, dy values must be finite numbers"),
    # the report lists a range's values: 1e-320 steps overflowed, 1e15 of them filled the memory for ever
    (dict(dx=[0, 1, 1e-320]), "protocol.dx: Value error, dx [0.0, 1.0, 1e-320] has more than 10000 steps"),
    (dict(dx=[0, 1e9, 1e-6]), "has more than 10000 steps"),
    (dict(dx=[-1e308, 1e308, 1e308]), "spans more than a float can hold"),
    (dict(dx=[2, -2, 1]), "dx stop (-2) must be >= start (2)"),
    (dict(engine=["brute"]), "protocol.engine: Input should be a valid string"),
    (dict(transform="rotate"), "angles missing: a rotate protocol gives its grid's ranges"),
])
def test_a_protocol_the_tables_cannot_state_is_refused(tmp_path, change, needle):
    meta = dict(kind="run", status="complete", name="n", run_id="r", seeds=[0], protocol={**PROTOCOL, **change})
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(RunFolderError, match=re.escape(needle)):
        read_meta(tmp_path)


def test_a_rotate_protocol_needs_no_shifts_and_a_translation_does():
    protocol = {k: v for k, v in PROTOCOL.items() if k not in ("dx", "dy")}
    rotate = Protocol.model_validate({**protocol, "transform": "rotate", "angles": [-40, 40, 10]})
    assert rotate.angles == [-40, 40, 10] and rotate.dx is None and rotate.dy is None
    with pytest.raises(ValueError, match="dx"):  # the same protocol as a translation states no grid
        Protocol.model_validate(protocol)


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
    assert run_state(dict(status="running", pid=dead_pid(), host=host)) == "interrupted (process gone)"
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


@pytest.mark.parametrize("content", ["[1, 2]", "{not json", '{"kind": "run"}'])
def test_every_bad_meta_is_a_run_folder_error(tmp_path, content):
    """A caller can catch RunFolderError for any unusable meta.json, not just InvlabError."""
    (tmp_path / META_FILE).write_text(content)
    with pytest.raises(RunFolderError):
        read_meta(tmp_path)


def test_an_unreadable_unit_state_reads_as_none(tmp_path):
    """A worker that never started (no file) or died mid-write (not JSON) is no state, not an error."""
    assert read_unit_state(tmp_path, "m-seed0") is None
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "m-seed0.json").write_text("{half")
    assert read_unit_state(tmp_path, "m-seed0") is None


@pytest.mark.parametrize("heartbeat", [None, "yesterday", "2026-01-01T00:00:00+00:00", 12])
def test_a_foreign_run_without_a_readable_heartbeat_is_gone(heartbeat):
    """On another host only the heartbeat tells; one that cannot be read (edited, or with a time zone invlab
    never writes) means no live invlab process, never an exception."""
    assert run_state(dict(status="running", pid=1, host="elsewhere", heartbeat=heartbeat)) == \
        "interrupted (process gone)"


def test_meta_json_that_is_a_link_is_refused_naming_it(tmp_path):
    victim = tmp_path / "notes.txt"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").symlink_to(victim)
    with pytest.raises(RunFolderError, match="is a symbolic link") as e:
        Meta(run, kind="run", name="x", run_id="run")
    assert str(run / "meta.json") in str(e.value) and victim.read_text() == "precious\n"


@pytest.mark.parametrize("fields, needle", [(dict(reused=[1]), "reused"), (dict(reused=3), "reused"),
                                            (dict(reused={"m-seed0": 5}), "reused"),
                                            (dict(fingerprints={"noseed": "x"}), "fingerprints")])
def test_unit_tables_of_the_wrong_shape_are_refused(tmp_path, fields, needle):
    """meta.json's per-unit tables are read by `invlab status` and resumes: a key that is not a unit's
    (<model>-seed<n>), or a table that is not {unit: text}, is refused naming the key."""
    meta = dict(kind="run", status="complete", name="x", run_id="r", protocol=PROTOCOL, seeds=[0],
                fingerprints={"m-seed0": "abc"}, started="2026-01-01T00:00:00", finished="2026-01-01T00:01:00")
    (tmp_path / META_FILE).write_text(json.dumps(dict(meta, **fields)))
    with pytest.raises(RunFolderError, match=needle):
        read_meta(tmp_path)
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    assert read_meta(tmp_path)["fingerprints"] == {"m-seed0": "abc"}


def test_a_log_tail_reads_the_end_of_a_regular_file_only(tmp_path):
    log = tmp_path / "u.log"
    log.write_text("first\n" + "x" * (LOG_TAIL_BYTES * 4) + "\nsecond\nlast\n")
    assert log_tail(log, 2) == ["second", "last"] and log_tail(log, 0) == []
    assert len(log_tail(log, 3)[0]) < LOG_TAIL_BYTES  # a huge line: only its end is read
    fifo = tmp_path / "f.log"
    os.mkfifo(fifo)
    assert log_tail(fifo, 5) == []  # not opened for reading blocked on a writer that never comes
    assert log_tail(tmp_path / "none.log") == []


@pytest.mark.parametrize("key, value", [("name", "\x1b[2J\x1b[31mPWN"), ("run_id", "../../x\n"), ("name", "a\x9bb")])
def test_a_name_with_a_control_character_is_refused_before_it_reaches_the_terminal(tmp_path, key, value):
    """Every table's title and caption print the name and run id: an escape sequence there cleared the screen."""
    meta = dict(kind="run", status="complete", name="n", run_id="r", seeds=[0], protocol=PROTOCOL)
    (tmp_path / META_FILE).write_text(json.dumps({**meta, key: value}))
    with pytest.raises(RunFolderError, match=f"{key}: Value error, {key} holds a control character"):
        read_meta(tmp_path)
    (tmp_path / META_FILE).write_text(json.dumps({**meta, key: "quick-ü.1"}))  # not ASCII, but printable: read
    assert read_meta(tmp_path)[key] == "quick-ü.1"


def test_a_name_folder_given_for_a_run_names_the_runs_inside_it(tmp_path):
    """`invlab report results/seed_question` (the name, not a run of it) got the generic "not a run folder"."""
    from conftest import stopped_or_finished_run

    from invariance_lab.core.errors import RunFolderError
    from invariance_lab.store.meta import read_meta

    for run_id in ("20260101-000000", "20260102-000000"):
        stopped_or_finished_run(tmp_path / "quick" / run_id)
    with pytest.raises(RunFolderError, match=r"quick is not a run folder \(no meta.json\); it holds the folders "
                                             r"20260101-000000, 20260102-000000: give one of them, e\.g\. .*quick/2026"
                                             r"0102-000000"):
        read_meta(tmp_path / "quick")


def test_a_heartbeat_from_the_future_reads_as_gone():
    """A heartbeat an hour ahead (an edited or copied meta.json) kept a dead run "running", blocking its resume."""
    ahead = (datetime.now() + timedelta(hours=1)).isoformat(timespec="seconds")
    assert run_state(dict(status="running", pid=1, host="elsewhere", heartbeat=ahead)) == "interrupted (process gone)"
    near = (datetime.now() + timedelta(seconds=5)).isoformat(timespec="seconds")  # another host's clock, a bit ahead
    assert run_state(dict(status="running", pid=1, host="elsewhere", heartbeat=near)) == "running"


def test_a_resumed_meta_keeps_when_the_run_first_started(tmp_path):
    """A resume overwrote `started`, so the run sorted, and was reported, as started at the resume."""
    meta = Meta(tmp_path, data=dict(started="2026-01-01T00:00:00"), kind="run", name="x", run_id="r",
                protocol=PROTOCOL, seeds=[0])
    assert meta.data["started"] == "2026-01-01T00:00:00" and read_meta(tmp_path)["started"] == "2026-01-01T00:00:00"


def test_a_unit_whose_worker_died_is_recorded_failed_with_its_cause(tmp_path):
    """record_unit_failure left a killed unit's state "running", so status showed it running and no cause."""
    from invariance_lab.store.meta import record_unit_failure

    record_unit_failure(tmp_path, "m-seed0", "killed (out of memory)")
    state = read_unit_state(tmp_path, "m-seed0")
    assert state["status"] == "failed" and state["error"] == "killed (out of memory)" and state["key"] == "m-seed0"
    (tmp_path / "units" / "m-seed0.json").write_text(json.dumps(dict(key="m-seed0", status="running", pid=1)))
    record_unit_failure(tmp_path, "m-seed0", "killed")
    assert run_state(read_unit_state(tmp_path, "m-seed0")) == "failed"
