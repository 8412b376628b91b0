"""Figures for finished runs: metric against shift (mean over seeds, 95% CI band), (dx, dy) heatmaps, accuracy
against consistency (one point per model and seed), and the layer profile (error against depth) of sweeps made
with --layers.

`figures()` builds them as named Figure objects (html.py renders them to PNG in memory); the plot_*
functions write PNGs into out_dir and return their paths. Figures are built with matplotlib.figure.Figure, not
pyplot: no global backend or figure state is touched, so this works headless (Agg renders the PNG) and cannot
interfere with whatever backend the caller uses. Example:

    plot_all([load_result("results/seed_question/20261125-101500")], "results/seed_question/plots")
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import InvlabError, choose
from ..store.atomic import write_file
from .tables import (AXES, LAYER_QUANTITIES, LAYER_RANGE, RATE_RANGE, Result, axis_slice, layer_table, seed_counts,
    seed_flags, shift_table)
from ..core.stats import clip_interval
from ..core.columns import METRIC_COLUMNS
from .figure import (LEGEND_ROW_INCHES, centre_ticks, legend_below, line_style, new_figure, plain_text,
                     tight_layout)

if TYPE_CHECKING:  # for annotations only: matplotlib itself is imported when a figure is made (new_figure)
    from matplotlib.figure import Figure

DPI = 120
# the Software text chunk of every PNG invlab writes: its mark, so that --plot replaces only invlab's own plots
PNG_SOFTWARE = "invlab"
PNG_MARK = b"tEXtSoftware\x00" + PNG_SOFTWARE.encode()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # how every PNG begins
# Axis labels: the metric's name and, in words, what it measures (definitions as in metrics.py).
METRIC_LABELS = {
    "accuracy": "accuracy\n(fraction of shifted images classified correctly)",
    "flip_rate": "flip rate\n(prediction ≠ prediction at (0,0))",
    "prob_change": "probability change\n(total variation ½Σ|Δp| vs softmax at (0,0))",
    "neighbor_flip_rate": "neighbour flip rate\n(prediction ≠ prediction one grid step back)",
}
AXIS_LABELS = {"dx": "horizontal shift dx (px, + = right)", "dy": "vertical shift dy (px, + = down)",
               "angle": "rotation angle (degrees, counterclockwise)", "scale": "scale factor (1 = as drawn)"}


def _legend(results: list[Result]):
    """label(run, model) for legends: the model, its run when several are compared, and a warning when some of
    its seeds answer at chance (their flat curves say nothing about invariance)."""
    counts = seed_counts(seed_flags(results))
    several = len(results) > 1

    def label(run: str, model: str) -> str:
        text = f"{run}: {model}" if several else model
        if (run, model) in counts.index and counts.loc[(run, model), "n_chance"] > 0:
            n, k = counts.loc[(run, model), "n_seeds"], counts.loc[(run, model), "n_chance"]
            text += f" († {k}/{n} seeds at chance)"
        return text

    return label


def _modes(results: list[Result]) -> str:
    modes = dict.fromkeys(r.meta.get("protocol", {}).get("mode", "?") for r in results)
    turned = {r.meta.get("protocol", {}).get("transform") for r in results} - {None}  # rotate, scale sweeps
    fft = any(r.meta.get("protocol", {}).get("subpixel") == "fft" for r in results)  # band-limited fractions
    return " / ".join("part displacement" if m == "parts" else
                      f"{m} {'/'.join(turned) or 'shift'}{' (band-limited, fft)' if fft and m == 'circular' else ''}"
                      for m in modes)


def _title_name(metric: str) -> str:
    return METRIC_LABELS[metric].split("\n")[0]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _out(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvlabError(f"plot output {out} exists and is not a folder; pass a folder path for the PNGs.")
    out.mkdir(parents=True, exist_ok=True)
    return out


def save(fig: Figure, out_dir: str | Path, name: str, **savefig) -> Path:
    """Write the figure as a PNG through the atomic writer: never through a link, never a half-written file (a
    full disk is a DiskFullError naming the path, and the earlier PNG, if any, is left as it was)."""
    path = _out(out_dir) / name
    write_file(path, lambda f: fig.savefig(f, format="png", metadata={"Software": PNG_SOFTWARE}, **savefig),
               binary=True)
    return path


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, for pages that embed it (no file written)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_metric_vs_shift(results: list[Result], metric: str, axis: str, out_dir: str | Path) -> Path:
    """<metric>_vs_<axis>.png: metric_vs_shift_figure, written."""
    return save(metric_vs_shift_figure(results, metric, axis), out_dir, f"{metric}_vs_{axis}.png")


@plain_text
def metric_vs_shift_figure(results: list[Result], metric: str, axis: str) -> Figure:
    """One line per (run, model): mean over seeds of `metric` along `axis` (other shift 0), 95% CI band."""
    means, cis = shift_table(results, metric, axis)
    label = _legend(results)
    fig = new_figure(figsize=(8, 4.8), dpi=DPI)
    ax = fig.add_subplot()
    # a model keeps its colour in every folder compared; the folders differ by line style
    models = list(dict.fromkeys(m for _, m in means.index))
    runs = list(dict.fromkeys(r for r, _ in means.index))
    x = means.columns.to_numpy(dtype=float)
    for (run, model), row in means.iterrows():
        y, ci = row.to_numpy(dtype=float), cis.loc[(run, model)].to_numpy(dtype=float)
        keep = ~np.isnan(y)  # runs compared on different shift grids: join each line's own points
        xs, y, ci = x[keep], y[keep], np.nan_to_num(ci[keep])
        style = line_style(models.index(model), runs.index(run), len(models), len(runs), len(xs))
        ax.plot(xs, y, markersize=3.5, linewidth=1.6, label=label(run, model), **style)
        # every metric is a fraction in [0, 1]: a t-interval over 3 seeds can overshoot it, so the band is cut there
        lo, hi, _ = clip_interval(y, ci, *RATE_RANGE)
        ax.fill_between(xs, lo, hi, color=style["color"], alpha=0.18, linewidth=0)
    ax.axvline(1 if axis == "scale" else 0, color="0.6", linewidth=0.8, zorder=0)  # the reference
    ax.set_xlabel(AXIS_LABELS[axis])
    ax.set_ylabel(METRIC_LABELS[metric].replace("(0,0)", {"angle": "angle 0", "scale": "scale 1"}.get(axis, "(0,0)")))
    other = {"dx": " (dy = 0)", "dy": " (dx = 0)"}.get(axis, "")
    band = "mean over seeds, band = 95% CI (cut to [0, 1])" if np.isfinite(cis.to_numpy(float)).any() else \
        "one seed: no interval"  # a CI needs two seeds or more (an invlab measure folder has one)
    ax.set_title(f"{_title_name(metric)} vs {axis}{other}, {_modes(results)}\n{band}", fontsize=11)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.35)
    legend_below(fig, ax, (8, 4.8))  # inside the axes, even at its "best" place, it could cover a curve or band
    tight_layout(fig)
    return fig


def is_2d(result: Result) -> bool:
    """True when the result holds a full (dx, dy) product grid with more than one value on each axis."""
    inv = result.invariance
    return (result.meta.get("protocol", {}).get("grid") == "product"
            and "dx" in inv and inv["dx"].nunique() > 1 and inv["dy"].nunique() > 1)


def plot_heatmaps(results: list[Result], metric: str, out_dir: str | Path) -> list[Path]:
    """heatmap_figures, written: <metric>_heatmap.png, or one <metric>_heatmap_<run>.png per 2-D result."""
    return [save(fig, out_dir, name) for name, fig in heatmap_figures(results, metric)]


@plain_text
def heatmap_figures(results: list[Result], metric: str) -> list[tuple[str, Figure]]:
    """Per 2-D result, (file name, figure): a heatmap per model of the mean over seeds on (dx, dy), shared colours."""
    choose("metric", metric, METRIC_COLUMNS)
    grids = [r for r in results if is_2d(r)]
    out = []
    for r in grids:
        mean = r.invariance.groupby(["model", "dx", "dy"], sort=False)[metric].mean().reset_index()
        models = list(dict.fromkeys(mean["model"]))
        values = mean[metric].to_numpy(dtype=float)
        vmin, vmax = (float(np.nanmin(values)), float(np.nanmax(values))) if np.isfinite(values).any() else (0, 1)
        if metric != "accuracy":  # rates and changes: 0 is the invariant ideal, keep it on the scale
            vmin = min(vmin, 0.0)
        ncols = min(len(models), 4)
        nrows = math.ceil(len(models) / ncols)
        xs, ys = np.unique(mean["dx"].to_numpy(float)), np.unique(mean["dy"].to_numpy(float))
        aspect = (np.ptp(ys) + np.min(np.diff(ys))) / (np.ptp(xs) + np.min(np.diff(xs)))  # panels keep px square
        panel_h = float(np.clip(3.2 * aspect, 1.4, 4.5))
        fig = new_figure(figsize=(3.3 * ncols + 1.3, (panel_h + 0.55) * nrows + 0.8), dpi=DPI, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
        mesh, label = None, _legend([r])
        for ax, model in zip(axes.ravel(), models):
            grid = mean[mean["model"] == model].pivot(index="dy", columns="dx", values=metric).sort_index()
            grid = grid.reindex(columns=sorted(grid.columns))
            mesh = ax.pcolormesh(grid.columns.to_numpy(float), grid.index.to_numpy(float), grid.to_numpy(float),
                                 shading="nearest", cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_title(label(r.label, model), fontsize=10 if label(r.label, model) == model else 8)
            ax.set_aspect("equal")
        for ax in axes.ravel()[len(models):]:
            ax.set_visible(False)
        for col in range(ncols):  # label the lowest visible panel of each column
            ax = axes[(len(models) - 1 - col) // ncols, col]
            ax.set_xlabel("dx (px, + = right)")
            ax.tick_params(labelbottom=True)
        # ticks on the swept values, which are the cell centres (shading="nearest"), not on cell edges
        axes[0, 0].set_xticks(centre_ticks(xs), [f"{v:g}" for v in centre_ticks(xs)])
        axes[0, 0].set_yticks(centre_ticks(ys), [f"{v:g}" for v in centre_ticks(ys)])
        for ax in axes[:, 0]:
            ax.set_ylabel("dy (px, + = down)")
        axes[0, 0].invert_yaxis()  # shared: +dy moves the image down, so it is drawn below dy = 0, as in the image
        fig.colorbar(mesh, ax=axes.ravel().tolist(), label=METRIC_LABELS[metric], shrink=0.9)
        mode = r.meta.get("protocol", {}).get("mode", "?")
        fig.suptitle(f"{_title_name(metric)} over (dx, dy), {mode} shift, mean over seeds\n{r.label}",
                     fontsize=11)
        name = f"{metric}_heatmap" if len(grids) == 1 else f"{metric}_heatmap_{_safe(r.label)}"
        # two labels that differ only in characters a file name leaves out ("a+b", "a b") get files of their own
        taken, stem, k = {n for n, _ in out}, name, 1
        while f"{name}.png" in taken:
            k += 1
            name = f"{stem}-{k}"
        out.append((f"{name}.png", fig))
    return out


def plot_layer_profile(results: list[Result], out_dir: str | Path) -> Path:
    """layers_vs_depth.png: layer_profile_figure, written."""
    return save(layer_profile_figure(results), out_dir, "layers_vs_depth.png")


@plain_text
def layer_profile_figure(results: list[Result]) -> Figure:
    """One panel per layer quantity, x = tap in depth order, one line per (run, model)."""
    tables = {q: layer_table(results, q) for q in LAYER_QUANTITIES}
    label = _legend(results)
    fig = new_figure(figsize=(5.2 * len(tables) + 1.5, 4.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    for ax, (q, (means, cis)) in zip(axes, tables.items()):
        x = np.arange(means.shape[1])
        models = list(dict.fromkeys(m for _, m in means.index))  # as metric_vs_shift_figure: a model's colour is
        runs = list(dict.fromkeys(r for r, _ in means.index))  # its own in every run, the runs differ by dashes
        for (run, model), row in means.iterrows():
            y, ci = row.to_numpy(dtype=float), np.nan_to_num(cis.loc[(run, model)].to_numpy(dtype=float))
            keep = ~np.isnan(y)  # shallower models have no value at deeper taps
            style = line_style(models.index(model), runs.index(run), len(models), len(runs), int(keep.sum()))
            ax.plot(x[keep], y[keep], markersize=3.5, linewidth=1.6, label=label(run, model), **style)
            lo, hi, _ = clip_interval(y, ci, *LAYER_RANGE)  # errors are >= 0: the band is cut at 0
            ax.fill_between(x[keep], lo[keep], hi[keep], color=style["color"], alpha=0.18, linewidth=0)
        ax.set_xticks(x, list(means.columns), rotation=45, ha="right", fontsize=8)
        ax.set_xlabel("tap (depth order)")
        ax.set_title(LAYER_QUANTITIES[q].replace(" ||", "\n||", 1), fontsize=9)
        ax.set_ylim(bottom=0.0)
        ax.grid(True, alpha=0.35)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"where invariance comes from: {_modes(results)}, mean over seeds (and non-zero shifts), "
                 f"band = 95% CI (cut at 0)", fontsize=11)
    return fig


# x of the accuracy-consistency plot: accuracy under shift (the default), or on the unshifted images
ACCURACY_AXES = {"mean_accuracy": "accuracy under shift\n(mean over the non-zero shifts)",
                 "clean_accuracy": "clean accuracy\n(unshifted test images)"}
CONSISTENCY_LABEL = "consistency = 1 − mean flip rate\n(prediction at a shift = prediction at (0,0))"
CONSISTENCY_FILE = "consistency_vs_accuracy.png"


def plot_accuracy_consistency(results: list[Result], out_dir: str | Path, accuracy: str = "mean_accuracy") -> Path:
    """consistency_vs_accuracy.png: accuracy_consistency_figure, written."""
    return save(accuracy_consistency_figure(results, accuracy), out_dir, CONSISTENCY_FILE)


def _accuracy_points(results: list[Result], accuracy: str):
    """Per (run, model): the seeds' (x = accuracy, y = 1 - mean flip rate, at chance?), finite points only."""
    flags = seed_flags(results).set_index(["run", "model", "seed"])["at_chance"]
    points = {}
    for r in results:
        s = r.summary
        for model, g in s.groupby("model", sort=False):
            x = g[accuracy].to_numpy(float)
            y = 1.0 - g["mean_flip_rate"].to_numpy(float)
            chance = np.array([bool(flags.get((r.label, model, seed), False)) for seed in g["seed"]])
            keep = np.isfinite(x) & np.isfinite(y)  # invlab measure without labels has no accuracy
            if keep.any():
                points[(r.label, model)] = (x[keep], y[keep], chance[keep])
    return points


