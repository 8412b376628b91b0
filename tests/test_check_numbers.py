"""docs/check_numbers.py recomputes the docs' numbers from real runs (minutes, so a maintainer runs it); these tests run
its recomputation and comparison on a hand-made run folder so that the script cannot rot."""

import importlib.util
import math
import sys

import pandas as pd
import pytest
from conftest import ROOT, write_fake_result

spec = importlib.util.spec_from_file_location("check_numbers", ROOT / "docs" / "check_numbers.py")
cn = importlib.util.module_from_spec(spec)
sys.modules["check_numbers"] = cn  # its dataclasses look their module up by name
spec.loader.exec_module(cn)


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    return write_fake_result(tmp_path_factory.mktemp("runs") / "demo" / "20260101-000000", grid="axes")


def test_printed_precision_is_the_tolerance():
    assert cn.agrees("0.4", 0.449) and not cn.agrees("0.4", 0.451)
    assert cn.agrees("22", 22.4) and not cn.agrees("22", 22.6)
    assert cn.agrees("3.0e-09", 3.04e-9) and not cn.agrees("3.0e-09", 3.06e-9)
    assert cn.agrees("0.000", 9e-8) and not cn.agrees("0.000", 6e-4)
    assert cn.agrees("1e-9", 3e-10, bound=True) and not cn.agrees("1e-9", 2e-9, bound=True)


def test_a_sentence_is_found_across_line_breaks_and_its_numbers_read(tmp_path, monkeypatch):
    (tmp_path / "page.md").write_text("It changes 0.4% of its\n  predictions, against 29–39% for the rest.\n")
    monkeypatch.setattr(cn, "ROOT", tmp_path)
    hit = cn.pattern("changes {}% of its predictions, against {}–{}% for").search(cn.page_text("page.md"))
    assert hit.groups() == ("0.4", "29", "39")
    assert cn.bounds("at most {<}, {}") == [True, False]


def test_recomputed_numbers_match_the_fake_runs_known_values(fake_run):
    r = cn.load_runs([str(fake_run)])["demo"]
    assert cn.model_mean(r.summary, "plain", "clean_accuracy") == pytest.approx(0.91)  # 0.9 + 0.01 * seed
    # at dx = 3 (odd) "plain" flips 0.35 (1 - e^-1) + 0.1 + 0.01 * seed
    expected = 0.35 * (1 - math.exp(-1)) + 0.1 + 0.01 * 1
    assert cn.shift_values(r.invariance, "plain", "flip_rate", 3, 0).mean() == pytest.approx(expected)
    means = cn.axis_means(r.invariance, "blur", "prob_change", "dy")
    assert list(means.index) == [-4, -3, -2, -1, 0, 1, 2, 3, 4] and means[0] == 0


def test_ratio_range_is_over_the_off_lattice_shifts(fake_run):
    inv = pd.read_csv(fake_run / "invariance.csv")
    low, high = cn.ratio_range(inv, "plain", ["blur"], "dx", period=2)
    by_hand = [inv[(inv.model == "plain") & (inv.dy == 0) & (inv.dx == d)].prob_change.mean()
               / inv[(inv.model == "blur") & (inv.dy == 0) & (inv.dx == d)].prob_change.mean() for d in (-3, -1, 1, 3)]
    assert (low, high) == pytest.approx((min(by_hand), max(by_hand)))


def test_a_wrong_or_missing_sentence_fails_and_a_right_one_passes(fake_run, tmp_path, monkeypatch, capsys):
    r = cn.load_runs([str(fake_run)])["demo"]
    flip = 100 * cn.model_mean(r.summary, "blur", "mean_flip_rate")
    page = tmp_path / "page.md"
    page.write_text(f"`blur` changes {flip:.1f}% of\npredictions.\n\nIt never flips at dx = 0.\n")
    monkeypatch.setattr(cn, "ROOT", tmp_path)
    monkeypatch.setattr(cn, "TABLES", [])
    monkeypatch.setattr(cn, "SHIFT_TABLES", [])
    never = cn.Check("page.md", "demo", "It never flips at dx = 0.",
                     lambda r: [bool((cn.shift_values(r.invariance, "blur", "flip_rate", 0, 0) == 0).all())])
    said = cn.Check("page.md", "demo", "`blur` changes {}% of predictions.",
                    lambda r: [100 * cn.model_mean(r.summary, "blur", "mean_flip_rate")])
    monkeypatch.setattr(cn, "CHECKS", [said, never])
    assert cn.main([str(fake_run)]) == 0
    page.write_text(f"`blur` changes {flip + 0.2:.1f}% of predictions.\n\nIt never flips at dx = 0.\n")
    assert cn.main([str(fake_run)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    page.write_text("It never flips at dx = 0.\n")
    assert cn.main([str(fake_run)]) == 1
    assert "SENTENCE NOT IN PAGE" in capsys.readouterr().out


def test_report_tables_in_a_page_are_compared_row_by_row(fake_run, tmp_path, monkeypatch, capsys):
    rows = sorted(cn.report_rows(cn.load_runs([str(fake_run)])["demo"], "model"), key=lambda row: "---" not in row)
    header = next(row for row in rows if row.startswith("| model"))
    body = [row for row in rows if row.startswith(("| plain", "| blur"))]
    page = tmp_path / "page.md"
    page.write_text("## Demo\n\n" + "\n".join([header, "|---|", *body]) + "\n")
    monkeypatch.setattr(cn, "ROOT", tmp_path)
    monkeypatch.setattr(cn, "CHECKS", [])
    monkeypatch.setattr(cn, "SHIFT_TABLES", [])
    monkeypatch.setattr(cn, "TABLES", [cn.TableCheck("page.md", "demo", "## Demo")])
    assert cn.main([str(fake_run)]) == 0
    page.write_text(page.read_text().replace(body[0], body[0].replace("0.", "0.9", 1)))
    assert cn.main([str(fake_run)]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_a_row_of_another_of_the_reports_tables_does_not_pass(tmp_path, fake_result):
    """The layer report prints three tables (equivariance error, pooled invariance error, normalised variance):
    a page's equivariance table once held two rows of the normalised-variance table, and they passed."""
    folder = fake_result(tmp_path / "demo" / "r1" / "sweeps" / "s", kind="sweep", layers=True)
    r = cn.load_runs([str(folder)])
    (result,) = r.found.values()
    first, third = cn.report_rows(result, "layer", 0), cn.report_rows(result, "layer", 2)
    body = [row for row in third if not row.startswith(("| model", "|---"))]
    assert body and not any(row in first for row in body)
    assert cn.report_rows(result, "layer", 9) == set()


def test_every_checked_sentence_is_in_its_page():
    """A page reworded without its check leaves that number unchecked (the script says SENTENCE NOT IN PAGE only
    when a maintainer runs it with the runs): each sentence is found in its page now, runs or not."""
    stale = [(c.page, c.sentence) for c in cn.CHECKS if cn.pattern(c.sentence).search(cn.page_text(c.page)) is None]
    assert not stale, stale
    probe = [s for s in cn.PROBE_TEMPLATES if cn.pattern(s).search(cn.page_text("docs/results.md")) is None]
    assert not probe, probe
