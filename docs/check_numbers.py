"""Recompute the numbers the README and docs/results.md quote from the runs they cite (all but the ink control's
section of docs/results.md), and print each beside the sentence that quotes it.

    python docs/check_numbers.py results/seed_question/<id> results/antialiasing/<id> \
        results/outline_letters/<id> results/where_invariance_comes_from/<id> results/position_probe/<id> \
        outline_epochs15=results/epochs15/outline_letters/<id> position_probe_data1=results/data1/position_probe/<id> \
        ink_invariant=results/ink_invariant/ink_control/<id>

A maintainer runs it after regenerating the runs the pages name (docs/contributing.md lists the commands; the runs
take minutes, so the test suite does not: tests/test_check_numbers.py runs the recomputation on a fake run folder).
Each folder is recognised by its meta.json name, or by KEY for KEY=PATH (a second run of one config: outline letters
trained 15 epochs, the position probe with data seed 1, the ink control with ink: invariant). Sweeps are found
under RUN/sweeps/: the where_invariance_comes_from run needs its `--layers` and `--kind parts --dx -3:3 --dy -3:3`
sweeps, the position probe its `--layers` sweep.

Each check is a sentence as the page prints it, with its numbers written `{}` (`{<}` for an upper bound, "at most
N"). The script finds the sentence in the page (whitespace and line breaks do not matter), reads the printed
numbers, recomputes them from the run's CSVs and compares at the printed precision: "0.4" agrees with any value
in [0.35, 0.45], "3.0e-09" with [2.95e-09, 3.05e-09]. The tables that `invlab report RUN --format markdown`
printed are compared row by row with what it prints now. Exit 0 when everything agrees, 1 when a number or a row
differs or a sentence is no longer in its page (edit the page and this list together), 2 on a bad folder.
Checks whose run was not given are listed as skipped.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from invariance_lab import InvlabError, build_report, load_result
from invariance_lab.report.display import render

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


# --- recomputation: plain functions of a run's tables (tests/test_check_numbers.py runs them on a fake run) ---

def model_mean(summary: pd.DataFrame, model: str, column: str) -> float:
    """A summary.csv column of one model, mean over seeds (what a report's model table prints)."""
    return float(summary.loc[summary["model"] == model, column].mean())


def shift_values(invariance: pd.DataFrame, model: str, column: str, dx: float, dy: float) -> pd.Series:
    """One model's values at one shift, one per seed."""
    rows = invariance[(invariance["model"] == model) & (invariance["dx"] == dx) & (invariance["dy"] == dy)]
    if rows.empty:
        raise KeyError(f"no rows of {model} at dx={dx}, dy={dy}")
    return rows[column]


def axis_means(invariance: pd.DataFrame, model: str, column: str, axis: str) -> pd.Series:
    """Mean over seeds at each shift along one axis (the other 0), indexed by the shift, zero included."""
    other = "dy" if axis == "dx" else "dx"
    rows = invariance[(invariance["model"] == model) & (invariance[other] == 0)]
    return rows.groupby(axis)[column].mean()


def ratio_range(invariance: pd.DataFrame, reference: str, models: list[str], axis: str, period: int,
                column: str = "prob_change") -> tuple[float, float]:
    """Smallest and largest ratio reference / model of the seed-mean `column`, over `models` and the non-zero
    shifts along `axis` that are not multiples of `period` (where both are non-zero)."""
    ref = axis_means(invariance, reference, column, axis)
    ratios = []
    for model in models:
        ours = axis_means(invariance, model, column, axis)
        keep = [s for s in ref.index if s % period != 0 and ours[s] > 0]
        ratios += list(ref[keep] / ours[keep])
    return min(ratios), max(ratios)


def _circular_errors(r) -> tuple[float, float]:
    """conv_gap_circular's equivariance error, mean over seeds: the largest at a block's tap, and at the head."""
    taps = r.layers.loc[r.layers["model"] == "conv_gap_circular"].groupby("layer_name")["mean_equivariance_error"].mean()
    return float(taps.drop("head").max()), float(taps["head"])


def layer_mean(layers: pd.DataFrame, model: str, tap: str, column: str = "mean_equivariance_error") -> float:
    """A layers_summary.csv quantity of one model and tap, mean over seeds (`invlab report --by layer`)."""
    return float(layers.loc[(layers["model"] == model) & (layers["layer_name"] == tap), column].mean())


def decimals(printed: str) -> float:
    """Half a unit of the last printed digit: the tolerance a printed number carries."""
    mantissa, _, exponent = printed.lower().partition("e")
    places = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - places)


