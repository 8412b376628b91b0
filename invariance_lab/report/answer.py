"""The answer in words that opens the HTML page, computed from the model table (tables.model_table): which model,
or which head, changes its predictions least under shift, with the numbers and their 95% intervals over seeds.

The rule (RULE says it on the page):
  * the measure is the mean flip rate: the share of predictions that change, over the non-zero shifts and seeds;
  * a model with any seed at chance (n_chance > 0, marked † in the tables) is left out of the comparison and named
    as at chance: a network that answers one class never flips, so its flip rate says nothing;
  * when the compared models have several heads and every model of the most invariant one is apart from every
    other model (95% intervals that do not overlap), the head is named: "Global average pooling makes the network
    most invariant: 0.4% of predictions change when the letter moves, against 29–39% for the flatten + dense
    heads" (the seed-question run);
  * otherwise the most and the least invariant models are named; models whose intervals overlap the most
    invariant one's are within the seed spread and said so, not ranked below it; when the ends' intervals overlap,
    the models apart from each other (if any) are named, else none is called more invariant; with one seed (no
    interval) the sentence says the spread is not known;
  * in a study each model is named with its varied keys' values, comparing several folders with its run; on
    images without labels the sentence says that being at chance cannot be told.

    answer(rep.views[0].table)                     # str
    answer(table, measure=result.meta["protocol"])  # a page of `invlab measure` folders: their images
"""

from __future__ import annotations

import math

import pandas as pd

METRIC = "mean_flip_rate"
MAX_NAMED = 4  # models at chance named one by one; more are counted
HEAD_WORDS = {"global_avg": "global average pooling", "global_max": "global max pooling",
              "flatten": "a flatten + dense head"}
MODE_WORDS = {"canvas": "inside their frame", "circular": "with wrap-around"}  # how `invlab measure` moved them
RULE = ("How this sentence is decided: models are compared by mean flip rate (the share of predictions that change, "
        "over the non-zero shifts and seeds); a model with seeds at chance (†) is left out of the comparison; a "
        "head is named when all its models are apart from every other model (95% intervals that do not overlap); "
        "models whose intervals overlap are within the seed spread and are not ranked against each other.")


def pct(v: float) -> str:
    """A rate as a percentage: one decimal below 10% ("0.4%"), whole points above ("29%")."""
    p = 100 * float(v)
    if p == 0:
        return "0%"
    if p < 0.05:
        return "< 0.1%"
    return f"{p:.1f}%" if p < 9.95 else f"{p:.0f}%"


def pct_range(lo: float, hi: float) -> str:
    """"29–39%", or "29%" when both ends print the same."""
    a, b = pct(lo), pct(hi)
    return a if a == b else f"{a.removesuffix('%')}–{b}"


def _has_interval(row) -> bool:
    return not (math.isnan(row[f"{METRIC}_lo"]) or math.isnan(row[f"{METRIC}_hi"]))


def _interval(row) -> str:
    """"95% interval 5.1–19%" over the seeds, or "one seed: no interval"."""
    if not _has_interval(row):
        return "one seed: no interval"
    return f"95% interval {pct_range(row[f'{METRIC}_lo'], row[f'{METRIC}_hi'])} over {int(row['n_seeds'])} seeds"


def _overlap(a, b) -> bool:
    """The 95% intervals of rows a and b overlap (a row without one is its mean, a point)."""
    lo_a, hi_a = (a[f"{METRIC}_lo"], a[f"{METRIC}_hi"]) if _has_interval(a) else (a[METRIC], a[METRIC])
    lo_b, hi_b = (b[f"{METRIC}_lo"], b[f"{METRIC}_hi"]) if _has_interval(b) else (b[METRIC], b[METRIC])
    return lo_a <= hi_b and lo_b <= hi_a


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _name(row, keys: list[str]) -> str:
    """The model, with what tells its rows apart where the table holds several runs: "conv_gap (quick/2026...)",
    or in a study "conv_gap (data.train_shift=3)"."""
    if not keys:
        return str(row["model"])
    if keys == ["run"]:
        return f"{row['model']} ({row['run']})"
    return f"{row['model']} ({', '.join(f'{k}={_value(row[k])}' for k in keys)})"


