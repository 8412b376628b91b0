"""display.py: what people read. No printed bound outside the quantity's range, cut intervals marked, seeds at
chance marked and explained, csv with plain numbers and _ci/_lo/_hi columns."""

import io
import math
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import write_fake_result
from rich.console import Console

from invariance_lab.report.display import CHANCE_MARK, CLIP_MARK, brief_tables, cell, render, to_rich_table
from invariance_lab.report.protocol import protocol_lines
from invariance_lab.core.errors import InvlabError
from invariance_lab.report.tables import build_report, load_result
from invariance_lab.core.stats import clip_interval

NUMBER_CELL = re.compile(r"^(?P<m>-?[\d.]+)(?: ± (?P<h>[\d.]+)| \[(?P<lo>-?[\d.]+), (?P<hi>-?[\d.]+)\]\*)?$")


def _text(table) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    console.print(table)
    return " ".join(console.file.getvalue().split())  # caption lines wrap: compare words


def assert_shown_in_range(text: str, low: float = 0.0, high: float = 1.0):
    """Every value cell of a markdown table, as printed, stays in [low, high]: "m ± h" or "m [lo, hi]*"."""
    cells = [c.strip() for line in text.splitlines() if line.startswith("| ") for c in line.strip("|").split("|")]
    checked = 0
    for c in cells:
        match = NUMBER_CELL.match(c)
        if not match or "." not in c:
            continue  # names, factors, counts
        m = float(match["m"])
        if match["h"] is not None:
            lo, hi = m - float(match["h"]), m + float(match["h"])
        elif match["lo"] is not None:
            lo, hi = float(match["lo"]), float(match["hi"])
            assert lo <= m <= hi, c
        else:
            lo = hi = m
        assert low - 1e-9 <= lo and hi <= high + 1e-9, c
        checked += 1
    assert checked > 0


@pytest.fixture(scope="module")
def stuck(tmp_path_factory):
    """Written once for the module: the tests only read it."""
    return write_fake_result(tmp_path_factory.mktemp("stuck") / "results" / "demo" / "r1", run_id="r1",
                             chance=[("plain", 2)])


def test_a_small_unbounded_quantity_keeps_significant_digits():
    # a Lie derivative of 7e-8 is not 0.000; rates keep their 3 decimals
    assert cell(6.88e-8, 2e-8, 4.88e-8, 8.88e-8, (0, math.inf)) == ("6.88e-08 ± 2e-08", False)
    assert cell(6.88e-8, 9e-8, 0.0, 1.58e-7, (0, math.inf)) == (f"6.88e-08 [0, 1.58e-07]{CLIP_MARK}", True)
    assert cell(0.27, 0.01, 0.26, 0.28, (0, math.inf)) == ("0.270 ± 0.010", False)
    assert cell(0.0004, 0.0001, 0.0003, 0.0005, (0, 1)) == ("0.000 ± 0.000", False)


def test_cell_conventions():
    assert cell(0.381, 0.089, 0.292, 0.470, (0, 1)) == ("0.381 ± 0.089", False)
    lo, hi, _ = clip_interval(0.840, 0.518)
    assert cell(0.840, 0.518, lo, hi, (0, 1)) == (f"0.840 [0.322, 1]{CLIP_MARK}", True)  # the README's case
    lo, hi, _ = clip_interval(0.003, 0.015)
    assert cell(0.003, 0.015, lo, hi, (0, 1)) == (f"0.003 [0, 0.018]{CLIP_MARK}", True)
    assert cell(0.0, 0.0, 0.0, 0.0, (0, 1)) == ("0.000 ± 0.000", False)
    assert cell(0.5, float("nan"), float("nan"), float("nan"), (0, 1)) == ("0.500", False)  # one seed
    assert cell(float("nan"), float("nan"), float("nan"), float("nan"), (0, 1)) == ("–", False)
    lo, hi, _ = clip_interval(0.9, 0.3, 0, math.inf)  # a layer error: may exceed 1, never below 0
    assert cell(0.9, 0.3, lo, hi, (0, math.inf)) == ("0.900 ± 0.300", False)


@settings(max_examples=400, deadline=None)
@given(st.floats(0, 1), st.floats(0, 2))
def test_no_printed_bound_leaves_zero_one(mean, half):
    lo, hi, _ = clip_interval(mean, half)
    text, cut = cell(mean, half, lo, hi, (0.0, 1.0))
    assert_shown_in_range(f"| {text} |")
    assert cut == text.endswith(CLIP_MARK)