def agrees(printed: str, value: float, bound: bool = False) -> bool:
    """Does `value` print as `printed` (or, for a bound, stay at or below it)? Within the printed precision."""
    tol = decimals(printed) * (1 + 1e-9) + 1e-15
    return value <= float(printed) + tol if bound else abs(value - float(printed)) <= tol


def pattern(template: str) -> re.Pattern:
    """A sentence template -> a regex that finds it in whitespace-normalised page text, a group per number."""
    parts = re.split(r"\{<?\}", " ".join(template.split()))
    return re.compile(NUMBER.join(re.escape(p) for p in parts))


def bounds(template: str) -> list[bool]:
    return [slot == "{<}" for slot in re.findall(r"\{<?\}", template)]


def page_text(page: str) -> str:
    return " ".join((ROOT / page).read_text().split())


# --- the runs the pages cite ---

@dataclass
class Runs:
    """The loaded runs by config name; the where_invariance_comes_from sweeps as '<name>/layers' and '/parts'."""

    found: dict

    def __getitem__(self, key: str):
        return self.found[key]


def load_runs(folders: list[str]) -> Runs:
    """Load each folder under its meta.json name, or under KEY for an argument KEY=PATH (a second run of a config)."""
    found = {}
    for arg in folders:
        key, _, path = arg.rpartition("=") if "=" in arg else ("", "", arg)
        folder = Path(path)
        result = load_result(folder)
        name = key or result.meta["name"]
        found[name] = result
        for sweep in sorted((folder / "sweeps").glob("*/meta.json")):
            try:
                swept = load_result(sweep.parent)
            except InvlabError:  # an unfinished sweep: not one the pages cite
                continue
            if swept.layers is not None:
                found[f"{name}/layers"] = swept
            if swept.meta["protocol"].get("kind") == "parts":
                found[f"{name}/parts"] = swept
    return Runs(found)


# --- the checks: (page, run, sentence with {} numbers, recompute) ---

SQ, AA, OUT, WHERE = "seed_question", "antialiasing", "outline_letters", "where_invariance_comes_from"
PROBE, PROBE1 = "position_probe", "position_probe_data1"  # the second: --set data.seed=1, passed as KEY=PATH


def pct(x: float) -> float:
    return 100 * x


@dataclass
class Check:
    page: str
    run: str  # the key in Runs
    sentence: str  # as the page prints it, numbers as {} ({<}: an upper bound)
    compute: Callable  # Result -> the numbers, in order


def _s(model, column):
    return lambda r: [model_mean(r.summary, model, column)]


FLATTEN = ["conv_only", "conv_maxpool", "strided_conv"]
OUTLINE15 = "outline_epochs15"  # outline_letters trained 15 epochs (conv_gap only): pass it as outline_epochs15=PATH
INK_INVARIANT = "ink_invariant"  # configs/ink_control.yaml with --set data.ink=invariant: ink_invariant=PATH


def _range(r, models, column, scale=1.0):
    values = [scale * model_mean(r.summary, m, column) for m in models]
    return [min(values), max(values)]


def _shift_range(r, model, column, dxs, dy=0):
    """The lowest and highest of one model's seed means over horizontal shifts `dxs` (at `dy`)."""
    values = [shift_values(r.invariance, model, column, dx, dy).mean() for dx in dxs]
    return [min(values), max(values)]


def _at(model, column, dx, dy, how="mean"):
    return lambda r: [getattr(shift_values(r.invariance, model, column, dx, dy), how)()]


def _unchanged(r, model, lo, hi):
    rows = r.invariance[(r.invariance["model"] == model) & (r.invariance["dy"] == 0)
                        & r.invariance["dx"].between(lo, hi)]
    return [bool((rows["flip_rate"] == 0).all())]


