"""Render the report tables (tables.py) for people: rich tables for the terminal, markdown, csv. The cell texts
and protocol sentences are also those of the HTML page (html.py) and the claims' answers (claims/), so every
rendering says the same; only the CLI prints.

Conventions every rendering shares (the captions say them where they apply):
  * a cell is "mean ± h", h the half-width of the 95% t interval over seeds; where that interval reaches outside
    the range the quantity can take ([0, 1] for every rate, >= 0 for layer errors), it is cut there and shown as
    "mean [low, high]*" instead (the cut end printed as the range's end: "0.840 [0.322, 1]*", "0.003 [0, 0.018]*"),
    so no printed bound is impossible;
  * a model with seeds at chance (clean accuracy within 5 points of 1/n_classes) is marked "†" and counted in
    the n_chance column: at chance, its consistency says nothing (`invlab report --drop-chance` leaves them out);
  * csv keeps plain numbers: `<v>`, `<v>_ci` (half-width), `<v>_lo`, `<v>_hi` (the cut interval), n_chance.

    rep = build_report(["results/seed_question/20261125-103836"], drop_chance=True)
    print(render(rep, "markdown").text)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import pandas as pd
from rich.table import Table
from rich.text import Text

from ..core.errors import choose
from .gallery import pick_stills
from .certificate import certificates
from .papers import per_test_set_views
from .protocol import protocol_lines
from .tables import (CHANCE_MARK, LAYER_RANGE, RATE_RANGE, Report, Result, View, layer_table, model_table,
                     seed_counts, seed_flags, wide_view)
from ..core.stats import CHANCE_MARGIN
from ..core.columns import FACTOR_COLUMNS, WORST_CASE_COLUMNS

FORMATS = ("table", "markdown", "csv")
CLIP_MARK = "*"  # after a cut interval: "0.840 [0.322, 1]*"
# Short headers for the terminal, where width is scarce, and the HTML page (markdown and csv keep the column
# names).
SHORT_HEADERS = {"clean_accuracy": "clean acc", "mean_accuracy": "acc mean", "worst_accuracy": "acc worst",
                 "mean_flip_rate": "flip mean", "worst_flip_rate": "flip worst", "mean_prob_change": "Δp mean",
                 "worst_prob_change": "Δp worst", "mean_neighbor_flip_rate": "step flip", "n_seeds": "seeds",
                 "n_chance": "at chance", "mean_flip_rate_correct": "flip mean, correct",
                 "robust_accuracy": "robust acc", "consistent_fraction": "consistent"}
# What a terminal shows of the model table (`invlab run` and `invlab sweep` at the end, `invlab report` without
# --wide): four numbers of about 13 characters each, so that the table fits 100 columns. The others: --wide.
TERMINAL_METRICS = ["clean_accuracy", "mean_flip_rate", "worst_flip_rate", "mean_prob_change"]
TERMINAL_VALUES = 7  # shift or layer columns a terminal shows without --wide (0, the ends, the halvings)


def cell(mean: float, ci: float, lo: float, hi: float, bounds: tuple[float, float]) -> tuple[str, bool]:
    """(text, cut): "0.381 ± 0.089", or "0.840 [0.322, 1]*" where mean ± ci as printed leaves `bounds`."""
    if mean is None or math.isnan(mean):
        return "–", False
    # an unbounded quantity (a Lie derivative, a layer's error) can be far below 0.001: significant digits there
    small = not math.isfinite(bounds[1]) and 0 < abs(mean) < 1e-3
    show = (lambda v: f"{v:.3g}") if small else (lambda v: f"{v:.3f}")
    text = show(mean)
    if ci is None or math.isnan(ci):
        return text, False  # one seed: no interval
    shown_m, shown_h = (mean, ci) if small else (round(mean, 3), round(ci, 3))
    slack = 0.0 if small else 1e-9  # rounding's own error, for numbers shown to 3 decimals
    if shown_m - shown_h < bounds[0] - slack or shown_m + shown_h > bounds[1] + slack:
        ends = [f"{b:g}" if b in bounds else show(b) for b in (lo, hi)]  # the cut end is the range's own end
        return f"{text} [{ends[0]}, {ends[1]}]{CLIP_MARK}", True
    return f"{text} ± {show(ci)}", False


def text_rows(view: View) -> tuple[list[str], list[list[str]], list[bool], bool]:
    """(headers, rows of cell text, numeric?, any interval cut) of a view; marks models with seeds at chance."""
    t = view.table
    derived = {f"{v}_{s}" for v in view.values for s in ("ci", "lo", "hi")}
    heads = [c for c in t.columns if c not in derived]
    rows, any_cut = [], False
    for i in range(len(t)):
        row = []
        for c in heads:
            if c in view.values:
                text, cut = cell(*(float(t[k].iloc[i]) for k in (c, f"{c}_ci", f"{c}_lo", f"{c}_hi")), view.bounds)
                any_cut |= cut
            elif c == "model" and "n_chance" in t and t["n_chance"].iloc[i] > 0:
                text = f"{t[c].iloc[i]} {CHANCE_MARK}"
            else:
                text = str(t[c].iloc[i])
            row.append(text)
        rows.append(row)
    numeric = [c in view.values or pd.api.types.is_numeric_dtype(t[c]) for c in heads]
    return heads, rows, numeric, any_cut


def clip_note(bounds: tuple[float, float]) -> str:
    where = (f"outside the range [{bounds[0]:g}, {bounds[1]:g}] of the quantity" if math.isfinite(bounds[1]) else
             f"below {bounds[0]:g}, the least the quantity can be")  # a layer error: "the range ≥ 0" read oddly
    return f"{CLIP_MARK} the 95% interval reaches {where}, so it is cut there and shown as mean [low, high]."


def seed_notes(flags: pd.DataFrame, dropped: pd.DataFrame | None = None) -> list[str]:
    """Footnotes on seeds: those at chance (flagged), those --drop-chance left out, runs of unknown class count,
    and models far below chance (their class order probably differs: the note invlab measure recorded)."""
    out = []
    if "class_order" in flags:
        for run, model, note in dict.fromkeys(zip(flags["run"], flags["model"], flags["class_order"])):
            if note:
                out.append(f"{model}{f' ({run})' if flags['run'].nunique() > 1 else ''}: {note}")
    at = flags[flags["at_chance"]]
    if len(at):
        level = " or ".join(f"{1 / n:.3f}" for n in sorted(set(at["n_classes"])))
        out.append(f"{CHANCE_MARK} at chance: its consistency says nothing. Seeds whose clean accuracy is within "
                   f"{CHANCE_MARGIN * 100:g} points of chance (1/n_classes = {level}): {_seed_list(at)}. "
                   "`invlab report --drop-chance` leaves them out.")
    if dropped is not None and len(dropped):
        n = len(dropped)
        out.append(f"--drop-chance left out {n} seed{'s' if n > 1 else ''} at chance: {_seed_list(dropped)}.")
    assumed = list(dict.fromkeys(flags.loc[flags["assumed"], "run"]))
    if assumed:
        out.append(f"number of classes unknown for {', '.join(assumed)} (summary.csv has no n_classes and no "
                   "config.yaml says): 2 assumed, chance = 0.5.")
    return out


def _seed_list(flags: pd.DataFrame) -> str:
    """"conv_only seeds 0, 1 (clean accuracy 0.500, 0.475); conv_gap seed 2 (clean accuracy 0.500)"."""
    several, items = flags["run"].nunique() > 1, []
    for (run, model), g in flags.groupby(["run", "model"], sort=False):
        items.append(f"{f'{run} ' if several else ''}{model} seed{'s' if len(g) > 1 else ''} "
                     f"{', '.join(map(str, g['seed']))} (clean accuracy "
                     f"{', '.join(f'{a:.3f}' for a in g['clean_accuracy'])})")
    return "; ".join(items)


def to_rich_table(view: View, caption_lines: list[str], flags: pd.DataFrame,
                  dropped: pd.DataFrame | None = None, title: str | None = None, hide: tuple[str, ...] = ()) -> Table:
    """A rich Table of a view, the protocol and the footnotes below it. The three factor columns are shown as
    one (downsample/head/padding) to fit a terminal; the columns in `hide` are left out (n_chance: the † beside a
    model and the footnote say it)."""
    heads, rows, numeric, any_cut = text_rows(view)
    shown = [i for i, h in enumerate(heads) if h not in hide]
    heads, numeric, rows = [heads[i] for i in shown], [numeric[i] for i in shown], [[r[i] for i in shown] for r in rows]
    if all(f in heads for f in FACTOR_COLUMNS):
        at = heads.index(FACTOR_COLUMNS[0])
        idx = [heads.index(f) for f in FACTOR_COLUMNS]
        rows = [r[:at] + [" / ".join(r[i] for i in idx)] + [x for j, x in enumerate(r) if j >= at and j not in idx]
                for r in rows]  # spaces let it wrap
        numeric = numeric[:at] + [False] + [x for j, x in enumerate(numeric) if j >= at and j not in idx]
        heads = heads[:at] + ["/".join(FACTOR_COLUMNS)] + [h for j, h in enumerate(heads) if j >= at and j not in idx]
    caption = Text("\n".join(caption_lines + [clip_note(view.bounds)] * any_cut + seed_notes(flags, dropped)))
    table = Table(title=Text(title or view.title), caption=caption, caption_justify="left")
    for h, num in zip(heads, numeric):
        # numbers wrap as "0.381 / ± 0.089" in narrow terminals rather than being cut
        table.add_column(Text(SHORT_HEADERS.get(h, h)), justify="right" if num else "left",
                         no_wrap=h == "model", min_width=5 if num else None,
                         # a number or a run label is folded, never cut
                         overflow="fold" if num or h == "run" else "ellipsis")
    for r in rows:
        table.add_row(*(Text(x) for x in r))
    return table


def to_markdown(view: View, caption_lines: list[str], flags: pd.DataFrame,
                dropped: pd.DataFrame | None = None) -> str:
    """A GitHub pipe table under a bold title; protocol and footnotes below it, one paragraph per line."""
    heads, rows, numeric, any_cut = text_rows(view)
    lines = [f"**{view.title}**", "", "| " + " | ".join(heads) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    for line in caption_lines + [clip_note(view.bounds)] * any_cut + seed_notes(flags, dropped):
        lines += ["", line]
    return "\n".join(lines) + "\n"


def to_csv(views: list[View]) -> str:
    """The views' tables as one CSV, plain numbers; stacked views get a first column naming their axis/quantity."""
    parts = []
    for v in views:
        t = v.table.copy()
        if v.key is not None:
            t.insert(0, *v.key)
        parts.append(t)
    return pd.concat(parts, ignore_index=True).to_csv(index=False)


