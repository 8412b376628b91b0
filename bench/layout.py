"""The memory layout of invlab's networks on a CPU: channels_last (NHWC) weights against torch's default (NCHW),
measured side by side in one process.

    python bench/layout.py [--repeats 5] [--threads N]

For each model of configs/seed_question.yaml, built from the same seed in both layouts (models.place gives the
channels_last one):
- forward: evaluation passes over 500 random 32 x 32 images in batches of 128;
- train step: 10 Adam steps on a batch of 64 (the config's batch size).
Runs alternate between the layouts and the median of --repeats is reported, so background load hits both alike;
the ratio is default time / channels_last time (> 1: channels_last is faster). The last column is the largest
difference between the two layouts' logits on the same images: the kernels sum in another order, so the values
agree to float round-off, not bit for bit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from compile import steps  # bench/compile.py, beside this file

from invariance_lab.config.load import load_config
from invariance_lab.nn.models import build_model, place
from invariance_lab.core.speed import keep_freed_memory
from invariance_lab.config.models import resolved_models

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def network(factors: dict, channels_last: bool) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(factors, num_classes=2, canvas=32)
    return place(model, CPU) if channels_last else model


def forward_s(model: nn.Module, x: torch.Tensor, batch: int = 128) -> float:
    model.eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    return time.perf_counter() - t0


def train_s(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int = 10) -> float:
    model.train()
    return steps(model, x[:64], y[:64], n)  # compile.py's train step: zero_grad, forward, loss, backward, Adam


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the invlab command runs
    cfg = load_config(ROOT / "configs" / "seed_question.yaml")
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(640, 1, 32, 32, generator=gen)
    y = torch.randint(0, 2, (640,), generator=gen)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{'model':14s} {'forward NCHW ms':>15s} {'NHWC ms':>8s} {'ratio':>6s} {'train NCHW ms':>14s} {'NHWC ms':>8s} "
          f"{'ratio':>6s} {'max logit diff':>14s}")
    for name, factors in resolved_models(cfg).items():
        times = {k: [] for k in ("fwd0", "fwd1", "trn0", "trn1")}
        for _ in range(args.repeats):
            for cl in (False, True):
                times[f"fwd{int(cl)}"].append(forward_s(network(factors, cl), x[:500]))
                times[f"trn{int(cl)}"].append(train_s(network(factors, cl), x, y))
        f0, f1, t0, t1 = (1000 * statistics.median(times[k]) for k in ("fwd0", "fwd1", "trn0", "trn1"))
        with torch.inference_mode():
            diff = float((network(factors, False).eval()(x[:500]) - network(factors, True).eval()(x[:500])).abs().max())
        print(f"{name:14s} {f0:15.1f} {f1:8.1f} {f0 / f1:6.2f} {t0:14.1f} {t1:8.1f} {t0 / t1:6.2f} {diff:14.1e}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
