"""Finding run and study folders under a results folder: finished runs, the newest one, an unfinished run of the
same config to resume, checkpoints of earlier runs to reuse, and study folders.

    newest_run(Path("results"))                          # results/quick/20261127-160351
    resumable_run(Path("results"), "quick", config_digest(text))   # (folder, meta) or None
    require_finished_run(folder)                         # its meta, or a RunFolderError saying what state it is in

A folder that is not readable (being written, not invlab's) is skipped while searching, and refused with a
RunFolderError naming it when it is asked for by name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..core.errors import InvlabError, RunFolderError, quote
from .atomic import read_json
from .layout import META_FILE, STUDY_FILE, STUDY_PREFIX, checkpoint_file, is_study
from .meta import read_meta, run_state


def all_runs(results_dir: Path, name: str = "*") -> list[tuple[Path, dict]]:
    """(folder, meta) of every readable run folder under results_dir/<name>/, oldest first."""
    found = []
    for meta_path in Path(results_dir).glob(f"{name}/*/{META_FILE}"):
        try:
            meta = read_meta(meta_path.parent)
        except InvlabError:
            continue  # a folder being written, or not ours
        if meta.get("kind") == "run":
            found.append((meta_path.parent, meta))
    return sorted(found, key=lambda fm: (str(fm[1].get("finished", fm[1].get("started", ""))), fm[0].name))


def finished_runs(results_dir: Path, name: str = "*") -> list[tuple[Path, dict]]:
    """(folder, meta) of every complete run under results_dir/<name>/, oldest first (by finishing time)."""
    return [(f, m) for f, m in all_runs(results_dir, name) if m.get("status") == "complete"]


def newest_run(results_dir: Path) -> Path:
    """The most recently finished run under results_dir (for `invlab report` with no folder)."""
    runs = finished_runs(Path(results_dir))
    if not runs:
        raise RunFolderError(f"no finished run under {results_dir}; run `invlab run CONFIG` first or name a run "
                             "folder")
    return runs[-1][0]


def config_digest(config_text: str) -> str:
    """Identifies a run's whole resolved config (models, seeds, data, training, sweep)."""
    return hashlib.sha256(config_text.encode()).hexdigest()[:16]


def resumable_run(results_dir: Path, name: str, digest: str) -> tuple[Path, dict] | None:
    """The newest run of this exact config that stopped before finishing and whose process is gone."""
    for folder, meta in reversed(all_runs(results_dir, name)):
        if meta.get("config_digest") == digest and run_state(meta) in ("interrupted", "failed",
                                                                       "interrupted (process gone)"):
            return folder, meta
    return None


def matching_checkpoints(results_dir: Path, name: str, exclude: Path | None = None) -> dict[str, Path]:
    """Checkpoints of earlier runs of this name (complete or not: a checkpoint that exists is whole), by
    fingerprint; a complete run's wins over an unfinished one's, the newest over older ones."""
    found: dict[str, tuple[tuple, Path]] = {}
    for folder, meta in all_runs(results_dir, name):
        if exclude is not None and folder.resolve() == Path(exclude).resolve():
            continue
        rank = (meta.get("status") == "complete", str(meta.get("finished", meta.get("started", ""))))
        for key, fp in meta.get("fingerprints", {}).items():
            path = checkpoint_file(folder, key)
            if path.is_file() and (fp not in found or rank >= found[fp][0]):
                found[fp] = (rank, path)
    return {fp: path for fp, (_, path) in found.items()}


def require_finished_run(path: Path) -> dict:
    """The meta of a finished run folder, or a clear error saying what state it is in."""
    meta = read_meta(path)
    if meta.get("kind") != "run":
        raise RunFolderError(f"{path} is a {quote(meta.get('kind'))} folder, not a run folder made by `invlab run`")
    state = run_state(meta)
    if state == "running":
        raise RunFolderError(f"{path} is still running (pid {meta.get('pid')} on {meta.get('host')}); "
                             f"wait for it to finish")
    if state != "complete":
        raise RunFolderError(f"{path} is not a finished run (status: {state}); run `invlab run` on its config "
                             f"again to resume it: finished checkpoints are reused")
    return meta


def read_study(path: Path) -> dict:
    """study.json of a study folder, or a RunFolderError saying what the folder is not."""
    path = Path(path)
    raw = read_json(path / STUDY_FILE) if is_study(path) else None
    valid = (isinstance(raw, dict) and isinstance(raw.get("runs"), list) and isinstance(raw.get("vary"), dict)
             and all(_is_study_entry(r) for r in raw["runs"]))
    if not valid:
        raise RunFolderError(f"{path} is not a study folder (no valid {STUDY_FILE}); give a folder made by "
                             "`invlab run CONFIG --vary KEY=V1,V2`, such as results/<name>/study-<time>")
    return raw


def _is_study_entry(entry) -> bool:
    """One combination of study.json: {"values": {key: value}, "run": its run folder's path, or null until run}."""
    return (isinstance(entry, dict) and isinstance(entry.get("values", {}), dict)
            and isinstance(entry.get("run"), (str, type(None))))


def studies(results_dir: Path, name: str) -> list[tuple[Path, dict]]:
    """(folder, study.json) of every readable study of this name, oldest first."""
    found = []
    for path in sorted(Path(results_dir).glob(f"{name}/{STUDY_PREFIX}*/{STUDY_FILE}")):
        try:
            found.append((path.parent, read_study(path.parent)))
        except InvlabError:
            continue
    return found