def test_markdown_marks_cuts_and_chance(stuck):
    text = render(build_report([stuck]), "markdown").text
    assert_shown_in_range(text)
    rows = [line for line in text.splitlines() if line.startswith("| plain")]
    assert rows and rows[0].startswith(f"| plain {CHANCE_MARK} |")  # the model with a seed at chance is marked
    assert CLIP_MARK + " |" in text  # plain's seeds disagree: some intervals were cut, and marked
    assert "is cut there and shown as mean [low, high]" in text  # the footnote explains the mark
    assert "at chance: its consistency says nothing" in text and "plain seed 2 (clean accuracy 0.500" in text
    assert "canvas shift" in text and "nan" not in text
    head = text.splitlines()[2]
    assert head.startswith("| model | downsample | head | padding | n_seeds | n_chance | clean_accuracy | "
                           "mean_accuracy | worst_accuracy | mean_flip_rate |")


def test_markdown_by_shift_stays_in_range(stuck):
    text = render(build_report([stuck], by="shift", metric="neighbor_flip_rate"), "markdown").text
    assert_shown_in_range(text)
    assert "–" in text  # the first point of a line has no neighbour: a dash, not "nan"
    assert "neighbor_flip_rate along dx" in text and "neighbor_flip_rate along dy" in text


def test_csv_has_lo_hi_beside_each_mean(stuck):
    rendered = render(build_report([stuck]), "csv")
    df = pd.read_csv(io.StringIO(rendered.text))
    cols = list(df.columns)
    at = cols.index("mean_flip_rate")
    assert cols[at:at + 4] == ["mean_flip_rate", "mean_flip_rate_ci", "mean_flip_rate_lo", "mean_flip_rate_hi"]
    assert "±" not in rendered.text and "*" not in rendered.text and CHANCE_MARK not in rendered.text
    lo_hi = df[[c for c in cols if c.endswith(("_lo", "_hi"))]]
    assert ((lo_hi >= 0) & (lo_hi <= 1)).all().all()
    assert df.set_index("model").loc["plain", "n_chance"] == 1
    assert any("at chance: its consistency says nothing" in line for line in rendered.side)  # for stderr
    assert rendered.side[0].startswith("run demo/r1:")


def test_csv_stacks_views_with_their_axis(stuck):
    df = pd.read_csv(io.StringIO(render(build_report([stuck], by="shift"), "csv").text))
    assert list(df.columns[:4]) == ["axis", "model", "n_seeds", "n_chance"]
    assert set(df["axis"]) == {"dx", "dy"} and {"-4", "-4_ci", "-4_lo", "-4_hi", "4_hi"} <= set(df.columns)


def test_rich_table_shows_marks_and_footnotes(stuck):
    (table,) = render(build_report([stuck]), "table", wide=True).tables
    assert table.row_count == 2
    text = _text(table)
    assert f"plain {CHANCE_MARK}" in text and "at chance" in text and "acc worst" in text
    assert "its consistency says nothing" in text and "[low, high]" in text  # brackets are not eaten as markup


