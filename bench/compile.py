"""Does torch.compile pay for itself in invlab's training? Eager against compiled train steps, side by side.

    python bench/compile.py [--threads 2] [--steps 32]

For two card models (conv_maxpool, conv_gap: the cheapest and the costliest per step), a train step (zero_grad,
forward, cross-entropy, backward, Adam step) on a batch of 64 32 x 32 images, in the layout invlab trains in
(models.place): the eager time per step, the compiled time per step after its first step, and that first step
(compilation). The total for 480 steps, what
seed_question trains per model (3 seeds x 5 epochs x 32 batches), says whether compiling pays end to end.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

from invariance_lab.nn.models import create_model, place

CPU = torch.device("cpu")


def steps(model, x, y, n: int) -> float:
    opt, loss_fn = torch.optim.Adam(model.parameters(), 1e-3), nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(n):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 32, 32, generator=g), torch.randint(0, 2, (64,), generator=g)
    print(f"torch {torch.__version__}, {args.threads} threads, batch 64, {args.steps} timed steps; load average "
          f"{os.getloadavg()[0]:.2f}")
    for arch in ("conv_maxpool", "conv_gap"):
        torch.manual_seed(0)
        eager = steps(place(create_model(arch, num_classes=2, canvas=32), CPU), x, y, args.steps) / args.steps
        torch.manual_seed(0)
        compiled = torch.compile(place(create_model(arch, num_classes=2, canvas=32), CPU))
        first = steps(compiled, x, y, 1)
        per = steps(compiled, x, y, args.steps) / args.steps
        print(f"{arch}: eager {eager * 1000:.1f} ms/step, compiled {per * 1000:.1f} ms/step, first compiled step "
              f"{first:.1f} s; 480 steps: eager {eager * 480:.1f} s, compiled {first + per * 480:.1f} s")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