def _far(r, model, column, axis, lo, hi):
    means = axis_means(r.invariance, model, column, axis)
    far = means[means.index.to_series().abs().between(lo, hi)]
    return [far.min(), far.max()]


def _layers(r, models, taps):
    values = [layer_mean(r.layers, m, tap) for m in models for tap in taps]
    return [min(values), max(values)]


def _taps(model, *taps):
    return lambda r: [layer_mean(r.layers, model, tap) for tap in taps]


def first_failure(invariance: pd.DataFrame, model: str, threshold: float = 0.25) -> float:
    """The smallest distance |dx| + |dy| at which some shift's seed-mean flip rate passes `threshold`."""
    means = invariance[invariance["model"] == model].groupby(["dx", "dy"])["flip_rate"].mean()
    failing = [abs(dx) + abs(dy) for (dx, dy), flip in means.items() if flip > threshold]
    return min(failing) if failing else float("nan")


def _aps_largest(r):
    return [r.invariance.loc[r.invariance["model"].str.startswith("aps"), "prob_change"].max()]


def _blur5_against_blur3(r):
    """blur5 changes the output more than blur3 along dx and less along dy (means over the off-lattice rolls)."""
    def off(model, axis):
        means = axis_means(r.invariance, model, "prob_change", axis)
        return means[[s for s in means.index if s % 4 != 0]].mean()
    return [off("blur5", "dx") > off("blur3", "dx"), off("blur5", "dy") < off("blur3", "dy")]


def _blur_exact_at_4(r):
    """Every BlurPool network's mean probability change is float round-off (<= 1e-6) at every non-zero roll that
    is a multiple of 4, and above it at every other roll, along both axes."""
    ok = True
    for model in ("blur2", "blur3", "blur5"):
        for axis in ("dx", "dy"):
            means = axis_means(r.invariance, model, "prob_change", axis)
            on = means[[s for s in means.index if s % 4 == 0 and s != 0]]
            off = means[[s for s in means.index if s % 4 != 0]]
            ok = ok and bool((on <= 1e-6).all()) and bool((off > 1e-6).all())
    return ok


def _period(r, model="maxpool", period=8):
    """Rolls d and d - period give the same mean prob_change (max pooling repeats with its total stride)."""
    means = axis_means(r.invariance, model, "prob_change", "dx")
    pairs = [(d, d - period) for d in means.index if d - period in means.index]
    return [all(abs(means[a] - means[b]) <= 1e-6 * max(means[a], 1e-12) for a, b in pairs)]


