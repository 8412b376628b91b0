"""A small `--jobs 2` run end to end: how soon the scheduler sees its units finish (run/scheduler.py).

    python bench/jobs.py [--repeats 5] [--baseline DIR]

`invlab run configs/quick.yaml --jobs 2 --threads 1` with 400 training images, 2 epochs and 20 test images (four
units of about a second each: the scheduler's own waiting is a visible part of the whole), each repeat a fresh
process. --baseline DIR also times the code in DIR (an export of an earlier commit: its invariance_lab/ and
configs/), alternating with this checkout's repeat by repeat so both see the same load; prints both medians and
their ratio, with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from seed_question import once, paired

SMALL = ("--jobs", "2", "--set", "data.train_images=400", "--set", "train.epochs=2", "--set", "data.test_images=20")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", type=Path, default=None, help="also time the code exported in this folder")
    args = ap.parse_args()
    print(f"invlab run configs/quick.yaml {' '.join(SMALL)} --threads 1 --fresh; {os.cpu_count()} CPUs; load "
          f"average {os.getloadavg()[0]:.2f} at the start")
    runs, base = paired(args.repeats, args.baseline, lambda root: once(1, root, "quick.yaml", SMALL))
    wall = statistics.median(r["wall"] for r in runs)
    print(f"median wall {wall:.2f} s", end="")
    if base:
        old = statistics.median(r["wall"] for r in base)
        print(f"; baseline {old:.2f} s: this checkout takes {wall / old:.2f} of the baseline's time", end="")
    print(f"; load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
