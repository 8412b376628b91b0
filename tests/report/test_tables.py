"""report/tables.py on hand-made result folders (summary.csv made by the real summarize, see conftest.write_fake_result):
loading, seed aggregation, cut intervals, seeds at chance and --drop-chance."""

import io
import math

import numpy as np
import pandas as pd
import pytest
from conftest import write_fake_result
from typer.testing import CliRunner

from invariance_lab.core.errors import InvlabError
from invariance_lab.report.tables import (LAYER_RANGE, MODEL_METRICS, build_report, load_result, model_table,
    seed_flags, shift_table)
from invariance_lab.core.stats import ci_halfwidth
from invariance_lab.core.columns import METRIC_COLUMNS

RUN = "demo/20260101-000000"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """Written once for the module: the tests only read it."""
    return write_fake_result(tmp_path_factory.mktemp("run") / "results" / "demo" / "20260101-000000")


@pytest.fixture
def run(run_folder):
    return load_result(run_folder)  # loaded per test: its tables are each test's own


@pytest.fixture(scope="module")
def stuck(tmp_path_factory):
    """Seed 2 of "plain" answers one class for every image: accuracy 0.5, flip rate 0 at every shift. Written once
    for the module: the tests only read it."""
    return write_fake_result(tmp_path_factory.mktemp("stuck") / "results" / "demo" / "20260101-000000",
                             chance=[("plain", 2)])


def test_load_result_label_and_tables(run):
    assert run.label == RUN
    assert set(run.summary["model"]) == {"plain", "blur"}
    assert len(run.invariance) == 2 * 3 * 81


def test_load_sweep_label(tmp_path, fake_result):
    folder = tmp_path / "results" / "demo" / "r1" / "sweeps" / "s7"
    fake_result(folder, run_id="r1", kind="sweep")
    assert load_result(folder).label == "demo/r1/s7"


def test_run_with_sweeps_loads_its_own_tables(tmp_path, fake_result):
    run_dir = fake_result(tmp_path / "demo" / "r1", run_id="r1", models=("a",))
    fake_result(run_dir / "sweeps" / "s1", run_id="r1", models=("b",), kind="sweep")
    assert list(load_result(run_dir).summary["model"].unique()) == ["a"]


def test_model_table_means_ci_and_cut_bounds(run):
    df = model_table([run])
    assert list(df["model"]) == ["plain", "blur"]  # file order kept
    assert set(df["run"]) == {RUN}
    assert (df["n_seeds"] == 3).all() and (df["n_chance"] == 0).all()
    assert list(df[["downsample", "head", "padding"]].iloc[0]) == ["max", "gap", "zeros"]
    # clean_accuracy = 0.90, 0.91, 0.92 over seeds: mean 0.91, s = 0.01, half-width t_{.975,2} * 0.01 / sqrt(3)
    assert df["clean_accuracy"].tolist() == pytest.approx([0.91, 0.91])
    assert df["clean_accuracy_ci"].tolist() == pytest.approx([4.3027 * 0.01 / math.sqrt(3)] * 2, abs=1e-5)
    # accuracy under shift sits beside the consistency metrics
    assert {"mean_accuracy", "worst_accuracy"} <= set(MODEL_METRICS)
    for _, row in df.iterrows():  # every metric against a direct computation from summary.csv
        seeds = run.summary[run.summary["model"] == row["model"]]
        for m in MODEL_METRICS:
            assert row[m] == pytest.approx(seeds[m].mean())
            assert row[f"{m}_ci"] == pytest.approx(ci_halfwidth(seeds[m]))
            assert 0.0 <= row[f"{m}_lo"] <= row[m] <= row[f"{m}_hi"] <= 1.0
            assert row[f"{m}_lo"] == pytest.approx(max(0.0, row[m] - row[f"{m}_ci"]))
            assert row[f"{m}_hi"] == pytest.approx(min(1.0, row[m] + row[f"{m}_ci"]))
    assert df.set_index("model").loc["plain", "mean_flip_rate"] > df.set_index("model").loc["blur", "mean_flip_rate"]


