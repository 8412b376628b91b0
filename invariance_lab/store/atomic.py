"""Files of a run folder written whole, and logs appended, never through a link.

A whole file is written to a fresh temporary name beside it, created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW: a
link or file planted at that name is never opened), and renamed over the target, so a file that exists is
complete (a run killed mid-write leaves the old file or none, never half of one). A run folder may come from
someone else: a symbolic link at a file's own name is refused rather than replaced, and so is one at a log that
is appended to, with a RunFolderError naming the link, so that a planted `meta.json -> ~/notes` never makes a
resumed run write outside its folder. A full disk (or quota) while writing is a DiskFullError naming the file,
which is left as it was. read_json reads files back; anything unreadable is a RunFolderError naming the file.

    write_json(run_dir / META_FILE, {"status": "running"})
    write_csv(run_dir / SUMMARY_CSV, summary)
    write_file(path, lambda f: torch.save(blob, f), binary=True)
    append_text(unit_log_path(run_dir, key), "done\\n")
    meta = read_json(run_dir / META_FILE)
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd

from ..core.errors import DiskFullError, InvlabError, RunFolderError, clip
from ..core.open_flags import BINARY, NOFOLLOW, NONBLOCK, READ

# O_NOFOLLOW and O_NONBLOCK are POSIX; where they are missing (Windows) the lstat checks below still refuse links
DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # no space left; the user's quota reached


def _os_error(e: BaseException | None, errnos=None) -> OSError | None:
    """The OSError (of one of `errnos`, or any) that `e` is or came from, else None: torch.save words its writer's
    OSError as a RuntimeError, with the OSError as its context."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError) and (errnos is None or e.errno in errnos):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def disk_full(e: BaseException | None) -> OSError | None:
    """The OSError saying the disk (or quota) is full that `e` is or came from, else None."""
    return _os_error(e, DISK_FULL)


def _full_disk_error(path: Path, full: OSError) -> DiskFullError:
    return DiskFullError(f"cannot write {path}: the disk is full ({full.strerror or 'no space left on device'}); "
                          f"{_KEPT.format(name=path.name)}. Free some space, or write to another disk, and run again")


_KEPT = ("no half-written file was left (invlab writes a temporary file beside it and renames it only when "
         "complete: an older {name} is kept as it was)")
# what to do about an error writing a file, by errno (the rest: the system's words alone)
_WRITE_ADVICE = {errno.EFBIG: "the file is larger than this process may write (a file-size limit, `ulimit -f`, or "
                              "the file system's largest file); raise the limit or write to another disk",
                 errno.EACCES: "make its folder writable, or write elsewhere",
                 errno.EPERM: "make its folder writable, or write elsewhere",
                 errno.EROFS: "the file system is read-only; write elsewhere",
                 errno.ENOENT: "its folder is gone (moved or deleted while invlab ran); run again where it exists"}


def _write_error(path: Path, e: BaseException) -> InvlabError | None:
    """The one-paragraph error for `e`, raised while writing `path`, naming `path` (not the temporary file the
    system named); None for what is no error of writing (a KeyboardInterrupt, invlab's own errors)."""
    if isinstance(e, UnicodeEncodeError):
        return RunFolderError(f"cannot write {path}: its text holds {clip(repr(e.object[e.start:e.end]), 40)}, which "
                              f"is not valid UTF-8 (a file or folder name whose bytes are not UTF-8); rename it and "
                              f"run again")
    if not isinstance(e, (OSError, RuntimeError)):
        return None
    full = disk_full(e)
    if full is not None:
        return _full_disk_error(path, full)
    cause = _os_error(e)
    if cause is None:
        return None
    advice = _WRITE_ADVICE.get(cause.errno, "run again when the cause is mended")
    error = DiskFullError if cause.errno == errno.EFBIG else RunFolderError
    return error(f"cannot write {path}: {cause.strerror or cause}; {_KEPT.format(name=path.name)}. {advice[0].upper()}"
                 f"{advice[1:]}")


def refuse_link(path: Path) -> None:
    """A RunFolderError when `path` is a symbolic link (writing there would replace or write through it)."""
    if os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise RunFolderError(f"{path} is a symbolic link (to {clip(target, 120)}); invlab never writes through a "
                             f"link or replaces one in a results folder. Remove the link (or use a fresh results "
                             f"folder) and run again")


