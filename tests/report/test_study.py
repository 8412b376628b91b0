"""report/study.py's figure: a metric against a varied key, its error bars the tables' 95% intervals (cut to the
metric's range, as the tables cut them) and its legend marking the models with seeds at chance (†). The study's
tables themselves: tests/run/test_study.py."""

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from invariance_lab.core.errors import RunFolderError
from invariance_lab.report import study


def test_the_error_bars_stop_at_zero_where_the_tables_interval_is_cut(monkeypatch, tmp_path):
    monkeypatch.setattr(study, "read_study", lambda folder: {"name": "s", "vary": {"data.train_shift": ["0", "3"]}})
    table = pd.DataFrame(dict(model=["m", "m"], n_chance=[0, 1], mean_flip_rate=[0.35, 0.02],
                              mean_flip_rate_ci=[0.54, 0.05], mean_flip_rate_lo=[0.0, 0.0],
                              mean_flip_rate_hi=[0.89, 0.07]))
    table.insert(0, "data.train_shift", [0, 3])
    rep = SimpleNamespace(views=[SimpleNamespace(table=table, values=["mean_flip_rate"])])
    ax = study.study_figure(rep, tmp_path, "data.train_shift", "mean_flip_rate")[1].axes[0]
    bars = sorted(y for c in ax.collections for seg in c.get_segments() for _, y in seg)
    assert bars == [0.0, 0.0, 0.07, 0.89]  # from the tables' [lo, hi], not mean ± half-width (-0.19 and -0.03)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["m († seeds at chance)"]
    assert "cut to the range of the values" in ax.get_title()


def test_a_study_whose_two_runs_give_one_name_and_run_id_is_refused_naming_it(tmp_path, fake_result):
    # study.json names two run folders whose meta.json (edited, or one copied over the other) give the same
    # <name>/<run id>: the varied values could not be told to them, so it is refused, not a traceback
    for run in ("20260101-000000", "20260101-000001"):
        fake_result(tmp_path / "s" / run, name="s", run_id="20260101-000000")
    folder = tmp_path / "s" / "study-20260101-000002"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({"name": "s", "vary": {"data.train_shift": ["0", "3"]}, "runs": [
        {"values": {"data.train_shift": "0"}, "run": "s/20260101-000000"},
        {"values": {"data.train_shift": "3"}, "run": "s/20260101-000001"}]}))
    with pytest.raises(RunFolderError, match=r"give the same name and run id \(s/20260101-000000\)") as e:
        study.build_study_report(folder)
    assert all(str(p) in str(e.value) for p in (folder, tmp_path / "s" / "20260101-000001"))


def test_the_study_legend_covers_no_point_or_bar(monkeypatch, tmp_path):
    """Two models' legend sat inside the axes at matplotlib's "best" place, which covers data where no corner is
    free: it goes outside the axes."""
    monkeypatch.setattr(study, "read_study", lambda folder: {"name": "s", "vary": {"data.train_shift": ["0", "3"]}})
    table = pd.DataFrame(dict(model=["a", "a", "b", "b"], n_chance=[0, 0, 0, 0], mean_flip_rate=[0.9, 0.1, 0.1, 0.9],
                              mean_flip_rate_ci=[0.1] * 4))
    table.insert(0, "data.train_shift", [0, 3, 0, 3])
    rep = SimpleNamespace(views=[SimpleNamespace(table=table, values=["mean_flip_rate"])])
    fig = study.study_figure(rep, tmp_path, "data.train_shift", "mean_flip_rate")[1]
    fig.draw_without_rendering()  # the layout, as saving makes it
    ax = fig.axes[0]
    box, page = ax.get_legend().get_window_extent(), fig.bbox
    assert len(ax.get_legend().get_texts()) == 2
    assert not box.overlaps(ax.get_window_extent()) and not box.overlaps(ax.xaxis.label.get_window_extent())
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (box, page)


def test_a_two_column_legend_wider_than_the_figure_takes_one_column(monkeypatch, tmp_path):
    """Two columns of names of 45 characters or fewer, each of wide letters (capitals), are wider than the study's
    7-inch figure: they ran off both sides of the image. The legend takes one column then."""
    names = ["CONV_MAXPOOL_GAP_BLUR_STRIDE_PADDING_CIRCULAR", "CONV_MAXPOOL_GAP_BLUR_STRIDE_PADDING_ZEROS_AB"]
    monkeypatch.setattr(study, "read_study", lambda folder: {"name": "s", "vary": {"data.train_shift": ["0", "3"]}})
    table = pd.DataFrame(dict(model=[names[0]] * 2 + [names[1]] * 2, n_chance=[0, 0, 0, 0],
                              mean_flip_rate=[0.9, 0.1, 0.1, 0.9], mean_flip_rate_ci=[0.1] * 4))
    table.insert(0, "data.train_shift", [0, 3, 0, 3])
    rep = SimpleNamespace(views=[SimpleNamespace(table=table, values=["mean_flip_rate"])])
    fig = study.study_figure(rep, tmp_path, "data.train_shift", "mean_flip_rate")[1]
    fig.draw_without_rendering()  # the layout, as saving makes it
    box, page = fig.axes[0].get_legend().get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (box, page)
