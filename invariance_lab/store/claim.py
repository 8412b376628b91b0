"""A run or study folder claimed by the live process that works in it: an exclusive lock on <folder>/.lock (flock
on POSIX, a locked byte on Windows), which the system releases when the process ends, however it ends. Two
processes that would resume the same stopped run, or study, cannot both take it: the second finds it taken and
makes a folder of its own, as it does beside a run that is still running.

    held = claim(run_dir)  # None: another live process holds it
    with held:             # released at the end (or when the process ends)
        ...
    found, held = claimed_resume(Path("results"), "quick", digest)  # resumable_run's folder, held
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..core.errors import RunFolderError
from ..core.open_flags import BINARY, NOFOLLOW
from .atomic import disk_full, refuse_link, write_text
from .find import resumable_run
from .layout import CONFIG_FILE, LOCK_FILE, RESUME_FOLDERS, new_run_folder, refuse_linked_folders, remove_new_folder

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

# what a lock held by another process raises (EDEADLK: msvcrt.locking's EDEADLOCK on Windows)
TAKEN = {errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK}


class Claim:
    """The open, locked .lock of a folder; release() unlocks it (the empty file stays)."""

    def __init__(self, fd: int | None):
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases its lock, flock and msvcrt alike
            self.fd = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim(folder: Path) -> Claim | None:
    """The folder's lock, taken without waiting; None when another live process holds it. A file system that
    cannot lock (some network mounts) gives an unlocked Claim: invlab then relies on the folder's status alone, as
    it did before folders were claimed."""
    path = Path(folder) / LOCK_FILE
    refuse_link(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW | BINARY, 0o666)
    except OSError as e:  # a folder it cannot write (read-only, immutable), or a folder at the name
        if disk_full(e):  # no free inode for the empty lock file: the advice below would be wrong
            raise RunFolderError(f"{folder}: cannot create its lock file {LOCK_FILE}: the disk is full "
                                 f"({e.strerror or e}). Free some space, or use another --results-dir, and run "
                                 "again") from None
        raise RunFolderError(f"{folder}: cannot open its lock file {LOCK_FILE} ({e.strerror or e}); invlab works only "
                             f"in a folder it can write, with {LOCK_FILE} a plain file. Make the folder writable (or "
                             "remove what is at that name), or start a new folder: --fresh, or another "
                             "--results-dir") from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as e:
        os.close(fd)
        if e.errno in TAKEN:
            return None
        return Claim(None)  # no locks here (ENOLCK, EOPNOTSUPP): unclaimed, not refused
    return Claim(fd)


def claimed_resume(results_dir: Path, name: str, digest: str | tuple[str, ...],
                   **find) -> tuple[tuple[Path, dict] | None, Claim | None]:
    """(store/find.resumable_run's folder and meta, its claim), or (None, None): a folder another live process
    holds (two reruns started at once: the first resumes it) is passed over, and a folder's state is read again
    once it is held (the process that held it may have finished it)."""
    passed: set[Path] = set()
    while True:
        found = resumable_run(results_dir, name, digest, skip=passed, **find)
        if found is None:
            return None, None
        held = claim(found[0])
        if held is not None:
            again = resumable_run(results_dir, name, digest, skip=passed, **find)  # as it is, now that it is ours
            if again is not None and again[0] == found[0]:
                return again, held
            held.release()
        passed.add(found[0])


def run_folder(results_dir: Path, name: str, digest: str | tuple[str, ...], config_text: str, *, fresh: bool,
               **find) -> tuple[Path, dict | None, Claim]:
    """(the folder a run works in, the meta.json of the stopped run it resumes or None, its claim): the newest
    stopped run of this config no live process holds (claimed_resume; its config.yaml written again, restoring an
    edited copy), else a new folder. Released here if this fails, else by the caller (`with claim:`)."""
    found, held = (None, None) if fresh else claimed_resume(results_dir, name, digest, **find)
    try:
        if found is not None:
            refuse_linked_folders(found[0], RESUME_FOLDERS)  # checkpoints/ -> elsewhere: new units would land there
            write_text(found[0] / CONFIG_FILE, config_text)
            return found[0], found[1], held
        run_dir = new_run_folder(results_dir, name, config_text)
        try:
            return run_dir, None, claim(run_dir) or Claim(None)
        except BaseException:  # its lock cannot be made (a full disk): the folder made just now goes too
            remove_new_folder(run_dir)
            raise
    except BaseException:
        if held is not None:
            held.release()
        raise