def _value(v) -> str:
    """A varied value as the legends write it: 0, not the 0.0 of a column that also holds 1.5."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _keys(table: pd.DataFrame) -> list[str]:
    """The columns before `model` that differ between rows: `run` when several folders are compared, a study's
    varied keys (report/study.py puts them first)."""
    before = list(table.columns[:list(table.columns).index("model")]) if "model" in table else []
    return [c for c in before if table[c].nunique(dropna=False) > 1]


def _what(measure: dict | None, transform: str = "translate") -> str:
    """What a flip rate counts: predictions on letters moved (turned, scaled) on the canvas, or on the measured
    images; a measure's own protocol says its transform."""
    if measure is None:
        return "of predictions change when the letter " + {"rotate": "is turned", "scale": "is scaled"}.get(
            transform, "moves")
    turned = measure.get("transform")
    if turned in ("rotate", "scale"):
        start, stop = (float(v) for v in (measure.get("angles" if turned == "rotate" else "scales") or (0, 0))[:2])
        by = f" by {start:g}..{stop:g} degrees" if turned == "rotate" else f" by factors {start:g}..{stop:g}"
        return (f"of predictions change when {_images(measure)} are {'turned' if turned == 'rotate' else 'scaled'}"
                f"{by if stop > start else ''} about their centre")
    if measure.get("all_shifts"):  # every roll of the images (invlab measure --all-shifts, or a grid as wide)
        return f"of predictions change when {_images(measure)} are rolled through all {measure.get('n_shifts')} " \
               "circular shifts"
    return f"of predictions change when {_images(measure)} are shifted{_shifts(measure)}"


def _images(measure: dict) -> str:
    """The measured images: "the 40 images of data/cats", "the test images of run R (40 images)"."""
    n, where = measure.get("test_images"), measure.get("images")
    if where and str(where).startswith("the "):  # a run folder's own test images (data/folder.py's words)
        return f"{where} ({n} images)" if n else str(where)
    return (f"the {n} images" if n else "the images") + (f" of {where}" if where else "")


def _shifts(measure: dict) -> str:
    """" by dx -8..8 inside their frame": the shifts of a measure, an axis held at 0 left out."""
    def span(name: str, spec) -> str:
        start, stop = (float(v) for v in spec[:2])  # [start, stop] or [start, stop, step]
        return f"{name} {start:g}" if start == stop else f"{name} {start:g}..{stop:g}"

    moved = [span(k, measure[k]) for k in ("dx", "dy") if k in measure and list(measure[k])[:2] != [0, 0]]
    mode = measure.get("mode")
    return ((" by " + " and ".join(moved)) if moved else "") + (f" {MODE_WORDS.get(mode, f'({mode} shift)')}"
                                                                 if mode else "")


def _by_head(ranked: pd.DataFrame, what: str) -> str | None:
    """The head sentence, when the most invariant head's models are all apart from every other model."""
    heads = list(dict.fromkeys(ranked["head"]))
    if len(heads) < 2 or not all(_has_interval(r) for _, r in ranked.iterrows()):
        return None  # one seed: no interval says the heads are apart
    best = ranked["head"].iloc[0]
    mine, rest = ranked[ranked["head"] == best], ranked[ranked["head"] != best]
    if any(_overlap(a, b) for _, a in mine.iterrows() for _, b in rest.iterrows()):
        return None
    others = list(dict.fromkeys(rest["head"]))
    other_words = _names([HEAD_WORDS.get(h, h).removeprefix("a ").removesuffix(" head") for h in others])
    s = "s" if len(rest) > 1 else ""
    nets = "networks" if len(mine) > 1 else "network"
    head = HEAD_WORDS.get(best, f"the {best} head")
    return (f"{head[0].upper() + head[1:]} makes the {nets} most invariant: "
            f"{pct_range(mine[METRIC].min(), mine[METRIC].max())} {what}, against "
            f"{pct_range(rest[METRIC].min(), rest[METRIC].max())} for the {other_words} head{s} "
            "(means over seeds; 95% intervals apart).")


