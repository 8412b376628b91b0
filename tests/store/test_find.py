"""find.py: finding runs under a results folder (finished, resumable, reusable checkpoints) and refusing a
folder that is not a finished run or a study, with a RunFolderError."""

import os
import socket

import pytest
from conftest import dead_pid as _dead_pid, stopped_or_finished_run as _meta

from invariance_lab.core.errors import RunFolderError
from invariance_lab.store.atomic import write_json
from invariance_lab.store.find import (RESUMED, all_runs, finished_runs, matching_checkpoints, newest_run,
    read_study, require_finished_run, resumable_run, reusable_checkpoints, run_difference, studies)
from invariance_lab.store.meta import read_meta
from invariance_lab.store.layout import META_FILE, STUDY_FILE, checkpoint_path

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
        write_json(tmp_path / "x" / name / STUDY_FILE, dict(vary={"seeds": ["[0]"]},
                                                            runs=[dict(values={"seeds": "[0]"}, run=None)]))
    assert [f.name for f, s in studies(tmp_path, "x")] == ["study-1", "study-2"]


def test_a_study_json_listing_no_runs_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "x" / "study-1"
    folder.mkdir(parents=True)
    write_json(folder / STUDY_FILE, dict(vary={"seeds": ["[0]"]}, runs=[]))
    with pytest.raises(RunFolderError, match="lists no runs") as e:
        read_study(folder)
    assert str(e.value).startswith(f"{folder / STUDY_FILE} lists no runs")
    assert studies(tmp_path, "x") == []  # skipped while searching: nothing there to resume or report


# ------------------------------------------------------------ reuse keys on what a checkpoint was trained with
OURS = dict(invlab="0.1.0", torch="2.13", fonts={"futural": "f0"})


def _unit(folder, fp="abc", **fields):
    m = _meta(folder, fingerprints={"m-seed0": fp}, **fields)
    path = checkpoint_path(folder, "m", 0)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"x")
    return m


@pytest.mark.parametrize("theirs, says", [
    (dict(OURS, invlab="0.0.9"), "invlab '0.0.9' (this is 0.1.0)"),
    (dict(OURS, torch="2.12"), "torch '2.12' (this is 2.13)"),
    (dict(OURS, fonts={"futural": "ff"}), "other font files for ['futural']"),
    (None, "did not record its version and font files (invlab '0.1.0', torch '2.13.0')"),
])
def test_a_checkpoint_of_another_version_is_refused_unless_reuse_old(tmp_path, theirs, says):
    env = dict(versions={"invariance_lab": "0.1.0", "torch": "2.13.0"})
    _unit(tmp_path / "x" / "a", environment=env, **({} if theirs is None else {"trained_with": theirs}))
    found = reusable_checkpoints(tmp_path, "x", OURS)
    assert found.found == {} and says in found.refusal("m-seed0", "abc") and "--reuse-old" in found.refusal(
        "m-seed0", "abc")
    old = reusable_checkpoints(tmp_path, "x", OURS, reuse_old=True)
    assert old.found == {"abc": checkpoint_path(tmp_path / "x" / "a", "m", 0)} and says in old.old["abc"]["differs"]
    assert matching_checkpoints(tmp_path, "x") == old.found  # without a record to compare: every version
    # the same version wins over a newer run of another
    _unit(tmp_path / "x" / "b", trained_with=OURS, finished="2025-01-01T00:00:00")
    assert reusable_checkpoints(tmp_path, "x", OURS, reuse_old=True).found["abc"].parent.parent.name == "b"


