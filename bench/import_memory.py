"""What a run holds before invlab holds a letter: resident memory after each import the `invlab run` command makes.

    python bench/import_memory.py

Prints the resident set (VmRSS of /proc/self/status, Linux) after: the interpreter; torch; the libraries and
modules of the command (invariance_lab.cli.main and the run's modules, with pandas, pydantic, rich); a step of
the optimizer a run trains with by default (run/optimizer.py: Adam on the CPU, written out); then, for comparison,
a torch.optim optimizer, which imports torch's compiler stack (torch._dynamo) on first use, as every other
train.optimizer does. Each row is cumulative. The rest of a run's peak (bench/seed_question.py) is invlab's data,
networks and batches.
"""

from __future__ import annotations

import sys


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS in /proc/self/status: this benchmark needs Linux")


def main():
    rows = [("python", rss_mb())]
    import torch

    rows.append(("+ import torch", rss_mb()))
    import invariance_lab.cli.main  # noqa: F401
    import invariance_lab.run.experiment  # noqa: F401

    rows.append(("+ the invlab command's modules", rss_mb()))
    from invariance_lab.run.optimizer import training_optimizer
    from invariance_lab.schema.train import TrainConfig

    for make in (lambda p: training_optimizer(p, TrainConfig(), torch.device("cpu")), torch.optim.Adam):
        layer = torch.nn.Linear(2, 2)
        opt = make(layer.parameters())
        layer(torch.ones(1, 2)).sum().backward()
        opt.step()
        rows.append((f"+ a backward pass and {type(opt).__name__} step", rss_mb()))
    print(f"torch {torch.__version__}, Python {sys.version.split()[0]}")
    last = 0.0
    for name, mb in rows:
        print(f"{name:34s} {mb:6.0f} MB  ({mb - last:+.0f})")
        last = mb


if __name__ == "__main__":
    main()
