"""One per-shift accumulator for every evaluator. Brute force over letters (sweep.run_sweep), raster images read a
batch at a time (stream.stream_sweep) and the all-shift engine (engine.allshift_sweep) all hand their softmax
outputs to ShiftSums, so each metric, the reference shift, repeated grid points and the neighbour metric have one
definition (docs/metrics.md):

    grid = Grid(lines)                                # lines of (dx, dy) shifts; grid.shifts: what to evaluate
    sums = ShiftSums(grid)                            # one per model
    pred = sums.add(shifts, probs, ref_probs, labels, images)   # probs: (len(shifts), batch, classes), any
                                                      # batch order; images: the slice of test images they are
    sums.add_neighbours(shifts, pred, before)         # neighbour flips, against the previous shift on its line
    walk_grid(grid, {key: sums}, ref_preds, predict)  # brute force: every step of grid.walk, both of the above
    result = sweep_result({key: sums}, n, labelled=True)   # tables.SweepResult, one row per model x shift

The reference is (0, 0), always evaluated (even off the grid: clean accuracy). A rotate or scale sweep's grid points
are 1-tuples, (angle,) or (scale,): Grid(lines, "rotate"), its reference (0,) or (1,) (core/columns.REFERENCE), its
table's column angle or scale in place of dx, dy; everything else is the same. A grid point met again (the axes
grid's lines cross at (0, 0)) is one row, with the sums of its first evaluation. A shift's neighbour is the shift
one step back on the first line on which it has one (data/shifts.previous_on_line); a line's first shift has none.
Per image, two flags over every shift of the grid, the reference included: wrong somewhere, changed somewhere
(its prediction differs from the reference's); robust_accuracy and consistent_fraction count the images with
neither (summary.csv, per model and seed: WorstCase).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..core.columns import CONSISTENT, CORRECT_FLIP, GRID_COLUMNS, REFERENCE, ROBUST
from ..core.errors import FactoryError
from ..core.metrics import tv_distance
from ..data.shifts import grid_points, previous_on_line
from .tables import ModelKey, SweepResult, model_words, tidy_table

Shift = tuple[float, ...]  # (dx, dy), or a rotate or scale sweep's (angle,) or (scale,)
ORIGIN: Shift = REFERENCE["translate"]  # the reference shift of flip_rate and prob_change
# inputs(chunk, dx, dy) -> images of the test items in `chunk` (a slice), translated by (dx, dy)
Inputs = Callable[[slice, float, float], torch.Tensor]


@dataclass(frozen=True)
class Step:
    """One shift of the grid walked line by line, as brute force meets it."""

    shift: Shift
    before: Shift | None  # the shift one step back on this line (None at a line's start)
    new: bool  # first met, and not the reference (which is added first): its sums are taken here
    neighbour: bool  # its neighbour flips are taken here, against `before`


class Grid:
    """The shifts of a sweep: `points` (the table's rows, in sweep order), `shifts` (what is evaluated: the
    points, with the reference first when it is not among them), `previous` (each shift's neighbour) and `walk`
    (the steps of brute force, which meets the neighbours in line order). transform (core/columns.GRID_COLUMNS):
    what a point is, its reference `origin` and its table `columns`."""

    def __init__(self, lines: list[list[Shift]], transform: str = "translate"):
        self.lines = lines
        self.origin, self.columns = REFERENCE[transform], GRID_COLUMNS[transform]
        self.points = grid_points(lines)
        self.shifts = self.points if self.origin in self.points else [self.origin, *self.points]
        self.index = {p: i for i, p in enumerate(self.shifts)}
        self.ref = self.index[self.origin]
        self.previous = previous_on_line(lines)
        self.walk = list(self._walk())
        # what brute force evaluates, per batch: the reference, then every step of the walk away from it
        self.evaluations = 1 + sum(step.shift != self.origin for step in self.walk)

    def _walk(self) -> Iterator[Step]:
        seen, counted = {self.origin}, set()
        for line in self.lines:
            before = None
            for p in line:
                neighbour = before is not None and p not in counted  # == previous_on_line's choice
                yield Step(p, before, p not in seen, neighbour)
                seen.add(p)
                if neighbour:
                    counted.add(p)
                before = p


class ShiftSums:
    """One model's per-shift sums over batches of images: correct predictions, flips against the reference,
    summed and largest total-variation distance to the reference, flips against the neighbour."""

    CORRECT, FLIPS, TV_SUM, TV_MAX, NEIGHBOUR_FLIPS, CORRECT_FLIPS = range(6)

    def __init__(self, grid: Grid):
        self.grid = grid
        self.sums = np.zeros((len(grid.shifts), 6))
        # per image (grown as batches arrive, in any order): wrong at some shift, changed at some shift
        self.wrong = np.zeros(0, dtype=bool)
        self.changed = np.zeros(0, dtype=bool)

    def add(self, shifts: list[Shift], probs: torch.Tensor, ref_probs: torch.Tensor,
            labels: torch.Tensor | None, images: slice) -> torch.Tensor:
        """Add one batch at `shifts`: probs (len(shifts), m, classes), ref_probs (m, classes) the same images at
        the reference, `images` the slice of the test set they are (for the per-image flags); returns the
        predictions (len(shifts), m)."""
        i = np.array([self.grid.index[p] for p in shifts], dtype=np.intp)
        pred = probs.argmax(-1)
        tv = tv_distance(probs, ref_probs)  # (len(shifts), m); exactly 0 at the reference
        ref_pred = ref_probs.argmax(-1)
        flipped = pred != ref_pred
        self._grow(images.stop)
        # the counts and the flags reach the host in one copy each: for a small batch the calls cost more than the
        # numbers. numpy's indexed += keeps the last entry of a shift given twice in `shifts`.
        if labels is not None:
            right = pred == labels
            counts = torch.stack([right.sum(1), flipped.sum(1), (flipped & (ref_pred == labels)).sum(1)])
            flags = torch.stack([(~right).any(0), flipped.any(0)])
        else:
            counts, flags = flipped.sum(1)[None], flipped.any(0)[None]
        counts, flags = counts.cpu().numpy(), flags.cpu().numpy()
        tvs = torch.stack([tv.sum(1), tv.amax(1)]).double().cpu().numpy()  # float32 per batch, float64 over batches
        s = self.sums
        if labels is not None:
            s[i, self.CORRECT] += counts[0]
            self.wrong[images] |= flags[0]
            # flips of the images correct at the reference (their number: CORRECT at the reference)
            s[i, self.CORRECT_FLIPS] += counts[2]
        self.changed[images] |= flags[-1]
        s[i, self.FLIPS] += counts[1 if labels is not None else 0]
        s[i, self.TV_SUM] += tvs[0]
        s[i, self.TV_MAX] = np.maximum(s[i, self.TV_MAX], tvs[1])
        return pred

    def _grow(self, n: int) -> None:
        if n > len(self.wrong):
            self.wrong = np.concatenate([self.wrong, np.zeros(n - len(self.wrong), dtype=bool)])
            self.changed = np.concatenate([self.changed, np.zeros(n - len(self.changed), dtype=bool)])

    def add_neighbours(self, shifts: list[Shift], pred: torch.Tensor, before: torch.Tensor) -> None:
        """Add the flips of predictions pred (len(shifts), m) against those at each shift's neighbour."""
        i = [self.grid.index[p] for p in shifts]
        self.sums[i, self.NEIGHBOUR_FLIPS] += (pred != before).sum(1).cpu().numpy()

    def rows(self, key: ModelKey, n: int, labelled: bool) -> list[dict]:
        """One row per grid point: the sums over n images as invariance.csv's columns (accuracy NaN unlabelled)."""
        out = []
        for p in self.grid.points:
            s = self.sums[self.grid.index[p]]
            out.append(dict(model=key[0], seed=key[1], **dict(zip(self.grid.columns, p)), n_images=n,
                            accuracy=s[self.CORRECT] / n if labelled else np.nan, flip_rate=s[self.FLIPS] / n,
                            prob_change=s[self.TV_SUM] / n,
                            neighbor_flip_rate=s[self.NEIGHBOUR_FLIPS] / n if p in self.grid.previous else np.nan,
                            max_prob_change=s[self.TV_MAX], **{CORRECT_FLIP: self._correct_flip_rate(s, labelled)}))
        return out

    def _correct_flip_rate(self, s: np.ndarray, labelled: bool) -> float:
        """Flips among the images correct at the reference, over their number (NaN unlabelled or none correct)."""
        correct = self.sums[self.grid.ref, self.CORRECT]
        return s[self.CORRECT_FLIPS] / correct if labelled and correct > 0 else np.nan

    def clean_accuracy(self, n: int, labelled: bool) -> float:
        return float(self.sums[self.grid.ref, self.CORRECT] / n) if labelled else np.nan

    def worst_case(self, n: int, labelled: bool) -> dict[str, float]:
        """{robust_accuracy: the fraction of the n images correct at every shift (NaN unlabelled),
        consistent_fraction: the fraction whose prediction is the same at every shift} (core/columns.WORST_CASE)."""
        self._grow(n)
        return {ROBUST: float((~self.wrong[:n]).sum() / n) if labelled else np.nan,
                CONSISTENT: float((~self.changed[:n]).sum() / n)}


def walk_grid(grid: Grid, sums: dict[ModelKey, ShiftSums], origin_preds: dict[ModelKey, torch.Tensor],
              predict: Callable[[Shift, bool], dict[ModelKey, torch.Tensor]]) -> None:
    """Brute force's walk after the reference (whose predictions are origin_preds): at each step of grid.walk the
    predictions of every model, predict(shift, new) (which adds a shift's sums where `new`), and the neighbour
    flips against the step before. A shift met again is evaluated again (its neighbours need its predictions),
    not added again; the reference is not evaluated again."""
    before = None
    for step in grid.walk:
        preds = origin_preds if step.shift == grid.origin else predict(step.shift, step.new)
        if step.neighbour:
            for k, s in sums.items():
                s.add_neighbours([step.shift], preds[k][None], before[k][None])
        before = preds


def sweep_result(sums: dict[ModelKey, ShiftSums], n: int, labelled: bool) -> SweepResult:
    """The tidy table and clean accuracies of every model's sums over n images. A model whose probabilities were
    NaN for some image at some shift (NaN or +inf logits) has left NaN in that shift's probability-change sum, which
    finite outputs never do: it is refused here, once per sweep rather than checked batch by batch."""
    for key, s in sums.items():
        bad = np.isnan(s.sums[:, ShiftSums.TV_SUM])
        if bad.any():
            shift = s.grid.shifts[int(bad.argmax())]
            raise FactoryError(f"{model_words(key)} gave NaN or infinite logits at shift {shift}, so the numbers "
                               f"measured would be NaN: a weight that is NaN or infinite (a training that diverged), "
                               f"inputs that take it out of range, or a forward that makes them")
    rows = [row for key, s in sums.items() for row in s.rows(key, n, labelled)]
    return SweepResult(table=tidy_table(rows, list(sums)),
                       clean_accuracy={k: s.clean_accuracy(n, labelled) for k, s in sums.items()},
                       worst_case={k: s.worst_case(n, labelled) for k, s in sums.items()})
