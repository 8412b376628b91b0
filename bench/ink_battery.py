"""The ink battery on each ink control, as markdown: what a classifier of each translation-invariant statistic scores.

    python bench/ink_battery.py [--config configs/ink_control.yaml] [--gain 0.24 0.61]
    python bench/ink_battery.py --gains     # ink: matched's gains per glyph kind, the range data.gain copies

For each glyph kind (the config's stroke fonts; outline: DejaVu Sans, DejaVu Serif) and each control (ink: free,
matched, invariant; data.gain, the contrast-only control), the config's training and test letters are drawn and
the battery of data/ink_stats.py fitted on the training set and scored on the test set: the numbers `invlab run`
stores as meta.json's ink_baseline.battery. A second table gives, per statistic, class B's mean over class A's
on the training letters (1.00: the classes agree on average), and the seconds drawing and scoring took.
With --gains it prints instead the gains `ink: matched` gives the training letters (the range, its 5-95%
quantiles and each class's median), from which the contrast-only control's range is taken.
"""

from __future__ import annotations

import argparse
import time

import torch

from invariance_lab.config.load import load_config
from invariance_lab.data.datasets import _TRAIN_STREAM, evaluation_set, glyph_table, sample_letters, training_set
from invariance_lab.data.ink_stats import STATISTICS, battery, ink_statistics

OUTLINE_FONTS = ["DejaVu Sans", "DejaVu Serif"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/ink_control.yaml")
    ap.add_argument("--gain", type=float, nargs=2, default=[0.24, 0.61], help="the contrast-only control's range")
    ap.add_argument("--gains", action="store_true", help="print ink: matched's gains instead of the battery")
    args = ap.parse_args()
    base = load_config(args.config).data
    if args.gains:
        print_gains(base)
        return
    controls = {"free": {}, "matched": {"ink": "matched"}, f"gain {args.gain}": {"gain": args.gain},
                "invariant": {"ink": "invariant"}}
    scores, ratios = [], []
    for glyphs in ("stroke", "outline"):
        kind = {} if glyphs == "stroke" else {"glyphs": "outline", "fonts": OUTLINE_FONTS}
        for name, update in controls.items():
            data = type(base).model_validate({**base.model_dump(), **kind, **update})
            t0 = time.perf_counter()
            table = glyph_table(data)
            (x, y), (tx, ty) = training_set(data, table), evaluation_set(data, table)
            drawn = time.perf_counter()
            b = battery(x, y, tx, ty, len(data.letters))
            done = time.perf_counter()
            scores.append(f"| {glyphs} | {name} | " + " | ".join(f"{b[k]:.3f}" for k in (*STATISTICS, "all"))
                          + f" | {drawn - t0:.1f} + {done - drawn:.1f} |")
            stats = ink_statistics(x)
            cols = torch.cat([stats[k] for k in STATISTICS], 1)
            ratio = cols[y == 1].mean(0) / cols[y == 0].mean(0)
            ratios.append(f"| {glyphs} | {name} | " + " | ".join(f"{v:.2f}" for v in ratio.tolist()) + " |")
    print("| glyphs | control | " + " | ".join((*STATISTICS, "all")) + " | s (draw + battery) |")
    print("|---|---|" + "---:|" * (len(STATISTICS) + 2))
    print("\n".join(scores))
    print("\n| glyphs | control | total | var x | var y | cov xy | peak | mean_inked | area |")
    print("|---|---|" + "---:|" * 7)
    print("\n".join(ratios))


def print_gains(base) -> None:
    """ink: matched's gains of the training letters (drawn as training_set draws them), per glyph kind."""
    print("| glyphs | min | 5% | 95% | max | median " + " | median ".join(base.letters) + " |")
    print("|---|" + "---:|" * (4 + len(base.letters)))
    for glyphs in ("stroke", "outline"):
        kind = {} if glyphs == "stroke" else {"glyphs": "outline", "fonts": OUTLINE_FONTS}
        data = type(base).model_validate({**base.model_dump(), **kind, "ink": "matched"})
        batch = sample_letters(data, data.train_images, torch.Generator().manual_seed(data.seed + _TRAIN_STREAM))
        g = batch.gain.double()
        q = torch.quantile(g, torch.tensor([0.05, 0.95], dtype=torch.float64))
        medians = [float(g[batch.labels == c].median()) for c in range(len(base.letters))]
        print(f"| {glyphs} | {float(g.min()):.2f} | {float(q[0]):.2f} | {float(q[1]):.2f} | {float(g.max()):.2f} | "
              + " | ".join(f"{m:.2f}" for m in medians) + " |")


if __name__ == "__main__":
    main()
