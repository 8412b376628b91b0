"""Process-wide settings that make invlab's many small forward and backward passes faster, without changing a
single number.

keep_freed_memory: glibc's malloc returns large freed blocks to the operating system (blocks over its mmap
threshold are unmapped on free, and the top of the heap is trimmed), so every training step and sweep batch
allocates its activations afresh and the kernel zero-fills the pages again. Three one-epoch trainings of conv_only
on the seed question's 2000 letters made 720,000-890,000 minor page faults and 1.2-1.4 s of system time (against
7.4 s of user time); with the mmap threshold raised (to 1 GiB then; 32 MiB now, MMAP_THRESHOLD) and the heap never
trimmed, freed memory is kept for the next batch: 86,000-92,000 faults and 0.14-0.17 s. The settings are the
allocator's only; what is computed does not change. The `invlab` command calls it once at start-up; a process that
imports the library keeps its own allocator settings.

release_freed_memory: what keep_freed_memory keeps is handed back at the end of a phase of a run (the data drawn,
a unit trained: run/experiment.py, run/units.py), so that the next phase does not stack its batches on the last
one's leftovers. glibc's malloc_trim gives the operating system every free page of the heap; the next phase
faults its first batch's pages in again, once. With the optimizer of run/optimizer.py, it lowered the median
peak of `invlab run configs/seed_question.yaml --threads 1` from 467 MB (three runs) to 452 MB (six runs,
420-473 MB: the peak varies that much from run to run; bench/seed_question.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# blocks up to 32 MiB come from the heap, where freed ones are reused; bigger ones are mapped and unmapped as
# glibc does by default. At 1 GiB, maps just under it were kept on a heap never trimmed: a 48-channel network on
# 128 px trained in batches of 8 and swept 256 images at a time peaked at 2.72-4.22 GiB (1.95-1.99 GiB at 32 MiB,
# against an estimate of 1.66 GiB), and took 39-53 s against 54 s, its 768 MiB maps paged in afresh; the seed
# question's batches (a few MiB each) run as fast either way (bench/seed_question.py --baseline: 115.5 s
# against 116.4 s, median of 2)
MMAP_THRESHOLD = 2**25
TRIM_THRESHOLD = 2**31 - 1  # never give the top of the heap back (the largest value an int holds)


@functools.cache  # find_library may run `ldconfig -p`
def _libc():
    """glibc's malloc functions, or None under another C library (musl, Windows, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (module docstring). True if it took the settings;
    False elsewhere (another C library, Windows, macOS), where nothing changes."""
    libc = _libc()
    if libc is None:
        return False
    ok = [libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
    return all(v == 1 for v in ok)


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the operating system (module docstring); elsewhere than glibc, nothing."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
