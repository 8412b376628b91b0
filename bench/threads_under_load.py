"""invlab's default thread count against --threads 1, on a quiet machine and beside busy processes, side by side.

    python bench/threads_under_load.py [--config configs/quick.yaml] [--repeats 3] [--busy 2]

Each measurement is one `invlab run CONFIG --fresh --quiet` in its own process, timed as a whole (start-up
included). For each of the --repeats rounds the default (no --threads: core/runtime.default_threads, torch's
default less the cores other processes keep busy) and `--threads 1` run back to back, so a change of load hits
both alike; the figure is the median of default / --threads 1 (target: <= 1.2 beside --busy spinning processes,
and no slower than before on a quiet machine). The busy processes are Python loops, one per core by default,
started for the loaded half and stopped before the quiet half; the load average needs about a minute to see them,
so the loaded half waits until it does (or 70 s). The threads each run chose and why are read from its meta.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPIN = "while True: pass"


def one_run(config: Path, results: Path, threads: int | None) -> tuple[float, str]:
    extra = ["--threads", str(threads)] if threads else []
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "invariance_lab", "run", str(config), "--results-dir", str(results),
                    "--fresh", "--quiet", *extra], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    newest = max((p for p in results.rglob("meta.json")), key=lambda p: p.stat().st_mtime)
    env = json.loads(newest.read_text())["environment"]
    return seconds, f"{env['torch_threads']} ({env.get('threads_why', '?')})"


def rounds(config: Path, repeats: int, label: str) -> None:
    with tempfile.TemporaryDirectory(prefix="invlab-threads-") as tmp:
        ratios = []
        for i in range(repeats):
            default, chosen = one_run(config, Path(tmp), None)
            one, _ = one_run(config, Path(tmp), 1)
            ratios.append(default / one)
            print(f"{label} round {i + 1}: default {default:.1f} s with {chosen}; --threads 1 {one:.1f} s; "
                  f"ratio {default / one:.2f}", flush=True)
        print(f"{label}: median default / --threads 1 = {statistics.median(ratios):.2f} "
              f"(load at the end {os.getloadavg()[0]:.1f})", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "quick.yaml")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy processes for the loaded half")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; load at the start {os.getloadavg()[0]:.1f}", flush=True)
    rounds(args.config, args.repeats, "quiet")
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    try:
        deadline = time.monotonic() + 70
        while os.getloadavg()[0] < args.busy - 0.5 and time.monotonic() < deadline:
            time.sleep(2)
        rounds(args.config, args.repeats, f"beside {args.busy} busy processes")
    finally:
        for p in spinners:
            p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
