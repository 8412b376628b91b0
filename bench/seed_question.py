"""End to end: `invlab run configs/seed_question.yaml --fresh` timed as a user runs it, with its peak memory.

    python bench/seed_question.py [--repeats 3] [--threads N]

Each repeat runs the command in a fresh process (training every network again: --fresh, into a temporary
results folder) and reads the child's wall time, user and system CPU time and peak resident memory
(resource.getrusage(RUSAGE_CHILDREN), as /usr/bin/time does). Prints every repeat and the median, with the load
average before and after: other processes on the machine slow it down. Targets (the "fast and exact" issue):
<= 60 s and <= 500 MB on the quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def once(threads: int | None) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as results:
        cmd = [sys.executable, "-m", "invariance_lab", "run", str(ROOT / "configs" / "seed_question.yaml"),
               "--fresh", "--quiet", "--results-dir", results]
        if threads:
            cmd += ["--threads", str(threads)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far (KiB on Linux): runs are in order, so it is this
    # run's peak unless an earlier one was larger (the printed peak is then an upper bound)
    return dict(wall=wall, user=after.ru_utime - before.ru_utime, sys=after.ru_stime - before.ru_stime,
                peak_mb=after.ru_maxrss / 1024)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="invlab --threads (default: torch's own)")
    args = ap.parse_args()
    print(f"invlab run configs/seed_question.yaml --fresh{f' --threads {args.threads}' if args.threads else ''}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the start")
    runs = []
    for i in range(args.repeats):
        r = once(args.threads)
        runs.append(r)
        print(f"run {i + 1}: {r['wall']:.1f} s wall, {r['user']:.1f} s user, {r['sys']:.1f} s system, "
              f"peak {r['peak_mb']:.0f} MB (largest so far); load {os.getloadavg()[0]:.2f}")
    wall = statistics.median(r["wall"] for r in runs)
    peak = max(r["peak_mb"] for r in runs)
    print(f"median wall {wall:.1f} s (target <= 60 s: {'met' if wall <= 60 else 'not met'}); peak {peak:.0f} MB "
          f"(target <= 500 MB: {'met' if peak <= 500 else 'not met'}); load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