@dataclass
class Rendered:
    tables: list[Table] = field(default_factory=list)  # for "table"
    text: str = ""  # for "markdown" and "csv"
    side: list[str] = field(default_factory=list)  # csv: protocol and footnotes, for stderr
    after: list[str] = field(default_factory=list)  # table: lines printed under the tables (certificates)


def render(rep: Report, fmt: str, wide: bool = False) -> Rendered:
    """What `invlab report` prints, in one of FORMATS; a terminal table with every column when `wide`."""
    choose("table format", fmt, FORMATS)
    caption = protocol_lines(rep.results)
    certified = certificates(rep.results)  # sweeps and measurements over every circular shift
    if fmt == "csv":
        return Rendered(text=to_csv(rep.views), side=caption + seed_notes(rep.flags, rep.dropped) + certified)
    if fmt == "markdown":
        text = "\n".join(to_markdown(v, caption, rep.flags, rep.dropped) for v in rep.views)
        listed = [f"- {t.strip()}" if t.startswith("  ") else f"\n{t}\n" for t in certified]
        return Rendered(text=text + "".join(f"\n{t}" for t in listed))
    tables = []
    for v in rep.views:
        shown, note = for_terminal(v, wide)
        tables.append(to_rich_table(shown, caption + [note] * bool(note), rep.flags, rep.dropped,
                                    hide=() if wide else ("n_chance",)))
    return Rendered(tables=tables, after=certified)