CHECKS: list[Check] = [
    # README.md: the main run, the anti-aliasing run, the layer profile
    Check("README.md", SQ, "`conv_gap` changes {}% of its predictions on average ({}% at its worst shift, dy = ±8: "
          "zero padding makes the border special; the frame also cuts 31% of the letters at those shifts, and they "
          "make 25 of the 106 flips there), against {}–{}% for the three networks with a flatten + dense head",
          lambda r: [pct(model_mean(r.summary, "conv_gap", "mean_flip_rate")),
                     pct(model_mean(r.summary, "conv_gap", "worst_flip_rate")),
                     *_range(r, FLATTEN, "mean_flip_rate", 100)]),
    Check("README.md", SQ, "at their worst shift they are right on only {}–{}% of the letters",
          lambda r: _range(r, FLATTEN, "worst_accuracy", 100)),
    Check("README.md", SQ, "`strided_conv` is right on every letter at dy = +6 px in all three seeds",
          lambda r: [bool((shift_values(r.invariance, "strided_conv", "accuracy", 0, 6) == 1).all())]),
    Check("README.md", SQ, "`conv_maxpool` changes no prediction for horizontal shifts of −2 … +3 px",
          lambda r: _unchanged(r, "conv_maxpool", -2, 3)),
    Check("README.md", SQ, "where the other flatten networks already change half of theirs at +3 px",
          lambda r: [abs(shift_values(r.invariance, m, "flip_rate", 3, 0).mean() - 0.5) < 0.01
                     for m in ("conv_only", "strided_conv")]),
    Check("README.md", SQ, "from 5 px on it fails like them (flip rates {}–{} at horizontal shifts of 5 to 8 px)",
          lambda r: _shift_range(r, "conv_maxpool", "flip_rate", [s * d for d in range(5, 9) for s in (-1, 1)])),
    Check("README.md", WHERE + "/layers", "their global average invariant up to float round-off (mean error {},",
          lambda r: [_circular_errors(r)[1]]),
    Check("README.md", WHERE + "/layers", "(equivariance error exactly 0 at every block",
          lambda r: [_circular_errors(r)[0] == 0]),
    Check("README.md", AA, "({}–{} × smaller along x, only {}–{} × along y)",
          lambda r: [*ratio_range(r.invariance, "maxpool", ["blur2", "blur3", "blur5"], "dx", 4),
                     *ratio_range(r.invariance, "maxpool", ["blur2", "blur3", "blur5"], "dy", 4)]),
    Check("README.md", AA, "BlurPool is exact at multiples of 4 and elsewhere makes that change smaller but not zero",
          lambda r: [_blur_exact_at_4(r)]),
    Check("README.md", AA, "After stride-2 max pooling the output changes at every roll that is not a multiple of "
          "the total stride",
          lambda r: [bool((axis_means(r.invariance, "maxpool", "prob_change", axis)
                           .loc[lambda s: s.index % 8 != 0] > 1e-6).all()) for axis in ("dx", "dy")]),
    Check("README.md", AA, "removes it (at most {}, float round-off", _aps_largest),
    Check("README.md", INK_INVARIANT, "`conv_gap` is {} accurate and changes {}% of its predictions under shift on "
          "average (at most {}% at a seed's worst shift",
          lambda r: [model_mean(r.summary, "conv_gap", "clean_accuracy"),
                     pct(model_mean(r.summary, "conv_gap", "mean_flip_rate")),
                     pct(r.summary.loc[r.summary["model"] == "conv_gap", "worst_flip_rate"].max())]),
    # docs/results.md, the main result
    Check("docs/results.md", SQ, "`conv_gap` changes its prediction for {}% of images on average and for {}% at its "
          "worst shift (mean over seeds; {}% in seed 0)",
          lambda r: [pct(model_mean(r.summary, "conv_gap", "mean_flip_rate")),
                     pct(model_mean(r.summary, "conv_gap", "worst_flip_rate")),
                     pct(r.summary.loc[(r.summary["model"] == "conv_gap") & (r.summary["seed"] == 0),
                                       "worst_flip_rate"].iloc[0])]),
    Check("docs/results.md", SQ, "its accuracy stays between {} and {} at every horizontal shift",
          lambda r: [axis_means(r.invariance, "conv_gap", "accuracy", "dx").min(),
                     axis_means(r.invariance, "conv_gap", "accuracy", "dx").max()]),
    Check("docs/results.md", SQ, "(from ±{} px for `conv_only` and `strided_conv`, ±{} px for `conv_maxpool`, the "
          "first distance at which a shift changes over 25% of predictions)",
          lambda r: [max(first_failure(r.invariance, m) for m in ("conv_only", "strided_conv")),
                     first_failure(r.invariance, "conv_maxpool")]),
    Check("docs/results.md", SQ, "(from ±{} px for `conv_only` and `strided_conv`",
          lambda r: [min(first_failure(r.invariance, m) for m in ("conv_only", "strided_conv"))]),
    Check("docs/results.md", SQ, "some shifts are at chance (accuracy {}, one class for every letter)",
          _at("conv_only", "accuracy", 0, -6)),
    Check("docs/results.md", SQ, "(worst-shift accuracy {} for `conv_only` and {} for `strided_conv`)",
          lambda r: [model_mean(r.summary, m, "worst_accuracy") for m in ("conv_only", "strided_conv")]),
    Check("docs/results.md", SQ, "(`strided_conv` is right on every letter at dy = +6 in all three seeds: "
          "accuracy {})", _at("strided_conv", "accuracy", 0, 6, "min")),
    Check("docs/results.md", SQ, "changes no prediction for horizontal shifts of −2 … +3 px in any seed",
          lambda r: _unchanged(r, "conv_maxpool", -2, 3)),
    Check("docs/results.md", SQ, "change half of theirs (flip rates {} and {})",
          lambda r: [shift_values(r.invariance, m, "flip_rate", 3, 0).mean() for m in ("conv_only", "strided_conv")]),
    Check("docs/results.md", SQ, "is the lowest of the three flatten models ({} vs {}–{}, though its interval",
          lambda r: [model_mean(r.summary, "conv_maxpool", "mean_flip_rate"),
                     *_range(r, ["conv_only", "strided_conv"], "mean_flip_rate")]),
    Check("docs/results.md", SQ, "(flip rates {}–{} at horizontal shifts of 5 to 8 px)",
          lambda r: _far(r, "conv_maxpool", "flip_rate", "dx", 5, 8)),
    Check("docs/results.md", SQ, "for {}% of images on average (`mean_neighbor_flip_rate`), against {}% for "
          "`conv_only`, which does not subsample at all, and {}% for max pooling",
          lambda r: [pct(model_mean(r.summary, m, "mean_neighbor_flip_rate"))
                     for m in ("strided_conv", "conv_only", "conv_maxpool")]),
    Check("docs/results.md", SQ, "No seed is at chance on clean images (`n_chance` {})",
          lambda r: [int(r.summary["at_chance"].astype(str).eq("True").sum())]),
    # docs/results.md, outline letters
    Check("docs/results.md", OUT, "(mean flip rates {}–{};", lambda r: _range(r, FLATTEN, "mean_flip_rate")),
    Check("docs/results.md", OUT, "`conv_only` misclassifies every test letter at its worst shift",
          lambda r: [bool((r.summary.loc[r.summary["model"] == "conv_only", "worst_accuracy"] == 0).all())]),
    Check("docs/results.md", OUT, "changes almost nothing ({}% of predictions on average; {}% at its worst shift",
          lambda r: [pct(model_mean(r.summary, "conv_gap", c)) for c in ("mean_flip_rate", "worst_flip_rate")]),
    Check("docs/results.md", OUT, "model here ({} on centred letters against {})",
          lambda r: [model_mean(r.summary, "conv_gap", "clean_accuracy"), *_range(r, FLATTEN, "clean_accuracy")[1:]]),
    Check("docs/results.md", OUT, "The ink baseline of this data is {}: total ink alone tells A from B in {}% of",
          lambda r: [r.meta["ink_baseline"]["accuracy"], pct(r.meta["ink_baseline"]["accuracy"])]),
    Check("docs/results.md", OUTLINE15, "it is right on {} of the centred letters and still "
          "changes almost nothing under shift (mean flip rate {}, worst shift {})",
          lambda r: [model_mean(r.summary, "conv_gap", c) for c in ("clean_accuracy", "mean_flip_rate",
                                                                    "worst_flip_rate")]),
    # docs/results.md, anti-aliasing
    Check("docs/results.md", AA, "(worst-shift flip rate at most {}%, mean over seeds;",
          lambda r: [pct(r.summary.groupby("model")["worst_flip_rate"].mean().max())]),
    Check("docs/results.md", AA, "stride 8 (the pattern repeats with period 8)", _period),
    Check("docs/results.md", AA, "{}–{} × less along dx, only {}–{} × less along dy",
          lambda r: [*ratio_range(r.invariance, "maxpool", ["blur2", "blur3", "blur5"], "dx", 4),
                     *ratio_range(r.invariance, "maxpool", ["blur2", "blur3", "blur5"], "dy", 4)]),
    Check("docs/results.md", AA, "it changes the output more than `blur3` along dx and less along dy",
          _blur5_against_blur3),
    Check("docs/results.md", AA, "its largest mean change at any roll and seed is {}", _aps_largest),
    # docs/results.md, where invariance comes from
    Check("docs/results.md", WHERE, "Every network reaches {}–{} clean accuracy (mean over seeds)",
          lambda r: [r.summary.groupby("model")["clean_accuracy"].mean().min(),
                     r.summary.groupby("model")["clean_accuracy"].mean().max()]),
    Check("docs/results.md", WHERE + "/layers", "every block is exactly equivariant, bit for bit on the CPU (error 0",
          lambda r: [_circular_errors(r)[0] == 0]),
    Check("docs/results.md", WHERE + "/layers", "and the pooled output invariant up to float round-off (mean error {}:",
          lambda r: [_circular_errors(r)[1]]),
    Check("docs/results.md", WHERE + "/layers", "({}–{} for `conv_gap` and `conv_only` in blocks 2 and 3)",
          lambda r: _layers(r, ["conv_gap", "conv_only"], ["block2.conv", "block2.down", "block3.conv", "block3.down"])),
    Check("docs/results.md", WHERE + "/layers", "({}–{} for `conv_only` and `strided_conv`, {} for `conv_maxpool`)",
          lambda r: [*_layers(r, ["conv_only", "strided_conv"], ["head"]), layer_mean(r.layers, "conv_maxpool", "head")]),
    Check("docs/results.md", WHERE + "/layers", "error back down to {} (`conv_gap`), {} (`blurpool`) and {} "
          "(`conv_maxpool_gap`)",
          lambda r: [layer_mean(r.layers, m, "head") for m in ("conv_gap", "blurpool", "conv_maxpool_gap")]),
    Check("docs/results.md", WHERE + "/layers", "in blocks 1 and 3 ({} → {}, {} → {}) but not in block 2 ({} → {})",
          _taps("conv_maxpool", "block1.conv", "block1.down", "block3.conv", "block3.down", "block2.conv",
                "block2.down")),
    Check("docs/results.md", WHERE + "/layers", "in all three blocks (last: {} → {})",
          _taps("blurpool", "block3.conv", "block3.down")),
    Check("docs/results.md", WHERE + "/layers", "BlurPool's `.down` tap is above its `.conv` tap in all three blocks",
          lambda r: [layer_mean(r.layers, "blurpool", f"block{i}.down") > layer_mean(r.layers, "blurpool", f"block{i}.conv")
                     for i in (1, 2, 3)]),
    Check("docs/results.md", WHERE + "/layers", "({} vs {} at `block3.down`) and a head error of {} against {} for",
          lambda r: [layer_mean(r.layers, "blurpool", "block3.down"), layer_mean(r.layers, "conv_maxpool", "block3.down"),
                     layer_mean(r.layers, "blurpool", "head"), layer_mean(r.layers, "conv_maxpool_gap", "head")]),
    Check("docs/results.md", PROBE + "/layers", "(`zeros_gap`: {}, {}, {} at `block1.conv`,",
          _taps("zeros_gap", "block1.conv", "block2.conv", "block3.conv")),
    Check("docs/results.md", PROBE + "/layers", "while every block tap of the circular ones stays at {}",
          lambda r: [r.layers[r.layers["model"].str.startswith("circular") & (r.layers["layer_name"] != "head")]
                     .groupby(["model", "layer_name"])["mean_equivariance_error"].mean().max()]),
    Check("docs/results.md", PROBE + "/layers", "(`circular_max_gap`'s head is at {}:",
          _taps("circular_max_gap", "head")),
    Check("docs/results.md", WHERE + "/parts", "mean flip rate {}% for `conv_only`, {}% for `conv_maxpool`, {}% for "
          "`conv_gap`, and {}% for `strided_conv`, `blurpool` and `aps` (worst shift {}%, {}% and {}%)",
          lambda r: [*(pct(model_mean(r.summary, m, "mean_flip_rate")) for m in ("conv_only", "conv_maxpool", "conv_gap")),
                     max(pct(model_mean(r.summary, m, "mean_flip_rate")) for m in ("strided_conv", "blurpool", "aps")),
                     *(pct(model_mean(r.summary, m, "worst_flip_rate")) for m in ("strided_conv", "blurpool", "aps"))]),
]


