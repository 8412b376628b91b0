"""results.py: a result folder is loaded only when finished and whole; damaged or edited tables are refused."""

import io
import json
import os
import re
import shutil
import socket

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import stopped_or_finished_run, untrained_quick_run
from invariance_lab.cli.main import app
from invariance_lab.core.columns import CORRECT_FLIP_SUMMARY, METRIC_COLUMNS, SUMMARY_METRICS, WORST_CASE_COLUMNS
from invariance_lab.core.errors import InvlabError, RunFolderError
from invariance_lab.store.layout import META_FILE
from invariance_lab.store.results import COLUMN_RULES, FRACTION, load_result, load_results

DAMAGED = "the file is damaged or was not written by invlab"


def test_a_finished_folder_loads_with_its_label(tmp_path, fake_result):
    r = load_result(fake_result(tmp_path / "demo" / "r1"))
    assert r.label == "demo/20260101-000000" and set(r.summary.model) == {"plain", "blur"}
    assert len(r.invariance) == 2 * 3 * 81 and r.layers is None



@pytest.mark.parametrize("name, size", [("summary.csv", 2**31), ("invariance.csv", 2**31), ("layers.csv", 2**36)])
def test_a_table_larger_than_its_rows_can_take_is_refused_before_it_is_read(tmp_path, fake_result, name, size):
    """A sparse summary.csv of 2 GB (nothing on disk) was read whole by pandas: 4.5 GB of memory."""
    folder = fake_result(tmp_path / "demo" / "r1", layers=True)
    with open(folder / name, "ab") as f:
        f.truncate(size)
    with pytest.raises(RunFolderError, match=f"{name} is {size:,} bytes, more than the rows its meta.json"):
        load_result(folder)
    load_result(fake_result(tmp_path / "demo" / "r2", layers=True))  # the folder as written loads

@pytest.mark.parametrize("damage, words", [
    ("model", "summary.csv: model blur seed 0 is missing; its meta.json measured models plain, blur x seeds 0, 1, 2"),
    ("seed", "summary.csv: model blur seed 2 is missing"),  # relabelled 7: the first pair that differs
    ("shift", "invariance.csv: model plain seed 0 has 80 shifts where meta.json says 81"),
    ("extra shift", "invariance.csv: model plain seed 0 has 82 shifts where meta.json says 81"),
    ("tap", "layers.csv and ")])
def test_a_folder_with_rows_deleted_or_relabelled_is_refused(tmp_path, fake_result, damage, words):
    """`invlab claims` answered from what was left (a claim over "767 odd shifts" under "all 1024 circular
    shifts"), or ended in a KeyError or IndexError traceback where a model's rows were gone."""
    folder = fake_result(tmp_path / "demo" / "r1", layers=True)
    summary, inv = pd.read_csv(folder / "summary.csv"), pd.read_csv(folder / "invariance.csv")
    layers = pd.read_csv(folder / "layers_summary.csv")
    shifts = layers.drop(columns=["n_shifts"]).merge(pd.DataFrame({"dx": [0.0, 1.0], "dy": [0.0, 0.0]}), how="cross")
    shifts = shifts.assign(equivariance_error=0.1, pooled_invariance_error=0.1)
    shifts.to_csv(folder / "layers.csv", index=False)
    assert load_result(folder).layer_shifts is not None  # as written: complete
    if damage == "model":
        summary[summary.model != "blur"].to_csv(folder / "summary.csv", index=False)
    elif damage == "seed":
        summary.assign(seed=summary.seed.replace(2, 7)).to_csv(folder / "summary.csv", index=False)
    elif damage == "shift":
        inv.drop(index=inv.index[(inv.model == "plain") & (inv.seed == 0)][:1]).to_csv(folder / "invariance.csv",
                                                                                      index=False)
    elif damage == "extra shift":  # a row of a shift the protocol never swept
        extra = inv[(inv.model == "plain") & (inv.seed == 0)].iloc[:1].assign(dx=99.0)
        pd.concat([inv, extra]).to_csv(folder / "invariance.csv", index=False)
    else:
        shifts[shifts.layer_name != "head"].to_csv(folder / "layers.csv", index=False)
    with pytest.raises(RunFolderError, match=re.escape(words)):
        load_result(folder)


