"""How far float32 round-off moves a deep network that is exactly invariant in exact arithmetic.

    python examples/deep_round_off.py            # depths 8, 16 and 30: under a minute on 2 CPU cores
    python examples/deep_round_off.py --quick    # depth 3 on 8 px images: a second (tests/run/test_measure.py)

A stack of circular-padded, stride-1 3x3 convolutions (64 channels, batch norm, ReLU) ending in a global average is
invariant to every circular shift by construction. Run by brute force, one forward pass per shift, the convolution
sums in another order at some positions of a rolled input, so the softmax output moves by round-off. invlab's
`--all-shifts` certificate and the claims call a model invariant when no image's output moves by more than 1e-6 in
total variation (docs/metrics.md); this prints how close deeper networks come to that. The all-shift engine
(engine="auto") evaluates each network once and rolls its map, so there the change is exactly 0.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import invariance_lab as il


def deep_circular(depth: int = 16, width: int = 64, classes: int = 2, seed: int = 0) -> nn.Module:
    """Random weights, batch norm with random running statistics, and a last layer scaled so that the softmax
    outputs are not all near 1/classes (where they would hide their round-off)."""
    torch.manual_seed(seed)
    layers, channels = [], 1
    for _ in range(depth):
        layers += [nn.Conv2d(channels, width, 3, padding=1, padding_mode="circular"), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        net[-1].weight.mul_(30)
    return net.eval()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="depth 3 on four 8 px images: a second")
    args = ap.parse_args(argv)
    side, depths, n = (8, (3,), 4) if args.quick else (16, (8, 16, 30), 16)
    images = torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(0))
    every_roll = range(-side // 2, side // 2)  # with dy: the side x side circular shifts of the images
    for depth in depths:
        row = {}
        for engine in ("brute", "auto"):
            df = il.measure(deep_circular(depth), images, dx=every_roll, dy=every_roll, mode="circular", engine=engine)
            row[engine] = (df["max_prob_change"].max(), df["flip_rate"].max())
        (brute, flips), (engine_tv, _) = row["brute"], row["auto"]
        print(f"depth {depth:2d}: largest change of one image over all {side * side} rolls {brute:.1e} by brute "
              f"force (largest flip rate {flips:.0%}), {engine_tv:.1e} by the all-shift engine")


if __name__ == "__main__":
    main()