def test_summary_comes_from_the_real_summarize(run):
    """The fixture's summary.csv holds what summarize computes from invariance.csv (no hand-written copy)."""
    inv, s = run.invariance, run.summary.set_index(["model", "seed"])
    moved = inv[(inv.dx != 0) | (inv.dy != 0)]
    g = moved.groupby(["model", "seed"])
    assert np.allclose(g["flip_rate"].max().loc[s.index], s["worst_flip_rate"])
    assert np.allclose(g["accuracy"].min().loc[s.index], s["worst_accuracy"])
    assert (s["n_classes"] == 2).all() and not s["at_chance"].any()


def test_shift_table_columns_and_values(run):
    means, cis = shift_table([run], "flip_rate", "dx")
    assert list(means.columns) == [float(v) for v in range(-4, 5)]
    assert list(means.index) == [(RUN, "plain"), (RUN, "blur")]
    assert means.shape == cis.shape
    assert means.loc[(RUN, "plain"), 0.0] == 0.0
    inv = run.invariance
    sel = inv[(inv["model"] == "blur") & (inv["dx"] == 3) & (inv["dy"] == 0)]["flip_rate"]
    assert means.loc[(RUN, "blur"), 3.0] == pytest.approx(sel.mean())
    assert cis.loc[(RUN, "blur"), 3.0] == pytest.approx(ci_halfwidth(sel))
    dy_means, _ = shift_table([run], "accuracy", "dy")
    assert dy_means.columns.name == "dy" and len(dy_means.columns) == 9


def test_shift_table_fractional_and_several_runs(tmp_path, run, fake_result):
    other = load_result(fake_result(tmp_path / "o" / "r2", name="o", run_id="r2", dx=(-1, 1, 0.5), dy=(0, 0, 1),
                                    models=("plain",)))
    means, _ = shift_table([run, other], "prob_change", "dx")
    assert 0.5 in means.columns and -0.5 in means.columns
    assert len(means) == 3
    assert math.isnan(means.loc[(RUN, "plain"), 0.5])  # not measured there


def test_unknown_names_list_the_choices(run):
    with pytest.raises(InvlabError) as err:
        shift_table([run], "flips", "dx")
    assert "unknown metric 'flips'" in str(err.value) and all(m in str(err.value) for m in METRIC_COLUMNS)
    with pytest.raises(InvlabError, match="dz"):
        shift_table([run], "flip_rate", "dz")
    with pytest.raises(InvlabError, match="choose one of: model, shift, layer"):
        build_report([run.path], by="seed")


def test_shift_view_bounds_are_in_range(run):
    (view, _) = build_report([run.path], by="shift").views
    assert view.key == ("axis", "dx") and "run" not in view.table  # one result: no run column
    for v in view.values:
        assert (view.table[f"{v}_lo"] >= 0).all() and (view.table[f"{v}_hi"] <= 1).all()
        assert (view.table[f"{v}_lo"] <= view.table[v]).all() and (view.table[v] <= view.table[f"{v}_hi"]).all()


def test_layer_view_is_cut_at_zero_only(tmp_path, fake_result):
    folder = fake_result(tmp_path / "d" / "r" / "sweeps" / "s", kind="sweep", layers=True)
    views = build_report([folder], by="layer").views
    assert [v.key[1] for v in views] == ["mean_equivariance_error", "mean_pooled_invariance_error",
                                         "normalized_variance"]
    eq = views[0].table.set_index("model")
    assert views[0].bounds == LAYER_RANGE
    # block1.down: errors 0, 0, 0.3 over seeds -> mean 0.1, half-width 0.43: the interval is cut at 0, not at 1
    assert eq.loc["plain", "block1.down"] == pytest.approx(0.1)
    assert eq.loc["plain", "block1.down_ci"] == pytest.approx(ci_halfwidth([0, 0, 0.3]))
    assert eq.loc["plain", "block1.down_lo"] == 0.0
    assert eq.loc["plain", "block1.down_hi"] == pytest.approx(0.1 + ci_halfwidth([0, 0, 0.3]))


