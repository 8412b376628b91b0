"""Files of a run folder written whole: each is written to a temporary name beside it and renamed, so a file that
exists is complete (a run killed mid-write leaves the old file or none, never half of one). read_json reads them
back, and anything unreadable is a RunFolderError naming the file.

    write_json(run_dir / META_FILE, {"status": "running"})
    write_csv(run_dir / SUMMARY_CSV, summary)
    meta = read_json(run_dir / META_FILE)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import RunFolderError, clip


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_csv(path: Path, df: pd.DataFrame) -> None:
    _atomic_write(path, lambda p: df.to_csv(p, index=False))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: bad JSON and bad UTF-8 alike
        raise RunFolderError(f"cannot read {path}: {clip(e)}") from None
