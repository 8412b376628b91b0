"""Outline (filled) against stroke rendering speed, measured side by side in one process.

    python bench/render.py [--images 2000] [--canvas 32] [--size 16] [--repeats 7]

Both sides draw the same letters A-Z with the default jitter of DataConfig (size_jitter 0.1; strokes with
thickness 1-2 px) in the default fonts of each kind (stroke: futural, futuram, timesr; outline: DejaVu Sans,
DejaVu Serif), at random sub-pixel positions, through letters.render. Runs alternate and the median of --repeats
is reported, so background load hits both alike. Target: outline / stroke time <= 2.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from invariance_lab.schema.config import DataConfig
from invariance_lab.data.datasets import draw, glyph_table, sample_letters

LETTERS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--canvas", type=int, default=32)
    ap.add_argument("--size", type=float, default=16.0)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = {}
    for glyphs in ("stroke", "outline"):
        data = DataConfig(letters=LETTERS, glyphs=glyphs, canvas=args.canvas, size=args.size)
        table = glyph_table(data)  # built (and cached) before timing
        batch = sample_letters(data, args.images, torch.Generator().manual_seed(0))
        offsets = torch.rand(args.images, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1
        batch.cx, batch.cy = batch.cx + offsets[:, 0], batch.cy + offsets[:, 1]
        cases[glyphs] = (table, batch, table.segments.shape[1])
        draw(table, batch, args.canvas)  # warm-up
    times = {k: [] for k in cases}
    for _ in range(args.repeats):
        for k, (table, batch, _) in cases.items():
            t0 = time.perf_counter()
            draw(table, batch, args.canvas)
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.images} letters A-Z, canvas {args.canvas}, size {args.size:g}, median of {args.repeats}, "
          f"{torch.get_num_threads()} threads")
    for k, (_, _, segs) in cases.items():
        print(f"  {k:8s} {med[k] * 1e3:8.1f} ms  {args.images / med[k]:9.0f} images/s  (up to {segs} segments)")
    print(f"  outline / stroke time: {med['outline'] / med['stroke']:.2f}  (target <= 2)")


if __name__ == "__main__":
    main()
