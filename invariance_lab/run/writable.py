"""The folders and files a command writes into, checked before any work: created if needed, or an error that names
the command-line option the path came from.

A page or plot a command writes (--html, --plot, --out) replaces only what invlab made: never a link, folder,
device, FIFO or socket, never a file of a run, sweep, study or measure folder (the files the page is made from),
and an existing file only when it is one invlab wrote, by the way invlab writes it: it begins as invlab begins such
a file (`starts`: the HTML page's head, a PNG's signature, the answers page's title) and carries invlab's mark in
its head (`marker`: the page's generator tag, the PNG's Software chunk, the page's intro), or the user passes
--force. A file that only quotes the mark (notes, invlab's own source) is not one.

    results_dir = writable(Path("results"), "--results-dir")
    page = output_file(Path("report.html"), "--html", "report.html", marker=GENERATOR.encode(),
                       starts=PAGE_HEAD.encode(), force=False)
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ..core.errors import ConfigError, clip
from ..store.layout import META_FILE, STUDY_FILE

MARK_BYTES = 1 << 16  # invlab's mark sits in a file's head (the HTML <head>, a PNG's text chunks, a page's intro)


def writable(path: Path, option: str, *, create: bool = True) -> Path:
    """The folder `path`, created if needed, or an error naming the option it came from. With create=False it is
    only checked: it, or else the nearest folder above it that exists, must be a writable folder (the command makes
    the rest when it first writes), so that a command refused later for another reason leaves nothing behind.
    A --results-dir must not lie in a run, sweep, study or measure folder: the runs made there would nest in it."""
    inside = results_folder_of(Path(path) / META_FILE) if option == "--results-dir" else None
    if inside is not None:
        where = "is" if inside == Path(path).resolve() else "lies in"
        outermost = inside  # a sweep folder lies in its run folder: the suggestion is outside both
        while (up := results_folder_of(outermost)) is not None:
            outermost = up
        raise ConfigError(f"{option} {path} {where} the results folder {inside} (it holds {META_FILE} or "
                          f"{STUDY_FILE}): what invlab makes would be nested in it. Give the folder that holds your "
                          f"runs, e.g. {option} {outermost.parent.parent}")
    if not create:
        existing = next(p for p in (path, *Path(os.path.abspath(path)).parents) if os.path.lexists(p))
        if existing != path and not Path(existing).is_dir():
            raise ConfigError(f"{option} {path}: cannot create this folder ({existing} is a file, not a folder); "
                              "give a writable folder")
        if not Path(existing).is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(f"{option} {path}: not a writable folder{'' if existing == path else f' ({existing})'}; "
                              "give a writable folder")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{option} {path}: cannot create this folder ({e.strerror or e}); give a writable folder") from None
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path}: not a writable folder; give a writable folder")
    return path


def results_folder_of(path: Path) -> Path | None:
    """The run, sweep, study or measure folder that the file `path` lies in (at any depth), or None."""
    parent = Path(os.path.abspath(path)).parent.resolve()  # a linked folder counts as where it leads
    for folder in (parent, *parent.parents):
        if _invlabs(folder / META_FILE, ("run", "sweep", "measure")) or _invlabs(folder / STUDY_FILE, ("study",)):
            return folder
    return None


def _invlabs(path: Path, kinds: tuple[str, ...]) -> bool:
    """Whether `path` is a record invlab wrote: a JSON object whose kind is one of `kinds`. Another tool's
    meta.json (a dataset's, a project's, higher up) is not; one that cannot be read as JSON is taken for invlab's,
    damaged, so that nothing is written into a run folder because its meta.json broke."""
    try:
        if not path.is_file():
            return False
        if path.stat().st_size > MARK_BYTES * 16:  # invlab's records are a few KB; a big file is someone else's
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return False
    except ValueError:
        return True
    return not isinstance(data, dict) or data.get("kind") in kinds


def output_file(path: Path, option: str, example: str, *, marker: bytes, starts: bytes = b"", force: bool = False,
                inside: Path | None = None, mark: str | None = None, instead: str = "give the file itself") -> Path:
    """A file a command may write (and replace), checked before the work of making it; see the module docstring.
    `inside`: the one results folder this file may lie in (`invlab claims` writes its page into its run);
    `mark`: the marker in words for the message (default: the marker itself); `instead`: what to do when the path
    is a link (for a file invlab named itself rather than one given)."""
    path = Path(path)
    if path.is_symlink():
        raise ConfigError(f"{option} {path} is a symbolic link (to {clip(os.readlink(path), 120)}); invlab replaces "
                          f"the file it is given, never a link or what it points to: {instead}")
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give the file to write, e.g. {option} {path / example}")
    mode = os.stat(path).st_mode if path.exists() else None
    if mode is not None and not stat.S_ISREG(mode):
        raise ConfigError(f"{option} {path} is a device, FIFO or socket, not a file; give the path of a regular file "
                          f"to write, e.g. {option} {example}")
    folder = results_folder_of(path)
    if folder is not None and (inside is None or folder != Path(inside).resolve()):
        raise ConfigError(f"{option} {path} lies in the results folder {folder} (it holds {META_FILE} or "
                          f"{STUDY_FILE}); invlab never writes there what you name, so that a run's own files cannot "
                          f"be replaced: give a path outside it, e.g. {option} {example}")
    if mode is not None and not force and not _marked(path, marker, starts):
        raise ConfigError(f"{option} {path} exists and was not written by invlab (it lacks invlab's mark, "
                          f"{mark or repr(marker.decode(errors='replace'))}); pass --force to replace it, or give a new file name")
    writable(path.parent, option)  # created only now: never a folder inside a results folder
    return path


def _marked(path: Path, marker: bytes, starts: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(MARK_BYTES)
            return head.startswith(starts) and marker in head
    except OSError:
        return False