def for_terminal(view: View, wide: bool = False) -> tuple[View, str | None]:
    """(the view as a terminal shows it, a note saying what was left out or None). `wide` shows every column.
    Otherwise a model table keeps TERMINAL_METRICS (the worst-case columns, robust accuracy and consistent
    fraction, are left to --wide, markdown, csv and the HTML page) and a shift or layer table at most
    TERMINAL_VALUES columns (for shifts: 0, the ends and the halvings between), so that the table fits 100
    columns without every cell wrapping."""
    keep = list(view.values) if wide else [v for v in view.values if v not in WORST_CASE_COLUMNS]
    if not wide and "clean_accuracy" in view.values:
        keep = [v for v in keep if v in TERMINAL_METRICS]
    elif not wide and len(keep) > TERMINAL_VALUES:
        try:
            picked = pick_stills([float(v) for v in keep], TERMINAL_VALUES)
        except ValueError:  # layer taps: the first, the last and evenly between
            picked = sorted({round(i * (len(keep) - 1) / (TERMINAL_VALUES - 1)) for i in range(TERMINAL_VALUES)})
        keep = [keep[i] for i in picked]
    gone = [v for v in view.values if v not in keep]
    if not gone:
        return view, None
    drop = [f"{v}{s}" for v in gone for s in ("", "_ci", "_lo", "_hi")]
    shown = [v for v in view.values if v in keep]
    note = (f"{len(shown)} of the {len(view.values)} columns shown; --wide shows every one, --format markdown or "
            "csv too")
    return replace(view, table=view.table.drop(columns=drop), values=shown), note


