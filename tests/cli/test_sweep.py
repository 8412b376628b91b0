"""`invlab sweep --metric lie`: lie.csv beside the sweep's tables (eval/lie.py), recorded in meta.json and
sweep.yaml, read back by load_result and shown by `invlab report`; a sweep without it writes no lie.csv."""

import json
import re

import pandas as pd
import yaml
from conftest import ROOT, untrained_quick_run
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.config.load import load_config
from invariance_lab.config.memory import LIMIT_VARIABLE, memory_estimate
from invariance_lab.config.sweep_memory import sweep_estimate
from invariance_lab.core.columns import LIE_COLUMNS
from invariance_lab.eval.lie import TRANSFORMS
from invariance_lab.store.layout import LIE_CSV, META_FILE, SWEEP_DIR, SWEEP_FILE
from invariance_lab.store.results import load_result


def test_metric_lie_writes_lie_csv_and_the_report_shows_it(tmp_path_factory):
    run_dir = untrained_quick_run(tmp_path_factory)
    res = CliRunner().invoke(app, ["sweep", str(run_dir), "--metric", "lie", "--layers", "--layer-images", "3",
                                   "--dx", "0:1", "--quiet", "--threads", "1"])
    assert res.exit_code == 0, res.output
    (folder,) = (run_dir / SWEEP_DIR).iterdir()
    lie = pd.read_csv(folder / LIE_CSV, keep_default_na=False)
    assert list(lie.columns) == LIE_COLUMNS
    out = lie[lie["layer"] == ""]
    assert len(out) == 2 * len(TRANSFORMS) and set(out["transform"]) == set(TRANSFORMS)  # 2 models, seed 0
    assert {"block1.conv", "head"} <= set(lie["layer"]) and (out["value"].astype(float) >= 0).all()
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["protocol"]["lie"]["n_images"] == 3 and "lie_s" in meta["timings"]
    assert yaml.safe_load((folder / SWEEP_FILE).read_text())["metric"] == "lie"
    assert load_result(folder).lie is not None and "Lie derivative" in res.output
    report = CliRunner().invoke(app, ["report", str(folder), "--format", "csv"])
    assert report.exit_code == 0, report.output
    assert "lie" in report.output and "translate_x" in report.output and "scale" in report.output
    from invariance_lab.report.html import html_report

    page = html_report([folder], n_images=1)  # the page had left the Lie derivative out
    assert "<h2>Lie derivative</h2>" in page and page.count("translate_x") >= 1


def test_without_metric_no_lie_csv_and_a_bad_metric_is_refused(tmp_path_factory):
    run_dir = untrained_quick_run(tmp_path_factory)
    res = CliRunner().invoke(app, ["sweep", str(run_dir), "--dx", "0:1", "--quiet", "--threads", "1"])
    assert res.exit_code == 0, res.output
    (folder,) = (run_dir / SWEEP_DIR).iterdir()
    assert not (folder / LIE_CSV).exists() and "metric" not in yaml.safe_load((folder / SWEEP_FILE).read_text())
    assert load_result(folder).lie is None
    bad = CliRunner().invoke(app, ["sweep", str(run_dir), "--metric", "lei"])
    assert bad.exit_code == 2 and "unknown --metric 'lei'" in bad.output and "lie" in bad.output


def test_the_docs_quote_the_shift_option_messages_as_they_are(tmp_path):
    """docs/bad_inputs.md's table of `invlab sweep RUN --dx '...'` rows: each message as the command prints it
    (exit 2, before the run folder is looked at), so a message reworded in the code must be reworded there."""
    rows = re.findall(r"^\| `invlab sweep RUN --dx '([^']*)'` \| [^|]+ \| (.+) \|$",
                      (ROOT / "docs" / "bad_inputs.md").read_text(), flags=re.M)
    assert len(rows) >= 7
    stale = []
    for value, message in rows:
        res = CliRunner().invoke(app, ["sweep", str(tmp_path / "no_such_run"), "--dx", value])
        said = " ".join(res.output.split()).removeprefix("error: ")
        if res.exit_code != 2 or said != message.replace("\\|", "|"):
            stale.append(f"--dx {value!r}: exit {res.exit_code}\n  docs: {message}\n  says: {said}")
    assert not stale, "docs/bad_inputs.md is stale:\n" + "\n".join(stale)


