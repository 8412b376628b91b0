"""The process settings a measurement touches: the torch device, torch's thread count, TF32 and the RNG.

    device = resolve_device("auto")   # cuda when torch finds a GPU (TF32 off), else cpu
    set_threads(1)                    # or None: torch's default less the cores other processes keep busy
    with process_state():             # a library call gives back threads, TF32 flags and torch's RNG as found
        ...

A run (run/experiment.py, its unit and sweep workers, `invlab measure`) owns its process and sets these once, so
the same settings give the same numbers in every worker. A library call (il.measure) runs inside process_state().
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from .errors import InvlabError, clip


def resolve_device(name) -> torch.device:
    """check_device's device, for computing on: on CUDA, TF32 convolutions and matmuls are turned off (their 10-bit
    mantissa moves feature maps by ~1e-4, which would hide the exact invariance (APS, circular stride-1 networks)
    that float32 shows to ~1e-7; docs/science.md)."""
    device = check_device(name)
    if device.type == "cuda":
        tf32_off()
    return device


def check_device(name) -> torch.device:
    """cpu, or cuda (for `auto` when torch finds a GPU): a name (cpu, cuda, cuda:1, auto) or a torch.device, each
    checked here, so that a device this machine lacks is one paragraph, not torch's error at the first tensor."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    allowed = "use cpu, cuda (cuda:0, ...) or auto"
    try:
        device = name if isinstance(name, torch.device) else torch.device(name) if isinstance(name, str) else None
    except (RuntimeError, TypeError):  # torch's own message lists some 30 device types
        device = None
    if device is None:
        raise InvlabError(f"device {name!r} is not a device torch knows; {allowed}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvlabError(f"device {str(device)} was asked for (the config's `device`, --device or device=), but "
                              "torch finds no CUDA device here; use auto (a GPU when there is one) or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InvlabError(f"device {str(device)} was asked for, but torch finds {torch.cuda.device_count()} CUDA "
                              f"device(s) here, numbered from 0")
    elif device.type == "meta":
        raise InvlabError(f"device meta holds shapes without values: nothing can be measured there; {allowed}")
    elif device.type != "cpu":
        try:  # another backend (mps, xla, ...): measured there only where this torch can place a tensor on it
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError, NotImplementedError) as e:
            raise InvlabError(f"device {str(device)}: torch cannot place a tensor there ({clip(e, 160)}); "
                              f"{allowed}") from None
    return device


# torch 2.9 and later set TF32 per backend (fp32_precision: "ieee", "tf32", or "none", which follows the global
# setting) beside the older allow_tf32 flags, and refuse to read either once the two disagree (a "mix of the
# legacy and new APIs": torch.get_float32_matmul_precision() or torch.backends.cudnn.allow_tf32 raises). invlab
# turns TF32 off through both, so that every reading agrees, and process_state gives back what each reading said
# (tests/run/test_api.py: a caller on either API, a model that writes either).
_NEW_TF32_API = hasattr(torch.backends.cuda.matmul, "fp32_precision")
_MATMUL, _CUDNN = torch.backends.cuda.matmul, torch.backends.cudnn
_CUDNN_OPS = [op for op in ("conv", "rnn") if hasattr(_CUDNN, op)] if _NEW_TF32_API else []


def tf32_off() -> None:
    """Full float32 in cuDNN and CUDA matmuls, said the same by the older flags, the per-backend precisions and the
    global matmul precision."""
    if _NEW_TF32_API:
        torch.set_float32_matmul_precision("highest")
    _MATMUL.allow_tf32 = _CUDNN.allow_tf32 = False
    if _NEW_TF32_API:
        _MATMUL.fp32_precision = "ieee"
        for op in _CUDNN_OPS:
            getattr(_CUDNN, op).fp32_precision = "ieee"


def _setter(obj, name: str) -> Callable[[object], None]:
    return lambda value: setattr(obj, name, value)


# every reading of the TF32 settings, (get, set), in the order process_state writes them back: the per-backend
# precisions, then the older flags, then the global matmul precision (setting it rewrites the backends': they go
# again last)
_BACKENDS = [(lambda: _MATMUL.fp32_precision, _setter(_MATMUL, "fp32_precision"))] + [
    ((lambda o=getattr(_CUDNN, op): o.fp32_precision), _setter(getattr(_CUDNN, op), "fp32_precision"))
    for op in _CUDNN_OPS] if _NEW_TF32_API else []
_READINGS = _BACKENDS + [(lambda: _MATMUL.allow_tf32, _setter(_MATMUL, "allow_tf32")),
                         (lambda: _CUDNN.allow_tf32, _setter(_CUDNN, "allow_tf32"))] + (
    [(torch.get_float32_matmul_precision, torch.set_float32_matmul_precision)] if _NEW_TF32_API else [])


def _read(get: Callable[[], object]) -> object:
    try:
        return get()
    except RuntimeError:  # the two APIs disagree: torch refuses to say
        return None


def _tf32_state() -> list:
    """What each reading says (None where torch refuses to say)."""
    return [_read(get) for get, _ in _READINGS]


