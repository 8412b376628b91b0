"""The report's test-set and paper tables (report/papers.py): ours beside the published numbers."""

import io
import json

import pandas as pd
import yaml

from invariance_lab.cli.main import app
from invariance_lab.report.papers import paper_views, per_test_set_views
from invariance_lab.store.results import load_result
from typer.testing import CliRunner


def _with_test_set_and_paper(folder, paper):
    """A fake run (clean accuracy 0.90, 0.91, 0.92 over seeds 0-2) with test set `shifted` (0.5 for every seed)."""
    summary = pd.read_csv(folder / "summary.csv")
    (folder / "test_sets" / "shifted").mkdir(parents=True)
    summary.assign(clean_accuracy=0.5).to_csv(folder / "test_sets" / "shifted" / "summary.csv", index=False)
    meta = json.loads((folder / "meta.json").read_text())
    meta["protocol"]["test_sets"] = {"shifted": {"test_set": "dissimilar"}}
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "config.yaml").write_text(yaml.safe_dump({"name": "demo", "paper": paper}))
    return load_result(folder)


def test_ours_beside_the_paper_with_the_difference_and_whether_it_lies_in_our_interval(tmp_path, fake_result):
    r = _with_test_set_and_paper(fake_result(tmp_path / "run"), {
        "plain": {"clean_accuracy": 92.0, "shifted.clean_accuracy": [60.0, 1.0]},
        "blur": {"clean_accuracy": 80}})
    (view,) = paper_views([r])
    t = view.table.set_index(["model", "test_set"])
    # ours: 91.0 ± t(0.975, 2) * 1.0 / sqrt(3) = 2.48 points, so 92.0 lies inside and 80 does not
    assert t.loc[("plain", "default"), "ours"] == "91.0 ± 2.5" and t.loc[("plain", "default"), "in_ci"] == "yes"
    assert t.loc[("plain", "default"), "difference"] == "-1.0"
    assert t.loc[("plain", "shifted"), "ours"] == "50.0 ± 0.0" and t.loc[("plain", "shifted"), "paper"] == "60.0 ± 1.0"
    assert t.loc[("plain", "shifted"), "in_ci"] == "no" and t.loc[("plain", "shifted"), "difference"] == "-10.0"
    assert t.loc[("blur", "default"), "in_ci"] == "no"


def test_compare_order_ranks_ours_beside_the_papers_and_says_whether_the_orders_agree(tmp_path, fake_result):
    # ours: plain 91.0 and blur 90.0 (fake_result's accuracies, blur one point lower) on the run's own test set,
    # 50.0 for both on `shifted`
    folder = fake_result(tmp_path / "run")
    summary = pd.read_csv(folder / "summary.csv")
    summary.loc[summary["model"] == "blur", "clean_accuracy"] -= 0.01
    summary.to_csv(folder / "summary.csv", index=False)
    r = _with_test_set_and_paper(folder, {
        "compare": "order", "plain": {"clean_accuracy": 70.0, "shifted.clean_accuracy": 10.0},
        "blur": {"clean_accuracy": 60.0, "shifted.clean_accuracy": 20.0}})
    (view,) = paper_views([r])
    t = view.table.set_index(["model", "test_set"])
    assert t.loc[("plain", "default"), "rank"] == "1 / 1" and t.loc[("blur", "default"), "rank"] == "2 / 2"
    assert set(t.xs("default", level="test_set")["same_order"]) == {"yes"}
    # a tie in ours shares the better rank: 1 and 1 against the paper's 2 and 1, not the same order
    assert t.loc[("plain", "shifted"), "rank"] == "1 / 2" and t.loc[("blur", "shifted"), "rank"] == "1 / 1"
    assert set(t.xs("shifted", level="test_set")["same_order"]) == {"no"}
    assert "in_ci" not in t and "difference" not in t  # values from another setup: not compared
    assert "compare: order" in view.title and "in_ci" not in view.title


def test_a_column_per_test_set(tmp_path, fake_result):
    r = _with_test_set_and_paper(fake_result(tmp_path / "run"), {"plain": {"clean_accuracy": 92.0}})
    (view,) = per_test_set_views([r])
    assert view.values == ["default", "shifted"]
    row = view.table.set_index("model").loc["plain"]
    assert abs(row["default"] - 0.91) < 1e-9 and row["shifted"] == 0.5 and row["n_seeds"] == 3