def test_a_folder_where_a_table_goes_is_named_as_not_a_file(tmp_path, fake_result):
    """A folder at summary.csv's name had been "summary.csv is missing"."""
    folder = fake_result(tmp_path / "demo" / "r1")
    (folder / "summary.csv").unlink()
    (folder / "summary.csv").mkdir()
    with pytest.raises(RunFolderError, match="is not a complete result folder: summary.csv is not a file"):
        load_result(folder)


def test_two_copies_of_one_run_are_named_apart_by_their_paths_and_counted_apart(tmp_path, fake_result):
    # one name and run id in two results folders (a run copied from another machine): the same label would merge
    # their seeds in every count and end `invlab report --html` in a traceback (a label matching two rows)
    a = fake_result(tmp_path / "a" / "demo" / "20260101-000000", seeds=(0, 1))
    b = fake_result(tmp_path / "b" / "demo" / "20260101-000000", seeds=(0, 1, 2), chance=[("plain", 2)])
    c = fake_result(tmp_path / "c" / "other", name="other", run_id="20260102-000000")
    results = load_results([a, b, c])
    assert [r.label for r in results] == ["a/demo/20260101-000000", "b/demo/20260101-000000", "other/20260102-000000"]
    # the shortest ends of the paths as given: a copy inside the other, a folder whose label is what a shorter end
    # would be (it keeps its own), a link (not where it leads)
    n = fake_result(tmp_path / "n" / "demo" / "20260101-000000")
    inner = fake_result(n / "copy" / "demo" / "20260101-000000")
    ya, yb = (fake_result(tmp_path / "y" / d / "20260101-000000") for d in ("a", "b"))  # both demo/<run id>
    own = fake_result(tmp_path / "z" / "a" / "20260101-000000", name="a")  # a/<run id>: ya's end of two parts
    (tmp_path / "link").symlink_to(tmp_path / "a")
    labels = [r.label for r in load_results([n, inner, ya, yb, own, tmp_path / "link" / "demo" / "20260101-000000",
                                             b])]
    assert labels == ["n/demo/20260101-000000", "copy/demo/20260101-000000", "y/a/20260101-000000",
                      "y/b/20260101-000000", "a/20260101-000000", "link/demo/20260101-000000",
                      "b/demo/20260101-000000"]
    assert [r.label for r in load_results([ya, yb, own])] == ["y/a/20260101-000000", "y/b/20260101-000000",
                                                               "a/20260101-000000"]
    # `..` kept as typed: through a link it leads elsewhere, so the resolved folders differ where the text does not
    (tmp_path / "deep" / "x").mkdir(parents=True)
    deep_b = fake_result(tmp_path / "deep" / "b" / "demo" / "20260101-000000")
    (tmp_path / "lnk").symlink_to(tmp_path / "deep" / "x")
    dotted = tmp_path / "lnk" / ".." / "b" / "demo" / "20260101-000000"
    assert dotted.resolve() == deep_b.resolve() != b.resolve()
    assert [r.label for r in load_results([b, dotted])] == [f"{tmp_path.name}/b/demo/20260101-000000",
                                                            "../b/demo/20260101-000000"]
    res = CliRunner().invoke(app, ["report", str(a), str(b), "--format", "csv"])
    assert res.exit_code == 0, res.output
    table = [line for line in res.output.splitlines() if line.count(",") > 10]  # the table, not the notes after it
    rows = pd.read_csv(io.StringIO("\n".join(table)))
    counts = rows.set_index(["run", "model"])[["n_seeds", "n_chance"]]
    assert counts.loc[("a/demo/20260101-000000", "plain")].tolist() == [2, 0]
    assert counts.loc[("b/demo/20260101-000000", "plain")].tolist() == [3, 1]  # its seed 2, of b's alone
    assert counts.loc[("b/demo/20260101-000000", "blur")].tolist() == [3, 0]
    res = CliRunner().invoke(app, ["report", str(a), str(b), "--html", str(tmp_path / "page.html")])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output


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
    ("summary.csv", lambda f: _set_first(f, "clean_accuracy", float("inf")), "column clean_accuracy row 2: inf is"),
    ("invariance.csv", lambda f: _set_first(f, "accuracy", 7.5), "column accuracy row 2: 7.5 is not a fraction"),
    ("invariance.csv", lambda f: _set_first(f, "flip_rate", -3), "column flip_rate row 2: -3 is not"),
    ("invariance.csv", _set_two, "column flip_rate row 5: 1.5 is not"),
    ("summary.csv", lambda f: f.write_text(f.read_text() + f.read_text().splitlines()[1] + "\n"), "two rows for"),
    ("invariance.csv", lambda f: f.write_text(f.read_text() + f.read_text().splitlines()[1] + "\n"), "two rows for"),
])
def test_impossible_values_and_repeated_rows_are_refused_naming_the_file(tmp_path, fake_result, file, damage,
                                                                         needle):
    """A fraction outside [0, 1] (an edited accuracy of 7.5, an infinite one) or a row given twice (which would
    count a seed twice and narrow its interval) is damage, not a number to report."""
    folder = fake_result(tmp_path / "demo" / "r1")
    damage(folder / file)
    with pytest.raises(RunFolderError, match="damaged") as e:
        load_result(folder)
    assert needle in str(e.value) and file in str(e.value)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A run folder invlab wrote (configs/quick.yaml, untrained, 12 test images): each case damages a copy."""
    return untrained_quick_run(tmp_path_factory)


# the audit's impossible values, each once accepted (exit 0: a NaN flip rate, an infinite or NaN dx whose row
# vanished from --by shift, a negative or fractional seed, an infinite n_images) or a traceback (n_classes 0:
# ZeroDivisionError in the chance footnote); (file, column, value as written, what the message says it is not)
IMPOSSIBLE = [
    ("summary.csv", "n_classes", "0", "a whole number from 1 to"),
    ("summary.csv", "n_classes", "-2", "a whole number from 1 to"),
    ("summary.csv", "n_classes", "2.5", "a whole number from 1 to"),
    ("summary.csv", "n_classes", "1e308", "a whole number from 1 to"),
    ("summary.csv", "clean_accuracy", "nan", "a fraction from 0 to 1 (it is empty only for images without labels"),
    ("summary.csv", "mean_flip_rate", "nan", "a fraction from 0 to 1 (it is empty only in a row whose n_shifts"),
    ("invariance.csv", "flip_rate", "nan", "a fraction from 0 to 1 (invlab writes one in every row)"),
    ("invariance.csv", "flip_rate", "", "a fraction from 0 to 1 (invlab writes one in every row)"),
    ("invariance.csv", "prob_change", "-1e-06", "a fraction from 0 to 1"),  # no round-off below 0: a sum of
    ("invariance.csv", "prob_change", "1.001", "a fraction from 0 to 1"),  # |differences| is never negative
    ("invariance.csv", "dx", "inf", "a finite number"),
    ("invariance.csv", "dx", "nan", "a finite number"),
    ("summary.csv", "seed", "-1", "a whole number from 0 to 4,294,967,295"),
    ("invariance.csv", "seed", "1.5", "a whole number from 0 to"),
    ("summary.csv", "n_images", "-5", "a whole number from 1 to"),
    ("invariance.csv", "n_images", "1e400", "a whole number from 1 to"),
    ("summary.csv", "at_chance", "maybe", "True, False or empty"),
]


@pytest.mark.parametrize("file, column, value, what", IMPOSSIBLE,
                         ids=[f"{f.split('.')[0]}-{c}={v or 'empty'}" for f, c, v, _ in IMPOSSIBLE])
def test_an_impossible_value_is_refused_by_invlab_report_naming_file_and_column(written, tmp_path, file, column,
                                                                               value, what):
    folder = tmp_path / "quick" / written.name
    shutil.copytree(written, folder)
    df = pd.read_csv(folder / file, dtype=str, keep_default_na=False)  # every other cell as invlab wrote it
    df.loc[0, column] = value
    df.to_csv(folder / file, index=False)
    res = CliRunner().invoke(app, ["report", str(folder), "--by", "shift"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    # the value as read: 1e400 is inf, an empty cell and "nan" are both NaN
    shown = {"": "empty (or NaN)", "nan": "empty (or NaN)", "1e400": "inf", "1e308": "1e+308"}.get(value, value)
    assert f"error: {folder / file}: column {column} row 2: " in said and DAMAGED in said, said
    assert f"row 2: {shown if column != 'at_chance' else repr(value)} is not {what}" in said, said


def test_every_number_column_invlab_writes_has_a_rule(written):
    """summary.csv and invariance.csv of a real run: each number column is checked by its kind, and the folder
    loads (no rule refuses what invlab itself writes); every metric is a fraction."""
    r = load_result(written)
    for df in (r.summary, r.invariance):
        numbers = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and c != "at_chance"]
        assert numbers and not [c for c in numbers if c not in COLUMN_RULES]
    fractions = {*METRIC_COLUMNS, *SUMMARY_METRICS, "max_prob_change", *WORST_CASE_COLUMNS, *CORRECT_FLIP_SUMMARY}
    assert all(COLUMN_RULES[c][0] == FRACTION for c in fractions)


def _meta(folder, kind="run", **protocol):
    meta = json.loads((folder / META_FILE).read_text())
    meta["protocol"].update(protocol)
    (folder / META_FILE).write_text(json.dumps(dict(meta, kind=kind)))


@pytest.mark.parametrize("meta, ok", [({"labels": False}, True), ({"kind": "measure"}, True),
                                      ({"kind": "measure", "labels": True}, False), ({}, False)])
def test_accuracies_may_be_empty_only_for_images_without_labels(tmp_path, fake_result, meta, ok):
    """invlab measure on a flat folder writes no accuracy (meta.json: labels false; an older measure folder does
    not say); a run's or a labelled measurement's empty accuracy is damage."""
    folder = fake_result(tmp_path / "demo" / "r1")
    _meta(folder, **meta)
    for name in ("invariance.csv", "summary.csv"):
        df = pd.read_csv(folder / name)
        df[[c for c in df.columns if "accuracy" in c or c == "at_chance"]] = np.nan
        df.to_csv(folder / name, index=False)
    if ok:
        assert load_result(folder).summary.clean_accuracy.isna().all()
    else:
        with pytest.raises(RunFolderError, match="column accuracy row 2: empty"):
            load_result(folder)


def test_the_means_of_a_summary_row_without_shifts_may_be_empty(tmp_path, fake_result):
    """A sweep of the reference alone (n_shifts 0) has no mean or worst over non-zero shifts; with shifts it has."""
    folder = fake_result(tmp_path / "demo" / "r1")
    df = pd.read_csv(folder / "summary.csv")
    df.loc[0, ["mean_flip_rate", "worst_prob_change", "worst_shift_dx"]] = np.nan
    df.loc[0, "n_shifts"] = 0
    df.to_csv(folder / "summary.csv", index=False)
    load_result(folder)
    df.loc[0, "n_shifts"] = 1
    df.to_csv(folder / "summary.csv", index=False)
    with pytest.raises(RunFolderError, match="column mean_flip_rate row 2: empty .* whose n_shifts is 0"):
        load_result(folder)


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


def test_a_folder_still_running_is_not_met_with_advice_to_run_it_again(tmp_path):
    """`invlab report RUN` during the run said "or run `invlab run` on its config again to resume it": doing that
    while the run is alive duplicates its work; a sweep's advice was to delete the folder being written."""
    for kind in ("run", "sweep"):
        folder = tmp_path / kind
        stopped_or_finished_run(folder, kind=kind, status="running", pid=os.getpid(), host=socket.gethostname())
        with pytest.raises(InvlabError) as e:
            load_result(folder)
        said = str(e.value)
        assert f"{folder} is still running (pid {os.getpid()}" in said and "wait for it to finish" in said, said
        assert "again" not in said and "deleted" not in said, said