def test_a_seed_at_chance_is_flagged(stuck):
    r = load_result(stuck)
    flags = seed_flags([r])
    assert flags.loc[flags["at_chance"], ["model", "seed"]].values.tolist() == [["plain", 2]]
    df = model_table([r]).set_index("model")
    assert df.loc["plain", "n_chance"] == 1 and df.loc["blur", "n_chance"] == 0
    # the stuck seed never flips: it pulls plain's flip rate down, which is why it must be flagged
    assert df.loc["plain", "mean_flip_rate"] < r.summary.query("model == 'plain' and seed < 2").mean_flip_rate.mean()


def test_drop_chance_leaves_the_seed_out_of_every_table(stuck):
    kept = load_result(stuck)
    rep = build_report([stuck], by="model", drop_chance=True)
    assert rep.dropped[["model", "seed"]].values.tolist() == [["plain", 2]]
    assert not rep.flags["at_chance"].any()
    t = rep.views[0].table.set_index("model")
    assert t.loc["plain", "n_seeds"] == 2 and t.loc["blur", "n_seeds"] == 3 and (t["n_chance"] == 0).all()
    two = kept.summary.query("model == 'plain' and seed < 2")
    assert t.loc["plain", "mean_flip_rate"] == pytest.approx(two.mean_flip_rate.mean())
    assert t.loc["plain", "mean_flip_rate_ci"] == pytest.approx(ci_halfwidth(two.mean_flip_rate))
    (dx_view, _) = build_report([stuck], by="shift", drop_chance=True).views
    inv = kept.invariance.query("model == 'plain' and seed < 2 and dx == 3 and dy == 0")
    assert dx_view.table.set_index("model").loc["plain", "3"] == pytest.approx(inv.flip_rate.mean())
    assert len(build_report([stuck], by="model").dropped) == 0  # without the flag nothing is left out


def test_drop_chance_with_every_seed_at_chance_says_so(tmp_path, fake_result):
    folder = fake_result(tmp_path / "d" / "r", models=("a",), seeds=(0, 1), chance=[("a", 0), ("a", 1)])
    with pytest.raises(InvlabError, match="every seed .* is at chance"):
        build_report([folder], drop_chance=True)


def test_old_summary_without_class_count_uses_the_config(tmp_path, fake_result):
    three = fake_result(tmp_path / "d" / "r3", legacy=True, config_letters="ABC", chance=[("blur", 0)])
    r = load_result(three)
    assert "n_classes" not in r.summary
    flags = seed_flags([r])
    assert (flags["n_classes"] == 3).all() and not flags["assumed"].any()
    # the stuck seed scores 0.50: chance for two classes, but well above 1/3 + 0.05 for three
    assert not flags["at_chance"].any()


def test_old_summary_with_nothing_on_disk_assumes_two_classes(tmp_path, fake_result):
    r = load_result(fake_result(tmp_path / "d" / "r", legacy=True, chance=[("plain", 1)]))
    flags = seed_flags([r])
    assert (flags["n_classes"] == 2).all() and flags["assumed"].all()
    assert flags.loc[flags["at_chance"], ["model", "seed"]].values.tolist() == [["plain", 1]]


def test_sweep_reads_the_class_count_of_its_run(tmp_path, fake_result):
    run_dir = fake_result(tmp_path / "d" / "r", config_letters="ABCD")
    sweep = fake_result(run_dir / "sweeps" / "s", kind="sweep", legacy=True)
    assert (seed_flags([load_result(sweep)])["n_classes"] == 4).all()


