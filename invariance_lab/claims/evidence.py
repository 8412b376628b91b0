"""The evidence a claim's verdict reads (claims.py): the loaded run and sweeps, mean ± CI over seeds as the report
tables compute it (report.model_table, stats), and the comparisons the verdict rules use. No metric is computed
here: every number is a column of the run's or a sweep's CSVs, aggregated over shifts or seeds.

    ev = Evidence(cfg, {"run": load_result(run_dir), "every_roll": load_result(sweep_dir)})
    str(ev.stat("run", "conv_maxpool", "mean_flip_rate"))   # "0.298 [0.21, 0.39]"
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..schema.config import Config
from ..report.display import cell
from ..nn.downsample import get_downsample
from ..nn.models import block_downsamples
from ..report.tables import RATE_RANGE, Result, model_table
from ..core.stats import ci_halfwidth, clip_interval
from ..core.columns import MAX_COLUMN
from .rules import EXACT_TV
from ..config.models import resolved_models


@dataclass(frozen=True)
class Stat:
    """mean ± 95% t half-width over seeds, cut to `bounds` (stats.clip_interval); printed as display.cell."""

    mean: float
    ci: float
    lo: float
    hi: float
    bounds: tuple[float, float] = RATE_RANGE

    @classmethod
    def of(cls, values, bounds=RATE_RANGE) -> Stat:
        v = np.asarray(values, dtype=float)
        mean, half = float(np.nanmean(v)), ci_halfwidth(v)
        lo, hi, _ = clip_interval(mean, half, *bounds)
        return cls(mean, half, float(lo), float(hi), bounds)

    def __str__(self) -> str:
        return cell(self.mean, self.ci, self.lo, self.hi, self.bounds)[0]


def compare(a: Stat, b: Stat) -> str:
    """'lower' / 'higher' when a's interval lies wholly below / above b's, else 'within the seed spread'; with one
    seed (no interval: NaN bounds) there is no spread to compare, and the text says so."""
    if any(math.isnan(v) for v in (a.lo, a.hi, b.lo, b.hi)):
        return "not compared: one seed has no spread (give seeds: [0, 1, 2])"
    return "lower" if a.hi < b.lo else "higher" if a.lo > b.hi else "within the seed spread"


@dataclass
class Evidence:
    """The run and its sweeps, loaded (results.load_result), with the few lookups the judges share."""

    cfg: Config
    results: dict[str, Result]  # "run" (the run's own canvas sweep) and the keys of answers.SWEEPS
    _tables: dict = field(default_factory=dict)

    def table(self, source: str) -> pd.DataFrame:
        if source not in self._tables:
            self._tables[source] = model_table([self.results[source]]).set_index("model")
        return self._tables[source]

    def stat(self, source: str, model: str, metric: str) -> Stat:
        r = self.table(source).loc[model]
        return Stat(r[metric], r[f"{metric}_ci"], r[f"{metric}_lo"], r[f"{metric}_hi"])

    def max_tv(self, source: str, model: str) -> float:
        """The largest probability change (TV) of any image at any non-zero shift, over every seed."""
        s = self.results[source].summary
        return float(s.loc[s.model == model, MAX_COLUMN].max())

    def rows(self, source: str, model: str) -> pd.DataFrame:
        inv = self.results[source].invariance
        return inv[(inv.model == model) & ((inv.dx != 0) | (inv.dy != 0))]

    def at_chance(self, models) -> dict[str, int]:
        t = self.table("run")
        return {m: int(t.loc[m, "n_chance"]) for m in models if t.loc[m, "n_chance"] > 0}

    def total_stride(self, model: str) -> int:
        """The product of every block's stride (under first_stride: 1 the first block's is 1)."""
        return math.prod(get_downsample(kind).stride for kind in block_downsamples(resolved_models(self.cfg)[model]))

    def engine_gap(self, models) -> float:
        """Largest |mean TV, all-shift engine - brute force| over the shifts both sweeps measured."""
        a, b = self.results["every_roll"].invariance, self.results["layers"].invariance
        keys = ["model", "seed", "dx", "dy"]
        both = a[a.model.isin(models)].merge(b[b.model.isin(models)], on=keys, suffixes=("_e", "_b"))
        return float((both.prob_change_e - both.prob_change_b).abs().max())


@dataclass
class Finding:
    verdict: str  # one of claims.VERDICTS
    condition: str  # when it holds and when not, with the numbers that say so
    numbers: list[tuple[str, str, str]]  # (quantity, model, value): the table of the page
    scope: str = ""  # the verdict's conditions in a few words, beside it in the verdict table ("for ... only")


def tv(x: float) -> str:
    return f"{x:.1e}"


def lattice(rows: pd.DataFrame, step: int) -> pd.Series:
    return (rows.dx % step == 0) & (rows.dy % step == 0)


def per_seed(rows: pd.DataFrame, metric: str) -> Stat:
    """Mean over the given shifts per seed, then mean ± CI over seeds."""
    return Stat.of(rows.groupby("seed")[metric].mean())


def exact_shifts(rows: pd.DataFrame, tol: float) -> pd.Series:
    """Per (dx, dy): True where no image of any seed moves by more than `tol` (TV)."""
    return rows.groupby(["dx", "dy"])[MAX_COLUMN].max() <= tol


def lattice_numbers(ev: Evidence, m: str) -> tuple[dict, list[tuple[str, str, str]]]:
    """Exactness of `m` over every circular shift, on and off the multiples of its total stride (engine), and on
    the multiples along the axes (brute force)."""
    rows, brute, step = ev.rows("every_roll", m), ev.rows("layers", m), ev.total_stride(m)
    on = lattice(rows, step)
    exact = exact_shifts(rows, EXACT_TV)  # per non-zero (dx, dy), over every seed
    shifts = exact.index.to_frame(index=False)
    odd = ((shifts.dx % 2 != 0) | (shifts.dy % 2 != 0)).to_numpy()
    # None: not even the multiples of the total stride are all exact (a network that is no shuffle at all)
    period = next((d for d in range(1, step + 1) if step % d == 0 and exact[lattice(shifts, d).to_numpy()].all()),
                  None)
    out = {"step": step, "n_on": int(lattice(shifts, step).sum()), "on": float(rows[on][MAX_COLUMN].max()),
           "on_brute": float(brute[lattice(brute, step)][MAX_COLUMN].max()), "odd_exact": int(exact[odd].sum()),
           "n_odd": int(odd.sum()), "period": period, "off": per_seed(rows[~on], "flip_rate")}
    numbers = [(f"largest probability change at the {out['n_on']} non-zero multiples of the total stride {step}", m,
                tv(out["on"])),
               (f"the same at the multiples of {step} along the axes, brute force", m, tv(out["on_brute"])),
               ("odd shifts at which no image of any seed changes", m, f"{out['odd_exact']} of {out['n_odd']}"),
               ("finest step of the exact lattice (px)", m, str(period)),
               ("mean flip rate at the other shifts", m, str(out["off"])),
               ("mean probability change at the other shifts", m, str(per_seed(rows[~on], "prob_change")))]
    return out, numbers


def exact_on_lattice_only(found: dict) -> bool:
    return max(found["on"], found["on_brute"]) <= EXACT_TV and found["odd_exact"] == 0
