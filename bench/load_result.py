"""How long `load_result` takes to read and check one run or sweep folder (store/results.py): what `invlab report`,
`invlab claims` and the HTML page pay per folder before any table is built.

    python bench/load_result.py FOLDER [--repeats 7] [--baseline DIR]

Each repeat is a fresh process that loads FOLDER 20 times after a first load, and prints the mean per load.
--baseline DIR also times the code in DIR (an export of an earlier commit: its invariance_lab/), alternating with
this checkout's repeat by repeat so both see the same load; prints both medians and their ratio, with the load
average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from invariance_lab.store.results import load_result  # noqa: F401  what CODE times: tests/test_bench.py sees a rename

ROOT = Path(__file__).resolve().parents[1]
CODE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from invariance_lab.store.results import load_result
r = load_result(sys.argv[2])
t = time.perf_counter()
for _ in range(20):
    load_result(sys.argv[2])
print((time.perf_counter() - t) / 20 * 1e3, len(r.invariance))
"""


def once(root: Path, folder: Path) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", CODE, str(root), str(folder)], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), int(out[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a finished run or sweep folder")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--baseline", type=Path, default=None, help="also time the code exported in this folder")
    args = ap.parse_args()
    print(f"load_result({args.folder}); {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the start")
    ours, base = [], []
    for _ in range(args.repeats):
        ms, rows = once(ROOT, args.folder)
        ours.append(ms)
        if args.baseline is not None:
            base.append(once(args.baseline.resolve(), args.folder)[0])
    mine = statistics.median(ours)
    print(f"invariance.csv: {rows} rows; median {mine:.2f} ms per load", end="")
    if base:
        old = statistics.median(base)
        print(f"; baseline {old:.2f} ms: this checkout takes {mine / old:.2f} of the baseline's time", end="")
    print(f"; load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
