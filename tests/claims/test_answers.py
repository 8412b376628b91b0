"""claims/answers.py's page: written into the run folder unless --out names a file; --out replaces only a page
invlab wrote (or any regular file with --force), never a run folder's file, a link, a FIFO or a folder. Every
refusal comes before any work (no run folder is made)."""

import os

import pytest

from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.claims.answers import ANSWERS_MARK, answers_page
from invariance_lab.cli.main import app
from invariance_lab.store.layout import ANSWERS_FILE

runner = CliRunner()
# a config the claims refuse (it lacks their models): had --out not been refused first, the command would stop
# there with another message, in a second rather than after the claims' whole run
CONFIG = str(ROOT / "configs" / "quick.yaml")


def _refused(tmp_path, out, *needles, extra=()):
    res = runner.invoke(app, ["claims", CONFIG, "--results-dir", str(tmp_path / "results"), "--out", str(out),
                              "--quiet", *extra])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in said, said
    assert not (tmp_path / "results").exists()  # refused before the run


def test_the_page_goes_into_the_run_folder_by_default(tmp_path):
    run = tmp_path / "results" / "question_claims" / "20260101-000000"
    assert answers_page(run) == run / ANSWERS_FILE == run / "answers.md"
    assert answers_page(run, tmp_path / "docs" / "answers.md") == tmp_path / "docs" / "answers.md"


def test_the_repositorys_page_carries_the_mark():
    assert ANSWERS_MARK in (ROOT / "docs" / "answers.md").read_text(encoding="utf-8")[:1 << 16]


def test_out_in_a_run_folder_is_refused(tmp_path, fake_result):
    run = fake_result(tmp_path / "other" / "demo" / "20260101-000000")
    before = (run / "meta.json").read_bytes()
    _refused(tmp_path, run / "meta.json", f"--out {run / 'meta.json'} lies in the results folder")
    assert (run / "meta.json").read_bytes() == before


def test_out_of_another_file_needs_force_and_links_fifos_folders_are_refused(tmp_path):
    mine = tmp_path / "notes.md"
    mine.write_text("# my notes\n")
    _refused(tmp_path, mine, f"--out {mine} exists and was not written by invlab", "--force")
    assert mine.read_text() == "# my notes\n"
    link = tmp_path / "answers.md"
    link.symlink_to(mine)
    _refused(tmp_path, link, f"--out {link} is a symbolic link", extra=["--force"])
    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)
    _refused(tmp_path, fifo, f"--out {fifo} is a device, FIFO or socket", extra=["--force"])
    _refused(tmp_path, tmp_path, f"--out {tmp_path} is a folder")
    assert mine.read_text() == "# my notes\n"


# ------------------------------------------------------------------------- the protocol that ran, never "nan%"


