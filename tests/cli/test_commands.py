"""`invlab sweep` and `invlab report` on a tiny trained run (made once per module)."""

import io
import json
import pathlib

import pandas as pd
import pytest
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.report import command as report_command

runner = CliRunner()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, request):
    from conftest import ROOT

    results = tmp_path_factory.mktemp("results")
    res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results), "--quiet"])
    assert res.exit_code == 0, res.output
    (run_dir,) = (results / "quick").iterdir()
    return results, run_dir


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def sweep_folder(res) -> pathlib.Path:
    """The folder a successful `invlab sweep` wrote, as its last line names it (tests do not rely on the order
    in which other tests made sweeps)."""
    assert res.exit_code == 0, res.output
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("sweep folder: ")]
    return pathlib.Path(line.removeprefix("sweep folder: "))


def test_sweep_reproduces_run_numbers(quick_run):
    results, run_dir = quick_run
    folder = sweep_folder(invoke("sweep", run_dir, "--dx", "-2:2", "--quiet"))
    assert json.loads((folder / "meta.json").read_text())["status"] == "complete"
    new = pd.read_csv(folder / "invariance.csv")
    old = pd.read_csv(run_dir / "invariance.csv")
    old = old[old.dy == 0]
    cols = ["model", "seed", "dx", "dy", "accuracy", "flip_rate", "prob_change"]
    pd.testing.assert_frame_equal(new[cols].reset_index(drop=True), old[cols].reset_index(drop=True))
    assert list(new.columns) == list(pd.read_csv(run_dir / "invariance.csv").columns)


def test_subpixel_2d_sweep_of_chosen_models(quick_run):
    _, run_dir = quick_run
    folder = sweep_folder(invoke("sweep", run_dir, "--dx", "0:1:0.5", "--dy", "-1:1", "--models", "conv_gap", "--quiet"))
    inv = pd.read_csv(folder / "invariance.csv")
    assert set(inv.model) == {"conv_gap"} and sorted(inv.dx.unique()) == [0, 0.5, 1] and len(inv) == 2 * 3 * 3


def test_sweep_from_config_reuses_checkpoints(quick_run, quick_config_path):
    results, run_dir = quick_run
    res = invoke("sweep", quick_config_path, "--results-dir", results, "--mode", "circular", "--dx", "-3:3")
    assert res.exit_code == 0, res.output
    assert "using run" in res.output  # an identical finished run exists: nothing is retrained
    res = invoke("sweep", quick_config_path, "--results-dir", results, "--set", "seeds=[0, 7]", "--dx", "1:1")
    assert res.exit_code == 0, res.output
    newest = max(p for p in (results / "quick").iterdir() if p != run_dir)
    meta = json.loads((newest / "meta.json").read_text())
    assert set(meta["reused"]) == {"conv_only-seed0", "conv_gap-seed0"}  # seed 7 was trained, seed 0 reused


@pytest.mark.parametrize("args, needle", [
    (["--dx", "4:2"], "stop"),
    (["--dx", "0:4:0"], "step"),
    (["--dx", "a:b"], "START:STOP"),
    (["--models", "nope"], "choose one of: conv_only, conv_gap"),
    (["--mode", "wrap"], "canvas"),
    (["--mode", "circular", "--dx", "0:1:0.5"], "whole pixels"),
])
def test_sweep_bad_input(quick_run, args, needle):
    _, run_dir = quick_run
    before = sorted((run_dir / "sweeps").iterdir()) if (run_dir / "sweeps").exists() else []
    res = invoke("sweep", run_dir, *args)
    assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
    after = sorted((run_dir / "sweeps").iterdir()) if (run_dir / "sweeps").exists() else []
    assert before == after  # nothing half-written


def test_sweep_refuses_a_folder_that_is_not_a_run(tmp_path):
    res = invoke("sweep", tmp_path)
    assert res.exit_code == 2 and "not a run folder" in res.output


def test_report_tables(quick_run):
    results, run_dir = quick_run
    res = invoke("report", run_dir)
    assert res.exit_code == 0, res.output
    assert "conv_only" in res.output and "conv_gap" in res.output and "canvas shift" in res.output
    res = invoke("report", "--results-dir", results, "--format", "csv")  # newest run by default
    assert res.exit_code == 0, res.output
    csv = res.stdout[res.stdout.index("model"):]
    df = pd.read_csv(io.StringIO(csv))
    assert set(df.model) == {"conv_only", "conv_gap"} and "mean_flip_rate_ci" in df.columns


def test_report_by_shift_markdown_and_comparison(quick_run):
    _, run_dir = quick_run
    # its own sweep: run alone (or first), this test found no sweep made by the others and compared nothing
    sweep = sweep_folder(invoke("sweep", run_dir, "--dx", "-1:1", "--quiet"))
    res = invoke("report", run_dir, sweep, "--by", "shift", "--metric", "prob_change", "--format", "markdown")
    assert res.exit_code == 0, res.output
    assert "prob_change along dx" in res.output and "±" in res.output and "| run |" in res.output


def test_report_plots(quick_run, tmp_path):
    _, run_dir = quick_run
    res = invoke("report", run_dir, "--plot", tmp_path / "plots")
    assert res.exit_code == 0, res.output
    pngs = list((tmp_path / "plots").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 10_000 for p in pngs)


def test_report_plot_path_that_is_a_file_names_the_option_before_drawing(quick_run, tmp_path, monkeypatch):
    _, run_dir = quick_run
    blocker = tmp_path / "a_file"
    blocker.write_text("")

    def drawn(*args, **kwargs):
        raise AssertionError("figures made for a --plot path that is refused")

    monkeypatch.setattr(report_command, "_figures", drawn)
    res = invoke("report", run_dir, "--plot", blocker)
    assert res.exit_code == 2 and "--plot" in res.output and "Traceback" not in res.output, res.output
    assert "not a writable folder" in res.output and blocker.read_text() == ""


@pytest.mark.parametrize("args, needle", [
    (["--metric", "nope"], "flip_rate"),
    (["--by", "seed"], "model, shift"),
    (["--format", "xml"], "markdown"),
])
def test_report_bad_input(quick_run, args, needle):
    _, run_dir = quick_run
    res = invoke("report", run_dir, *args)
    assert res.exit_code == 2 and needle in res.output, res.output
