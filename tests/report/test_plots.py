"""plots.py writes real PNGs from hand-made result folders; heatmaps only for 2-D product grids, ticks on the
swept values; CI bands cut to the quantity's range; accuracy against consistency, one point per model and seed."""

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from conftest import write_fake_result
from invariance_lab.report import plots
from invariance_lab.core.errors import InvlabError
from invariance_lab.report.figure import MAX_TICKS, centre_ticks, line_style
from invariance_lab.report.plots import (plot_accuracy_consistency, plot_all, plot_heatmaps,
    plot_layer_profile, plot_metric_vs_shift)
from invariance_lab.report.tables import load_result


def _assert_png(path: Path):
    assert path.is_file()
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert path.stat().st_size > 10_000


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """Read only: the tests write their plots into folders of their own."""
    folder = tmp_path_factory.mktemp("grid") / "results" / "demo" / "r1"
    return load_result(write_fake_result(folder, run_id="r1", models=("plain", "blur", "aps")))


@pytest.fixture(scope="module")
def grid_plots(grid_run, tmp_path_factory):
    """plot_all of grid_run with the default metrics, drawn once for the two tests that read its files."""
    return plot_all([grid_run], tmp_path_factory.mktemp("grid_plots") / "plots")


@pytest.fixture
def figures(monkeypatch):
    """The Figure objects the plot functions save, to inspect what was drawn (the PNGs are still written)."""
    saved, original = [], Figure.savefig

    def savefig(self, *args, **kwargs):
        saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def test_line_plot_written(grid_run, tmp_path):
    path = plot_metric_vs_shift([grid_run], "flip_rate", "dx", tmp_path / "plots")
    assert path.name == "flip_rate_vs_dx.png"
    _assert_png(path)


def test_heatmap_written_for_2d_grid(grid_run, tmp_path):
    (path,) = plot_heatmaps([grid_run], "prob_change", tmp_path / "plots")
    assert path.name == "prob_change_heatmap.png"
    _assert_png(path)


def test_centre_ticks_are_grid_values_through_zero():
    step2 = np.arange(-8, 9, 2.0)
    assert centre_ticks(step2).tolist() == step2.tolist()  # 9 values: every one is a tick
    step1 = np.arange(-8, 9, 1.0)
    ticks = centre_ticks(step1)
    assert 0.0 in ticks and set(ticks) <= set(step1) and len(ticks) <= MAX_TICKS
    assert np.all(np.diff(ticks) == 2.0)
    halves = np.arange(-2, 2.25, 0.25)
    assert 0.0 in centre_ticks(halves) and set(centre_ticks(halves)) <= set(halves)


def test_heatmap_ticks_sit_on_cell_centres(tmp_path, fake_result):
    # dx, dy in -8..8 step 2: cells are centred on even values, their edges fall on odd ones. The figure as
    # plot_heatmaps writes it, not drawn: its ticks are set when it is built (test_heatmap_written_for_2d_grid
    # writes one)
    run = load_result(fake_result(tmp_path / "d" / "r", dx=(-8, 8, 2), dy=(-8, 8, 2)))
    ((_, fig),) = plots.heatmap_figures([run], "flip_rate")
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == list(range(-8, 9, 2)) and list(ax.get_yticks()) == list(range(-8, 9, 2))
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(v) for v in range(-8, 9, 2)]


def test_line_band_is_cut_to_zero_one(tmp_path, fake_result):
    run = load_result(fake_result(tmp_path / "d" / "r", chance=[("plain", 2)]))  # plain's seeds disagree widely
    ax = plots.metric_vs_shift_figure([run], "flip_rate", "dx").axes[0]  # as plot_metric_vs_shift writes it
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    ys = np.concatenate([p.vertices[:, 1] for c in bands for p in c.get_paths()])
    assert len(bands) == 2 and ys.min() >= 0.0 and ys.max() <= 1.0
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["plain († 1/3 seeds at chance)", "blur"]
    assert "cut to [0, 1]" in ax.get_title()


