"""Finding run and study folders under a results folder: finished runs, the newest one, an unfinished run of the
same config to resume, checkpoints of earlier runs to reuse, and study folders.

    newest_run(Path("results"))                          # results/quick/20261127-160351
    newest_started_run(Path("results"))                  # the same, or a run still going or stopped
    resumable_run(Path("results"), "quick", config_digest(text))   # (folder, meta) or None
    require_finished_run(folder)                         # its meta, or a RunFolderError saying what state it is in

A folder that is not readable (being written, not invlab's) is skipped while searching, and refused with a
RunFolderError naming it when it is asked for by name.

Reuse also keys on what a checkpoint was trained with beyond its settings (meta.json's `trained_with`: invlab's
version, torch's major.minor, the font files' digests; checkpoints.trained_with). A checkpoint or an interrupted
run of another version is not reused unless asked (`invlab run --reuse-old`), and the caller says why:

    reusable_checkpoints(Path("results"), "quick", trained_with(cfg))   # Reusable(found, refused, old)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InvlabError, RunFolderError, quote
from .atomic import read_json
from .layout import META_FILE, STUDY_FILE, STUDY_PREFIX, checkpoint_file, is_study
from .meta import read_meta, run_state, still_running


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


def newest_started_run(results_dir: Path) -> Path:
    """The run started most recently under results_dir, in any state (for `invlab status` with no folder): the
    one a user just started, running or stopped."""
    runs = all_runs(Path(results_dir))
    if not runs:
        raise RunFolderError(f"no run under {results_dir}; run `invlab run CONFIG` first, or name a run or study "
                             "folder")
    return max(runs, key=lambda fm: (str(fm[1].get("started", "")), fm[0].name))[0]


def config_digest(config_text: str) -> str:
    """Identifies a run's whole resolved config (models, seeds, data, training, sweep)."""
    return hashlib.sha256(config_text.encode()).hexdigest()[:16]


def same_config(meta: dict, digest: str | tuple[str, ...]) -> bool:
    """Whether a run's meta.json records this config's digest (or one of its digests: config/load.aliased_yaml's)."""
    return meta.get("config_digest") in ((digest,) if isinstance(digest, str) else digest)


def live_run(results_dir: Path, name: str, digest: str | tuple[str, ...], exclude: Path) -> tuple[Path, dict] | None:
    """The newest run of this exact config that a live process is running now, other than `exclude`: a second
    `invlab run` of the config makes a folder of its own beside it, and says so."""
    live = [(f, m) for f, m in all_runs(results_dir, name)
            if f != exclude and same_config(m, digest) and run_state(m) == "running"]
    return live[-1] if live else None


def resumable_run(results_dir: Path, name: str, digest: str | tuple[str, ...], *, trained_with: dict | None = None,
                  reuse_old: bool = False, skip=frozenset()) -> tuple[Path, dict] | None:
    """The newest run of this exact config that stopped before finishing and whose process is gone; with
    `trained_with`, only one made with the same (run_difference), unless `reuse_old`. Folders in `skip` are
    passed over (store/claim.claimed_resume: another process is resuming them)."""
    for folder, meta in reversed(all_runs(results_dir, name)):
        if folder in skip:
            continue
        if same_config(meta, digest) and run_state(meta) in ("interrupted", "failed",
                                                                       "interrupted (process gone)"):
            if trained_with is None or reuse_old or run_difference(meta, trained_with) is None:
                return folder, meta
    return None


def version_difference(theirs, ours: dict, meta: dict) -> str | None:
    """What a checkpoint was trained with (`theirs`, a meta.json's trained_with) that differs from `ours`, in
    words; None when nothing does. A run made before invlab recorded it differs (its versions from `meta`)."""
    if not isinstance(theirs, dict):
        env = meta.get("environment")
        versions = env.get("versions") if isinstance(env, dict) and isinstance(env.get("versions"), dict) else {}
        return (f"an invlab that did not record its version and font files (invlab "
                f"{quote(versions.get('invariance_lab'), 40)}, torch {quote(versions.get('torch'), 40)})")
    out = [f"{k} {quote(theirs.get(k), 40)} (this is {ours.get(k)})" for k in ("invlab", "torch")
           if theirs.get(k) != ours.get(k)]
    fonts, mine = theirs.get("fonts") if isinstance(theirs.get("fonts"), dict) else {}, ours.get("fonts", {})
    changed = sorted(str(f) for f in set(fonts) | set(mine) if fonts.get(f) != mine.get(f))
    if changed:
        out.append(f"other font files for {quote(changed, 120)}")
    return "; ".join(out) or None


