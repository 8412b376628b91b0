"""Run folders: a fresh, never-reused folder per run, atomic writes, and the meta.json that describes it.

    results/<name>/<run id>/
        config.yaml        resolved config (every model factor filled in)
        meta.json          status, versions, git commit, device, seeds, protocol, timings
        checkpoints/       <model>-seed<seed>.pt (weights + resolved spec + data/train settings)
        train.csv          per model x seed x epoch
        invariance.csv     per model x seed x shift
        summary.csv        per model x seed

Every file is written to a temporary name and renamed, so a file that exists is complete; meta.json's status
says whether the whole run is ("running" -> "complete", or "failed" / "interrupted").
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime
from importlib import metadata
from pathlib import Path

import pandas as pd

from .errors import InvlabError


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


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InvlabError(f"cannot read {path}: {e}") from None


def new_folder(parent: Path, prefix: str = "") -> Path:
    """A new folder named by the current time; a suffix keeps two runs in the same second apart."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = prefix + datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise InvlabError(f"could not create a new folder under {parent}")


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict:
    versions = {}
    for pkg in ("invariance_lab", "torch", "numpy", "pandas", "pydantic", "typer", "Hershey-Fonts", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return dict(python=platform.python_version(), platform=platform.platform(), versions=versions,
                git_commit=git_commit(), cpu_threads=os.cpu_count())


class Meta:
    """meta.json, rewritten atomically whenever its status changes."""

    def __init__(self, folder: Path, **fields):
        self.path = folder / "meta.json"
        self.data = dict(status="running", started=datetime.now().isoformat(timespec="seconds"), **fields)
        self._t0 = time.perf_counter()
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)

    @contextmanager
    def recording(self):
        """Mark the folder complete when the block ends normally, failed or interrupted when it does not."""
        try:
            yield self
        except KeyboardInterrupt:
            self.finish("interrupted")
            raise
        except BaseException as e:
            self.finish("failed", error=f"{type(e).__name__}: {e}")
            raise
        self.finish("complete")

    def finish(self, status: str, **fields) -> None:
        self.data.update(fields)
        self.data["status"] = status
        self.data["finished"] = datetime.now().isoformat(timespec="seconds")
        self.data.setdefault("timings", {})["total_s"] = round(time.perf_counter() - self._t0, 2)
        self.save()


def finished_runs(results_dir: Path, name: str = "*") -> list[tuple[Path, dict]]:
    """(folder, meta) of every finished run under results_dir/<name>/, oldest first (by finishing time)."""
    found = []
    for meta_path in Path(results_dir).glob(f"{name}/*/meta.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a folder being written, or not ours: not a finished run
        if meta.get("kind") == "run" and meta.get("status") == "complete":
            found.append((meta_path.parent, meta))
    return sorted(found, key=lambda fm: (fm[1].get("finished", ""), fm[0].name))


def require_finished_run(path: Path) -> dict:
    """The meta of a finished run folder, or a clear error."""
    path = Path(path)
    if not path.exists():
        raise InvlabError(f"run folder not found: {path}")
    meta_path = path / "meta.json"
    if not path.is_dir() or not meta_path.exists():
        raise InvlabError(f"{path} is not a run folder (no meta.json); give a folder made by `invlab run`, "
                          f"such as results/<name>/<run id>")
    meta = read_json(meta_path)
    if meta.get("kind") != "run":
        raise InvlabError(f"{path} is a {meta.get('kind')!r} folder, not a run folder made by `invlab run`")
    if meta.get("status") != "complete":
        raise InvlabError(f"{path} is not a finished run (status: {meta.get('status')}); run it again")
    return meta
