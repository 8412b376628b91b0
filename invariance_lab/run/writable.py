"""The folders a command writes into, checked before any work: created if needed, or an error that names the
command-line option the path came from.

    results_dir = writable(Path("results"), "--results-dir")
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import ConfigError


def writable(path: Path, option: str) -> Path:
    """The folder `path`, created if needed, or an error naming the option it came from."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{option} {path}: cannot create this folder ({e.strerror or e}); give a writable folder") from None
    if not path.is_dir() or not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path}: not a writable folder; give a writable folder")
    return path


def writable_file(path: Path, option: str, example: str) -> Path:
    """A file to write: not a folder, and its folder writable (refused before the work of making it)."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give the file to write, e.g. {option} {path / example}")
    writable(path.parent, option)
    return path
