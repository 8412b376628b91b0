"""Sweep throughput against raw forward throughput, measured side by side in one process.

    python bench/sweep_throughput.py [--images 1000] [--batch 128] [--repeats 5]

For each model of configs/seed_question.yaml: `forward` runs the model over pre-drawn images in batches (the
ceiling); `sweep` runs the real streaming sweep (making shifted inputs, forward, metrics) over a shift grid, with
brute force (one forward pass per shift: sweep.run_sweep). Both sides time the same number of batches of the same
size: `forward` passes over the images once per shift the sweep evaluates (the grid's shifts and the reference).
Both count images per second; the ratio sweep / forward is the sweep's efficiency (target >= 0.95).
Runs alternate and the median of --repeats is reported, so background load hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from invariance_lab.config.load import load_config
from invariance_lab.data.datasets import draw, glyph_table, reference_letters
from invariance_lab.data.shifts import shifted_inputs
from invariance_lab.nn.models import build_model, place
from invariance_lab.data.shifts import grid_points, shift_lines
from invariance_lab.eval.sweep import run_sweep
from invariance_lab.config.models import resolved_models

ROOT = Path(__file__).resolve().parents[1]


def evaluated_shifts(lines) -> int:
    """Forward passes over the test set a sweep of `lines` makes: every non-zero shift, and the reference."""
    return len([p for p in grid_points(lines) if p != (0.0, 0.0)]) + 1


@torch.inference_mode()
def forward_rate(model, images, batch, passes):
    """Images per second over `passes` passes of the images in batches: as many batches as the sweep's."""
    t0 = time.perf_counter()
    for _ in range(passes):
        for i in range(0, len(images), batch):
            model(images[i:i + batch]).softmax(1).argmax(1)
    return passes * len(images) / (time.perf_counter() - t0)


def sweep_rate(model, inputs, labels, lines, batch):
    t0 = time.perf_counter()
    run_sweep({("m", 0): model}, inputs, labels, lines, batch, torch.device("cpu"))
    return len(labels) * evaluated_shifts(lines) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cfg = load_config(ROOT / "configs" / "seed_question.yaml", overrides=[f"data.test_images={args.images}"])
    table, test = glyph_table(cfg.data), reference_letters(cfg.data)
    images = draw(table, test, cfg.data.canvas)
    grids = {
        "canvas, dx -8..8 step 1": ("canvas", shift_lines([-8, 8, 1], [0, 0, 1], "product")),
        "canvas, dx -2..2 step 0.25": ("canvas", shift_lines([-2, 2, 0.25], [0, 0, 1], "product")),
        "circular, dx -8..8 step 1": ("circular", shift_lines([-8, 8, 1], [0, 0, 1], "product")),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images, batch {args.batch}, "
          f"median of {args.repeats}")
    print(f"{'model':<14} {'grid':<28} {'forward img/s':>14} {'sweep img/s':>12} {'ratio':>6}")
    for name, factors in resolved_models(cfg).items():
        torch.manual_seed(0)
        model = place(build_model(factors, num_classes=2, canvas=cfg.data.canvas), torch.device("cpu")).eval()
        for label, (mode, lines) in grids.items():
            max_shift = max(abs(v) for line in lines for p in line for v in p)
            fwd, swp = [], []
            for _ in range(args.repeats):
                # a fresh input maker each time: the sweep pays for drawing its sub-pixel phases every run
                inputs = shifted_inputs(table, test, cfg.data.canvas, mode, max_shift)
                fwd.append(forward_rate(model, images, args.batch, evaluated_shifts(lines)))
                swp.append(sweep_rate(model, inputs, test.labels, lines, args.batch))
            f, s = statistics.median(fwd), statistics.median(swp)
            print(f"{name:<14} {label:<28} {f:>14,.0f} {s:>12,.0f} {s / f:>6.2f}")


if __name__ == "__main__":
    main()
