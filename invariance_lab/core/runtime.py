"""The process settings a measurement touches: the torch device, torch's thread count, TF32 and the RNG.

    device = resolve_device("auto")   # cuda when torch finds a GPU (TF32 off), else cpu
    set_threads(1)                    # recorded in meta.json; on a busy machine 1 can beat 2
    with process_state():             # a library call gives back threads, TF32 flags and torch's RNG as found
        ...

A run (run/experiment.py, its unit and sweep workers, `invlab measure`) owns its process and sets these once, so
the same settings give the same numbers in every worker. A library call (il.measure) runs inside process_state().
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .errors import InvlabError


def resolve_device(name: str) -> torch.device:
    """cpu, or cuda (for `auto` when torch finds a GPU). On CUDA, TF32 convolutions and matmuls are turned off:
    their 10-bit mantissa moves feature maps by ~1e-4, which would hide the exact invariance (APS, circular
    stride-1 networks) that float32 shows to ~1e-7 (docs/science.md)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InvlabError("device: cuda was asked for, but torch finds no CUDA device here; use device: auto or cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return device


def set_threads(threads: int | None) -> None:
    """torch's intra-op threads for this process (None: torch's own default). Recorded in meta.json."""
    if threads is not None:
        if threads < 1:
            raise InvlabError(f"--threads must be at least 1; got {threads}")
        torch.set_num_threads(threads)


@contextmanager
def process_state() -> Iterator[None]:
    """Give back torch's thread count, the TF32 flags and torch's RNG (CPU, and CUDA where it was started) as
    they were, whatever the block sets or draws: a library call must not change its caller's process."""
    threads = torch.get_num_threads()
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        torch.random.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