def test_cli_report_flags_and_drops_seeds_at_chance(stuck):
    from invariance_lab.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["report", str(stuck), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert "at chance: its consistency says nothing" in res.output and "| plain † |" in res.output
    res = runner.invoke(app, ["report", str(stuck), "--drop-chance", "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert "left out 1 seed at chance: plain seed 2" in res.output and "†" not in res.output
    res = runner.invoke(app, ["report", str(stuck), "--drop-chance", "--format", "csv"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(io.StringIO(res.stdout))
    assert df.set_index("model").loc["plain", "n_seeds"] == 2
    assert {"mean_flip_rate_lo", "mean_flip_rate_hi", "mean_flip_rate_ci", "n_chance"} <= set(df.columns)
    assert "left out 1 seed" in res.stderr


def test_missing_folder_names_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(InvlabError, match=str(missing)):
        load_result(missing)


def test_not_a_result_folder(tmp_path, fake_result):
    with pytest.raises(InvlabError, match="meta.json"):
        load_result(tmp_path)
    folder = fake_result(tmp_path / "x" / "r")
    (folder / "summary.csv").unlink()
    with pytest.raises(InvlabError, match="summary.csv"):
        load_result(folder)


def test_unfinished_run_refused(tmp_path, fake_result):
    folder = fake_result(tmp_path / "x" / "r", status="running")
    with pytest.raises(InvlabError) as err:
        load_result(folder)
    # "running" with no live process behind it (no pid, no heartbeat): the writer is gone
    assert str(folder) in str(err.value) and "status: interrupted (process gone)" in str(err.value)
    assert "resume" in str(err.value)


def test_lie_csv_is_a_model_by_transform_view_over_seeds(tmp_path, fake_result):
    folder = fake_result(tmp_path / "results" / "demo" / "20260101-000000")
    seeds = sorted(set(load_result(folder).summary["seed"]))
    rows = [(m, s, tr, "", 0.1 * (s + 1) * (1 + (m == "blur")) + k)
            for m in ("plain", "blur") for s in seeds for k, tr in enumerate(("translate_x", "rotate"))]
    rows += [("plain", s, "rotate", "block1.conv", 99.0) for s in seeds]  # a tap's row: not in the output view
    pd.DataFrame(rows, columns=["model", "seed", "transform", "layer", "value"]).to_csv(folder / "lie.csv", index=False)
    views = build_report([folder]).views
    assert len(views) == 2  # the model table, then the Lie derivative's
    lie = views[1].table.set_index("model")
    assert views[1].values == ["translate_x", "rotate"] and views[1].key == ("metric", "lie")
    expected = [0.1 * (s + 1) + 1 for s in seeds]
    assert lie.loc["plain", "rotate"] == pytest.approx(np.mean(expected))
    assert lie.loc["plain", "rotate_ci"] == pytest.approx(ci_halfwidth(pd.Series(expected), 0.95), nan_ok=True)


def test_the_same_folder_twice_is_refused_however_it_is_named(tmp_path, fake_result):
    """A trailing slash or a link to it is the same folder: its seeds would be counted twice."""
    folder = fake_result(tmp_path / "demo" / "r1")
    (tmp_path / "alias").symlink_to(folder)
    for second in (folder, str(folder) + "/", tmp_path / "alias"):
        with pytest.raises(InvlabError, match="are the same folder"):
            build_report([folder, second])
    assert len(build_report([folder]).results) == 1


@pytest.mark.parametrize("damage", ["fifo", "latin1", "deep"])
def test_a_config_yaml_that_cannot_be_a_config_says_nothing_of_the_classes_without_a_hang(tmp_path, damage):
    """An older folder's summary.csv has no n_classes, so the report read config.yaml's letters with a bare
    read_text: a FIFO there hung `invlab report`, bad UTF-8 or deep nesting ended it in a traceback. It is read as a
    config is, and a file that cannot be one says nothing (the classes are then assumed, and the page says so)."""
    import os
    from types import SimpleNamespace

    from invariance_lab.report.tables import configured_classes

    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "config.yaml"
    {"fifo": os.mkfifo, "latin1": lambda p: p.write_bytes(b"data: {letters: [caf\xe9]}\n"),
     "deep": lambda p: p.write_text("data: " + "[" * 100_000 + "]" * 100_000)}[damage](path)
    assert configured_classes(SimpleNamespace(meta={"protocol": {}}, path=folder)) is None
    os.remove(path)
    path.write_text("data: {letters: [A, B, C]}\n")
    assert configured_classes(SimpleNamespace(meta={"protocol": {}}, path=folder)) == 3


def test_model_table_takes_the_mean_over_seeds_not_another_centre(tmp_path, fake_result):
    """Seeds' flip rates 0.01, 0.02, 0.30: the mean is 0.11, the median 0.02 (the fixture's seeds are symmetric,
    so there the two agree)."""
    folder = fake_result(tmp_path / "demo" / "r1", run_id="r1", models=("a",))
    summary = pd.read_csv(folder / "summary.csv")
    summary["mean_flip_rate"] = [0.01, 0.02, 0.30]
    summary.to_csv(folder / "summary.csv", index=False)
    (row,) = model_table([load_result(folder)]).to_dict("records")
    assert row["mean_flip_rate"] == pytest.approx(0.11)
    assert row["mean_flip_rate_ci"] == pytest.approx(4.3027 * pd.Series([0.01, 0.02, 0.30]).std() / math.sqrt(3),
                                                     abs=1e-5)


def _hand_result(label="h/1", *, layers=None, invariance=None, summary=None, meta=None):
    """A Result built in memory: only the tables a test reads."""
    from invariance_lab.store.results import Result
    return Result(path=None, label=label, meta=meta or {}, invariance=invariance, summary=summary, layers=layers)


def test_layer_columns_follow_depth_then_hooked_taps_whatever_the_file_order():
    """Catches taps out of depth order (conv before down, head last) or a hooked tap of one's own dropped."""
    from invariance_lab.report.tables import layer_table
    names = ["head", "block2.down", "block1.down", "mine.relu", "block2.conv", "block1.conv"]
    layers = pd.DataFrame(dict(model="m", seed=0, layer_name=names, mean_equivariance_error=np.arange(6) / 10))
    means, _ = layer_table([_hand_result(layers=layers)])
    assert list(means.columns) == ["block1.conv", "block1.down", "block2.conv", "block2.down", "head", "mine.relu"]
    assert means.loc[("h/1", "m"), "head"] == 0.0 and means.loc[("h/1", "m"), "mine.relu"] == pytest.approx(0.3)


def test_a_model_with_a_class_order_note_is_not_flagged_at_chance():
    """Catches a model far below chance (classes learned in another order) counted as at chance."""
    summary = pd.DataFrame(dict(model=["swapped", "stuck"], seed=[0, 0], clean_accuracy=[0.02, 0.5], n_classes=2))
    flags = seed_flags([_hand_result(summary=summary, meta={"class_order": {"swapped": "classes swapped"}})])
    assert flags.set_index("model")["at_chance"].to_dict() == {"swapped": False, "stuck": True}


def test_shift_columns_are_in_increasing_order_across_runs():
    """Catches shift columns left in first-seen order when runs compared have different grids."""
    def inv(xs):
        return pd.DataFrame(dict(model="m", seed=0, dx=[float(x) for x in xs], dy=0.0, flip_rate=0.1))

    runs = [_hand_result("a/1", invariance=inv([0, 2])), _hand_result("b/1", invariance=inv([-2, 0, 2]))]
    means, _ = shift_table(runs, "flip_rate", "dx")
    assert list(means.columns) == [-2.0, 0.0, 2.0]


def test_by_shift_views_only_the_axes_that_vary(tmp_path, fake_result):
    """Catches a view along an axis held at one value (dy = 0 only): a one-column table of nothing."""
    rep = build_report([fake_result(tmp_path / "d" / "r", dx=(-2, 2, 1), dy=(0, 0, 1))], by="shift")
    assert [v.key for v in rep.views] == [("axis", "dx")]


def test_an_axis_without_by_shift_is_refused():
    """Catches --axis silently ignored under --by model."""
    with pytest.raises(InvlabError, match="--axis dx picks the axis of --by shift"):
        build_report(["anywhere"], by="model", axis="dx")