def test_layer_profile_band_is_cut_at_zero(tmp_path, fake_result, figures):
    run = load_result(fake_result(tmp_path / "d" / "r" / "sweeps" / "s", kind="sweep", layers=True))
    path = plot_layer_profile([run], tmp_path / "plots")
    _assert_png(path)
    fig = figures[-1]
    ax = fig.axes[0]  # equivariance error: block1.down has mean 0.1 and a t half-width of 0.43
    ys = np.concatenate([p.vertices[:, 1] for c in ax.collections if isinstance(c, PolyCollection)
                         for p in c.get_paths()])
    assert ys.min() == 0.0 and ys.max() == pytest.approx(0.1 + 0.4303, abs=1e-3)  # cut at 0 only
    assert "cut at 0" in fig._suptitle.get_text()


def test_no_heatmap_for_axes_grid_or_1d(tmp_path, fake_result):
    axes = load_result(fake_result(tmp_path / "a" / "r", grid="axes"))
    line = load_result(fake_result(tmp_path / "b" / "r", dy=(0, 0, 1), dx=(-2, 2, 0.5)))
    assert plot_heatmaps([axes, line], "flip_rate", tmp_path / "plots") == []


def test_plot_all_picks_plots(grid_plots):
    paths = grid_plots
    assert sorted(p.name for p in paths) == sorted([
        "flip_rate_vs_dx.png", "flip_rate_vs_dy.png", "flip_rate_heatmap.png",
        "prob_change_vs_dx.png", "prob_change_vs_dy.png", "prob_change_heatmap.png", "consistency_vs_accuracy.png"])
    for p in paths:
        _assert_png(p)


def test_plot_all_dx_only(tmp_path, fake_result):
    line = load_result(fake_result(tmp_path / "b" / "r", dy=(0, 0, 1), dx=(-2, 2, 0.5)))
    paths = plot_all([line], tmp_path / "plots", metrics=("accuracy",))
    assert [p.name for p in paths] == ["accuracy_vs_dx.png", "consistency_vs_accuracy.png"]
    _assert_png(paths[0])


def test_two_runs_compared_and_heatmap_per_run(grid_run, tmp_path, fake_result):
    other = load_result(fake_result(tmp_path / "results" / "other" / "r2", name="other", run_id="r2"))
    _assert_png(plot_metric_vs_shift([grid_run, other], "neighbor_flip_rate", "dy", tmp_path / "p"))
    paths = plot_heatmaps([grid_run, other], "flip_rate", tmp_path / "p")
    assert [p.name for p in paths] == ["flip_rate_heatmap_demo_r1.png", "flip_rate_heatmap_other_r2.png"]


def test_every_run_and_model_of_a_comparison_has_a_line_style_of_its_own(tmp_path):
    """A study of 2 runs x 20 models drew run 0's 11th model and run 1's 1st alike (colour C0, dashes --), so a
    student could not tell which curve was whose. Every (run, model) pair of up to 8 runs of up to 40 models gets
    a style of its own (markers past 40 lines), and a model keeps its colour in every run."""
    for n_runs in range(1, 9):
        for n_models in range(1, 41):
            styles = {(k, m): line_style(m, k, n_models, n_runs, 33) for k in range(n_runs) for m in range(n_models)}
            marks = [(st["color"], st["linestyle"], st["marker"]) for st in styles.values()]
            assert len(set(marks)) == len(marks), (n_runs, n_models)
            assert all(styles[k, m]["color"] == styles[0, m]["color"] for k, m in styles)
    models = tuple(f"m{i}" for i in range(11))  # the smallest comparison the old rule drew two lines of alike
    results = [load_result(write_fake_result(tmp_path / f"r{k}" / "demo" / "r", name=f"run{k}", models=models,
                                             dx=(-2, 2, 1), dy=(0, 0, 1))) for k in range(2)]
    lines = [ln for ln in plots.metric_vs_shift_figure(results, "flip_rate", "dx").axes[0].get_lines()
             if not ln.get_label().startswith("_")]  # not the reference's vertical line
    assert len({(ln.get_color(), ln.get_linestyle()) for ln in lines}) == len(lines) == 22
    # the layer profile too (it coloured lines by their order: a model changed colour from one run to the next)
    swept = [load_result(write_fake_result(tmp_path / f"l{k}" / "demo" / "r" / "sweeps" / "s", name=f"run{k}",
                                           kind="sweep", layers=True)) for k in range(2)]
    drawn = [ln for ln in plots.layer_profile_figure(swept).axes[0].get_lines()]
    styles = {ln.get_label(): (ln.get_color(), ln.get_linestyle()) for ln in drawn}
    assert len(set(styles.values())) == len(styles) == 4
    for model in ("plain", "blur"):
        assert len({c for label, (c, _) in styles.items() if label.endswith(f": {model}")}) == 1