def run_difference(meta: dict, ours: dict) -> str | None:
    """version_difference of a whole run folder: its own record, or any of its units reused from another version."""
    diff = version_difference(meta.get("trained_with"), ours, meta)
    if diff is None and meta.get("reused_old"):
        return f"checkpoints of another version ({quote(list(meta['reused_old']), 120)}, reused with --reuse-old)"
    return diff


RESUMED = "this run folder (resumed)"  # meta.json's `reused` source of a unit kept from the resumed attempt


@dataclass
class Reusable:
    """Checkpoints of earlier runs, by fingerprint (reusable_checkpoints), and what to record of those reused
    from another version (meta.json's `reused_old`, so that a later run does not take them for this version's)."""

    found: dict[str, Path] = field(default_factory=dict)  # to reuse
    refused: dict[str, tuple[Path, str]] = field(default_factory=dict)  # of another version: (file, what differs)
    old: dict[str, dict] = field(default_factory=dict)  # in `found` although of another version: its record
    resumed: dict[str, dict] = field(default_factory=dict)  # unit -> record, for units of a resumed older run

    def refusal(self, unit: str, fp: str) -> str:
        path, diff = self.refused[fp]
        return (f"not reusing {path} for {unit}: it was trained with {diff}; training it again (`invlab run "
                f"--reuse-old` reuses it)")

    def note(self, record: dict, unit: str, fp: str, source: str) -> None:
        """Adds to `record` (meta.json's reused_old) a unit just reused from `source`, if of another version."""
        if fp in self.old and source == self.old[fp]["source"]:
            record[unit] = self.old[fp]
        elif source == RESUMED and unit in self.resumed:
            record[unit] = self.resumed[unit]


def reusable_checkpoints(results_dir: Path, name: str, trained_with: dict | None, *, exclude: Path | None = None,
                         reuse_old: bool = False, resumed: dict | None = None) -> Reusable:
    """Checkpoints of earlier runs of this name (complete or not: a checkpoint that exists is whole), by
    fingerprint: one trained with `trained_with` wins over one of another version (refused unless `reuse_old`),
    a complete run's over an unfinished one's, the newest over older ones. `trained_with` None: every version.
    `resumed`: the meta.json of the run being resumed (its units of another version are recorded as such)."""
    best: dict[str, tuple[tuple, Path, str | None, dict | None]] = {}
    for folder, meta in all_runs(results_dir, name):
        if exclude is not None and folder.resolve() == Path(exclude).resolve():
            continue
        rank = (meta.get("status") == "complete", str(meta.get("finished", meta.get("started", ""))))
        old = meta.get("reused_old") if isinstance(meta.get("reused_old"), dict) else {}
        for key, fp in meta.get("fingerprints", {}).items():
            path = checkpoint_file(folder, key)
            if not path.is_file():
                continue
            theirs, diff = _unit_made_with(meta, old, key, trained_with)
            unit_rank = (diff is None, *rank)
            if fp not in best or unit_rank >= best[fp][0]:
                best[fp] = (unit_rank, path, diff, theirs)
    out = Reusable()
    for fp, (_, path, diff, theirs) in best.items():
        if diff is None or reuse_old:
            out.found[fp] = path
            if diff is not None:
                out.old[fp] = dict(source=str(path), differs=diff, trained_with=theirs)
        else:
            out.refused[fp] = (path, diff)
    if resumed is not None and trained_with is not None:
        old = resumed.get("reused_old") if isinstance(resumed.get("reused_old"), dict) else {}
        for key in resumed.get("fingerprints", {}):
            theirs, diff = _unit_made_with(resumed, old, key, trained_with)
            if diff is not None:
                out.resumed[key] = old.get(key) or dict(source=RESUMED, differs=diff, trained_with=theirs)
    return out