@dataclass
class TableCheck:
    page: str
    run: str
    anchor: str  # text just before the table in the page
    by: str = "model"


TABLES: list[TableCheck] = [
    TableCheck("docs/results.md", SQ, "## The main result"),
    TableCheck("docs/results.md", OUT, "**Filled outline letters**"),
    TableCheck("docs/results.md", AA, "Real output (`invlab run configs/antialiasing.yaml"),
    TableCheck("docs/results.md", WHERE + "/layers", "**1. Layer by layer", by="layer"),
    TableCheck("docs/results.md", WHERE + "/parts", "**2. Part displacement.**"),
]


@dataclass
class ShiftTableCheck:
    """A page table of mean prob_change per roll along one axis (rows: models; columns: axis=0..8)."""

    page: str
    run: str
    anchor: str
    axis: str


def _probe_accuracies(runs_found: dict, models, keys=(PROBE, PROBE1)) -> list[float]:
    return [a for k in keys for a in runs_found[k].summary.loc[runs_found[k].summary["model"].isin(models),
                                                               "clean_accuracy"]]


def probe_cells(runs_found: dict, page: str, anchor: str) -> list[tuple[str, str, float]]:
    """(model, printed, recomputed) for the position-probe table: per model, clean accuracy of seeds 0, 1, 2 for
    data seed 0 (PROBE), then for data seed 1 (PROBE1)."""
    cells = []
    for row in table_after(page, anchor)[2:]:
        model, *rest = row.strip("| ").split(" | ")
        values = [a for k in (PROBE, PROBE1) for a in runs_found[k].summary.set_index(["model", "seed"])
                  .sort_index().loc[model, "clean_accuracy"]]
        cells += [(model, printed, value) for printed, value in zip(rest[-6:], values)]
    return cells