def test_names_from_a_folder_are_drawn_as_text_not_parsed_as_formulas(tmp_path, fake_result, figures):
    """A run named "$\\bar^^$" in its meta.json (a folder comes from anyone) made matplotlib's mathtext raise: it is
    drawn as written, and matplotlib's settings are left as they were."""
    import matplotlib

    name = "$\\bar^^$"
    odd = fake_result(tmp_path / "a" / "r", name=name, run_id="r", dx=(-2, 2, 1), dy=(0, 0, 1))
    other = fake_result(tmp_path / "b" / "r2", name="other", run_id="r2", dx=(-2, 2, 1), dy=(0, 0, 1))
    paths = plot_all([load_result(odd), load_result(other)], tmp_path / "plots", metrics=("flip_rate",))
    assert paths and all(p.is_file() for p in paths)
    shown = [t.get_text() for f in figures for t in f.findobj(matplotlib.text.Text)]
    assert any(name in text for text in shown)
    assert matplotlib.rcParams["text.parse_math"] is True


def test_unknown_metric(grid_run, tmp_path):
    with pytest.raises(InvlabError, match="did you mean 'flip_rate'"):
        plot_all([grid_run], tmp_path, metrics=("flip_rat",))


def _offsets(collection) -> np.ndarray:
    return np.asarray(collection.get_offsets(), dtype=float)


def test_accuracy_consistency_one_point_per_model_and_seed(tmp_path, fake_result, figures):
    folder = fake_result(tmp_path / "d" / "r", chance=[("plain", 2)])
    run = load_result(folder)
    path = plot_accuracy_consistency([run], tmp_path / "plots")
    assert path.name == "consistency_vs_accuracy.png"
    _assert_png(path)
    ax = figures[-1].axes[0]
    s = run.summary
    # per model three scatters: the seeds that learned (filled), the seeds at chance (hollow), the mean
    for k, model in enumerate(["plain", "blur"]):
        g = s[s.model == model]
        filled, hollow, mean = ax.collections[3 * k: 3 * k + 3]
        seeds = np.concatenate([_offsets(filled), _offsets(hollow)])
        want = np.column_stack([g.mean_accuracy, 1 - g.mean_flip_rate])
        assert sorted(map(tuple, seeds.round(9))) == sorted(map(tuple, want.round(9)))
        assert _offsets(mean)[0] == pytest.approx([g.mean_accuracy.mean(), 1 - g.mean_flip_rate.mean()])
        assert len(_offsets(hollow)) == (1 if model == "plain" else 0)  # plain seed 2 is at chance
    # the seed at chance answers 0.5 everywhere and never flips: accuracy 0.5, consistency exactly 1
    assert _offsets(ax.collections[1]).tolist() == [[0.5, 1.0]]
    assert [line.get_xdata()[0] for line in ax.lines] == [0.5]  # the chance line, for two classes
    legend = [t.get_text() for t in figures[-1].legends[0].get_texts()]
    assert legend == ["plain († 1/3 seeds at chance)", "blur"]


def test_accuracy_consistency_clean_accuracy_axis(tmp_path, fake_result):
    run = load_result(fake_result(tmp_path / "d" / "r", models=("plain",)))
    ax = plots.accuracy_consistency_figure([run], accuracy="clean_accuracy").axes[0]  # as plot_... writes it
    assert sorted(_offsets(ax.collections[0])[:, 0].round(9)) == [0.9, 0.91, 0.92]  # 0.9 + 0.01 * seed
    assert "clean accuracy" in ax.get_xlabel()
    with pytest.raises(InvlabError, match="clean_accuracy"):
        plot_accuracy_consistency([run], tmp_path / "plots", accuracy="worst")


