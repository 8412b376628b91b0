"""core/processes.py: a record's process is alive, gone, or on another host; on Windows the kernel is asked,
never os.kill(pid, 0), which there sends Ctrl-C to the pid's console group and raises for a pid that is gone."""

import os
import socket
import subprocess
import sys

import pytest

from invariance_lab.core import processes
from invariance_lab.core.processes import ERROR_ACCESS_DENIED, STILL_ACTIVE, alive_on_windows, process_gone


def test_this_process_is_alive_and_a_reaped_one_is_gone():
    assert process_gone(processes.this_process()) is False
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert process_gone(dict(pid=dead.pid, pid_start=None, host=socket.gethostname())) is True
    assert process_gone(dict(pid=dead.pid, host="another-host")) is None  # only a heartbeat can tell there
    assert process_gone(dict(pid="1", host=socket.gethostname())) is None
    for nonsense in (0, -1, 10**20, True):  # os.kill(0 or -1, 0) succeeds: an edited meta.json was "running" forever
        assert process_gone(dict(pid=nonsense, pid_start=None, host=socket.gethostname())) is None


class Kernel32:
    """A stand-in for ctypes.WinDLL("kernel32"): `processes` maps pid -> exit code; `denied`, pids of others."""

    def __init__(self, processes=None, denied=()):
        self.processes, self.denied, self.error, self.open = dict(processes or {}), set(denied), 0, set()

    def OpenProcess(self, access, inherit, pid):
        if pid in self.denied or pid not in self.processes:
            self.error = ERROR_ACCESS_DENIED if pid in self.denied else 87  # ERROR_INVALID_PARAMETER: no such pid
            return 0
        self.open.add(pid)
        return pid

    def GetExitCodeProcess(self, handle, code):
        code._obj.value = self.processes[handle]
        return 1

    def CloseHandle(self, handle):
        self.open.remove(handle)

    def get_last_error(self):
        return self.error


def test_windows_liveness_asks_the_kernel_and_closes_what_it_opens():
    k = Kernel32(processes={10: STILL_ACTIVE, 11: 0}, denied={12})
    assert alive_on_windows(10, k) is True  # running
    assert alive_on_windows(11, k) is False  # exited (code 0), handle still held by someone
    assert alive_on_windows(12, k) is True  # another user's: exists
    assert alive_on_windows(13, k) is False  # no such process (a stale pid: os.kill raised WinError 87 here)
    assert alive_on_windows(-1, k) is True and alive_on_windows(2**40, k) is True  # nonsense: not called gone
    assert not k.open


def test_on_windows_os_kill_is_never_called(monkeypatch):
    asked = []

    def kill(pid, sig):
        raise AssertionError("os.kill(pid, 0) on Windows sends CTRL_C_EVENT")

    monkeypatch.setattr(processes.os, "kill", kill)
    monkeypatch.setattr(processes, "alive_on_windows", lambda pid: asked.append(pid) or False)
    monkeypatch.setattr(os, "name", "nt")
    gone = processes.alive(4242, None)
    monkeypatch.undo()
    assert gone is False and asked == [4242]


@pytest.mark.skipif(os.name == "nt", reason="the POSIX path")
def test_a_pid_of_another_user_is_not_called_gone():
    assert processes.alive(1, None) is True  # init: os.kill raises PermissionError for a user, succeeds for root


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="read from Linux's /proc")
def test_processes_with_env_finds_the_processes_started_with_every_pair_and_no_other():
    def started(**env):
        p = subprocess.Popen([sys.executable, "-c", "print(flush=True); import time; time.sleep(30)"],
                             env={**os.environ, **env}, stdout=subprocess.PIPE)
        p.stdout.readline()  # it runs python: its environment is its own, not the one it was forked with
        return p

    tag = f"invlab-{os.getpid()}"
    both, one, other = started(A_TAG=tag, B_TAG="1"), started(A_TAG=tag), started(A_TAG=tag + "x", B_TAG="1")
    try:
        assert processes.processes_with_env({"A_TAG": tag, "B_TAG": "1"}) == [both.pid]
        assert sorted(processes.processes_with_env({"A_TAG": tag})) == sorted([both.pid, one.pid])
    finally:
        for p in (both, one, other):
            p.kill()
            p.wait()
            p.stdout.close()
