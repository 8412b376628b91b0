"""Circular padding in evaluation: a block's own (ConvBlock.padded: two torch.cat in the map's channels-last layout)
against F.pad (which writes the map into the default layout for the conv to copy back), side by side in one process.

    python bench/circular_pad.py [--images 256] [--repeats 7] [--threads 1]

For each model of configs/antialiasing.yaml (every block circularly padded), placed as a run places it (channels
last): forward passes over the same images under torch.inference_mode, as sweeps and layer profiles run them, once
with the block's own padding and once with ConvBlock.padded replaced by F.pad. Runs alternate and the median of
--repeats is reported, so background load hits both alike. The outputs are compared bit for bit.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from invariance_lab.config.load import load_config
from invariance_lab.config.models import resolved_models
from invariance_lab.nn.block import ConvBlock
from invariance_lab.nn.models import build_model, place

ROOT = Path(__file__).resolve().parents[1]
OWN = ConvBlock.padded


def _f_pad(self, x):
    return self.pad(x)


@torch.inference_mode()
def _forward(model, images, padded) -> tuple[float, torch.Tensor]:
    ConvBlock.padded = padded
    try:
        start = time.perf_counter()
        out = model(images)
        return time.perf_counter() - start, out
    finally:
        ConvBlock.padded = OWN


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT / "configs" / "antialiasing.yaml")
    canvas = cfg.data.canvas
    images = torch.rand(args.images, 1, canvas, canvas, generator=torch.Generator().manual_seed(0))
    print(f"{args.images} images of {canvas} px, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'model':10s} {'own ms':>8s} {'F.pad ms':>9s} {'F.pad / own':>12s}  same bits")
    for name, factors in resolved_models(cfg).items():
        torch.manual_seed(0)
        model = place(build_model(factors, num_classes=len(cfg.data.letters), canvas=canvas),
                      torch.device("cpu")).eval()
        own, theirs = [], []
        _forward(model, images, OWN)  # warm-up: first-call allocations
        for _ in range(args.repeats):
            t, a = _forward(model, images, OWN)
            own.append(t)
            t, b = _forward(model, images, _f_pad)
            theirs.append(t)
        mo, mt = statistics.median(own) * 1e3, statistics.median(theirs) * 1e3
        print(f"{name:10s} {mo:8.1f} {mt:9.1f} {mt / mo:11.2f}x  {torch.equal(a, b)}")


if __name__ == "__main__":
    main()
