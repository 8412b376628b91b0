"""claim.py: a run or study folder is held by one live process at a time. Two reruns of a stopped run started at
once both resumed the same folder (found stopped by both before either wrote meta.json), trained the same units
and overwrote each other's meta.json; the second now passes over a folder the first holds."""

import os
import socket
import subprocess
import sys

import pytest
from conftest import dead_pid, stopped_or_finished_run

from invariance_lab.core.errors import RunFolderError
from invariance_lab.store.claim import claim, claimed_resume
from invariance_lab.store.layout import LOCK_FILE


def test_a_held_folder_cannot_be_claimed_until_released(tmp_path):
    first = claim(tmp_path)
    assert first is not None and claim(tmp_path) is None  # a second open of the lock: taken
    # another process too, while this one holds it
    other = [sys.executable, "-c", f"from invariance_lab.store.claim import claim; import pathlib; "
             f"print(claim(pathlib.Path({str(tmp_path)!r})) is None)"]
    assert subprocess.run(other, capture_output=True, text=True, check=True).stdout.strip() == "True"
    first.release()
    with claim(tmp_path) as again:
        assert again is not None and again.fd is not None
    assert claim(tmp_path) is not None  # released when the with block ends
    assert (tmp_path / LOCK_FILE).read_bytes() == b""  # an empty file: nothing but its lock


def test_a_link_at_the_lock_is_refused(tmp_path):
    (tmp_path / "elsewhere").write_text("mine")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).symlink_to(tmp_path / "elsewhere")
    try:
        claim(tmp_path / "run")
    except Exception as e:
        assert "symbolic link" in str(e)
    else:
        raise AssertionError("a link at .lock was followed")


def test_claimed_resume_passes_over_a_folder_another_process_holds(tmp_path):
    host = socket.gethostname()
    for name, started in (("older", "2026-01-02T00:00:00"), ("newer", "2026-01-03T00:00:00")):
        stopped_or_finished_run(tmp_path / "x" / name, status="running", pid=dead_pid(), host=host, config_digest="d", started=started)
    held = claim(tmp_path / "x" / "newer")  # the first of two reruns, resuming the newest stopped run
    found, mine = claimed_resume(tmp_path, "x", "d")
    assert found[0].name == "older" and mine is not None  # not the folder the other rerun holds
    assert claimed_resume(tmp_path, "x", "d") == (None, None)  # both held: a new folder is made
    held.release()
    found, again = claimed_resume(tmp_path, "x", "d")
    assert found[0].name == "newer"
    stopped_or_finished_run(tmp_path / "x" / "newer", status="complete", config_digest="d")  # finished by whoever held it
    again.release()
    mine.release()
    assert claimed_resume(tmp_path, "x", "d")[0][0].name == "older"


def test_a_resume_refused_after_the_claim_releases_it(tmp_path):
    """A stopped run whose checkpoints/ is a link is refused after it was claimed: the claim must go with the
    error, or a second call in the same process (a notebook) would find the folder taken and start a new one."""
    from invariance_lab.core.errors import RunFolderError
    from invariance_lab.store.claim import run_folder

    run = tmp_path / "x" / "stopped"
    stopped_or_finished_run(run, status="interrupted", config_digest="d")
    (tmp_path / "elsewhere").mkdir()
    (run / "checkpoints").symlink_to(tmp_path / "elsewhere")
    for _ in range(2):  # the same refusal both times: the folder is not taken by the first call
        try:
            run_folder(tmp_path, "x", "d", "name: x\n", fresh=False)
        except RunFolderError as e:
            assert "checkpoints" in str(e)
        else:
            raise AssertionError("a linked checkpoints/ was resumed")
    assert claim(run) is not None


def test_a_lock_that_cannot_be_opened_is_a_run_folder_error_saying_what_to_do(tmp_path):
    """A folder at .lock (or a run folder the process cannot write) gave `error: Is a directory: .../.lock`."""
    (tmp_path / LOCK_FILE).mkdir()
    with pytest.raises(RunFolderError) as e:
        claim(tmp_path)
    said = str(e.value)
    assert f"{tmp_path}: cannot open its lock file {LOCK_FILE} (Is a directory)" in said
    assert "a folder it can write" in said and "--fresh" in said


def test_a_full_disk_at_the_lock_file_says_so_not_to_make_the_folder_writable(tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "open", full)
    with pytest.raises(RunFolderError, match=rf"cannot create its lock file {LOCK_FILE}: the disk is full") as e:
        claim(tmp_path)
    monkeypatch.undo()
    assert "writable" not in str(e.value) and "Free some space" in str(e.value)


@pytest.mark.parametrize("fails", ["config", "lock"])
def test_a_new_run_folder_that_cannot_be_completed_is_not_left_behind(tmp_path, monkeypatch, fails):
    """A full disk after the folder was made left one with checkpoints/ (or config.yaml and .lock) and no meta.json,
    which `invlab status` then did not count as a run."""
    import errno

    from invariance_lab.store import claim as claim_module
    from invariance_lab.store import layout

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(layout if fails == "config" else claim_module, "write_text" if fails == "config" else "claim",
                        full)
    with pytest.raises(OSError):
        claim_module.run_folder(tmp_path, "quick", "d", "name: quick\n", fresh=False)
    assert os.listdir(tmp_path / "quick") == []