SHIFT_TABLES = [
    ShiftTableCheck("docs/results.md", AA, "numbers as their positive twins", "dx"),
    ShiftTableCheck("docs/results.md", AA, "and vertical:", "dy"),
]


def shift_table_cells(page: str, anchor: str) -> list[tuple[str, float, str]]:
    """(model, shift, printed) for every cell of the shift table after `anchor`."""
    rows = table_after(page, anchor)
    shifts = [float(h.split("=")[1]) for h in rows[0].strip("| ").split(" | ")[1:]]
    cells = []
    for row in rows[2:]:
        model, *printed = row.strip("| ").split(" | ")
        cells += [(model, s, p) for s, p in zip(shifts, printed)]
    return cells


def report_rows(result, by: str, table: int = 0) -> set[str]:
    """The rows of one of the tables `invlab report --format markdown` prints (the first: the model table, or the
    layer table of the equivariance error): a page's row matches only the table it was copied from (any table
    once let a row of the normalised-variance table pass for the equivariance error's)."""
    tables, rows = [], []
    for line in render(build_report([result.path], by=by), "markdown").text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append(" ".join(line.split()))
        elif rows:
            tables.append(set(rows))
            rows = []
    return tables[table] if table < len(tables) else set()


def table_after(page: str, anchor: str) -> list[str]:
    """The rows of the first markdown table after `anchor` in the page (header and separator included)."""
    lines = (ROOT / page).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if anchor in line)
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    rows = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        rows.append(" ".join(line.split()))
    return rows


