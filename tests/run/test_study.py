"""study: --vary runs the product of overrides as one study; invlab report STUDY compares the runs by varied key."""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.report.study import build_study_report, study_figure
from invariance_lab.cli.main import app
from invariance_lab.core.errors import InvlabError
from invariance_lab.store.meta import read_meta
from invariance_lab.run.study import combinations, parse_vary, split_values

runner = CliRunner()
TINY = ["--set", "data.train_images=100", "--set", "data.test_images=12", "--set", "seeds=[0]", "--threads", "1",
        "--quiet"]


def _run(results, *extra):
    return runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results), *TINY,
                               *extra])


def test_values_split_at_top_level_commas_only():
    assert split_values("0,4") == ["0", "4"]
    assert split_values("[0,1],[2,3]") == ["[0,1]", "[2,3]"]
    assert split_values("{a: 1, b: 2},'x,y'") == ["{a: 1, b: 2}", "'x,y'"]
    vary = parse_vary(["data.train_shift=0,4", "train.epochs=1,2,3"])
    assert vary == {"data.train_shift": ["0", "4"], "train.epochs": ["1", "2", "3"]}
    assert combinations(vary)[:2] == [{"data.train_shift": "0", "train.epochs": "1"},
                                      {"data.train_shift": "0", "train.epochs": "2"}]


@pytest.mark.parametrize("options, words", [
    (["data.train_shift"], "expected KEY.PATH=V1,V2"),
    (["=0,4"], "expected KEY.PATH=V1,V2"),
    (["data..train_shift=0"], "empty part in key path"),
    (["data.train_shift=0,,4"], "an empty value"),
    (["data.train_shift=0,0"], "listed twice"),
    (["seeds=[0],[1]", "seeds=[2]"], "seeds is varied twice; give all its values in one --vary"),
])
def test_bad_vary_syntax_names_the_option(options, words):
    with pytest.raises(InvlabError, match="--vary") as e:
        parse_vary(options)
    assert words in str(e.value)