def _lines(table, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue().splitlines()


def test_terminal_tables_keep_the_main_columns_and_fit_100_columns(stuck):
    (table,) = render(build_report([stuck]), "table").tables
    heads = [str(c.header) for c in table.columns]
    assert heads == ["model", "downsample/head/padding", "seeds", "clean acc", "flip mean", "flip worst", "Δp mean"]
    text = _text(table)
    assert "4 of the 8 columns shown; --wide shows every one" in text and f"plain {CHANCE_MARK}" in text
    assert max(map(len, _lines(table, 100))) <= 100
    (wide,) = render(build_report([stuck]), "table", wide=True).tables
    assert len(wide.columns) == 12 and "columns shown" not in _text(wide)  # model, factors, seeds, at chance, 8


def test_a_shift_table_shows_zero_the_ends_and_the_halvings(tmp_path, fake_result):
    run = fake_result(tmp_path / "r", dx=(-8, 8, 1), dy=(0, 0, 1))
    (table,) = render(build_report([run], by="shift", axis="dx"), "table").tables
    assert [str(c.header) for c in table.columns][2:] == ["-8", "-4", "-2", "0", "2", "4", "8"]
    assert "7 of the 17 columns shown" in _text(table)
    assert max(map(len, _lines(table, 100))) <= 100
    (wide,) = render(build_report([run], by="shift", axis="dx"), "table", wide=True).tables
    assert len(wide.columns) == 2 + 1 + 17  # model, seeds, at chance, every shift


def test_several_runs_get_a_run_column(stuck, tmp_path, fake_result):
    other = fake_result(tmp_path / "results" / "o" / "r2", name="o", run_id="r2")
    text = render(build_report([stuck, other]), "markdown").text
    assert "| run | model |" in text and "| o/r2 | plain |" in text
    assert text.count("run demo/r1:") == 1 and "run o/r2:" in text


def test_brief_table_has_accuracy_under_shift_and_chance(stuck):
    (table,) = brief_tables(load_result(stuck), "quick: mean ± 95% CI over seeds")
    headers = [str(c.header) for c in table.columns]
    assert headers == ["model", "downsample/head/padding", "seeds", "clean acc", "flip mean", "flip worst",
                       "Δp mean"]
    text = _text(table)
    assert f"plain {CHANCE_MARK}" in text and "at chance: its consistency says nothing" in text
    assert "invlab report --drop-chance" in text


def test_brief_tables_add_the_layer_profile(tmp_path, fake_result):
    folder = fake_result(tmp_path / "d" / "r" / "sweeps" / "s", kind="sweep", layers=True)
    model, layers = brief_tables(load_result(folder), "sweep")
    assert "what each means: docs/metrics.md" in " ".join(_text(model).split())  # where the terms are defined
    text = _text(layers)
    assert "equivariance error per layer" in text and "block1.down" in text
    assert "0.100 [0, 0.530]*" in text  # cut at 0, the only end a layer error has
    assert "reaches below 0, the least the quantity can be" in text  # it said "outside the range ≥ 0"
    # canvas mode: an equivariant network's error there has a reason of its own, said under the table
    assert "canvas mode: each tap's map is compared with the reference map moved and filled with zeros" in text
    circular = fake_result(tmp_path / "d" / "r" / "sweeps" / "c", kind="sweep", layers=True, mode="circular")
    assert "canvas mode: each tap's map" not in _text(brief_tables(load_result(circular), "sweep")[1])


def test_protocol_line(stuck):
    (line,) = protocol_lines([load_result(stuck)])
    assert line == ("run demo/r1: canvas shift (letter re-rendered at the shifted position on a blank canvas), "
                    "dx -4..4 step 1, dy -4..4 step 1 (every (dx, dy) combination), 100 test images, seeds 0,1,2")


def test_unknown_format_lists_choices(stuck):
    with pytest.raises(InvlabError) as err:
        render(build_report([stuck]), "html")
    assert "unknown table format 'html'" in str(err.value)
    assert all(f in str(err.value) for f in ("table", "markdown", "csv"))


def test_to_rich_table_without_seeds_at_chance_has_no_chance_note(tmp_path, fake_result):
    rep = build_report([fake_result(tmp_path / "d" / "r")])
    text = _text(to_rich_table(rep.views[0], [], rep.flags))
    assert CHANCE_MARK not in text and "consistency says nothing" not in text


def test_the_worst_case_columns_are_in_markdown_and_csv_but_not_the_terminal(tmp_path, fake_result):
    """robust_accuracy and consistent_fraction: mean ± CI over seeds in markdown, csv and --wide; the terminal's
    model table keeps its width, and its note counts them among the columns left out; an older folder without them
    still reports."""
    old = fake_result(tmp_path / "old", seeds=(0, 1), run_id="old")
    new = fake_result(tmp_path / "new", seeds=(0, 1), run_id="new")
    s = pd.read_csv(new / "summary.csv")
    s["robust_accuracy"], s["consistent_fraction"] = 0.5 + 0.1 * s.seed, 0.75
    s.to_csv(new / "summary.csv", index=False)
    rep = build_report([new, old])
    assert rep.views[0].values[-2:] == ["robust_accuracy", "consistent_fraction"]
    csv = pd.read_csv(io.StringIO(render(rep, "csv").text))
    got = csv.set_index("run").loc["demo/new"].query("model == 'plain'")
    assert got.robust_accuracy.iloc[0] == pytest.approx(0.55) and got.consistent_fraction.iloc[0] == 0.75
    assert got.robust_accuracy_ci.iloc[0] > 0 and csv.set_index("run").loc["demo/old"].robust_accuracy.isna().all()
    md = render(rep, "markdown").text
    assert "robust_accuracy" in md and "consistent_fraction" in md and "| – |" in md  # the old folder: empty
    table = render(rep, "table").tables[0]
    assert "robust" not in _text(table) and "consistent" not in _text(table)
    older = fake_result(tmp_path / "older", seeds=(0, 1), run_id="older")  # two runs, neither with the columns
    assert len(table.columns) == len(render(build_report([old, older]), "table").tables[0].columns)
    wide = _text(render(rep, "table", wide=True).tables[0])  # --wide shows every column, as its note says
    assert "robust" in wide and "consistent" in wide and "columns shown" not in wide
    assert "4 of the 10 columns shown; --wide shows every one" in _text(table)


def test_two_folders_fit_an_80_column_terminal_with_their_run_labels_folded(tmp_path, fake_result):
    """The run column folds like the numbers instead of pushing every line past the terminal's edge (at 80 columns
    it took 47 characters and the rows were cut mid-number)."""
    a = fake_result(tmp_path / "a", run_id="20260101-000000/20260101-000100")  # a sweep's label: 37 characters
    b = fake_result(tmp_path / "b", run_id="20260101-000000_and_a_long_sweep_label")
    (table,) = render(build_report([a, b]), "table").tables
    lines = _lines(table, 80)  # rich crops what does not fit: the last column's heading must still be there
    assert max(map(len, lines)) <= 80 and "Δp" in lines[3] and lines[1].endswith("┓"), "\n".join(lines[:6])
    assert "0000_and" in "".join(lines).replace(" ", "").replace("│", "")  # the long label is there, folded


def _flags(*rows):
    """seed_flags rows: (run, model, seed, clean_accuracy, n_classes, at_chance, assumed, class_order)."""
    return pd.DataFrame(rows, columns=["run", "model", "seed", "clean_accuracy", "n_classes", "at_chance", "assumed",
                                       "class_order"])


def test_an_interval_is_cut_only_when_its_printed_ends_leave_the_range():
    """Catches the cut judged on unrounded numbers: 0.500 ± 0.500 as printed stays in [0, 1], so it is not cut."""
    assert cell(0.5004, 0.4998, 0.0006, 1.0, (0, 1)) == ("0.500 ± 0.500", False)


def test_the_chance_footnote_states_the_chance_level_and_margin():
    """Catches a wrong chance level (1/n_classes) or margin (5 points) in the footnote of seeds at chance."""
    from invariance_lab.report.display import seed_notes
    notes = seed_notes(_flags(("r", "m", 0, 0.26, 4, True, False, ""), ("r", "m", 1, 0.9, 4, False, False, ""),
                              ("r", "k", 0, 0.52, 2, True, False, "")))
    (note,) = notes
    assert "within 5 points of chance (1/n_classes = 0.500 or 0.250)" in note
    assert "m seed 0 (clean accuracy 0.260); k seed 0 (clean accuracy 0.520)" in note


def test_the_dropped_seeds_note_counts_one_seed_in_the_singular():
    """Catches "1 seeds" in the --drop-chance note."""
    from invariance_lab.report.display import seed_notes
    one = _flags(("r", "m", 2, 0.5, 2, True, False, ""))
    assert seed_notes(_flags(), one) == ["--drop-chance left out 1 seed at chance: m seed 2 (clean accuracy 0.500)."]
    two = _flags(("r", "m", 1, 0.5, 2, True, False, ""), ("r", "m", 2, 0.5, 2, True, False, ""))
    assert seed_notes(_flags(), two)[0].startswith("--drop-chance left out 2 seeds at chance: m seeds 1, 2 ")


def test_seed_notes_name_the_run_when_several_are_compared():
    """Catches the run left out of the seed list (or a class-order note) when two folders hold the same model."""
    from invariance_lab.report.display import seed_notes
    (note,) = seed_notes(_flags(("a/1", "m", 0, 0.5, 2, True, False, ""), ("b/2", "m", 1, 0.5, 2, True, False, "")))
    assert "a/1 m seed 0 (clean accuracy 0.500); b/2 m seed 1 (clean accuracy 0.500)" in note
    notes = seed_notes(_flags(("a/1", "m", 0, 0.1, 2, False, False, "far below chance"),
                              ("b/2", "m", 0, 0.9, 2, False, False, "")))
    assert notes == ["m (a/1): far below chance"]


def test_a_run_of_unknown_class_count_is_footnoted_as_assumed():
    """Catches the note saying 2 classes were assumed going missing."""
    from invariance_lab.report.display import seed_notes
    notes = seed_notes(_flags(("old/1", "m", 0, 0.9, 2, False, True, ""), ("old/1", "m", 1, 0.9, 2, False, True, "")))
    assert notes == ["number of classes unknown for old/1 (summary.csv has no n_classes and no config.yaml says): "
                     "2 assumed, chance = 0.5."]


def test_a_terminal_layer_table_keeps_the_first_and_last_taps():
    """Catches the evenly spaced pick of layer taps dropping the last (deepest) one."""
    from invariance_lab.report.display import TERMINAL_VALUES, for_terminal
    from invariance_lab.report.tables import LAYER_RANGE, View
    taps = [f"t{i}" for i in range(10)]
    table = pd.DataFrame({"model": ["m"], "n_seeds": [1], "n_chance": [0],
                          **{f"{t}{s}": [0.1] for t in taps for s in ("", "_ci", "_lo", "_hi")}})
    shown, note = for_terminal(View("layers", table, taps, LAYER_RANGE))
    assert shown.values[0] == "t0" and shown.values[-1] == "t9" and len(set(shown.values)) == TERMINAL_VALUES
    assert note.startswith("7 of the 10 columns shown")