def _unit_made_with(meta: dict, old: dict, key: str, ours: dict | None) -> tuple[dict | None, str | None]:
    """(what a run's unit was trained with, how that differs from `ours` or None): a unit reused with --reuse-old
    keeps the record of where it came from (meta.json's reused_old)."""
    if ours is None:
        return None, None
    unit = old.get(key)
    theirs = unit.get("trained_with") if isinstance(unit, dict) else meta.get("trained_with")
    return theirs, version_difference(theirs, ours, meta)


def matching_checkpoints(results_dir: Path, name: str, exclude: Path | None = None) -> dict[str, Path]:
    """Checkpoints of earlier runs of this name by fingerprint, whatever version trained them
    (reusable_checkpoints without `trained_with`)."""
    return reusable_checkpoints(results_dir, name, None, exclude=exclude).found


def require_finished_run(path: Path) -> dict:
    """The meta of a finished run folder, or a clear error saying what state it is in."""
    meta = read_meta(path)
    if meta.get("kind") != "run":
        raise RunFolderError(f"{path} is a {quote(meta.get('kind'))} folder, not a run folder made by `invlab run`")
    state = run_state(meta)
    if state == "running":
        raise RunFolderError(still_running(path, meta))
    if state != "complete":
        raise RunFolderError(f"{path} is not a finished run (status: {state}); run `invlab run` on its config "
                             f"again to resume it: finished checkpoints are reused")
    return meta


def run_factory_dirs(run_dir: Path, meta: dict) -> list[Path]:
    """Where a run's factory modules are searched first: the run folder, then the folders of the files its
    meta.json records the factories came from (models.<name>.factory_file) where they still exist, so that a sweep
    or measurement builds the file the run was trained with, not one of the same name in the current directory.
    Importing any of them still needs --trust-factory (factory.require_trust names the file)."""
    models = meta.get("models") if isinstance(meta.get("models"), dict) else {}
    recorded = [m.get("factory_file") for m in models.values() if isinstance(m, dict)]
    found = [Path(f).parent for f in recorded if isinstance(f, str) and Path(f).is_absolute() and Path(f).is_file()]
    return list(dict.fromkeys([Path(run_dir), *found]))


def read_study(path: Path) -> dict:
    """study.json of a study folder, or a RunFolderError saying what the folder is not (or that it lists no runs)."""
    path = Path(path)
    raw = read_json(path / STUDY_FILE) if is_study(path) else None
    valid = (isinstance(raw, dict) and isinstance(raw.get("runs"), list) and isinstance(raw.get("vary"), dict)
             and all(_is_study_entry(r) for r in raw["runs"]))
    if not valid:
        raise RunFolderError(f"{path} is not a study folder (no valid {STUDY_FILE}); give a folder made by "
                             "`invlab run CONFIG --vary KEY=V1,V2`, such as results/<name>/study-<time>")
    keys = set(raw["vary"])
    for entry in raw["runs"]:  # the report gives each run a column per varied key: every run has a value for each
        if set(entry.get("values", {})) != keys:
            raise RunFolderError(f"{path / STUDY_FILE}: run {quote(entry.get('run'))} gives values for "
                                 f"{sorted(entry.get('values', {}))}, not for the varied keys {sorted(keys)}; each "
                                 "run of a study has a value for every key of \"vary\" (the file was edited?)")
    if not raw["runs"]:  # nothing to report or show: `invlab run --vary` lists one run per combination
        raise RunFolderError(f"{path / STUDY_FILE} lists no runs (\"runs\": []); a study made by `invlab run CONFIG "
                             "--vary KEY=V1,V2` lists one run per combination of the varied values. Name a complete "
                             "study folder, or run the `invlab run ... --vary` command again to make a new study")
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
