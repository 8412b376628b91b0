"""Where the frame cuts the letters of a canvas run, and whether a model's flips there are of the cut letters.

    python docs/frame_cut.py results/seed_question/<id> [MODEL]     # MODEL: conv_gap by default

A canvas shift redraws each test letter at its new place; a shift large enough pushes part of the letter past the
frame, and the shifted image is then not the letter moved but the letter cropped. For every shift of the run's grid
along one axis (the other 0) at which some test letter loses ink (more than 0.1% of its reference's), this prints
how many letters lose ink and the largest loss, and for each seed of MODEL how many predictions change (against
the unshifted letter) among the cut letters and among the intact ones. docs/results.md quotes it for the main run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from invariance_lab import InvlabError, load_config
from invariance_lab.data.shifts import sweep_inputs
from invariance_lab.schema.sweep import axis
from invariance_lab.store.checkpoints import load_checkpoint

LOST = 1e-3  # a letter is cut when it keeps less than 99.9% of its reference's ink


def frame_cuts(run: Path, model: str = "conv_gap") -> list[dict]:
    """One row per shift (dx, dy) along an axis at which the frame cuts some test letter: letters cut, largest
    loss, and per seed the flips among the cut and the intact letters."""
    cfg = load_config(run / "config.yaml")
    if cfg.sweep.mode != "canvas" or cfg.data.source != "letters":
        raise InvlabError(f"{run}: frame_cut.py reads a canvas sweep of letters (this run: mode {cfg.sweep.mode}, "
                          f"data.source {cfg.data.source})")
    inputs, labels = sweep_inputs(cfg.data, cfg.sweep)
    every = slice(0, len(labels))
    reference = inputs(every, 0.0, 0.0)
    ink = reference.flatten(1).sum(1)
    nets = [load_checkpoint(run / "checkpoints" / f"{model}-seed{s}.pt", torch.device("cpu"))[0] for s in cfg.seeds]
    with torch.no_grad():
        before = [net(reference).argmax(1) for net in nets]
    shifts = [(float(d), 0.0) for d in axis(cfg.sweep.dx)] + [(0.0, float(d)) for d in axis(cfg.sweep.dy)]
    rows = []
    for dx, dy in sorted(set(shifts)):
        x = inputs(every, dx, dy)
        lost = (ink - x.flatten(1).sum(1)) / ink
        cut = lost > LOST
        if not cut.any():
            continue
        with torch.no_grad():
            flips = [net(x).argmax(1) != b for net, b in zip(nets, before)]
        rows.append(dict(dx=dx, dy=dy, images=len(labels), cut=int(cut.sum()), largest_loss=float(lost.max()),
                         flips=[(int(f[cut].sum()), int(f[~cut].sum())) for f in flips]))
    return rows


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__)
        return 2
    try:
        rows = frame_cuts(Path(argv[0]), *argv[1:])
    except (InvlabError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    model = argv[1] if len(argv) > 1 else "conv_gap"
    print(f"| dx | dy | letters cut | largest ink lost | {model} flips per seed: among cut / among intact |")
    print("|---|---|---|---|---|")
    for r in rows:
        flips = ", ".join(f"{a}/{r['cut']} and {b}/{r['images'] - r['cut']}" for a, b in r["flips"])
        print(f"| {r['dx']:g} | {r['dy']:g} | {r['cut']} of {r['images']} | {r['largest_loss']:.1%} | {flips} |")
    if not rows:
        print("the frame cuts no test letter at any shift of the grid's axes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