def _refuse_folder(path: Path) -> None:
    """A RunFolderError when a folder stands where a file is to be written (renaming over it would fail, naming
    the temporary file instead)."""
    if path.is_dir():
        raise RunFolderError(f"{path} is a folder where invlab writes a file; invlab does not replace a folder. "
                             "Move it away and run again")


TMP_EXTRA = 14  # bytes the temporary name adds to a file's own: ".", ".", 8 hex digits, ".tmp"
NAME_MAX = 255  # bytes of one file name on the usual file systems (ext4, APFS, NTFS)


def _short(name: str) -> str:
    """`name`, cut so that the temporary name stays a legal one (a 250-byte --html name is)."""
    raw = os.fsencode(name)
    return name if len(raw) <= NAME_MAX - TMP_EXTRA else os.fsdecode(raw[:NAME_MAX - TMP_EXTRA])


def _temporary(path: Path) -> tuple[int, Path]:
    """A new file beside `path` under a name nobody else has: created exclusively, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | BINARY
    for _ in range(100):
        tmp = path.with_name(f".{_short(path.name)}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp  # 0o666 less the umask, like any file open() creates
        except FileExistsError:
            continue
    raise RunFolderError(f"cannot create a temporary file beside {path}: 100 names taken")


def write_file(path: Path, write: Callable[[IO], Any], *, binary: bool = False) -> None:
    """Write `path` whole: `write(f)` fills a temporary file, which is then renamed over `path`. An error of
    writing (a full disk, a file-size limit, a folder made read-only or moved away) names `path` itself."""
    path = Path(path)
    refuse_link(path)
    _refuse_folder(path)
    try:
        fd, tmp = _temporary(path)
    except OSError as e:  # no room even for an empty file (no free inodes), a folder not writable
        raise (_write_error(path, e) or e) from None
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            write(f)
        refuse_link(path)  # planted while we wrote: still refused, the link left as it is
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        error = _write_error(path, e)
        if error is not None:
            raise error from None
        raise


def write_text(path: Path, text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"write_text needs a str, not {type(text).__name__}")
    write_file(path, lambda f: f.write(text))


def write_page(path: Path, text: str) -> None:
    """A page for people to read (the HTML report, the answers page): a folder name whose bytes are not UTF-8 (held
    as surrogates, as Python decodes such names) is written with them escaped, `\\udcff`, not refused."""
    write_text(path, text.encode("utf-8", "backslashreplace").decode("utf-8"))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_csv(path: Path, df: pd.DataFrame) -> None:
    write_file(path, lambda f: df.to_csv(f, index=False))


def append_text(path: Path, text: str) -> None:
    """Append `text` to the regular file `path` (created if missing); a link or anything but a file is refused."""
    path = Path(path)
    refuse_link(path)
    not_a_file = f"{path} is not a regular file; invlab appends its logs only to files it made. Remove it and run again"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW | NONBLOCK | BINARY, 0o666)
    except OSError as e:
        refuse_link(path)  # ELOOP: a link planted between the check and the open
        if path.exists() and not path.is_file():  # a FIFO without a reader (ENXIO), a folder (EISDIR)
            raise RunFolderError(not_a_file) from None
        raise RunFolderError(f"cannot append to {path}: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunFolderError(not_a_file)
        data = text.encode("utf-8")
        while data:  # unbuffered, so that a full disk is met here and not again when the file is closed
            data = data[os.write(fd, data):]
    except OSError as e:
        if disk_full(e):
            raise DiskFullError(f"cannot append to {path}: the disk is full ({e.strerror or e}); free some space, "
                                 f"or write to another disk, and run again") from None
        raise
    finally:
        os.close(fd)


MAX_JSON_BYTES = 16 * 2**20  # meta.json, study.json: a few KB each


def read_json(path: Path) -> Any:
    """The JSON in the regular file `path`; anything else (no file, a FIFO or device, bad JSON or UTF-8, nesting too
    deep to decode) is a RunFolderError naming the file."""
    try:
        fd = os.open(path, READ)  # a FIFO at the name must not hang the command
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise RunFolderError(f"cannot read {path}: it is not a regular file")
            if info.st_size > MAX_JSON_BYTES:  # a sparse file of gigabytes costs nothing to make, much to read
                raise RunFolderError(f"cannot read {path}: {info.st_size:,} bytes, where invlab's JSON files take a "
                                     f"few KB (at most {MAX_JSON_BYTES:,}); it is not invlab's")
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad JSON and bad UTF-8 alike
        raise RunFolderError(f"cannot read {path}: {clip(e)}") from None