def _ranking(ranked: pd.DataFrame, what: str, keys: list[str]) -> str:
    """The most and the least invariant model, and which models are within the seed spread of the most."""
    rows = [r for _, r in ranked.iterrows()]
    best, worst = rows[0], rows[-1]
    if not _has_interval(best) or not _has_interval(worst):
        return (f"Fewest changes: {_name(best, keys)}, {pct(best[METRIC])} {what} ({_interval(best)}); most: "
                f"{_name(worst, keys)}, {pct(worst[METRIC])} ({_interval(worst)}): with one seed there is no "
                "interval, so whether this difference exceeds the seed spread is not known.")
    apart = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1:] if _has_interval(a) and _has_interval(b)
             and not _overlap(a, b)]
    if not apart:
        return (f"No model is shown more invariant than another: from {_name(best, keys)} "
                f"({pct(best[METRIC])} {what}, {_interval(best)}) to {_name(worst, keys)} "
                f"({pct(worst[METRIC])}, {_interval(worst)}) the 95% intervals overlap: the difference is within "
                "the seed spread.")
    if _overlap(best, worst):  # the ends overlap, yet some models in between are apart from others
        pairs = "; ".join(f"{_name(a, keys)} ({pct(a[METRIC])}) below {_name(b, keys)} ({pct(b[METRIC])})"
                          for a, b in apart[:3])
        return (f"Fewest changes: {_name(best, keys)}, {pct(best[METRIC])} {what} ({_interval(best)}); most: "
                f"{_name(worst, keys)}, {pct(worst[METRIC])} ({_interval(worst)}): their 95% intervals overlap, "
                f"but these are apart: {pairs}{' (and more)' if len(apart) > 3 else ''}.")
    tied = [_name(r, keys) for r in rows[1:] if _overlap(best, r)]
    text = (f"Most invariant: {_name(best, keys)}, {pct(best[METRIC])} {what} ({_interval(best)}); "
            f"least: {_name(worst, keys)}, {pct(worst[METRIC])} ({_interval(worst)}).")
    if tied:
        verb = "is" if len(tied) == 1 else "are"
        text += (f" {_names(tied)} {verb} within the seed spread of {_name(best, keys)} "
                 "(95% intervals overlap).")
    return text


def _single(row, what: str, keys: list[str], measure: dict | None) -> str:
    worst = f"; at the worst shift {pct(row['worst_flip_rate'])}" if "worst_flip_rate" in row else ""
    spread = "" if measure is not None and not _has_interval(row) else f"; {_interval(row)}"
    return (f"{_name(row, keys)}: {pct(row[METRIC])} {what} (mean over the non-zero shifts{spread}"
            f"{worst}).")


def _at_chance(chance: pd.DataFrame, keys: list[str], where: str = "", alone: bool = False) -> str:
    """The models at chance, named; `alone`: the table's only model (nothing to leave it out of)."""
    items = [f"{_name(r, keys)} ({int(r['n_chance'])} of {int(r['n_seeds'])} seed"
             f"{'s' if r['n_seeds'] > 1 else ''})" for _, r in chance.iterrows()]
    if len(items) > MAX_NAMED:  # the table marks each (†): a list this long would push it off the first screen
        items = [f"{len(items)} models (marked † in the table) have seeds that"]
    verb = "answers" if len(items) == 1 and len(chance) == 1 else "answer"
    text = (f"{_names(items)} {verb} at chance{where}: {'its' if len(chance) == 1 else 'their'} flip rate says "
            "nothing about invariance")
    return text + ("." if alone else " and is left out (`invlab report --drop-chance` drops those seeds).")


def answer(table: pd.DataFrame, measure: dict | None = None, transform: str = "translate") -> str:
    """The page's opening sentences from a model table (columns model, head, n_seeds, n_chance, mean_flip_rate
    with _lo and _hi; worst_flip_rate; run when several folders are compared). `measure`: the protocol of the
    `invlab measure` folder(s) reported (meta.json, kind "measure"), so the words name the images measured;
    `transform`: what the letters underwent (sweep.transform: translate, rotate or scale)."""
    keys = _keys(table)
    what = _what(measure, transform)
    ranked = table[table["n_chance"] == 0].sort_values(METRIC, kind="stable")
    chance = table[table["n_chance"] > 0]
    parts = []
    if ranked.empty:
        if len(table) > 1:
            parts.append("No model can be compared: every one has seeds at chance.")
    elif len(ranked) == 1:
        parts.append(_single(ranked.iloc[0], what, keys, measure))
    else:
        measured = ranked[[_has_interval(r) for _, r in ranked.iterrows()]]
        lone = ranked.drop(measured.index)
        if len(measured) >= 2 and len(lone):  # one seed (--drop-chance may leave one): ranked apart from the rest
            parts.append(_by_head(measured, what) or _ranking(measured, what, keys))
            parts.append("Not ranked, with one seed and so no interval: " + ", ".join(
                f"{_name(r, keys)} ({pct(r[METRIC])})" for _, r in lone.iterrows()) + ".")
        else:
            parts.append(_by_head(ranked, what) or _ranking(ranked, what, keys))
    if len(chance):
        where = f" on {_images(measure)}" if measure is not None and ranked.empty else ""
        parts.append(_at_chance(chance, keys, where, alone=len(table) == 1))
    if measure is not None and measure.get("labels") is False and not ranked.empty:
        parts.append("The images have no labels, so whether a model answers at chance is not known: one that gives "
                     "every image the same class changes 0% too.")
    return " ".join(parts)