def test_a_2x2_study_has_4_complete_runs_and_a_report_with_both_keys(tmp_path, one_thread):
    res = _run(tmp_path, "--vary", "data.train_shift=0,2", "--vary", "train.epochs=0,1")
    assert res.exit_code == 0, res.output
    (study,) = (tmp_path / "quick").glob("study-*")
    spec = json.loads((study / "study.json").read_text())
    assert spec["status"] == "complete" and spec["vary"] == {"data.train_shift": ["0", "2"], "train.epochs": ["0", "1"]}
    assert len(spec["runs"]) == 4 and len({r["run"] for r in spec["runs"]}) == 4
    for r in spec["runs"]:
        meta = read_meta(tmp_path / r["run"])
        assert meta["status"] == "complete"
        config = (tmp_path / r["run"] / "config.yaml").read_text()
        assert f"train_shift: {float(r['values']['data.train_shift'])}" in config
        assert f"epochs: {r['values']['train.epochs']}" in config

    res = runner.invoke(app, ["report", str(study), "--format", "csv"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(pd.io.common.StringIO(res.stdout))
    assert list(table.columns[:3]) == ["data.train_shift", "train.epochs", "model"]
    assert len(table) == 8 and set(zip(table["data.train_shift"], table["train.epochs"])) == {(0, 0), (0, 1), (2, 0),
                                                                                              (2, 1)}
    res = runner.invoke(app, ["report", str(study), "--plot", str(tmp_path / "figs")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "figs" / "study_mean_flip_rate_vs_data_train_shift.png").stat().st_size > 1000
    # against each varied key, and the runs' own plots, as the HTML page has them (it wrote the first alone)
    assert {"study_mean_flip_rate_vs_train_epochs.png", "flip_rate_vs_dx.png", "consistency_vs_accuracy.png"} <= \
        {f.name for f in (tmp_path / "figs").iterdir()}
    # the figure's legend marks the models with seeds at chance (†), as the tables do (the bars: tests/report)
    rep = build_study_report(study)
    assert sorted(r.label for r in rep.results) == [f"data.train_shift={a}, train.epochs={b}" for a in (0, 2)
                                                    for b in (0, 1)]  # the plots' legends name runs so
    assert set(rep.flags["run"]) == {r.label for r in rep.results}  # and the notes on seeds at chance, the gallery
    # --drop-chance leaves out runs whose seeds are all at chance: every row keeps its own run's values
    kept = build_study_report(study, drop_chance=True)
    assert len(kept.views[0].table) < len(rep.views[0].table) and len(kept.dropped)
    key = ["data.train_shift", "train.epochs", "model"]
    both = kept.views[0].table.merge(rep.views[0].table, on=key, suffixes=("", "_all"))
    assert len(both) == len(kept.views[0].table) and (both["mean_flip_rate"] == both["mean_flip_rate_all"]).all()
    assert set(kept.dropped["run"]) <= {r.label for r in rep.results}
    ax = study_figure(rep, study, "data.train_shift", "mean_flip_rate")[1].axes[0]
    view = rep.views[0].table
    chance = {f"{m}, train.epochs={e}" for m, e, n in zip(view["model"], view["train.epochs"], view["n_chance"])
              if n > 0}  # a line per model and value of the other varied key
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert chance and all(("†" in label) == (label.split(" (")[0] in chance) for label in labels), labels
    res = runner.invoke(app, ["status", str(study)])
    assert res.exit_code == 0 and res.output.count("2 done") == 4

    # the same command again: a new study whose runs reuse every checkpoint
    res = _run(tmp_path, "--vary", "data.train_shift=0,2", "--vary", "train.epochs=0,1")
    assert res.exit_code == 0, res.output
    newest = max((tmp_path / "quick").glob("study-*"))
    assert newest != study
    for r in json.loads((newest / "study.json").read_text())["runs"]:
        meta = read_meta(tmp_path / r["run"])
        assert len(meta["reused"]) == 2 and not meta["trained"]


def test_only_sweep_settings_varied_reuse_the_training(tmp_path, one_thread):
    res = _run(tmp_path, "--vary", "sweep.mode=canvas,circular")
    assert res.exit_code == 0, res.output
    (study,) = (tmp_path / "quick").glob("study-*")
    first, second = (read_meta(tmp_path / r["run"]) for r in json.loads((study / "study.json").read_text())["runs"])
    assert len(first["trained"]) == 2 and len(second["reused"]) == 2 and not second["trained"]


@pytest.mark.parametrize("vary, words", [
    ("data.train_shiftt=0,4", "[data.train_shiftt] unknown key; did you mean 'train_shift'?"),
    ("train.epochs=1,x", "[train.epochs] must be an integer"),
    ("train.epochs", "--vary 'train.epochs': expected KEY.PATH=V1,V2"),
    # refused after the first runs had trained (their folders are not beside the study; no CUDA device)
    ("name=aa,bb", "--vary name=aa,bb: a study's runs are kept beside it, in results/<name>/, so the name cannot vary"),
    pytest.param("device=cpu,cuda", "combination device=cuda (of --vary device=cpu,cuda): device cuda was asked for",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")),
])
def test_a_bad_vary_is_refused_before_any_run(tmp_path, vary, words):
    res = _run(tmp_path, "--vary", vary)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert words in " ".join(res.output.split())
    assert not (tmp_path / "quick").exists()


def test_report_of_a_study_with_other_folders_is_refused(tmp_path, fake_result):
    study = tmp_path / "quick" / "study-1"
    study.mkdir(parents=True)
    (study / "study.json").write_text(json.dumps({"vary": {"a": ["1"]}, "runs": []}))
    run = fake_result(tmp_path / "run")
    res = runner.invoke(app, ["report", str(study), str(run)])
    assert res.exit_code == 2 and "report it alone" in res.output


# ------------------------------------------------- a study built once for the tests below (each copies it)


@pytest.fixture(scope="module")
def linked_study(tmp_path_factory):
    """A 2-run study made with results/quick a link to another folder (results kept on another disk), as plain
    `invlab run` allows: (the finished command, the results folder holding it). The link is relative, so a copy
    of the whole tree links into the copy."""
    root = tmp_path_factory.mktemp("linked")
    (root / "elsewhere").mkdir()
    (root / "results").mkdir()
    (root / "results" / "quick").symlink_to(Path("..") / "elsewhere")
    res = _run(root / "results", "--set", "train.epochs=0", "--vary", "data.train_shift=0,1")
    return res, root


def _copy(linked_study, tmp_path):
    res, root = linked_study
    shutil.copytree(root, tmp_path / "copy", symlinks=True)
    results = tmp_path / "copy" / "results"
    assert (results / "quick").is_symlink()
    studies = list((results / "quick").glob("study-*"))
    return res, results, studies[0] if len(studies) == 1 else None


def test_vary_writes_through_a_linked_results_name_folder_as_run_does(linked_study, tmp_path):
    res, results, study = _copy(linked_study, tmp_path)
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    spec = json.loads((study / "study.json").read_text())
    assert spec["status"] == "complete" and [r["status"] for r in spec["runs"]] == ["complete"] * 2
    for r in spec["runs"]:  # <name>/<run id> from the results folder as named, the runs in the link's target
        assert r["run"].startswith("quick/") and read_meta(results / r["run"])["status"] == "complete"
        assert (tmp_path / "copy" / "elsewhere" / r["run"].split("/")[1] / "meta.json").is_file()
    res = runner.invoke(app, ["report", str(study), "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(pd.io.common.StringIO(res.stdout))) == 4
    (tmp_path / "alias").symlink_to(study)  # the study folder named through a link of its own
    for folder in (study, tmp_path / "alias"):
        res = runner.invoke(app, ["status", str(folder)])
        assert res.exit_code == 0 and res.output.count("2 done") == 2, res.output


def test_a_study_json_listing_no_runs_is_refused_by_report_and_status(linked_study, tmp_path):
    _, _, study = _copy(linked_study, tmp_path)
    spec = json.loads((study / "study.json").read_text())
    spec["runs"] = []
    (study / "study.json").write_text(json.dumps(spec))
    before = (study / "study.json").read_bytes()
    for command in (["report", str(study)], ["status", str(study)]):
        res = runner.invoke(app, command)
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "Traceback" not in said, res.output
        assert f"{study / 'study.json'} lists no runs" in said, res.output
    assert (study / "study.json").read_bytes() == before


@pytest.mark.parametrize("values", [{}, {"data.noise": "0"}])
def test_a_study_run_without_a_value_for_each_varied_key_is_refused(linked_study, tmp_path, values):
    """The report gives each run a column per varied key: a run without its value ended in a KeyError traceback."""
    _, _, study = _copy(linked_study, tmp_path)
    spec = json.loads((study / "study.json").read_text())
    spec["runs"][0]["values"] = values
    (study / "study.json").write_text(json.dumps(spec))
    for command in (["report", str(study)], ["status", str(study)]):
        res = runner.invoke(app, command)
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "Traceback" not in said, res.output
        assert "not for the varied keys ['data.train_shift']" in said and str(study / "study.json") in said, said


def test_a_study_run_that_names_no_run_folder_is_refused(linked_study, tmp_path):
    _, _, study = _copy(linked_study, tmp_path)
    spec = json.loads((study / "study.json").read_text())
    spec["runs"][0]["run"] = "quick/.."  # untrusted study.json: would lead above results/quick
    (study / "study.json").write_text(json.dumps(spec))
    res = runner.invoke(app, ["status", str(study)])
    assert res.exit_code == 2 and "names no run folder" in " ".join(res.output.split()), res.output


def test_a_resumed_study_keeps_the_runs_it_finished(linked_study, tmp_path, one_thread):
    """Stopped in its second combination, the study is run again: the first combination's finished run stays in
    study.json as it was (it was run again into a new folder, the finished one dropped from the study)."""
    _, results, study = _copy(linked_study, tmp_path)
    spec = json.loads((study / "study.json").read_text())
    first = spec["runs"][0]["run"]
    spec["status"] = "interrupted"
    spec["runs"][1].update(run=None, status="interrupted")
    (study / "study.json").write_text(json.dumps(spec))
    runs_before = sorted(p.name for p in (results / "quick").iterdir())
    res = _run(results, "--set", "train.epochs=0", "--vary", "data.train_shift=0,1")
    assert res.exit_code == 0, res.output
    spec = json.loads((study / "study.json").read_text())
    assert spec["status"] == "complete" and spec["runs"][0]["run"] == first and spec["runs"][1]["run"]
    made = sorted(set(p.name for p in (results / "quick").iterdir()) - set(runs_before))
    assert made == [Path(spec["runs"][1]["run"]).name]  # one new run folder: the second combination's


def test_a_killed_study_reads_as_interrupted_not_running(linked_study, tmp_path):
    """A study killed in its second combination kept "running" in study.json: report said it was running."""
    import socket
    import subprocess

    _, results, study = _copy(linked_study, tmp_path)
    spec = json.loads((study / "study.json").read_text())
    dead = subprocess.Popen(["true"])
    dead.wait()
    spec.update(status="running", pid=dead.pid, pid_start=None, host=socket.gethostname())
    spec["runs"][1].update(run=None, status="running")
    (study / "study.json").write_text(json.dumps(spec))
    res = runner.invoke(app, ["report", str(study)])
    assert res.exit_code == 2 and "the study is not finished (interrupted (process gone))" in res.output, res.output
    # status said "not run yet" of the combination that was running (study.json names its folder once it finishes)
    said = " ".join(runner.invoke(app, ["status", str(study)]).output.split())
    assert "data.train_shift=1: interrupted (process gone) (its run folder is named in the study once" in said, said
    spec.update(pid=os.getpid())  # this process: alive
    (study / "study.json").write_text(json.dumps(spec))
    assert "the study is not finished (running)" in runner.invoke(app, ["report", str(study)]).output
    said = " ".join(runner.invoke(app, ["status", str(study)]).output.split())
    assert "data.train_shift=1: running (its run folder" in said and "again" not in said, said
    spec["runs"][1].update(status="missing")  # not started
    (study / "study.json").write_text(json.dumps(spec))
    assert "data.train_shift=1: not run yet" in runner.invoke(app, ["status", str(study)]).output


def test_a_value_written_two_ways_is_refused_before_any_run(tmp_path):
    """--vary train.lr=0.001,1e-3 ran the same config twice (the duplicate check compared the texts)."""
    res = _run(tmp_path, "--vary", "train.lr=0.001,1e-3")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "the combinations train.lr=0.001 and train.lr=1e-3 give the same config" in said
    assert not (tmp_path / "quick").exists()


def test_a_study_still_running_is_not_resumed_by_a_second_command(linked_study, tmp_path, one_thread):
    """The same --vary command started while the first still runs said "resuming study", ran every combination
    again beside the first, and both rewrote study.json (the last writer won). It makes a study of its own now."""
    import socket

    _, results, study = _copy(linked_study, tmp_path)
    spec = json.loads((study / "study.json").read_text())
    spec.update(status="running", pid=os.getpid(), pid_start=None, host=socket.gethostname())  # a live process
    (study / "study.json").write_text(json.dumps(spec))
    before = (study / "study.json").read_bytes()
    res = _run(results, "--set", "train.epochs=0", "--vary", "data.train_shift=0,1")
    assert res.exit_code == 0 and "resuming study" not in res.output, res.output
    assert (study / "study.json").read_bytes() == before
    assert len(list((results / "quick").glob("study-*"))) == 2


def test_a_study_running_on_another_host_is_resumed_when_no_process_holds_it(linked_study, tmp_path, one_thread):
    """study.json marked running by a process on another host (a second login node, a laptop whose name changed
    with its network) was never resumed: a second study was made, and status said "running" forever. No process
    there holds its lock, so it is resumed."""
    _, results, study = _copy(linked_study, tmp_path)
    spec = json.loads((study / "study.json").read_text())
    spec.update(status="running", pid=12345, pid_start=None, host="old-laptop.local")
    spec["runs"][1].update(run=None, status="running")
    (study / "study.json").write_text(json.dumps(spec))
    res = _run(results, "--set", "train.epochs=0", "--vary", "data.train_shift=0,1")
    assert res.exit_code == 0, res.output
    assert len(list((results / "quick").glob("study-*"))) == 1
    assert json.loads((study / "study.json").read_text())["status"] == "complete"


# ------------------------------------------------------------ what a mutation audit found untested

def test_more_combinations_than_a_study_holds_are_refused():
    """--vary making 289 runs (17 x 17) was accepted: hundreds of trainings started from one typo'd range."""
    from invariance_lab.run.study import MAX_COMBINATIONS

    values = ",".join(str(v) for v in range(17))
    with pytest.raises(InvlabError, match=f"makes 289 combinations \\(at most {MAX_COMBINATIONS} runs"):
        parse_vary([f"data.train_shift={values}", f"train.epochs={values}"])
    assert len(combinations(parse_vary([f"data.train_shift={values}", "train.epochs=1,2"]))) == 34


def test_a_resumed_study_runs_again_a_combination_whose_finished_run_is_gone(tmp_path):
    """study.json's "complete" was trusted without its run folder: a deleted or damaged run was kept as finished."""
    from conftest import stopped_or_finished_run

    from invariance_lab.run.study import run_study

    ran = []

    def run(cfg):  # a stand-in for run_experiment: a finished run folder beside the study, or a failure
        ran.append(cfg.data.train_shift)
        if len(ran) == 2:
            raise RuntimeError("stopped")
        folder = tmp_path / "quick" / f"run{len(ran)}"
        stopped_or_finished_run(folder)
        return folder

    args = dict(overrides=[], vary=["data.train_shift=0,1"], results_dir=tmp_path, run=run)
    with pytest.raises(RuntimeError):
        run_study(ROOT / "configs" / "quick.yaml", **args)
    shutil.rmtree(tmp_path / "quick" / "run1")  # the first combination's finished run, gone
    study = run_study(ROOT / "configs" / "quick.yaml", **args)
    assert ran == [0, 1, 0, 1] and json.loads((study / "study.json").read_text())["status"] == "complete"
