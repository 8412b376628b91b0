"""speed.py: with keep_freed_memory freed blocks under the mmap threshold stay resident (one over it does not), and
release_freed_memory hands them back. In a process of its own, since the allocator settings are the process's."""

import subprocess
import sys
from pathlib import Path

import pytest

SPEED = Path(__file__).resolve().parents[2] / "invariance_lab" / "core" / "speed.py"

# speed.py is loaded from its file: it needs only ctypes, and the package's root would import torch (~2 s)
CODE = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("speed", {str(SPEED)!r})
speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(speed)

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

if not speed.keep_freed_memory():
    print("not glibc")
    raise SystemExit
big = bytearray(64 * 2**20)  # over the mmap threshold: mapped, and unmapped when freed (zero-filled)
with_big = rss_mb()
del big
after_big = rss_mb()
blocks = [bytearray(16 * 2**20) for _ in range(12)]  # under it: from the heap
held = rss_mb()
del blocks
kept = rss_mb()
speed.release_freed_memory()
print(held, kept, with_big, after_big, rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc are Linux's")
def test_freed_memory_is_kept_until_released():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    if out == ["not", "glibc"]:
        pytest.skip("another C library than glibc: both functions do nothing")
    held, kept, with_big, after_big, released = map(float, out)
    assert kept > held - 20  # 192 MB of blocks of 16 MB stay resident once freed: the next batch reuses their pages
    assert after_big < with_big - 50  # a block over MMAP_THRESHOLD (32 MiB) goes back at once
    assert released < kept - 150  # and release_freed_memory hands the kept ones back