def test_a_unit_reused_with_reuse_old_stays_of_its_version_in_later_runs(tmp_path):
    record = dict(source="elsewhere", differs="invlab '0.0.9'", trained_with=dict(OURS, invlab="0.0.9"))
    _unit(tmp_path / "x" / "a", trained_with=OURS, reused_old={"m-seed0": record})
    found = reusable_checkpoints(tmp_path, "x", OURS)
    assert found.found == {} and "invlab '0.0.9'" in found.refusal("m-seed0", "abc")
    reused = {}
    old = reusable_checkpoints(tmp_path, "x", OURS, reuse_old=True)
    old.note(reused, "m-seed0", "abc", str(checkpoint_path(tmp_path / "x" / "a", "m", 0)))
    assert reused["m-seed0"]["trained_with"]["invlab"] == "0.0.9"


def test_an_interrupted_run_of_another_version_is_not_resumed_unless_reuse_old(tmp_path):
    m = _meta(tmp_path / "x" / "c", status="running", pid=_dead_pid(), host=socket.gethostname(), config_digest="d",
              trained_with=dict(OURS, torch="2.12"))
    assert resumable_run(tmp_path, "x", "d", trained_with=OURS) is None
    assert resumable_run(tmp_path, "x", "d", trained_with=OURS, reuse_old=True)[0].name == "c"
    assert "torch '2.12' (this is 2.13)" in run_difference(m, OURS)
    # resumed with --reuse-old: its units are recorded as of their version
    found = reusable_checkpoints(tmp_path, "y", OURS, resumed=m)
    reused = {}
    found.note(reused, "m-seed0", "abc", RESUMED)
    assert reused["m-seed0"]["trained_with"]["torch"] == "2.12"


def test_run_refuses_another_versions_checkpoints_with_a_message_and_reuses_them_with_reuse_old(
        tmp_path, small_quick_run, one_thread):
    import shutil

    from conftest import ROOT
    from invariance_lab.config.load import load_config
    from invariance_lab.run.experiment import run_experiment
    from invariance_lab.core.versions import __version__
    from invariance_lab.store.checkpoints import trained_with

    results = tmp_path / "r"
    old = results / "quick" / small_quick_run.name
    shutil.copytree(small_quick_run, old)
    meta = read_meta(old)
    cfg = load_config(ROOT / "configs" / "quick.yaml", overrides=[
        "data.train_images=400", "train.epochs=2", "data.test_images=20"])
    assert meta["trained_with"] == trained_with(cfg)  # runs record what they were trained with
    write_json(old / META_FILE, dict(meta, trained_with=dict(meta["trained_with"], invlab="0.0.9")))
    said = []
    new = run_experiment(cfg, results_dir=results, on_event=said.append, threads=1)
    fresh = read_meta(new)
    assert len(fresh["trained"]) == 4 and not fresh["reused"] and not fresh["reused_old"]
    assert sum("not reusing" in s and f"invlab '0.0.9' (this is {__version__})" in s and "--reuse-old" in s
               for s in said) == 4
    shutil.rmtree(new)  # only the old run remains
    again = read_meta(run_experiment(cfg, results_dir=results, reuse_old=True, threads=1))
    assert again["reuse_old"] is True and len(again["reused"]) == 4 and set(again["reused_old"]) == set(again["reused"])
    assert all(r["trained_with"]["invlab"] == "0.0.9" for r in again["reused_old"].values())


def test_live_run_finds_the_config_a_live_process_is_running_and_nothing_else(tmp_path):
    from invariance_lab.core.processes import this_process
    from invariance_lab.store.find import live_run

    live = dict(status="running", config_digest="d", **this_process())
    _meta(tmp_path / "x" / "a", **live, started="2026-01-01T00:00:00")
    _meta(tmp_path / "x" / "b", **dict(live, pid=_dead_pid()), started="2026-01-02T00:00:00")  # its process gone
    _meta(tmp_path / "x" / "c", config_digest="d")  # finished
    _meta(tmp_path / "x" / "e", **dict(live, config_digest="other"))  # another config
    assert live_run(tmp_path, "x", ("old", "d"), exclude=tmp_path / "x" / "new")[0] == tmp_path / "x" / "a"
    assert live_run(tmp_path, "x", "d", exclude=tmp_path / "x" / "a") is None