def test_runs_without_test_sets_or_a_paper_add_no_table(tmp_path, fake_result):
    r = load_result(fake_result(tmp_path / "run"))
    assert per_test_set_views([r]) == [] and paper_views([r]) == []


def test_invlab_report_prints_the_paper_table(tmp_path, fake_result):
    folder = fake_result(tmp_path / "run")
    _with_test_set_and_paper(folder, {"plain": {"clean_accuracy": 92.0}})
    res = CliRunner().invoke(app, ["report", str(folder), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert "ours beside the paper" in res.output and "| plain | default | clean_accuracy | 3 | 91.0 ± 2.5 | 92.0" in res.output
    assert "per test set" in res.output
    res = CliRunner().invoke(app, ["report", str(folder), "--format", "csv"])  # raised: "cannot insert paper"
    assert res.exit_code == 0, res.output
    table = pd.read_csv(io.StringIO(res.stdout))
    ours = table[table.table == "paper"]
    assert list(ours.paper) == [92.0] and list(ours.model) == ["plain"]


def test_a_damaged_config_leaves_the_report_and_a_bad_paper_block_is_named(tmp_path, fake_result):
    # a run folder comes from anyone: a config.yaml that is not a mapping (or not YAML) gives no paper table, and
    # the report of its CSVs still works; a paper: block of the wrong shape is one paragraph naming the file
    run = fake_result(tmp_path / "run")
    for text in ("n", "{[", "paper: [1, 2"):
        (run / "config.yaml").write_text(text)
        assert paper_views([load_result(run)]) == []
        res = CliRunner().invoke(app, ["report", str(run), "--format", "csv"])
        assert res.exit_code == 0, res.output
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "demo", "paper": {"plain": 5}}))
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 2 and "config.yaml: its paper: block is not one" in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_the_html_page_shows_the_test_sets_and_the_paper_beside_ours(tmp_path, fake_result, fake_line_page):
    from invariance_lab.report.html import html_report

    folder = fake_result(tmp_path / "run", dy=(0, 0, 1))  # shifts along x only: no heatmaps to draw
    _with_test_set_and_paper(folder, {"plain": {"clean_accuracy": 92.0, "shifted.clean_accuracy": [60.0, 1.0]}})
    page = html_report([folder])
    assert "<h2>Other test sets</h2>" in page and "<h2>Beside the paper</h2>" in page
    assert page.index("<h2>Beside the paper</h2>") < page.index("<h2>Plots</h2>")  # with the tables, before plots
    assert "91.0 ± 2.5" in page and "60.0 ± 1.0" in page
    plain = fake_line_page[1]  # the page of a fake run with neither (tests/conftest.py)
    assert "Other test sets" not in plain and "Beside the paper" not in plain


def test_our_interval_is_cut_at_0_and_100_percent_as_the_model_table_cuts_it():
    from invariance_lab.report.papers import _pm

    assert _pm(0.8975, 1.57, cut=True) == "0.9 [0, 2.5]" and _pm(99.67, 1.5, cut=True) == "99.7 [98.2, 100]"
    assert _pm(29.4, 3.6, cut=True) == "29.4 ± 3.6" and _pm(73.7, 1.0) == "73.7 ± 1.0"  # the paper's std: as printed
    assert _pm(float("nan"), 1.0) == "–" and _pm(100.0, None) == "100.0"


def test_in_our_interval_holds_to_its_ends_and_no_further(tmp_path, fake_result):
    """Ours is 91.0 ± 2.484 (t(0.975, 2) * 1.0 / sqrt(3)), so [88.52, 93.48], widened by half the paper's printed
    digit (0.05): 93.5 and 88.5 lie inside it, 93.6 and 88.4 do not (a halved interval would leave 93.5 out)."""
    values = {"93.5": "yes", "88.5": "yes", "93.6": "no", "88.4": "no"}
    for i, (value, inside) in enumerate(values.items()):
        r = _with_test_set_and_paper(fake_result(tmp_path / f"run{i}"), {"plain": {"clean_accuracy": float(value)}})
        (view,) = paper_views([r])
        assert view.table.set_index(["model", "test_set"]).loc[("plain", "default"), "in_ci"] == inside, value
