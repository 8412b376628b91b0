"""results.py: a result folder is loaded only when finished and whole; damaged or edited tables are refused."""

import json

import pandas as pd
import pytest

from invariance_lab.core.errors import InvlabError
from invariance_lab.store.layout import META_FILE
from invariance_lab.store.results import load_result


def test_a_finished_folder_loads_with_its_label(tmp_path, fake_result):
    r = load_result(fake_result(tmp_path / "demo" / "r1"))
    assert r.label == "demo/20260101-000000" and set(r.summary.model) == {"plain", "blur"}
    assert len(r.invariance) == 2 * 3 * 81 and r.layers is None


@pytest.mark.parametrize("damage, needle", [
    (lambda f: f.write_text(f.read_text().replace("0.9", "abc", 1)), "not numbers"),
    (lambda f: f.write_text(f.read_text().splitlines()[0] + "\n"), "no rows"),
    (lambda f: f.write_text("model,seed\nplain,0\n"), "lacks the column"),
    (lambda f: f.write_bytes(b"\xff\xfe\x00garbage"), "could not be read as CSV"),
    (lambda f: f.write_text(f.read_text().replace("plain", "intruder")), "does not list"),
])
def test_damaged_summary_is_refused_naming_the_file(tmp_path, fake_result, damage, needle):
    folder = fake_result(tmp_path / "demo" / "r1")
    damage(folder / "summary.csv")
    with pytest.raises(InvlabError, match=needle) as e:
        load_result(folder)
    assert "summary.csv" in str(e.value)


@pytest.mark.parametrize("file, column", [("summary.csv", c) for c in ("mean_prob_change", "worst_accuracy",
                                                                        "n_shifts", "worst_shift_dx")]
                         + [("invariance.csv", c) for c in ("prob_change", "n_images", "neighbor_flip_rate")])
def test_a_word_in_any_number_column_is_refused_naming_it(tmp_path, fake_result, file, column):
    # one byte flipped in a number ("0.5" read as "0/5") is damage in every column the report reads, not only in
    # the columns a table is keyed on (it ended in a traceback where the report first computed with it)
    folder = fake_result(tmp_path / "demo" / "r1")
    df = pd.read_csv(folder / file, dtype=str, keep_default_na=False)  # every cell as written
    df.loc[0, column] = "0/5"
    df.to_csv(folder / file, index=False)
    with pytest.raises(InvlabError, match=f"{file} is damaged: column\\(s\\) {column} hold values that are not"):
        load_result(folder)


def _set_first(path, column, value, row=0):
    df = pd.read_csv(path)
    df.loc[row, column] = value
    df.to_csv(path, index=False)


def _set_two(path):
    """Two damaged cells: the one named is the first column of the file's order, at its first damaged row."""
    _set_first(path, "flip_rate", 1.5, row=3)
    _set_first(path, "flip_rate", 2.5, row=5)
    _set_first(path, "prob_change", -1, row=1)  # a later column than flip_rate, an earlier row


@pytest.mark.parametrize("file, damage, needle", [
    ("summary.csv", lambda f: _set_first(f, "clean_accuracy", float("inf")), "clean_accuracy is inf in row 2"),
    ("invariance.csv", lambda f: _set_first(f, "accuracy", 7.5), "accuracy is 7.5 in row 2"),
    ("invariance.csv", lambda f: _set_first(f, "flip_rate", -3), "flip_rate is -3"),
    ("invariance.csv", _set_two, "flip_rate is 1.5 in row 5;"),
    ("summary.csv", lambda f: f.write_text(f.read_text() + f.read_text().splitlines()[1] + "\n"), "two rows for"),
    ("invariance.csv", lambda f: f.write_text(f.read_text() + f.read_text().splitlines()[1] + "\n"), "two rows for"),
])
def test_impossible_values_and_repeated_rows_are_refused_naming_the_file(tmp_path, fake_result, file, damage,
                                                                         needle):
    """A fraction outside [0, 1] (an edited accuracy of 7.5, an infinite one) or a row given twice (which would
    count a seed twice and narrow its interval) is damage, not a number to report."""
    folder = fake_result(tmp_path / "demo" / "r1")
    damage(folder / file)
    with pytest.raises(InvlabError, match="is damaged") as e:
        load_result(folder)
    assert needle in str(e.value) and file in str(e.value)


def test_a_layers_table_is_loaded_when_present(tmp_path, fake_result):
    r = load_result(fake_result(tmp_path / "d" / "r", layers=True))
    assert isinstance(r.layers, pd.DataFrame) and set(r.layers.layer_name) == {"block1.conv", "block1.down", "head"}


@pytest.mark.parametrize("layers", [["", "0", "3"], [""]])
def test_a_lie_table_keeps_its_tap_names_as_written(tmp_path, fake_result, recwarn, layers):
    # a Sequential's taps are named 0, 3, ...; the output's row has an empty layer (one with no tap rows at all)
    folder = fake_result(tmp_path / "d" / "r")
    pd.DataFrame({"model": "plain", "seed": 0, "transform": "rotate", "layer": layers,
                  "value": [0.5] * len(layers)}).to_csv(folder / "lie.csv", index=False)
    assert load_result(folder).lie["layer"].tolist() == layers and not recwarn.list


@pytest.mark.parametrize("kind, needle", [("run", "run `invlab run` on its config again to resume it"),
                                          ("sweep", "run the same `invlab sweep` again"),
                                          ("measure", "run the same `invlab measure` again")])
def test_an_unfinished_folder_is_refused_with_what_makes_one_of_its_kind(tmp_path, fake_result, kind, needle):
    """A sweep or a measurement is not resumed by `invlab run`: each kind names the command that remakes it."""
    folder = fake_result(tmp_path / "demo" / "r1")
    meta = json.loads((folder / META_FILE).read_text())
    (folder / META_FILE).write_text(json.dumps(dict(meta, kind=kind, status="interrupted")))
    with pytest.raises(InvlabError, match="status: interrupted") as e:
        load_result(folder)
    assert needle in str(e.value)