def brief_tables(result: Result, title: str) -> list[Table]:
    """What `invlab run` and `invlab sweep` print at the end: the model table's main columns, the clean accuracy on
    each of the run's other test sets (data.test_sets) when it has some, and the equivariance error per layer when
    the sweep made a layer profile."""
    flags = seed_flags([result])
    df = model_table([result]).drop(columns="run")
    keep = ["model", *FACTOR_COLUMNS, "n_seeds", "n_chance"]
    keep += [f"{m}{s}" for m in TERMINAL_METRICS for s in ("", "_ci", "_lo", "_hi")]
    caption = protocol_lines([result]) + ["every column: invlab report FOLDER --wide (or --format markdown); what each "
                                          "means: docs/metrics.md"]
    tables = [to_rich_table(View(title, df[keep], TERMINAL_METRICS, RATE_RANGE), caption, flags, hide=("n_chance",))]
    tables += [to_rich_table(view, [], flags.head(0)) for view in per_test_set_views([result])]  # notes: above
    if result.layers is not None:
        mean, ci = layer_table([result])
        view = wide_view("equivariance error per layer (mean over shifts, ± 95% CI over seeds)", mean, ci,
                         seed_counts(flags), LAYER_RANGE)
        canvas = [CANVAS_LAYERS] if result.meta.get("protocol", {}).get("mode") == "canvas" else []
        tables.append(to_rich_table(replace(view, table=view.table.drop(columns="run")), canvas + caption, flags))
    return tables


# under a canvas-mode layer profile, whose errors an equivariant network has too (docs/measure.md, step 3)
CANVAS_LAYERS = ("canvas mode: each tap's map is compared with the reference map moved and filled with zeros where "
                 "the frame lets new pixels in, so a convolution's bias on the blank border counts as error even for "
                 "an equivariant network; --mode circular measures equivariance itself")