def test_accuracy_consistency_without_labels_is_left_out(tmp_path, fake_result):
    # shifts along x only: the accuracy plot reads summary.csv's mean_accuracy, whatever the grid, and a 2-D grid
    # would only add heatmaps (of flip rate and probability change) to draw
    folder = fake_result(tmp_path / "d" / "r", dy=(0, 0, 1))
    summary = folder / "summary.csv"
    import pandas as pd

    s = pd.read_csv(summary)
    s["mean_accuracy"] = np.nan  # invlab measure on a flat folder of images: no labels, no accuracy
    s.to_csv(summary, index=False)
    run = load_result(folder)
    assert "consistency_vs_accuracy.png" not in [p.name for p in plot_all([run], tmp_path / "plots")]
    with pytest.raises(InvlabError, match="no accuracy"):
        plot_accuracy_consistency([run], tmp_path / "plots")


def test_figures_in_memory_match_written_files(grid_run, grid_plots):
    named = plots.figures([grid_run])  # both metrics, as plot_all drew them for grid_plots
    written = grid_plots
    assert [name for name, _ in named] == [p.name for p in written]
    png = plots.png_bytes(named[0][1])
    assert png[:4] == b"\x89PNG" and len(png) > 10_000


def test_a_png_is_written_whole_never_through_a_link_and_a_full_disk_leaves_the_old_one(tmp_path, monkeypatch):
    import errno
    import os

    from invariance_lab.core.errors import DiskFullError, RunFolderError

    fig = Figure()
    fig.subplots().plot([0, 1])
    out = tmp_path / "plots"
    path = plots.save(fig, out, "a.png")
    old = path.read_bytes()
    assert old.startswith(b"\x89PNG") and sorted(os.listdir(out)) == ["a.png"]  # no temporary file left
    theirs = tmp_path / "theirs.png"
    theirs.write_bytes(b"not invlab's")
    (out / "b.png").symlink_to(theirs)
    with pytest.raises(RunFolderError, match="symbolic link"):
        plots.save(fig, out, "b.png")
    assert theirs.read_bytes() == b"not invlab's"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fig, "savefig", full)
    with pytest.raises(DiskFullError, match="a.png: the disk is full"):
        plots.save(fig, out, "a.png")
    assert path.read_bytes() == old and sorted(os.listdir(out)) == ["a.png", "b.png"]


def test_a_legend_of_many_models_fits_in_the_figure_whatever_their_names(tmp_path, fake_result):
    """Beside the axes, a 14-model legend with one long name ran off the image's right edge (its † marks with it),
    or squeezed the plot to a strip."""
    long = "conv_gap_with_a_really_long_descriptive_name_for_the_lecture_slides_version_two_final_xx"
    models = (long, *(f"m{i:02d}" for i in range(3, 16)))
    run = load_result(fake_result(tmp_path / "d" / "r", models=models, chance=[(long, 0), ("m05", 0)]))
    fig = plots.metric_vs_shift_figure([run], "flip_rate", "dx")
    fig.canvas.draw()
    legend = fig.axes[0].get_legend()
    box, page = legend.get_window_extent(), fig.bbox
    assert len(legend.get_texts()) == 14 and any("†" in t.get_text() for t in legend.get_texts())
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (box, page)
    assert fig.axes[0].get_window_extent().width > 0.6 * page.width  # and the plot is not squeezed to make room


