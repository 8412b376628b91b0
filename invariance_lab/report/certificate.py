"""The certificate of a sweep or measurement over every circular shift (protocol all_shifts): per model, invariant
or the shift that breaks it. `invlab sweep --all-shifts` and `invlab measure --all-shifts` print it, `invlab
report` prints it under its tables and the HTML page shows it under the model table.

    for text in certificates(results):
        print(text)
"""

from __future__ import annotations

from ..core.columns import INVARIANT_TV, MAX_COLUMN, WORST_SHIFT_COLUMNS
from ..core.stats import first_max
from ..store.results import Result


def certificate_lines(result: Result) -> list[str]:
    """For a sweep or measurement over every circular shift of the canvas or images: per model, invariant (no
    prediction changes, and no image's probabilities move by more than INVARIANT_TV in total variation, at any
    shift, for any seed), or the shift that breaks it most (largest mean change, over seeds). Empty for other
    folders and older ones."""
    p, s = result.meta.get("protocol", {}), result.summary
    if not p.get("all_shifts") or MAX_COLUMN not in s or not set(WORST_SHIFT_COLUMNS) <= set(s.columns):
        return []
    # invlab measure (and a sweep of folder images): the images; a sweep of letters: the canvas, its test images
    what, which = ("the images", "") if "images" in p else ("the canvas", "test ")
    rolls = p.get("rolls", p.get("n_shifts"))  # a grid that gives a roll twice: the distinct rolls
    head = (f"certificate over all {rolls} circular shifts of {what}, {p.get('test_images')} {which}"
            f"images (invariant: no prediction changes and no image's probabilities move by more than "
            f"{INVARIANT_TV:g} in total variation):")
    lines = [head]
    inv = result.invariance
    for model, g in s.groupby("model", sort=False):
        seeds = f"seed {g.seed.iloc[0]}" if len(g) == 1 else f"all {len(g)} seeds"
        if (g.worst_flip_rate == 0).all() and (g[MAX_COLUMN] <= INVARIANT_TV).all():
            lines.append(f"  {model}: invariant ({seeds}): no prediction changes; the largest probability change "
                         f"of any image is {g[MAX_COLUMN].max():.1e}")
            continue
        w = g.loc[first_max(g.worst_prob_change)]
        dx, dy = float(w[WORST_SHIFT_COLUMNS[0]]), float(w[WORST_SHIFT_COLUMNS[1]])
        at = inv[(inv.model == model) & (inv.seed == w.seed) & (inv.dx == dx) & (inv.dy == dy)].iloc[0]
        rows = inv[inv.model == model]
        one = rows.loc[rows[MAX_COLUMN].idxmax()]  # another shift may move one image more than the worst mean's
        lines.append(f"  {model}: NOT invariant: the shift that moves the probabilities most on average, (dx, dy) = "
                     f"({dx:g}, {dy:g}) (seed {w.seed}), changes "
                     f"{at.flip_rate:.1%} of predictions and the probabilities by {at.prob_change:.3g} on average "
                     f"(TV), up to {at[MAX_COLUMN]:.3g} for one image there; the largest change of one image at "
                     f"any shift is {one[MAX_COLUMN]:.3g}, at ({float(one.dx):g}, {float(one.dy):g}) (seed {one.seed})")
    return lines


def certificates(results: list[Result]) -> list[str]:
    """The certificate lines of every result over every circular shift, each head naming its folder when there
    are several."""
    out = []
    for r in results:
        lines = certificate_lines(r)
        if lines and len(results) > 1:
            lines[0] = f"{r.label}: {lines[0]}"
        out += lines
    return out
