"""core/runtime.py: the default thread count gives way to other processes' load, --threads overrides it, and a
library call that sets threads gives the caller's back."""

import os

import pytest
import torch
from conftest import fresh_script

from invariance_lab.core import runtime
from invariance_lab.core.errors import InvlabError


@pytest.fixture
def machine(monkeypatch):
    """A machine of `cores` cores, a 1-minute load of `load` (None: no load average) and torch's default `own`."""

    def make(cores, load, own, machine_cores=None):
        monkeypatch.setattr(runtime, "usable_cores", lambda: cores)
        monkeypatch.setattr(os, "cpu_count", lambda: machine_cores or cores)
        monkeypatch.setattr(runtime, "busy_cores", lambda: None if load is None else (load, "over 0.15 s"))
        monkeypatch.setattr(torch, "get_num_threads", lambda: own)

    return make


@pytest.mark.parametrize("cores, load, own, want", [
    (2, 0.0, 2, 2),  # quiet: torch's default, as before
    (2, 0.4, 2, 2),
    (2, 1.0, 2, 1),  # one other busy process: the other core
    (2, 2.1, 2, 1),  # two busy processes on two cores: one thread, never zero
    (2, 9.0, 2, 1),
    (8, 3.0, 8, 5),
    (8, 0.0, 4, 4),  # never more than torch's own default
    (4, 1.2, 2, 2),
    (2, 0.0, 1, 1),  # torch's default is already one thread: nothing to watch
])
def test_default_threads_leave_the_busy_cores_to_their_processes(machine, cores, load, own, want):
    machine(cores, load, own)
    threads, why = runtime.default_threads()
    assert threads == want
    assert (f"{load:.1f} busy over 0.15 s" in why and f"{cores} cores" in why) or own == 1
    assert why.startswith("torch's default") == (want == own)


def test_a_cluster_jobs_cores_are_counted_against_the_whole_machines_load(machine):
    # 4 cores of a 64-core node whose other jobs keep 56 busy: all 4; with 63 busy, the 1 left
    machine(4, 56.0, 4, machine_cores=64)
    assert runtime.default_threads()[0] == 4
    machine(4, 63.0, 4, machine_cores=64)
    assert runtime.default_threads()[0] == 1


def test_without_a_load_average_the_default_is_torchs(machine):
    machine(2, None, 2)
    assert runtime.default_threads() == (2, "torch's default (2; the CPUs' load is not readable here)")


def test_busy_cores_counts_the_machines_cpu_time_while_this_process_sleeps(monkeypatch):
    # /proc/stat's first line: 200 ticks went by on the machine, 50 of them idle (or waiting for I/O): 1.5 of 2
    # cores busy
    readings = iter([(1000, 400), (1200, 450)])
    monkeypatch.setattr(runtime, "_cpu_times", lambda: next(readings))
    monkeypatch.setattr(runtime.time, "sleep", lambda s: None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert runtime.busy_cores() == (1.5, "over 0.15 s")
    monkeypatch.setattr(runtime, "_cpu_times", lambda: (_ for _ in ()).throw(OSError("no /proc")))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.7, 0.5, 0.2))
    assert runtime.busy_cores() == (0.7, "on average over the last minute")


def test_threads_given_are_set_and_said():
    before = torch.get_num_threads()
    try:
        assert runtime.set_threads(1) == "--threads 1" and torch.get_num_threads() == 1
        for bad in (0, 10**20):  # 10**20 was torch's OverflowError
            with pytest.raises(InvlabError, match="--threads must be from 1 to 1024"):
                runtime.set_threads(bad)
    finally:
        torch.set_num_threads(before)


def test_a_call_that_sets_threads_gives_them_back():
    before = torch.get_num_threads()

    @runtime.keeps_threads
    def work():
        runtime.set_threads(before + 1)
        return torch.get_num_threads()

    assert work() == before + 1 and torch.get_num_threads() == before


def test_cuda_asked_for_without_a_gpu_names_every_place_it_is_asked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1", torch.device("cuda")):
        with pytest.raises(InvlabError, match=r"device cuda(:1)? was asked for \(the config's `device`, --device or "
                                              r"device=\), but torch finds no CUDA device here; use auto"):
            runtime.resolve_device(device)


_TF32_SCENARIOS = r'''
import random, sys, torch
from invariance_lab.core import runtime as rt
M, C = torch.backends.cuda.matmul, torch.backends.cudnn
rng = random.Random(0)
def write():  # a caller or a model setting TF32 through either API
    k = rng.randrange(6)
    if k == 0: torch.set_float32_matmul_precision(rng.choice(["medium", "high", "highest"]))
    elif k == 1: M.allow_tf32 = rng.random() < .5
    elif k == 2: C.allow_tf32 = rng.random() < .5
    elif k == 3: M.fp32_precision = rng.choice(["ieee", "tf32"])
    elif k == 4: C.conv.fp32_precision = rng.choice(["ieee", "tf32"])
    else: C.rnn.fp32_precision = rng.choice(["ieee", "tf32"])
def read():
    out = []
    for f in (lambda: M.allow_tf32, lambda: C.allow_tf32, torch.get_float32_matmul_precision,
              lambda: M.fp32_precision, lambda: C.conv.fp32_precision, lambda: C.rnn.fp32_precision):
        try: out.append(f())
        except RuntimeError: out.append(None)  # the two APIs disagree: torch refuses to say
    return out
for case in range(300):
    for _ in range(rng.randrange(3)): write()
    before = read()
    with rt.process_state():
        rt.tf32_off()
        inside = read()
        for _ in range(rng.randrange(3)): write()
    after = read()
    assert inside == [False, False, "highest", "ieee", "ieee", "ieee"], (case, inside)
    assert all(b is None or b == a for b, a in zip(before, after)), (case, before, after)
print("ok")
'''
if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9
    # in the new process of conftest.fresh_process, not the test's: the settings are the process's (the compiler-stack
    # script that runs there first leaves every TF32 reading at torch's default)
    fresh_script("tf32", _TF32_SCENARIOS)


@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch < 2.9")
def test_tf32_off_agrees_in_both_apis_and_every_reading_comes_back(fresh_process):
    """300 random states, set by a caller and by a model through torch's older allow_tf32 flags, its per-backend
    fp32_precision and the global matmul precision (one process, each case starting where the last ended): inside,
    every reading says full float32 (turning TF32 off through one API left torch.backends.cudnn.allow_tf32
    unreadable: "a mix of the legacy and new APIs"); after, every reading the caller could make is as it was."""
    status, out, error = fresh_process["tf32"]
    assert status == 0 and out.strip() == "ok", error[-2000:]