def test_a_sub_pixel_grid_is_ticked_on_whole_pixels():
    """dx -3..3 in steps of 0.25: every third value gave ticks -3, -2.25, -1.5, ... whose labels ran together."""
    assert list(centre_ticks(np.arange(-3, 3.01, 0.25))) == [-3, -2, -1, 0, 1, 2, 3]
    assert list(centre_ticks(np.arange(-4, 4.01, 0.5))) == [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert list(centre_ticks(np.arange(-2, 2.01, 0.5))) == list(np.arange(-2, 2.01, 0.5))  # 9 values: every one


def test_the_accuracy_consistency_plot_of_many_models_keeps_its_axes(tmp_path, fake_result):
    """A one-column legend of 14 models under a figure of fixed height left the axes about 150 px high."""
    long = "conv_gap_with_a_really_long_descriptive_name_for_the_lecture_slides_version_two_final_xx"
    run = load_result(fake_result(tmp_path / "d" / "r", models=(long, *(f"m{i:02d}" for i in range(3, 16)))))
    fig = plots.accuracy_consistency_figure([run])
    fig.draw_without_rendering()  # the layout, as saving makes it
    axes, page = fig.axes[0].get_window_extent(), fig.bbox
    assert axes.height > 0.45 * 5.0 * fig.dpi, (axes.height, page.height)  # as tall as with a short legend
    assert all(page.y0 <= t.get_window_extent().y0 for t in fig.legends[0].get_texts())


def test_a_line_plot_left_without_a_layout_engine_is_the_same_png(grid_run, tmp_path, monkeypatch):
    """figure.tight_layout drops the placeholder engine fig.tight_layout() leaves, so that savefig draws once: the
    PNG is the same bytes as with the placeholder, for three models (markers, bands) and for nine (one seed: no
    band; 33 shifts: no markers)."""
    many = (*(f"m{i}" for i in range(8)), "a_long_model_name_" * 3)
    one_seed = write_fake_result(tmp_path / "many", models=many, seeds=(0,), dx=(-4, 4, 0.25), dy=(0, 0, 1))
    cases = [([grid_run], "flip_rate", "dy"), ([load_result(one_seed)], "prob_change", "dx")]
    fast = [plots.metric_vs_shift_figure(*case) for case in cases]
    assert all(fig.get_layout_engine() is None for fig in fast)
    monkeypatch.setattr(plots, "tight_layout", lambda fig: fig.tight_layout())  # matplotlib's, placeholder kept
    for case, fig in zip(cases, fast):
        old = plots.metric_vs_shift_figure(*case)
        assert old.get_layout_engine() is not None  # the path savefig draws twice
        assert plots.png_bytes(fig) == plots.png_bytes(old), case[1:]


def test_two_runs_whose_labels_differ_only_in_characters_a_file_name_drops_get_a_heatmap_each(tmp_path):
    # "a+b/..." and "a b/..." (copies of one run, named by their paths) both became flip_rate_heatmap_a_b_...png:
    # one heatmap overwrote the other, and `--plot` failed on the missing file
    from dataclasses import replace

    from invariance_lab.store.results import load_result

    r = load_result(write_fake_result(tmp_path / "run", seeds=(0,), dx=(-1, 1, 1), dy=(-1, 1, 1)))
    figures = plots.heatmap_figures([replace(r, label="a+b/demo/x"), replace(r, label="a b/demo/x")], "flip_rate")
    assert [name for name, _ in figures] == ["flip_rate_heatmap_a_b_demo_x.png", "flip_rate_heatmap_a_b_demo_x-2.png"]
    assert [fig._suptitle.get_text().splitlines()[-1] for _, fig in figures] == ["a+b/demo/x", "a b/demo/x"]


def _assert_legend_outside_the_data(fig, n_entries: int) -> None:
    """The axes' legend is drawn whole inside the image, over neither the data area nor the x label."""
    fig.draw_without_rendering()  # the layout, as saving makes it
    ax = fig.axes[0]
    legend = ax.get_legend()
    box, data, page = legend.get_window_extent(), ax.get_window_extent(), fig.bbox
    assert len(legend.get_texts()) == n_entries
    assert not box.overlaps(data), (box, data)
    assert not box.overlaps(ax.xaxis.label.get_window_extent())
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (box, page)


@pytest.mark.parametrize("n_models", [1, 2, 8])
def test_a_line_plot_legend_covers_no_curve_or_band(tmp_path, fake_result, n_models):
    """Up to 8 models, the legend sat inside the axes at matplotlib's "best" place, which covers data where no
    corner is free (a seed at chance widens a band to most of the height): it goes outside the axes."""
    models = ("plain", "blur", *(f"m{i}" for i in range(6)))[:n_models]
    run = load_result(fake_result(tmp_path / "d" / "r", models=models, dy=(0, 0, 1), chance=[(models[0], 2)]))
    _assert_legend_outside_the_data(plots.metric_vs_shift_figure([run], "flip_rate", "dx"), n_models)


def test_a_band_limited_sweeps_title_says_so(tmp_path, fake_result):
    """A circular --subpixel fft sweep's plot said only "circular shift" under fractional dx."""
    folder = fake_result(tmp_path / "d" / "r", models=("plain",), seeds=(0,), mode="circular", dx=(-1, 1, 0.5),
                         dy=(0, 0, 1))
    meta = json.loads((folder / "meta.json").read_text())
    meta["protocol"]["subpixel"] = "fft"
    (folder / "meta.json").write_text(json.dumps(meta))
    fig = plots.metric_vs_shift_figure([load_result(folder)], "flip_rate", "dx")
    words = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize")))
    assert "circular shift (band-limited, fft)" in words, words


def _band_ends(band, x: float) -> tuple[float, float]:
    """(lowest, highest) y of a fill_between band at x."""
    v = np.concatenate([p.vertices for p in band.get_paths()])
    at = v[np.isclose(v[:, 0], x), 1]
    return float(at.min()), float(at.max())


def test_a_line_plot_draws_the_asked_metric_along_the_asked_axis_with_its_95_band(tmp_path, fake_result):
    """Catches the line plot drawing another metric or axis, or a band that is not mean ± the 95% half-width."""
    from invariance_lab.core.stats import clip_interval
    from invariance_lab.report.tables import shift_table
    run = load_result(fake_result(tmp_path / "d" / "r", models=("plain",), dx=(-1, 1, 1), dy=(-3, 3, 1)))
    ax = plots.metric_vs_shift_figure([run], "accuracy", "dy").axes[0]
    means, cis = shift_table([run], "accuracy", "dy")
    (line,) = [ln for ln in ax.lines if ln.get_label() == "plain"]
    assert list(line.get_xdata()) == [-3, -2, -1, 0, 1, 2, 3]
    assert np.allclose(line.get_ydata(), means.iloc[0].to_numpy(float))
    lo, hi, _ = clip_interval(means.iloc[0].to_numpy(float), cis.iloc[0].to_numpy(float), 0.0, 1.0)
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert cis.iloc[0].max() > 0.001  # the seeds differ: a band of some width
    for x, want_lo, want_hi in zip(line.get_xdata(), lo, hi):
        assert _band_ends(band, x) == pytest.approx((want_lo, want_hi))
    assert ax.get_ylabel().startswith("accuracy\n") and ax.get_xlabel() == plots.AXIS_LABELS["dy"]
    assert ax.get_title().startswith("accuracy vs dy (dx = 0)") and "band = 95% CI" in ax.get_title()


def test_a_line_plot_of_one_seed_says_it_has_no_interval(tmp_path, fake_result):
    """Catches the title promising a 95% band where one seed gives none."""
    run = load_result(fake_result(tmp_path / "d" / "r", models=("plain",), seeds=(0,), dy=(0, 0, 1)))
    title = plots.metric_vs_shift_figure([run], "flip_rate", "dx").axes[0].get_title()
    assert "one seed: no interval" in title and "95% CI" not in title


def test_a_heatmap_puts_dx_across_and_dy_down_and_keeps_zero_on_the_scale(tmp_path, fake_result):
    """Catches a transposed heatmap (dx drawn as dy) or a colour scale that leaves out 0, the invariant ideal."""
    from dataclasses import replace
    run = load_result(fake_result(tmp_path / "d" / "r", models=("plain",), dx=(-2, 2, 1), dy=(-1, 1, 1)))
    inv = run.invariance.assign(flip_rate=0.5 + 0.1 * run.invariance["dx"])  # grows to the right, 0.3..0.7
    ((_, fig),) = plots.heatmap_figures([replace(run, invariance=inv)], "flip_rate")
    mesh = fig.axes[0].collections[0]
    grid = np.asarray(mesh.get_array()).reshape(3, 5)  # rows dy -1..1, columns dx -2..2
    assert np.allclose(grid, np.tile([0.3, 0.4, 0.5, 0.6, 0.7], (3, 1)))
    assert mesh.get_clim() == pytest.approx((0.0, 0.7))


def test_each_layer_panel_draws_its_own_quantity(tmp_path, fake_result):
    """Catches every panel of the layer profile drawing the equivariance error."""
    from invariance_lab.report.tables import LAYER_QUANTITIES, layer_table
    run = load_result(fake_result(tmp_path / "d" / "r" / "sweeps" / "s", kind="sweep", layers=True, models=("m",)))
    fig = plots.layer_profile_figure([run])
    for ax, q in zip(fig.axes, LAYER_QUANTITIES):
        means, _ = layer_table([run], q)
        assert np.allclose(ax.lines[0].get_ydata(), means.iloc[0].to_numpy(float)), q