def test_results_dir_with_a_run_folder_is_refused_not_ignored(tmp_path_factory, tmp_path):
    # a run folder's sweep is written inside it: --results-dir would be ignored, the sweep not where it was asked
    run_dir = untrained_quick_run(tmp_path_factory)
    res = CliRunner().invoke(app, ["sweep", str(run_dir), "--dx", "0:1", "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    said = " ".join(res.output.split())
    assert "--results-dir applies to a config file" in said and f"{run_dir / SWEEP_DIR}/<sweep id>" in said
    assert not (run_dir / SWEEP_DIR).exists() and not (tmp_path / "r").exists()  # nothing swept, nothing made
    # a mistyped run folder is named as not found first: the option is not the mistake there
    res = CliRunner().invoke(app, ["sweep", str(tmp_path / "typo"), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "folder not found" in res.output and "--results-dir" not in res.output


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_jobs_whose_workers_would_not_fit_are_refused_before_the_sweep_folder(tmp_path_factory, monkeypatch):
    """Each --jobs worker of a sweep draws the test set and its shifted inputs again and loads its models
    (config/sweep_memory.py): past the memory limit the sweep is refused, naming --jobs and the largest that fits,
    with the run folder and its earlier sweeps as they were; the same limit leaves a sweep that runs in the
    command's own process (--jobs 1, one model) alone."""
    run_dir = untrained_quick_run(tmp_path_factory)
    cfg = load_config(run_dir / "config.yaml")
    run = sum(b for b, _ in memory_estimate(cfg).values())  # parse_config's check of the run's config.yaml
    one, two = (sum(b for b, _ in sweep_estimate(cfg, cfg.sweep, "translation", list(cfg.models), s).values())
                for s in (1, 2))
    assert max(run, one) < two
    monkeypatch.setenv(LIMIT_VARIABLE, str((max(run, one) + two) / 2 / 2**30))
    args = ["sweep", str(run_dir), "--quiet", "--threads", "1"]
    assert CliRunner().invoke(app, args).exit_code == 0  # in this process: fits
    before = _files(run_dir)
    res = CliRunner().invoke(app, [*args, "--jobs", "2"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    said = " ".join(res.output.split())
    assert "too big to sweep with --jobs 2: its workers at once would need about" in said, said
    assert "give --jobs 1 (or leave --jobs out)." in said, said
    assert _files(run_dir) == before and len(list((run_dir / SWEEP_DIR).iterdir())) == 1
    res = CliRunner().invoke(app, [*args, "--jobs", "2", "--models", "conv_gap"])  # one model: no worker
    assert res.exit_code == 0, res.output


def test_a_config_sweeps_models_and_jobs_are_checked_before_its_run_is_trained(tmp_path, monkeypatch):
    """invlab sweep CONFIG trains the config's run when it has none: a mistyped --models name, or --jobs whose
    sweep workers would not fit, is refused first, with no run folder made (not after a training)."""
    config = ROOT / "configs" / "quick.yaml"
    results = tmp_path / "results"
    args = ["sweep", str(config), "--results-dir", str(results), "--quiet", "--threads", "1",
            "--set", "train.epochs=0", "--set", "data.test_images=12"]
    res = CliRunner().invoke(app, [*args, "--models", "conv_gapp"])
    assert res.exit_code == 2 and "unknown model 'conv_gapp'; did you mean 'conv_gap'?" in res.output, res.output
    assert not results.exists()
    cfg = load_config(config, ["train.epochs=0", "data.test_images=12"])
    one, two = (sum(b for b, _ in sweep_estimate(cfg, cfg.sweep, "translation", list(cfg.models), s).values())
                for s in (1, 2))
    run = sum(b for b, _ in memory_estimate(cfg).values())
    monkeypatch.setenv(LIMIT_VARIABLE, str((max(run, one) + two) / 2 / 2**30))
    res = CliRunner().invoke(app, [*args, "--jobs", "2"])
    assert res.exit_code == 2 and "too big to sweep with --jobs 2" in " ".join(res.output.split()), res.output
    assert not results.exists()


def test_a_config_sweeps_shift_that_blanks_the_image_is_named_before_jobs_or_training(tmp_path, monkeypatch):
    """invlab sweep CONFIG --dx far past the canvas: the shift is refused (as on a run folder), before a run is
    trained, and with --jobs 2 too: its workers' memory is not charged first, which named --jobs ("give --jobs 1")
    for a sweep that --jobs 1 then refused after training the run."""
    config = ROOT / "configs" / "quick.yaml"
    results = tmp_path / "results"
    args = ["sweep", str(config), "--results-dir", str(results), "--quiet", "--threads", "1",
            "--set", "train.epochs=0", "--set", "data.test_images=12", "--dx", "-3000:3000:3000"]
    monkeypatch.setenv(LIMIT_VARIABLE, "2")  # GiB: the inputs drawn on a canvas enlarged by 3000 px need more
    for jobs in ("2", "1"):
        res = CliRunner().invoke(app, [*args, "--jobs", jobs])
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "[sweep.dx] a shift of -3000 px moves every letter" in said, said
        assert "--jobs" not in said and not results.exists(), said


def test_device_sweeps_a_run_made_for_a_gpu_on_a_machine_without_one(tmp_path_factory, tmp_path):
    """A run whose config says `device: cuda` could not be swept where torch finds no GPU: the run's own device was
    the only one, and `--set` applies to configs only. --device says where the sweep computes (the workers of
    --jobs too)."""
    runner = CliRunner()
    import shutil

    import torch

    run = tmp_path / "quick" / "gpu-run"
    shutil.copytree(untrained_quick_run(tmp_path_factory), run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "device": "cuda"}, sort_keys=False))
    if not torch.cuda.is_available():
        refused = runner.invoke(app, ["sweep", str(run), "--dx", "0:1", "--quiet"])
        assert refused.exit_code == 2 and "torch finds no CUDA device here" in refused.output, refused.output
        assert not (run / SWEEP_DIR).exists()
    # in two workers, which read the run's config.yaml: they take --device too
    res = runner.invoke(app, ["sweep", str(run), "--dx", "0:1", "--device", "cpu", "--jobs", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    (folder,) = (run / SWEEP_DIR).iterdir()
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["device"] == "cpu" and meta["sweep_workers"] == 2 and len(load_result(folder).summary) == 2