@plain_text
def accuracy_consistency_figure(results: list[Result], accuracy: str = "mean_accuracy") -> Figure:
    """One small point per model and seed (x = accuracy, y = consistency = 1 - mean flip rate) and a large one
    for the model's mean over seeds: the trade-off Zhang (2019) plots, so that a model is never judged on one of
    the two alone. A model that always answers one class is perfectly consistent: seeds at chance are drawn
    hollow and named in the legend, and a dotted line marks chance accuracy."""
    choose("accuracy axis", accuracy, ACCURACY_AXES)
    points = _accuracy_points(results, accuracy)
    if not points:
        raise InvlabError("no accuracy in these results (images measured without labels), so there is no "
                          "accuracy-consistency plot; the flip-rate plots still apply.")
    label = _legend(results)
    longest = max(len(label(run, model)) for run, model in points)
    ncols = 1 if longest > 45 else min(len(points), 2 if longest > 20 else 4)
    # the legend below the axes: the figure taller by its rows, so many models do not squeeze the plot
    fig = new_figure(figsize=(7.5, 5.0 + LEGEND_ROW_INCHES * max(0, math.ceil(len(points) / ncols) - 2)), dpi=DPI,
                     layout="constrained")
    ax = fig.add_subplot()
    for i, ((run, model), (x, y, chance)) in enumerate(points.items()):
        color = f"C{i % 10}"
        marker = "os^vDP*X"[(i // 10) % 8]  # more than ten models: colours repeat, markers tell them apart
        ax.scatter(x[~chance], y[~chance], s=22, color=color, marker=marker, alpha=0.75, linewidths=0)
        ax.scatter(x[chance], y[chance], s=22, facecolors="none", edgecolors=color, marker=marker)
        ax.scatter([x.mean()], [y.mean()], s=110, color=color, marker=marker, edgecolors="black", linewidths=0.8,
                   label=label(run, model), zorder=3)
    chance_levels = sorted(set(1.0 / seed_flags(results)["n_classes"]))
    for level in chance_levels:
        ax.axvline(level, color="0.5", linestyle=":", linewidth=1.0, zorder=0)
    xs = np.concatenate([p[0] for p in points.values()] + [np.array(chance_levels)])
    ys = np.concatenate([p[1] for p in points.values()])
    ax.set_xlim(max(0.0, xs.min() - 0.05), 1.02)
    ax.set_ylim(max(0.0, ys.min() - 0.05), 1.02)
    ax.set_xlabel(ACCURACY_AXES[accuracy])
    ax.set_ylabel(CONSISTENCY_LABEL)
    # over the whole figure, not the axes: a long legend beside the axes leaves them narrower than the title
    fig.suptitle(f"accuracy and consistency, {_modes(results)}: small = one seed, large = mean over seeds\n"
                 f"up and to the right is better; dotted = chance accuracy (hollow: seed at chance)", fontsize=10)
    ax.grid(True, alpha=0.35)
    # below the axes, where neither the suptitle nor long run names can collide with it
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="outside lower center", frameon=False, ncols=ncols)
    return fig


def figures(results: list[Result], metrics: tuple[str, ...] = ("flip_rate", "prob_change")) -> list[tuple[str, Figure]]:
    """(file name, figure) of every plot that applies: line plots along every axis that varies (in any result),
    heatmaps for 2-D grids, accuracy against consistency, and the layer profile of sweeps made with --layers."""
    for m in metrics:
        choose("metric", m, METRIC_COLUMNS)
    out = []
    for metric in metrics:
        for axis in AXES:
            if any(axis_slice(r.invariance, axis)[axis].nunique() > 1 for r in results):
                varying = [r for r in results if not axis_slice(r.invariance, axis).empty]
                out.append((f"{metric}_vs_{axis}.png", metric_vs_shift_figure(varying, metric, axis)))
        out.extend(heatmap_figures(results, metric))
    if _accuracy_points(results, "mean_accuracy"):
        out.append((CONSISTENCY_FILE, accuracy_consistency_figure(results)))
    with_layers = [r for r in results if r.layers is not None]
    if with_layers:
        out.append(("layers_vs_depth.png", layer_profile_figure(with_layers)))
    return out


def plot_all(results: list[Result], out_dir: str | Path,
             metrics: tuple[str, ...] = ("flip_rate", "prob_change")) -> list[Path]:
    """Every figure of figures(), written into out_dir; returns the paths."""
    return [save(fig, out_dir, name) for name, fig in figures(results, metrics)]


__all__ = ["figures", "is_2d", "plot_accuracy_consistency", "plot_all", "plot_heatmaps", "plot_layer_profile",
           "plot_metric_vs_shift", "png_bytes"]
