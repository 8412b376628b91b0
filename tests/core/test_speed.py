"""speed.py: with keep_freed_memory a freed block stays resident, and release_freed_memory hands it back. In a process
of its own, since the allocator settings are the process's."""

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
block = bytearray(200 * 2**20)  # zero-filled: every page touched
held = rss_mb()
del block
kept = rss_mb()
speed.release_freed_memory()
print(held, kept, rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc are Linux's")
def test_freed_memory_is_kept_until_released():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    if out == ["not", "glibc"]:
        pytest.skip("another C library than glibc: both functions do nothing")
    held, kept, released = map(float, out)
    assert kept > held - 20  # the 200 MB block stays resident once freed: the next batch reuses its pages
    assert released < held - 150  # and is handed back