def _restore_tf32(was: list) -> None:
    """Write back each reading that changed, in _READINGS' order, then the backends' again if the global precision
    rewrote them: writing a value a flag already holds still counts as a use of its API."""
    for (get, put), value in [*zip(_READINGS, was), *zip(_BACKENDS, was)]:
        if value is not None and _read(get) != value:
            put(value)


MAX_THREADS = 1024  # torch threads of one process: far beyond any machine's cores


def set_threads(threads: int | None) -> str:
    """torch's intra-op threads for this process: `threads` (--threads), else default_threads(). Returns why, for
    meta.json (environment.threads_why)."""
    if threads is not None:
        if not 1 <= threads <= MAX_THREADS:  # torch takes a C int: 10**20 was an OverflowError traceback
            raise InvlabError(f"--threads must be from 1 to {MAX_THREADS}; got {threads}")
        torch.set_num_threads(threads)
        return f"--threads {threads}"
    threads, why = default_threads()
    torch.set_num_threads(threads)
    return why


def usable_cores() -> int:
    """The CPU cores this process may use (its affinity, which a container or a SLURM job sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


SAMPLE_S = 0.15  # how long default_threads watches the machine's CPUs before choosing


def busy_cores() -> tuple[float, str] | None:
    """(cores busy right now, over what), from the whole machine's CPU times over SAMPLE_S (Linux's /proc/stat),
    else from the 1-minute load average; None where neither exists (Windows). This process sleeps while it
    watches, so it counts only the others. The load average alone would also count a run that finished seconds
    ago (it decays over a minute): two invlab commands in a row would each find the machine busy."""
    try:
        before = _cpu_times()
        time.sleep(SAMPLE_S)
        after = _cpu_times()
        total, idle = after[0] - before[0], after[1] - before[1]
        if total > 0:
            return (1 - idle / total) * (os.cpu_count() or 1), f"over {SAMPLE_S:g} s"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0], "on average over the last minute"
    except (OSError, AttributeError):
        return None


def _cpu_times() -> tuple[int, int]:
    """(all, idle) CPU time of the whole machine since boot, in clock ticks (the first line of /proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    return sum(ticks), ticks[3] + ticks[4]  # idle and waiting for I/O


def default_threads() -> tuple[int, str]:
    """(threads, why) when --threads is not given: torch's own default, less the cores other processes keep busy.

    torch starts one thread per core whatever else runs; when other jobs hold the cores, its threads wait for
    each other at every operation (on a 2-core machine with two busy processes, two threads ran a unit in 43 s
    and one in 3.4 s). The machine's cores less the busy ones (busy_cores, rounded) are what is free as this
    process starts (a cluster job's own cores, its affinity, cap the count but are not what the machine's load
    is measured against); at least one thread. On a quiet machine this is torch's default."""
    cores = usable_cores()
    own = min(torch.get_num_threads(), cores)
    if own == 1:  # nothing to give way: no need to watch the machine
        return 1, f"torch's default (1; {cores} core{'s' if cores > 1 else ''})"
    seen = busy_cores()
    if seen is None:
        return own, f"torch's default ({own}; the CPUs' load is not readable here)"
    busy, over = seen
    free = (os.cpu_count() or cores) - round(busy)
    threads = max(1, min(own, free))
    if threads == own:
        return own, f"torch's default ({own}; {cores} cores, {busy:.1f} busy {over})"
    return threads, f"{threads} of torch's {own}: {cores} cores, {busy:.1f} busy {over}"


def keeps_threads(fn):
    """Decorate a library call that sets torch's threads for its own work (run_experiment): the caller gets its
    thread count back."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        threads = torch.get_num_threads()
        try:
            return fn(*args, **kwargs)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    return call


@contextmanager
def process_state() -> Iterator[None]:
    """Give back torch's thread count, the TF32 flags and torch's RNG (CPU, and CUDA where it was started) as
    they were, whatever the block sets or draws: a library call must not change its caller's process."""
    threads = torch.get_num_threads()
    tf32 = _tf32_state()
    rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        _restore_tf32(tf32)
        torch.random.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


@contextmanager
def exact_on(device: torch.device) -> Iterator[None]:
    """TF32 off for the block where it computes on CUDA (torch's default runs convolutions in TF32, ~1e-4 relative:
    an exactly invariant network would not measure ~0), the caller's flags and the rest of process_state given back
    after; nothing on other devices."""
    if torch.device(device).type != "cuda":
        yield
        return
    with process_state():
        tf32_off()
        yield


@contextmanager
def without_autocast() -> Iterator[None]:
    """The block computes in the models' own precision even inside a caller's torch.autocast (bfloat16 on the CPU
    moved measured probabilities by ~1e-4, past the certificate's 1e-6): autocast off on the CPU, and on CUDA where
    torch finds it."""
    with torch.autocast("cpu", enabled=False):
        if torch.cuda.is_available():
            with torch.autocast("cuda", enabled=False):
                yield
        else:
            yield
