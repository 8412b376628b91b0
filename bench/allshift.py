"""The all-shift engine against brute force, measured side by side in one process.

    python bench/allshift.py [--images 256] [--repeats 5] [--brute-shifts 8] [--kinds max,aps_max] [--heads global_avg]

For every downsampling kind the engine applies to, with every head: a network of invlab's own shape (channels
[16, 32, 32], kernel 3, circular padding, 32 x 32 canvas), briefly trained on letters, swept over all 1024 circular
shifts and over the 17 x 17 grid dx, dy in -8..8. Both sides run the real sweep (inputs, forward passes,
metrics): `engine` is engine.allshift_sweep over the whole grid; `brute` is sweep.run_sweep, the one forward pass
per shift that every sweep made before. Each repeat times engine (1024), engine (17 x 17) and brute force in turn;
the median of --repeats is reported, so background load hits all three alike. Both sweeps end by copying their
sums to the CPU, so on a GPU (--device cuda) the timings include the device's work.

Brute force costs the same forward pass for every shift, so it is timed on --brute-shifts shifts per repeat (plus
the reference (0, 0), which every sweep evaluates) and scaled to the grid: ms/shift x shifts. --full-brute times
it over the whole grid instead (hours for all kinds on a small CPU). `max TV diff` is the largest total-variation
distance between the engine's and brute force's softmax outputs, over --check-images images and 64 shifts, one
through each of the engine's 64 leaves (one per residue of (dx, dy) mod 8).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from invariance_lab.schema.config import DataConfig, TrainConfig
from invariance_lab.data.datasets import draw, glyph_table, reference_letters, training_set
from invariance_lab.eval.engine import allshift_plan, allshift_sweep
from invariance_lab.eval.engine_rules import NotApplicable
from invariance_lab.core.runtime import resolve_device
from invariance_lab.nn.downsample import DOWNSAMPLES
from invariance_lab.nn.models import HEADS, resolve_spec
from invariance_lab.data.shifts import circular_shift, every_roll, grid_points, shift_lines
from invariance_lab.eval.sweep import run_sweep
from invariance_lab.run.train import train_model

TARGETS = dict(all_shifts=50.0, grid=20.0, tv=1e-6)  # for max pooling + global average (docs/speed.md)


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def sample_shifts(canvas: int, k: int) -> list[tuple[float, float]]:
    """k distinct non-zero shifts, fixed (pseudo-random), for timing brute force."""
    g = torch.Generator().manual_seed(12)
    out: dict[tuple[float, float], None] = {}
    while len(out) < k:
        dx, dy = (int(v) - canvas // 2 + 1 for v in torch.randint(0, canvas, (2,), generator=g))
        if (dx, dy) != (0, 0):
            out[(float(dx), float(dy))] = None
    return list(out)


def check_shifts(canvas: int, period: int = 8) -> list[tuple[float, float]]:
    """One shift for each residue (dx mod 8, dy mod 8), i.e. through each of the engine's 64 leaves, the rest of
    the shift drawn at random, as (dx, dy) in the centred range of every_roll."""
    g = torch.Generator().manual_seed(21)
    out = []
    for ry in range(period):
        for rx in range(period):
            qx, qy = (int(v) for v in torch.randint(0, canvas // period, (2,), generator=g))
            dx, dy = (r + period * q for r, q in ((rx, qx), (ry, qy)))
            out.append((float(dx - canvas if dx > canvas // 2 else dx), float(dy - canvas if dy > canvas // 2 else dy)))
    return out


@torch.inference_mode()
def max_tv_difference(model, plan, x: torch.Tensor, shifts: list[tuple[float, float]]) -> float:
    worst = 0.0
    fast = torch.softmax(plan.logits(x, shifts).float(), dim=-1)
    for i, (dx, dy) in enumerate(shifts):
        slow = torch.softmax(model(circular_shift(x, dx, dy)).float(), dim=1)
        worst = max(worst, float(0.5 * (fast[i] - slow).abs().sum(1).max()))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--brute-shifts", type=int, default=8)
    ap.add_argument("--full-brute", action="store_true", help="time brute force over the whole grids (slow)")
    ap.add_argument("--check-images", type=int, default=32, help="images for the max TV difference")
    ap.add_argument("--kinds", default=",".join(k for k, d in DOWNSAMPLES.items() if not d.alias_of))  # an alias: the same network
    ap.add_argument("--heads", default=",".join(HEADS))
    ap.add_argument("--canvas", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1, help="training epochs on 512 letters (0: untrained)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (TF32 off on CUDA, as invlab runs)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    c = args.canvas
    data = DataConfig(canvas=c, train_images=512, test_images=args.images)
    table = glyph_table(data)
    train_x, train_y = training_set(data, table)
    test = reference_letters(data)
    images, labels = draw(table, test, c), test.labels
    inputs = lambda chunk, dx, dy: circular_shift(images[chunk], dx, dy)
    grids = {"1024": shift_lines(every_roll(c), every_roll(c), "product"),
             "17x17": shift_lines([-8, 8, 1], [-8, 8, 1], "product")}
    sizes = {name: len(grid_points(lines)) for name, lines in grids.items()}
    sample, check = sample_shifts(c, args.brute_shifts), check_shifts(c)
    brute_lines = {name: lines for name, lines in grids.items()} if args.full_brute else {"sample": [sample]}

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, {c}x{c} canvas, channels [16, 32, 32], "
          f"circular padding, {args.images} letters, trained {args.epochs} epoch(s) on 512, median of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print("brute force: " + ("timed over the whole grids" if args.full_brute else
                             f"{len(sample)} shifts + the reference per repeat, scaled by ms/shift to each grid"))
    print(f"{'kind':<12} {'head':<11} {'brute ms/shift':>14} {'engine 1024 s':>13} {'ratio':>7} "
          f"{'engine 17x17 s':>14} {'ratio':>6} {'max TV diff':>11}")
    headline, worst_tv = {}, 0.0
    for kind in args.kinds.split(","):
        for head in args.heads.split(","):
            factors = resolve_spec(dict(downsample=kind, head=head, padding="circular"))
            model, _ = train_model(factors, train_x, train_y, images, labels,
                                   TrainConfig(epochs=args.epochs, batch_size=64), noise=0.0, seed=0, num_classes=2,
                                   canvas=c, device=device)
            model.eval()
            try:
                plan = allshift_plan(model, c)
            except NotApplicable as e:  # TIPS: no polyphase decomposition; brute force alone measures it
                print(f"{kind:<12} {head:<11} the engine does not take it ({str(e)[:60]}...)")
                continue
            key = {("m", 0): model}
            plans = {("m", 0): plan}
            times = {name: [] for name in ["1024", "17x17", *brute_lines]}
            for _ in range(args.repeats):
                for name, lines in grids.items():
                    times[name].append(timed(allshift_sweep, plans, inputs, labels, lines, args.images, device))
                for name, lines in brute_lines.items():
                    times[name].append(timed(run_sweep, key, inputs, labels, lines, args.images, device))
            med = {name: statistics.median(v) for name, v in times.items()}
            if args.full_brute:
                brute = {name: med[name] for name in grids}
                per_shift = brute["1024"] / sizes["1024"]
            else:
                per_shift = med["sample"] / (len(sample) + 1)
                brute = {name: per_shift * sizes[name] for name in grids}
            ratio = {name: brute[name] / med[name] for name in grids}
            tv = max_tv_difference(model, plan, images[:args.check_images].to(device), check)
            worst_tv = max(worst_tv, tv)
            if (kind, head) == ("max", "global_avg"):
                headline = ratio
            print(f"{kind:<12} {head:<11} {per_shift * 1e3:>14.1f} {med['1024']:>13.2f} {ratio['1024']:>6.0f}x "
                  f"{med['17x17']:>14.2f} {ratio['17x17']:>5.0f}x {tv:>11.1e}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if headline:
        def met(ok: bool) -> str:
            return "met" if ok else "NOT met"

        # two decimals: at one, 19.96 printed "20.0x (>= 20x: NOT met)"
        print(f"targets (max pooling + global average): all 1024 shifts {headline['1024']:.2f}x (>= "
              f"{TARGETS['all_shifts']:.0f}x: {met(headline['1024'] >= TARGETS['all_shifts'])}), 17x17 grid "
              f"{headline['17x17']:.2f}x (>= {TARGETS['grid']:.0f}x: {met(headline['17x17'] >= TARGETS['grid'])}); "
              f"worst TV difference over every model {worst_tv:.1e} (<= {TARGETS['tv']:g}: "
              f"{met(worst_tv <= TARGETS['tv'])})")


if __name__ == "__main__":
    main()