def run_checks(runs: Runs) -> tuple[list[tuple], list[str]]:
    """Every check: (page, run, sentence, printed, recomputed, verdict) rows, and the runs that were missing."""
    rows, missing = [], []
    for check in CHECKS:
        if check.run not in runs.found:
            missing.append(check.run)
            rows.append((check.page, check.run, check.sentence, "", "", "skipped"))
            continue
        hit = pattern(check.sentence).search(page_text(check.page))
        if hit is None:
            rows.append((check.page, check.run, check.sentence, "", "", "SENTENCE NOT IN PAGE"))
            continue
        values = check.compute(runs[check.run])
        if not hit.groups():  # a sentence without numbers states facts: each recomputed one must hold
            ok = all(bool(v) for v in values)
            rows.append((check.page, check.run, check.sentence, "", "holds" if ok else "fails",
                         "ok" if ok else "CONTRADICTED"))
            continue
        for printed, value, bound in zip(hit.groups(), values, bounds(check.sentence)):
            ok = agrees(printed, value, bound)
            rows.append((check.page, check.run, check.sentence, printed, f"{value:.4g}", "ok" if ok else "MISMATCH"))
    for table in TABLES:
        if table.run not in runs.found:
            missing.append(table.run)
            rows.append((table.page, table.run, f"table after '{table.anchor}'", "", "", "skipped"))
            continue
        fresh = report_rows(runs[table.run], table.by)
        for row in table_after(table.page, table.anchor):
            if set(row) <= {"|", "-", ":", " "}:
                continue
            rows.append((table.page, table.run, row[:60], "row", "", "ok" if row in fresh else "MISMATCH"))
    for table in SHIFT_TABLES:
        if table.run not in runs.found:
            missing.append(table.run)
            continue
        for model, shift, printed in shift_table_cells(table.page, table.anchor):
            means = axis_means(runs[table.run].invariance, model, "prob_change", table.axis)
            ok = agrees(printed, means[shift])
            rows.append((table.page, table.run, f"prob_change {model} {table.axis}={shift:g}", printed,
                         f"{means[shift]:.4g}", "ok" if ok else "MISMATCH"))
    if PROBE in runs.found and PROBE1 in runs.found:
        for model, printed, value in probe_cells(runs.found, "docs/results.md", "**3. Position probe**"):
            rows.append(("docs/results.md", f"{PROBE}(+_data1)", f"clean accuracy {model}", printed, f"{value:.4g}",
                         "ok" if agrees(printed, value) else "MISMATCH"))
        for sentence, values in PROBE_SENTENCES(runs.found):
            hit = pattern(sentence).search(page_text("docs/results.md"))
            if hit is None:
                rows.append(("docs/results.md", PROBE, sentence, "", "", "SENTENCE NOT IN PAGE"))
                continue
            if not hit.groups():
                ok = all(values)
                rows.append(("docs/results.md", PROBE, sentence, "", "holds" if ok else "fails",
                             "ok" if ok else "CONTRADICTED"))
            for printed, value in zip(hit.groups(), values):
                rows.append(("docs/results.md", PROBE, sentence, printed, f"{value:.4g}",
                             "ok" if agrees(printed, value) else "MISMATCH"))
    else:
        missing += [k for k in (PROBE, PROBE1) if k not in runs.found]
    return rows, sorted(set(missing))