def test_a_run_sweep_without_shifts_is_refused_before_any_work(tmp_path):
    """Claims 3, 4 and 6 read the run's own canvas shifts: with none their numbers were NaN ("nan%" on the page)."""
    res = runner.invoke(app, ["claims", str(ROOT / "configs" / "question_claims.yaml"), "--results-dir",
                              str(tmp_path / "results"), "--set", "sweep.dx=[0, 0]", "--set", "sweep.dy=[0, 0]",
                              "--quiet"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "the claims read the run's own sweep as canvas shifts" in said and "no shift but (0, 0)" in said, said
    assert "dy: [-8, 8]} as" in said, said
    assert not (tmp_path / "results" / "question_claims").exists()  # no run folder: refused before training


def test_the_page_words_the_letters_and_shifts_that_ran():
    from types import SimpleNamespace

    from invariance_lab.claims.answers import _intro
    from invariance_lab.claims.claims import CLAIMS
    from invariance_lab.claims.protocol import MISSING, ZERO_MAPS, pct, protocol_words, ratio
    from invariance_lab.config.load import load_config

    config = ROOT / "configs" / "question_claims.yaml"
    shipped = load_config(config)
    words = protocol_words(shipped)
    assert words["canvas_shifts"] == "canvas shifts of -8..8 px along each axis" and words["letters"] == "A vs B"
    page = (ROOT / "docs" / "answers.md").read_text(encoding="utf-8")
    for c in CLAIMS:  # the shipped config's page reads as it did before the experiments were worded from it
        assert f"**Experiment.** {c.experiment.format_map(words)}" in page, c.number
    other = load_config(config, ["data.letters=[C, D]", "sweep.dx=[-4, 4, 2]", "sweep.dy=[0, 0]",
                                 "data.train_shift=2"])
    intro = _intro(SimpleNamespace(cfg=other, results={"run": SimpleNamespace(label="r")}), "c.yaml")
    assert "(C vs D, 32 px canvas, letters moved by up to 2 px in training" in intro, intro
    assert protocol_words(other)["canvas_shifts"] == "canvas shifts of -4..4 step 2 px in x"
    assert pct(float("nan")) == MISSING and "nan" not in MISSING and pct(0.125) == "12.5%"
    assert ratio(float("nan")) == ZERO_MAPS and "nan" not in ZERO_MAPS and ratio(0.01234, ".2g") == "0.012"


def test_a_folder_is_named_as_given_when_the_current_folder_was_deleted_meanwhile(tmp_path, monkeypatch):
    """Deleted while `invlab claims` trained, the current folder ended the finished work in "error: No such file or
    directory: " (no path), with no answers page."""
    from invariance_lab.claims.answers import _where

    run = tmp_path / "results" / "question_claims" / "20260101-000000"
    run.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert _where(run) == os.path.join("results", "question_claims", "20260101-000000")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    (tmp_path / "here").rmdir()
    assert _where(run) == str(run)


# ------------------------------------------------------------ what a mutation audit found untested

def _claims_sweep(run, run_id, plan, cfg, *, status="complete", models=None, engine="brute", kind=None,
                  sweep=None, layers=True):
    """A hand-made sweep folder of `run` as sweep_experiment writes it: sweep.yaml and meta.json."""
    import yaml
    from conftest import PROTOCOL, stopped_or_finished_run

    from invariance_lab.store.layout import SWEEP_DIR, SWEEP_FILE

    folder = run / SWEEP_DIR / run_id
    stopped_or_finished_run(folder, kind="sweep", status=status, protocol=dict(
        PROTOCOL, engine=engine, layers={"n_images": PROTOCOL["test_images"]} if layers else None))
    spec = dict(sweep=sweep or plan.settings(cfg).model_dump(mode="json"), models=list(models or plan.models),
                kind=kind or plan.kind, layers=layers)
    (folder / SWEEP_FILE).write_text(yaml.safe_dump(spec))
    return folder


def test_find_sweep_reuses_only_a_complete_sweep_made_with_the_plans_settings_the_newest_first(tmp_path):
    """A failed sweep, one of other shifts, kind, engine or models, or without the layer profile was reused for a
    claim's numbers; and the oldest of two good ones was taken."""
    from invariance_lab.claims.answers import SWEEPS, find_sweep
    from invariance_lab.config.load import load_config

    cfg, plan, run = load_config(ROOT / "configs" / "question_claims.yaml"), SWEEPS["layers"], tmp_path / "run"
    other = dict(plan.settings(cfg).model_dump(mode="json"), dx=[-1.0, 1.0, 1.0])
    faults = [dict(status="failed"), dict(models=plan.models[:-1]), dict(engine="allshift"), dict(kind="parts"),
              dict(sweep=other), dict(layers=False)]
    for i, fault in enumerate(faults):
        _claims_sweep(run, f"2026010{i + 2}-000000", plan, cfg, **fault)
        assert find_sweep(run, plan, cfg) is None, fault
    good = [_claims_sweep(run, f"2026010{i}-000000", plan, cfg, models=[*plan.models, "extra"]) for i in (0, 1)]
    assert find_sweep(run, plan, cfg) == good[1]  # a superset of the models will do; the newest


def test_claims_reuse_the_newest_finished_run_of_the_config_also_under_its_older_digest(tmp_path, monkeypatch):
    """claims_run took the oldest finished run, or missed one recorded under the config's aliased (older) digest."""
    from conftest import stopped_or_finished_run

    import invariance_lab.claims.answers as answers
    from invariance_lab.claims.answers import claims_run
    from invariance_lab.config.load import load_config
    from invariance_lab.store.find import config_digest

    cfg = load_config(ROOT / "configs" / "question_claims.yaml")
    monkeypatch.setattr(answers, "aliased_yaml", lambda cfg: "the text an older invlab wrote")  # models sharing a list
    digest = config_digest("the text an older invlab wrote")
    monkeypatch.setattr(answers, "run_experiment", lambda *a, **k: pytest.fail("trained instead of reusing the run"))
    for run_id, day in (("b", "01"), ("a", "02")):
        stopped_or_finished_run(tmp_path / cfg.name / run_id, config_digest=digest, finished=f"2026-01-{day}T00:00:00")
    stopped_or_finished_run(tmp_path / cfg.name / "c", config_digest="other", finished="2026-01-03T00:00:00")
    assert claims_run(cfg, results_dir=tmp_path) == tmp_path / cfg.name / "a"


def test_the_pages_commands_quote_the_config_and_overrides_for_the_shell():
    """A path or --set value with a space, unquoted, made the page's commands run another config."""
    from invariance_lab.claims.answers import invocation

    assert invocation("my configs/c.yaml", ["data.letters=[A, B]"]) == "'my configs/c.yaml' --set 'data.letters=[A, B]'"


def test_the_timing_line_counts_this_invocations_training_and_says_when_the_run_was_reused():
    """The page counted the training time of every unit (reused ones too) and called a reused run made now."""
    from types import SimpleNamespace

    from invariance_lab.claims.answers import _timing

    meta = dict(started="2026-01-01T00:00:00", trained=["m-seed0"], reused={"n-seed0": "x"},
                timings=dict(train_s={"m-seed0": 10.0, "n-seed0": 500.0}, sweep_s=3.0, total_s=20.0))
    a = SimpleNamespace(results={"run": SimpleNamespace(meta=meta)}, reused={})
    now = _timing(a, 30.0, None, "2026-01-01T00:00:00")
    assert "1 networks trained (10 s), 1 reused from earlier runs" in now and "made earlier" not in now
    assert "made earlier and reused (1 networks trained (10 s)" in _timing(a, 30.0, None, "2026-02-01T00:00:00")