def test_a_run_of_a_config_another_process_is_running_says_so(tmp_path, small_quick_run, one_thread):
    """Two `invlab run` of one config each trained into a folder of its own without a word."""
    import shutil

    from conftest import ROOT
    from invariance_lab.config.load import load_config
    from invariance_lab.core.processes import this_process
    from invariance_lab.run.experiment import run_experiment

    results = tmp_path / "r"
    busy = results / "quick" / small_quick_run.name
    shutil.copytree(small_quick_run, busy)
    meta = {k: v for k, v in read_meta(busy).items() if k != "finished"}
    write_json(busy / META_FILE, dict(meta, status="running", **this_process()))  # as if this process ran it
    cfg = load_config(ROOT / "configs" / "quick.yaml", overrides=[
        "data.train_images=400", "train.epochs=2", "data.test_images=20"])
    said = []
    new = read_meta(run_experiment(cfg, results_dir=results, on_event=said.append, threads=1))
    assert len(new["reused"]) == 4 and not new["trained"]  # its finished checkpoints reused, nothing trained again
    (notice,) = [s for s in said if s.startswith("run folder:")]
    assert f"({busy} is running this config now, process {os.getpid()}: " in notice and "run again" in notice


# ------------------------------------------------------------ what a mutation audit found untested

def test_newest_started_run_is_the_one_started_last_not_the_one_finished_last(tmp_path):
    """`invlab status` with no folder showed an older run that finished late instead of the run just started."""
    from invariance_lab.store.find import newest_started_run

    _meta(tmp_path / "x" / "a", started="2026-01-01T00:00:00", finished="2026-01-05T00:00:00")
    _meta(tmp_path / "x" / "b", status="interrupted", started="2026-01-03T00:00:00")
    assert newest_started_run(tmp_path) == tmp_path / "x" / "b"


def test_a_run_that_reused_old_checkpoints_is_not_resumed_as_of_this_version(tmp_path):
    """A run recording this version but holding units reused with --reuse-old was resumed without it."""
    m = _meta(tmp_path / "x" / "c", status="interrupted", config_digest="d", trained_with=OURS,
              reused_old={"m-seed0": dict(source="elsewhere", trained_with=dict(OURS, invlab="0.0.9"))})
    assert "reused with --reuse-old" in run_difference(m, OURS)
    assert resumable_run(tmp_path, "x", "d", trained_with=OURS) is None
    assert resumable_run(tmp_path, "x", "d", trained_with=OURS, reuse_old=True)[0].name == "c"


def test_a_unit_kept_from_a_resumed_attempt_is_not_recorded_as_reused_from_an_old_checkpoint(tmp_path):
    """note() recorded a unit as reused from another version's file though it came from somewhere else."""
    from invariance_lab.store.find import Reusable

    found = Reusable(old={"abc": dict(source="/elsewhere/m-seed0.pt", differs="invlab '0.0.9'")})
    record = {}
    found.note(record, "m-seed0", "abc", RESUMED)
    found.note(record, "m-seed0", "abc", "/another/m-seed0.pt")
    assert record == {}
    found.note(record, "m-seed0", "abc", "/elsewhere/m-seed0.pt")
    assert record["m-seed0"]["source"] == "/elsewhere/m-seed0.pt"


def test_a_relative_factory_file_in_meta_json_is_not_searched_in_the_current_folder(tmp_path, monkeypatch):
    """A run folder's meta.json naming factory_file "mod.py" made a sweep import the current folder's mod.py."""
    from invariance_lab.store.find import run_factory_dirs

    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "mod.py").write_text("")
    run = tmp_path / "run"
    meta = dict(models={"m": dict(factory_file="here/mod.py"),
                        "n": dict(factory_file=str(tmp_path / "here" / "mod.py"))})
    assert run_factory_dirs(run, meta) == [run, tmp_path / "here"]
    assert run_factory_dirs(run, dict(models={"m": dict(factory_file="here/mod.py")})) == [run]