# The position probe's sentences: they read two runs (data seeds 0 and 1) at once (PROBE_SENTENCES)
PROBE_TEMPLATES = ["With **circular padding** the answer is 0.500 for every seed, exactly,",
                   "the zero-padded networks read position almost perfectly ({}–{}).",
                   "0 (0.500 for all three seeds) and only barely on data seed 1 ({}–{}).",
                   "did **not** learn the task at all on data seed 0 (0.500 for all three seeds)"]


def PROBE_SENTENCES(found: dict) -> list[tuple[str, list]]:
    """PROBE_TEMPLATES, each with the values it prints (or the facts it states) recomputed from the two runs."""
    zeros = _probe_accuracies(found, ["zeros_gap", "zeros_max_gap"])
    k3 = _probe_accuracies(found, ["zeros_gap_k3"], (PROBE1,))
    return list(zip(PROBE_TEMPLATES, [
        [a == 0.5 for a in _probe_accuracies(found, ["circular_gap", "circular_max_gap"])],
        [min(zeros), max(zeros)],
        [min(k3), max(k3)],
        [a == 0.5 for a in _probe_accuracies(found, ["zeros_gap_k3"], (PROBE,))],
    ]))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    try:
        runs = load_runs(argv)
    except InvlabError as exc:
        print(f"check_numbers: {exc}", file=sys.stderr)
        return 2
    rows, missing = run_checks(runs)
    for page, run, sentence, printed, value, verdict in rows:
        short = " ".join(sentence.split())
        short = short if len(short) <= 70 else short[:67] + "..."
        print(f"{verdict:<9} {page:<22} {run:<34} {printed:>9} {value:>10}  {short}")
    bad = [r for r in rows if r[-1] not in ("ok", "skipped")]
    print(f"{len(rows)} numbers and rows checked: {len(bad)} disagree"
          + (f"; skipped, no run given: {', '.join(missing)}" if missing else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
