"""report.py on a hand-made result folder: seed aggregation, CI against hand-computed t values, formats."""

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from invariance_lab.errors import InvlabError
from invariance_lab.report import (METRICS, ci_halfwidth, format_table, load_result, model_table,
                                   protocol_lines, shift_table, t_quantile, to_rich_table)


def _axis_values(spec):
    start, stop, step = spec
    return np.round(np.arange(start, stop + step / 2, step), 6) if step else np.array([float(start)])


def write_fake_result(folder: Path, *, name="demo", run_id="20260101-000000", models=("plain", "blur"),
                      seeds=(0, 1, 2), dx=(-4, 4, 1), dy=(-4, 4, 1), grid="product", mode="canvas",
                      status="complete", kind="run") -> Path:
    """Write meta.json, invariance.csv and summary.csv with known, seed-dependent values.

    The "plain" model aliases on odd shifts; "blur" is smoother. clean_accuracy = 0.9 + 0.01 * seed."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, model in enumerate(models):
        for s in seeds:
            xs, ys = _axis_values(dx), _axis_values(dy)
            pairs = [(x, y) for y in ys for x in xs if grid == "product" or x == 0 or y == 0]
            first_dx = {}
            for x, y in pairs:
                first_dx.setdefault(y, x)
                d = abs(x) + abs(y)
                odd = (x % 2 != 0) or (y % 2 != 0)
                flip = 0.0 if d == 0 else ((0.35, 0.12, 0.05)[k % 3] * (1 - math.exp(-d / 3))
                                           + (0.1 if k == 0 and odd else 0.0) + 0.01 * s)
                rows.append(dict(model=model, seed=s, downsample="max" if k == 0 else "blur", head="gap",
                                 padding="zeros", mode=mode, dx=float(x), dy=float(y), n_images=100,
                                 accuracy=0.9 + 0.01 * s - 0.5 * flip, flip_rate=flip, prob_change=0.6 * flip,
                                 neighbor_flip_rate=np.nan if x == first_dx[y] else 0.5 * flip + 0.02))
    inv = pd.DataFrame(rows)
    summ = []
    for (model, s), g in inv.groupby(["model", "seed"], sort=False):
        nz = g[(g["dx"] != 0) | (g["dy"] != 0)]
        row = {c: g[c].iloc[0] for c in ("model", "seed", "downsample", "head", "padding", "mode", "n_images")}
        row.update(n_shifts=len(nz), clean_accuracy=float(g[(g["dx"] == 0) & (g["dy"] == 0)]["accuracy"].iloc[0]))
        for m in METRICS:
            row[f"mean_{m}"] = nz[m].mean()
            row[f"worst_{m}"] = nz[m].min() if m == "accuracy" else nz[m].max()
        summ.append(row)
    pd.DataFrame(summ).to_csv(folder / "summary.csv", index=False)
    inv.to_csv(folder / "invariance.csv", index=False)
    meta = dict(kind=kind, status=status, name=name, run_id=run_id,
                protocol=dict(mode=mode, grid=grid, dx=list(dx), dy=list(dy), test_images=100,
                              seeds=list(seeds), models=list(models), kind="translation"))
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def run(tmp_path):
    return load_result(write_fake_result(tmp_path / "results" / "demo" / "20260101-000000"))


def test_t_quantile_matches_tables_and_closed_forms():
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(0.975, 4) == pytest.approx(2.776, abs=1e-3)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962, abs=1e-3)
    for p in (0.6, 0.9, 0.975, 0.995):  # exact: df=1 is Cauchy, df=2 has a closed form
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-9)
    assert t_quantile(0.025, 3) == pytest.approx(-t_quantile(0.975, 3))


def test_ci_halfwidth_hand_computed():
    assert ci_halfwidth([0.1, 0.2, 0.3]) == pytest.approx(4.303 * 0.1 / math.sqrt(3), abs=1e-4)  # 0.2484
    assert ci_halfwidth([0.1, 0.2, 0.3]) == pytest.approx(0.2484, abs=1e-4)
    assert math.isnan(ci_halfwidth([0.5]))
    assert math.isnan(ci_halfwidth([]))
    assert ci_halfwidth([0.3, 0.3, 0.3]) == 0.0
    with pytest.raises(InvlabError, match="confidence"):
        ci_halfwidth([0.1, 0.2], confidence=95)


def test_load_result_label_and_tables(run):
    assert run.label == "demo/20260101-000000"
    assert set(run.summary["model"]) == {"plain", "blur"}
    assert len(run.invariance) == 2 * 3 * 81


def test_load_sweep_label(tmp_path):
    folder = tmp_path / "results" / "demo" / "r1" / "sweeps" / "s7"
    write_fake_result(folder, run_id="r1", kind="sweep")
    assert load_result(folder).label == "demo/r1/s7"


def test_run_with_sweeps_loads_its_own_tables(tmp_path):
    run_dir = write_fake_result(tmp_path / "demo" / "r1", run_id="r1", models=("a",))
    write_fake_result(run_dir / "sweeps" / "s1", run_id="r1", models=("b",), kind="sweep")
    assert list(load_result(run_dir).summary["model"].unique()) == ["a"]


def test_model_table_means_and_ci(run):
    df = model_table([run])
    assert list(df["model"]) == ["plain", "blur"]  # file order kept
    assert set(df["run"]) == {"demo/20260101-000000"}
    assert (df["n_seeds"] == 3).all()
    assert list(df[["downsample", "head", "padding"]].iloc[0]) == ["max", "gap", "zeros"]
    # clean_accuracy = 0.90, 0.91, 0.92 over seeds: mean 0.91, s = 0.01, half-width t_{.975,2} * 0.01 / sqrt(3)
    assert df["clean_accuracy"].tolist() == pytest.approx([0.91, 0.91])
    assert df["clean_accuracy_ci"].tolist() == pytest.approx([4.3027 * 0.01 / math.sqrt(3)] * 2, abs=1e-5)
    # Cross-check every metric against a direct computation from summary.csv.
    for _, row in df.iterrows():
        seeds = run.summary[run.summary["model"] == row["model"]]
        for m in ("mean_flip_rate", "worst_flip_rate", "mean_prob_change", "worst_prob_change",
                  "mean_neighbor_flip_rate"):
            assert row[m] == pytest.approx(seeds[m].mean())
            assert row[f"{m}_ci"] == pytest.approx(ci_halfwidth(seeds[m]))
    assert df.set_index("model").loc["plain", "mean_flip_rate"] > df.set_index("model").loc["blur", "mean_flip_rate"]


def test_shift_table_columns_and_values(run):
    means, cis = shift_table([run], "flip_rate", "dx")
    assert list(means.columns) == [float(v) for v in range(-4, 5)]
    assert list(means.index) == [("demo/20260101-000000", "plain"), ("demo/20260101-000000", "blur")]
    assert means.shape == cis.shape
    assert means.loc[("demo/20260101-000000", "plain"), 0.0] == 0.0
    inv = run.invariance
    sel = inv[(inv["model"] == "blur") & (inv["dx"] == 3) & (inv["dy"] == 0)]["flip_rate"]
    assert means.loc[("demo/20260101-000000", "blur"), 3.0] == pytest.approx(sel.mean())
    assert cis.loc[("demo/20260101-000000", "blur"), 3.0] == pytest.approx(ci_halfwidth(sel))
    dy_means, _ = shift_table([run], "accuracy", "dy")
    assert dy_means.columns.name == "dy" and len(dy_means.columns) == 9


def test_shift_table_fractional_and_several_runs(tmp_path, run):
    other = load_result(write_fake_result(tmp_path / "o" / "r2", name="o", run_id="r2", dx=(-1, 1, 0.5),
                                          dy=(0, 0, 0), models=("plain",)))
    means, _ = shift_table([run, other], "prob_change", "dx")
    assert 0.5 in means.columns and -0.5 in means.columns
    assert len(means) == 3
    assert math.isnan(means.loc[("demo/20260101-000000", "plain"), 0.5])  # not measured there


def test_shift_table_unknown_metric_lists_choices(run):
    with pytest.raises(InvlabError) as err:
        shift_table([run], "flips", "dx")
    assert "flips" in str(err.value) and all(m in str(err.value) for m in METRICS)
    with pytest.raises(InvlabError, match="dz"):
        shift_table([run], "flip_rate", "dz")


def test_format_csv_round_trips(run):
    text = format_table(model_table([run]), "csv")
    back = pd.read_csv(io.StringIO(text))
    assert set(back["model"]) == {"plain", "blur"}
    assert back["clean_accuracy"].tolist() == pytest.approx([0.91, 0.91])
    assert "clean_accuracy_ci" in back.columns and "±" not in text
    means, cis = shift_table([run], "flip_rate", "dx")
    back = pd.read_csv(io.StringIO(format_table(means, "csv", ci_df=cis)))
    assert {"run", "model", "-4", "-4_ci", "4", "4_ci"} <= set(back.columns)
    assert back["3"].tolist() == pytest.approx(means[3.0].tolist())


def test_format_markdown_and_rich(run):
    caption = "\n".join(protocol_lines([run]))
    md = format_table(model_table([run]), "markdown", caption=caption)
    assert "±" in md
    assert any(line.startswith("| demo/20260101-000000 | plain |") for line in md.splitlines())
    assert md.splitlines()[0].startswith("| run | model |")
    assert "canvas shift" in md
    means, cis = shift_table([run], "neighbor_flip_rate", "dx")
    md = format_table(means, "markdown", ci_df=cis)
    assert "–" in md  # NaN at the first dx is shown as a dash, not "nan"
    assert "nan" not in md
    table = to_rich_table(model_table([run]), "models", caption)
    assert table.row_count == 2
    text = format_table(model_table([run]), "table", title="models", caption=caption)
    assert "plain" in text and "±" in text


def test_format_unknown_lists_choices(run):
    with pytest.raises(InvlabError) as err:
        format_table(model_table([run]), "html")
    assert all(f in str(err.value) for f in ("table", "markdown", "csv"))


def test_protocol_line(run):
    (line,) = protocol_lines([run])
    assert line == ("run demo/20260101-000000: canvas shift (letter re-rendered at the shifted position on a "
                    "blank canvas), dx -4..4 step 1, dy -4..4 step 1 (every (dx, dy) combination), "
                    "100 test images, seeds 0,1,2")


def test_missing_folder_names_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(InvlabError, match=str(missing)):
        load_result(missing)


def test_not_a_result_folder(tmp_path):
    with pytest.raises(InvlabError, match="meta.json"):
        load_result(tmp_path)
    folder = write_fake_result(tmp_path / "x" / "r")
    (folder / "summary.csv").unlink()
    with pytest.raises(InvlabError, match="summary.csv"):
        load_result(folder)


def test_unfinished_run_refused(tmp_path):
    folder = write_fake_result(tmp_path / "x" / "r", status="running")
    with pytest.raises(InvlabError) as err:
        load_result(folder)
    assert str(folder) in str(err.value) and "status: running" in str(err.value)
