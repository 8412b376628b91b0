"""A study's runs compared (run/study.py makes them): the report tables with one column per varied key in place of
the run column, and the figure of a metric against a varied key.

    rep = build_study_report(Path("results/factorial/study-20261127-160351"), by="model")
    plot_study(rep, folder, "data.train_shift", "mean_flip_rate", Path("figs"))
    rep = compare_folders(paths)       # what `invlab report PATH...` shows: run folders, or one study folder

The figure is built with matplotlib.figure.Figure, not pyplot (as plots.py): no global backend is touched.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..core.errors import InvlabError, RunFolderError, choose
from ..store.find import read_study
from ..store.layout import META_FILE, is_study
from ..store.meta import read_meta
from ..run.study import study_runs, study_state
from .figure import legend_below, plain_text
from .plots import save
from .tables import Report, build_report, folder_list

if TYPE_CHECKING:  # for annotations only: matplotlib is imported when the figure is made
    from matplotlib.figure import Figure

DPI = 120


def compare_folders(paths: list[str | Path], *, by: str = "model", metric: str = "flip_rate", axis: str | None = None,
                    drop_chance: bool = False) -> Report:
    """tables.build_report over run, sweep or measure folders, or build_study_report over one study folder (a
    study is reported alone: its runs are compared with a column per varied key)."""
    paths = folder_list(paths)
    studies = [p for p in paths if is_study(p)]
    if not studies:
        return build_report(paths, by=by, metric=metric, axis=axis, drop_chance=drop_chance)
    if len(paths) > 1:
        raise InvlabError(f"{studies[0]} is a study: report it alone (its runs are compared with a column per "
                          "varied key), or name run folders instead")
    return build_study_report(studies[0], by=by, metric=metric, axis=axis, drop_chance=drop_chance)


def build_study_report(folder: Path, **options) -> Report:
    """report.build_report over a study's runs, each table's run column replaced by one column per varied key
    (the value that run was given). Every run must be complete; options as build_report's."""
    study = read_study(folder)
    runs = study_runs(folder)
    missing = [", ".join(f"{k}={v}" for k, v in values.items()) for values, path in runs if path is None]
    if missing:
        raise RunFolderError(f"{folder}: the study is not finished ({study_state(study)}): no run yet for "
                             f"{'; '.join(missing[:5])}. Run the same `invlab run ... --vary` command again to finish "
                             f"it; `invlab status {folder}` shows each run")
    _refuse_one_label(folder, [path for _, path in runs])
    rep = build_report([path for _, path in runs], **options)
    keys = list(study["vary"])
    # each run by its label (<name>/<run id>, as load_result makes it), not by order: --drop-chance may have left a
    # run out of rep.results, whose seeds rep.dropped still names
    by_label = {f"{m['name']}/{m['run_id']}": values for values, path in runs if (m := read_meta(path))}
    views = []
    for view in rep.views:
        t = view.table.copy()
        labels = t.pop("run") if "run" in t else pd.Series([rep.results[0].label] * len(t), index=t.index)
        for i, key in enumerate(keys):
            t.insert(i, key, [_typed(by_label[label][key]) for label in labels])
        views.append(replace(view, table=t))
    # each run named by its varied values in the plots' legends, the gallery, the protocol lines and the notes on
    # seeds at chance, as the tables name it
    named = {label: ", ".join(f"{k}={_typed(values.get(k, ''))}" for k in keys)
             for label, values in by_label.items()}
    results = [replace(r, label=named[r.label]) for r in rep.results]
    flags, dropped = (f.assign(run=f["run"].map(lambda label: named.get(label, label)))
                      for f in (rep.flags, rep.dropped))
    return replace(rep, views=views, results=results, flags=flags, dropped=dropped)


def _refuse_one_label(folder: Path, paths: list[Path]) -> None:
    """Two runs of a study whose meta.json give one name and run id: the report would name them by their paths
    (store/results.load_results), to which no varied value is tied."""
    seen: dict[str, Path] = {}
    for path in paths:
        meta = read_meta(path)
        label = f"{meta['name']}/{meta['run_id']}"
        if label in seen and Path(path).resolve() != Path(seen[label]).resolve():  # one folder twice: build_report
            raise RunFolderError(f"{folder}: its runs {seen[label]} and {path} give the same name and run id "
                                 f"({label}) in their {META_FILE}; each run of a study is a folder of its own (was "
                                 "one copied over the other?)")
        seen[label] = path


def _typed(text: str):
    """A varied value for a table: a number when it reads as one (so columns sort and plot as numbers)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


@plain_text
def study_figure(rep: Report, folder: Path, key: str, metric: str) -> tuple[str, Figure]:
    """(file name, figure): `metric` (a model-table column, e.g. mean_flip_rate) against the varied `key`, a line
    per model (and per value of the other varied keys), error bars the 95% CI over seeds. Not yet drawn: the
    caller checks the file it would replace first."""
    from matplotlib.figure import Figure  # ~0.3 s to import: only where a figure is made, not in every `invlab run`

    t = rep.views[0].table
    choose("column to plot", metric, [c for c in rep.views[0].values])
    study = read_study(folder)
    others = [k for k in study["vary"] if k != key]
    fig = Figure(figsize=(7, 4.5), dpi=DPI)
    ax = fig.subplots()
    bounded = f"{metric}_lo" in t and f"{metric}_hi" in t  # the interval as the tables show it: cut to the range
    for group, g in t.groupby(["model", *others], sort=False):
        group = group if isinstance(group, tuple) else (group,)
        label = group[0] + "".join(f", {k}={v}" for k, v in zip(others, group[1:]))
        if "n_chance" in g and (g["n_chance"] > 0).any():  # as the tables' †: its consistency says nothing there
            label += " († seeds at chance)"
        g = g.sort_values(key)
        spread = ([g[metric] - g[f"{metric}_lo"], g[f"{metric}_hi"] - g[metric]] if bounded else g[f"{metric}_ci"])
        ax.errorbar(g[key].astype(str) if g[key].dtype == object else g[key], g[metric], yerr=spread,
                    marker="o", capsize=3, label=label)
    ax.set_xlabel(key)
    ax.set_ylabel(f"{metric}\n(mean over seeds)")
    ax.set_title(f"{study['name']}: {metric} against {key}\nbars: 95% CI over seeds"
                 f"{', cut to the range of the values' if bounded else ''}", fontsize=10)
    legend_below(fig, ax, (7, 4.5))  # inside the axes, even at its "best" place, it could cover a point or bar
    fig.tight_layout()
    return f"study_{metric}_vs_{key.replace('.', '_')}.png", fig


def varied(rep: Report, folder: Path) -> list[str]:
    """The study's varied keys that still take more than one value in the model table (--drop-chance can leave
    one): a figure against a key that does not vary would be single points."""
    table = rep.views[0].table
    return [key for key in read_study(folder)["vary"] if key in table and table[key].nunique() > 1]


def plot_study(rep: Report, folder: Path, key: str, metric: str, out_dir: Path) -> Path:
    """study_figure, written as PNG into out_dir."""
    name, fig = study_figure(rep, folder, key, metric)
    return save(fig, out_dir, name)
