"""End to end: `invlab run configs/seed_question.yaml --fresh` timed as a user runs it, with its peak memory.

    python bench/seed_question.py [--repeats 3] [--threads N] [--baseline DIR]

Each repeat runs the command in a fresh process (training every network again: --fresh, into a temporary
results folder) and reads that process's wall time, user and system CPU time and peak resident memory
(os.wait4, as /usr/bin/time does). Prints every repeat and the median, with the load average before and after:
other processes on the machine slow it down. --baseline DIR also times the code in DIR (an export of an earlier
commit: its invariance_lab/ and configs/), alternating with this checkout's repeat by repeat, so both see the
same load. Targets: <= 60 s wall and a peak of <= 450 MB on the quiet 2-core machine. The peak varies by about
+-20 MB between identical runs (docs/speed.md), so it is printed as the largest, the median and the count of runs
within the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def once(threads: int | None, root: Path, config: str = "seed_question.yaml", extra: tuple[str, ...] = ()) -> dict:
    """One run of the code under `root` (its package first on PYTHONPATH) on configs/<config> with the options
    `extra`, with its own rusage."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as results:
        cmd = [sys.executable, "-m", "invariance_lab", "run", str(root / "configs" / config),
               "--fresh", "--quiet", "--results-dir", results, *extra]
        if threads:
            cmd += ["--threads", str(threads)]
        t0 = time.perf_counter()
        # cwd: python -m puts the working directory first on sys.path, ahead of PYTHONPATH
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env, cwd=results)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, peak memory included
        wall = time.perf_counter() - t0
        code = child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        if code:
            raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}")
    return dict(wall=wall, user=usage.ru_utime, sys=usage.ru_stime, peak_mb=usage.ru_maxrss / 1024)


def line(label: str, r: dict) -> str:
    return (f"{label}: {r['wall']:.1f} s wall, {r['user']:.1f} s user, {r['sys']:.1f} s system, "
            f"peak {r['peak_mb']:.0f} MB; load {os.getloadavg()[0]:.2f}")


def paired(repeats: int, baseline: Path | None, run) -> tuple[list[dict], list[dict]]:
    """(this checkout's runs, the baseline's): run(root) `repeats` times for ROOT and, with a baseline folder,
    for it too, alternating repeat by repeat so that both see the same load; each printed as it ends."""
    runs, base = [], []
    for i in range(repeats):
        runs.append(run(ROOT))
        print(line(f"run {i + 1}", runs[-1]), flush=True)
        if baseline:
            base.append(run(baseline.resolve()))
            print(line(f"baseline run {i + 1}", base[-1]), flush=True)
    return runs, base


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="invlab --threads (default: torch's own)")
    ap.add_argument("--baseline", type=Path, default=None, help="also time the code exported in this folder")
    args = ap.parse_args()
    print(f"invlab run configs/seed_question.yaml --fresh{f' --threads {args.threads}' if args.threads else ''}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the start")
    runs, base = paired(args.repeats, args.baseline, lambda root: once(args.threads, root))
    wall = statistics.median(r["wall"] for r in runs)
    peaks = [r["peak_mb"] for r in runs]
    peak, within = max(peaks), sum(p <= 450 for p in peaks)
    if base:
        print(f"baseline: median wall {statistics.median(r['wall'] for r in base):.1f} s, peak "
              f"{max(r['peak_mb'] for r in base):.0f} MB; this checkout {statistics.median(r['wall'] for r in base) / wall:.2f}x "
              "faster")
    print(f"median wall {wall:.1f} s (target <= 60 s: {'met' if wall <= 60 else 'not met'}); peak {peak:.0f} MB, "
          f"median {statistics.median(peaks):.0f} MB, {within} of {len(peaks)} runs <= 450 MB (target: "
          f"{'met' if within == len(peaks) else 'not met'}); load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
