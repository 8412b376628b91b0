"""invlab's training loop against a bare train step, measured side by side in one process.

    python bench/train_throughput.py [--epochs 2] [--repeats 5] [--threads 1] [--allocator default]

For each model of configs/seed_question.yaml (its 2000 training letters, batch 64, Adam):
- `bare`: the least a training epoch can do: the batches cut beforehand in the same order, then per batch
  zero_grad, forward, cross-entropy, backward, step, on the model in the layout invlab trains it in
  (models.place). Nothing else: no progress bar, no per-batch bookkeeping, no test evaluation.
- `invlab`: train.train_model as `invlab run` calls it (shuffled batches gathered per step, loss and accuracy
  bookkeeping, the progress bar object (disabled, as with --quiet), the per-epoch test-set evaluation of 500
  letters).
- `invlab, train.test_every: 0`: the same loop testing after the last epoch only (test_every, whose default
  1 tests after every epoch), to show what the per-epoch test evaluation costs.
Both train a fresh network from the same seed for the same number of epochs. The figure is the ratio of
throughputs, bare time / invlab time (1.0 = no overhead; target >= 0.95). Runs alternate and the median of
--repeats is reported, so background load hits all sides alike. The allocator is set as `invlab` sets it
(speed.keep_freed_memory) unless --allocator default; minor page faults and system time are printed for both.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from invariance_lab.config.load import load_config
from invariance_lab.data.datasets import evaluation_set, glyph_table, training_set
from invariance_lab.nn.models import build_model, place
from invariance_lab.core.speed import keep_freed_memory
from invariance_lab.run.optimizer import training_optimizer
from invariance_lab.run.train import train_model
from invariance_lab.config.models import resolved_models

ROOT = Path(__file__).resolve().parents[1]


def bare(factors, x, y, cfg, epochs: int, seed: int) -> float:
    torch.manual_seed(seed)
    model = place(build_model(factors, num_classes=2, canvas=x.shape[-1]), torch.device("cpu"))  # invlab's layout
    opt = training_optimizer(model.parameters(), cfg.train, torch.device("cpu"))  # the optimizer invlab trains with
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        batches += [(x[order[i:i + cfg.train.batch_size]], y[order[i:i + cfg.train.batch_size]])
                    for i in range(0, len(y), cfg.train.batch_size)]
    model.train()
    t0 = time.perf_counter()
    for xb, yb in batches:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        opt.step()
    return time.perf_counter() - t0


def ours(factors, x, y, tx, ty, cfg, epochs: int, seed: int, test_every: int = 1) -> float:
    t0 = time.perf_counter()
    train = cfg.train.model_copy(update=dict(epochs=epochs, test_every=test_every))
    train_model(factors, x, y, tx, ty, train, noise=0.0, seed=seed,
                num_classes=2, canvas=x.shape[-1], device=torch.device("cpu"))
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--allocator", choices=["invlab", "default"], default="invlab")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kept = args.allocator == "invlab" and keep_freed_memory()
    cfg = load_config(ROOT / "configs" / "seed_question.yaml")
    table = glyph_table(cfg.data)
    x, y = training_set(cfg.data, table)
    tx, ty = evaluation_set(cfg.data, table)
    print(f"torch {torch.__version__}, {len(y)} training images, batch {cfg.train.batch_size}, {args.epochs} epochs, "
          f"{args.threads} thread(s), median of {args.repeats}; allocator: "
          f"{'freed memory kept (core/speed.py)' if kept else 'glibc default'}; load average {os.getloadavg()[0]:.2f}")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{'model':14s} {'bare s':>8s} {'invlab s':>9s} {'ratio':>6s} {'test_every 0':>12s} {'ratio':>6s}")
    for name, factors in resolved_models(cfg).items():
        times = {"bare": [], "ours": [], "notest": []}
        for r in range(args.repeats):
            times["bare"].append(bare(factors, x, y, cfg, args.epochs, r))
            times["ours"].append(ours(factors, x, y, tx, ty, cfg, args.epochs, r))
            times["notest"].append(ours(factors, x, y, tx, ty, cfg, args.epochs, r, test_every=0))
        b, o, n = (statistics.median(times[k]) for k in ("bare", "ours", "notest"))
        print(f"{name:14s} {b:8.2f} {o:9.2f} {b / o:6.2f} {n:12.2f} {b / n:6.2f}")
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(f"whole benchmark: {r1.ru_minflt - r0.ru_minflt:,} minor page faults, {r1.ru_utime - r0.ru_utime:.1f} s user, "
          f"{r1.ru_stime - r0.ru_stime:.1f} s system; load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
