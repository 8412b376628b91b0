"""Whether the process that wrote a run, unit or study record is still alive: a folder marked running whose process
is gone was killed without a chance to say so (store/meta.run_state, run/study.study_state).

    record = this_process()          # {pid, pid_start, host}, kept in meta.json
    process_gone(record)             # True, False, or None on another host (only a heartbeat can tell there)
    processes_with_env({"SUBMITIT_LOCAL_JOB_ID": "123"})   # pids of this user's processes started with it (Linux)
    with terminate_as_interrupt(): ...   # SIGTERM (kill, a cluster's cancel) ends the block as Ctrl-C does
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

STILL_ACTIVE = 259  # Windows: GetExitCodeProcess's code for a process that has not exited
ERROR_ACCESS_DENIED = 5
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000


def process_start(pid: int) -> str | None:
    """The start time of a process (Linux /proc), so a recycled pid is not taken for the original process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> dict:
    """{pid, pid_start, host}: what tells later whether this process is still alive (process_gone)."""
    pid = os.getpid()
    return dict(pid=pid, pid_start=process_start(pid), host=socket.gethostname())


def process_gone(record: dict) -> bool | None:
    """Whether the process a record names (this_process's keys) is gone: True or False on this host, None on
    another (or without a pid): only a heartbeat can tell there."""
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or record.get("host") != socket.gethostname():
        return None
    if not 0 < pid < 2**31:  # no process has it: os.kill(0 or -1, 0) signals a group and succeeds, a pid past a C
        return None  # int overflows; the heartbeat decides, as for another host (it said "still running" forever)
    return not alive(pid, record.get("pid_start"))


def alive(pid: int, start: str | None) -> bool:
    if os.name == "nt":
        return alive_on_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists, but not ours (or the pid is nonsense): do not claim it is gone
    if _zombie(pid):  # killed, not yet reaped by its parent: gone all the same
        return False
    now = process_start(pid)
    return start is None or now is None or now == start


def processes_with_env(wanted: dict[str, str]) -> list[int]:
    """The pids of the processes (this user's: another's environment cannot be read) whose environment, as they were
    started with it, holds every name=value of `wanted`; this process left out. Read from Linux's /proc: [] where
    there is none (macOS, Windows)."""
    needles = {f"{k}={v}".encode() for k, v in wanted.items()}
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours
            continue
        if needles <= set(environ):
            found.append(int(entry))
    return found


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def alive_on_windows(pid: int, kernel32=None) -> bool:
    """Windows has no signal 0: os.kill(pid, 0) sends CTRL_C_EVENT to the pid's console group, and raises
    OSError (WinError 87) for a pid that is gone. The kernel is asked instead. `kernel32`: ctypes' WinDLL, or a
    stand-in with OpenProcess, GetExitCodeProcess, CloseHandle and get_last_error."""
    if kernel32 is None:
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # exists on Windows alone
        kernel32.get_last_error = ctypes.get_last_error
    if not 0 < pid < 2**32:
        return True  # nonsense: do not claim it is gone
    handle = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return kernel32.get_last_error() == ERROR_ACCESS_DENIED  # exists, but not ours; else no such process
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


@contextmanager
def terminate_as_interrupt():
    """Treat SIGTERM like Ctrl-C inside the block, so that what the block cleans up on KeyboardInterrupt (a run
    marked interrupted, a temporary folder removed) is cleaned up on `kill` too. Main thread only: signals are
    delivered there; the handler before is put back when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
