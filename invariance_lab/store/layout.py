"""The run folder's layout: every path and file name inside a run, sweep, study or measure folder is named here
and only here; every other module asks this one.

    results/<name>/<run id>/
        config.yaml        resolved config (every model factor filled in)
        meta.json          status, process (pid, host, heartbeat), versions, threads, seeds, protocol, timings
        checkpoints/       <model>-seed<seed>.pt: weights + resolved factors + data/train settings + fingerprint
        train.csv          per model x seed x epoch
        invariance.csv     per model x seed x shift
        summary.csv        per model x seed
        test_sets/<name>/  data.test_sets measured after training: invariance.csv, summary.csv (schema/test_sets.py)
        sweeps/<id>/       re-sweeps: sweep.yaml, meta.json, invariance.csv, summary.csv [, layers*.csv] [, lie.csv]
        part_focus/        `invlab claims`' part experiment: meta.json, images.csv, parts.csv
        answers.md         `invlab claims`' answers page (unless --out names another)
        units/             units trained by workers (--jobs, --executor; run/units.py): <key>.json (state,
                           heartbeat), <key>.log, data.pt (the images, while workers run), submitit/ (cluster jobs)

    results/<name>/study-<time>/study.json   `invlab run --vary`: the varied keys and each combination's run folder

    results/measure/<name>-<time>/   `invlab measure` of a model of your own: measure.yaml, meta.json (kind
                                     "measure"), invariance.csv, summary.csv [, layers*.csv]

Example:

    run_dir = new_run_folder(Path("results"), "quick", config_text)   # results/quick/20261127-160351/
    checkpoint_path(run_dir, "conv_gap", 0)                              # .../checkpoints/conv_gap-seed0.pt

meta.json's schema and the process status live in meta.py, finding runs in find.py, atomic writes in atomic.py.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from ..core.errors import RunFolderError, clip
from .atomic import refuse_link, write_text

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_SUFFIX = ".pt"
TRAIN_CSV = "train.csv"
INVARIANCE_CSV = "invariance.csv"
SUMMARY_CSV = "summary.csv"
LAYERS_CSV = "layers.csv"
LAYERS_SUMMARY_CSV = "layers_summary.csv"
LIE_CSV = "lie.csv"  # sweeps/<id>/lie.csv: `invlab sweep --metric lie`, the Lie derivative (eval/lie.py)
SWEEP_DIR = "sweeps"
SWEEP_FILE = "sweep.yaml"
TEST_SETS_DIR = "test_sets"  # test_sets/<name>/: invariance.csv and summary.csv on data.test_sets' <name>
MEASURE_DIR = "measure"  # results/measure/<name>-<time>/: invlab measure
MEASURE_FILE = "measure.yaml"  # what invlab measure was asked: model, weights, images, shifts

UNIT_DIR = "units"  # units/<model>-seed<seed>.json: a unit's state as its worker last wrote it; .log: its log
UNIT_DATA = "data.pt"  # units/data.pt: the run's images, for worker processes and cluster jobs (removed at the end)
SUBMITIT_DIR = "submitit"  # units/submitit/: submitit's job files and logs (--executor slurm, submitit-local)
# units/submitit/controllers.log: the stderr of submitit-local's controller processes (the traceback each prints
# when Ctrl-C or a cancel stops it), kept off the terminal
CONTROLLER_LOG = "controllers.log"
STUDY_FILE = "study.json"  # results/<name>/study-<time>/study.json: a study's overrides and its run folders
STUDY_PREFIX = "study-"
PART_FOCUS_DIR = "part_focus"  # <run>/part_focus/: `invlab claims`' part experiment (claims/part_focus.py)
PART_IMAGES_CSV = "images.csv"  # part_focus/images.csv: per model x seed x image x displacement
PART_PARTS_CSV = "parts.csv"  # part_focus/parts.csv: per glyph, the part chosen and its removal control
ANSWERS_FILE = "answers.md"  # <run>/answers.md: the page `invlab claims` writes by default
LOCK_FILE = ".lock"  # <run or study>/.lock: locked by the live process that works there (store/claim.py)


def unit_key(model: str, seed: int) -> str:
    """The name of one (model, seed) unit, as used in meta.json and checkpoint file names."""
    return f"{model}-seed{seed}"


def checkpoint_file(run_dir: Path, key: str) -> Path:
    """checkpoints/<key>.pt: the checkpoint of the unit named `key` (unit_key)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"{key}{CHECKPOINT_SUFFIX}"


def checkpoint_path(run_dir: Path, model: str, seed: int) -> Path:
    return checkpoint_file(run_dir, unit_key(model, seed))


def other_test_set_dir(folder: Path, name: str) -> Path:
    """test_sets/<name>/ of a run (or measure) folder: the tables of one of its other test sets."""
    return Path(folder) / TEST_SETS_DIR / name


def unit_state_path(run_dir: Path, key: str) -> Path:
    """units/<key>.json: the state a unit's worker last wrote (running, complete, failed, interrupted)."""
    return Path(run_dir) / UNIT_DIR / f"{key}.json"


def unit_log_path(run_dir: Path, key: str) -> Path:
    """units/<key>.log: what the unit's worker said, a failed unit's traceback last."""
    return Path(run_dir) / UNIT_DIR / f"{key}.log"


def unit_data_path(run_dir: Path) -> Path:
    return Path(run_dir) / UNIT_DIR / UNIT_DATA


def submitit_dir(run_dir: Path) -> Path:
    return Path(run_dir) / UNIT_DIR / SUBMITIT_DIR


# what a resumed run writes into (a sweep writes a new folder under sweeps/: SWEEP_DIR alone)
RESUME_FOLDERS = (CHECKPOINT_DIR, UNIT_DIR, TEST_SETS_DIR)


def refuse_linked_folders(folder: Path, names: tuple[str, ...]) -> None:
    """A RunFolderError when one of the folders `names` inside `folder` that a command is about to write into is a
    symbolic link (test_sets/: each test set's folder too; units/: its submitit/ too): files written there would
    land in the link's target, over files invlab did not make. The run folder itself may be reached through a
    link (the user named it); what is inside it came with the folder, maybe from someone else. Folders the
    command does not write into (a link kept beside the sweeps, checkpoints/ during a sweep) are left alone."""
    folder = Path(folder)
    for name in names:
        sub = folder / name
        refuse_link(sub)
        if sub.exists() and not sub.is_dir():  # a file there: the first write into it failed naming its temp file
            raise RunFolderError(f"{sub} is a file where invlab keeps a folder ({name}/); move it away and run again")
        if name == TEST_SETS_DIR and sub.is_dir():
            for child in sorted(sub.iterdir()):
                refuse_link(child)
        if name == UNIT_DIR:
            refuse_link(submitit_dir(folder))


def new_folder(parent: Path, prefix: str = "") -> Path:
    """A new folder named by the current time; a suffix keeps two runs in the same second apart."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stamp = prefix + datetime.now().strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            path = parent / (stamp if i == 0 else f"{stamp}-{i}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:  # a file where a folder should be, no permission, a full disk
        blocked = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise RunFolderError(f"could not create a new folder under {parent}: {blocked} is a file, not a folder; "
                                 "move it away, or give another --results-dir") from None
        raise RunFolderError(f"could not create a new folder under {parent}: {clip(e)}") from None
    raise RunFolderError(f"could not create a new folder under {parent}")


def new_run_folder(results_dir: Path, name: str, config_text: str) -> Path:
    """results_dir/<name>/<new run id>/ with its checkpoints/ folder and config.yaml."""
    run_dir = new_folder(Path(results_dir) / name)
    try:
        (run_dir / CHECKPOINT_DIR).mkdir()
        write_text(run_dir / CONFIG_FILE, config_text)
    except BaseException:  # a full disk: no folder left that looks like a run but holds no meta.json
        remove_new_folder(run_dir)
        raise
    return run_dir


def remove_new_folder(folder: Path) -> None:
    """Remove a folder this process made a moment ago (and what it put there) when it cannot be completed; links
    inside are removed, never followed."""
    shutil.rmtree(folder, ignore_errors=True)


def new_measure_folder(results_dir: Path, name: str) -> Path:
    """results_dir/measure/<name>-<time>/ for `invlab measure`."""
    return new_folder(Path(results_dir) / MEASURE_DIR, prefix=f"{name}-")


def new_study_folder(results_dir: Path, name: str) -> Path:
    """results_dir/<name>/study-<time>/: beside the run folders of that name (it holds no meta.json, so it is
    never taken for a run)."""
    return new_folder(Path(results_dir) / name, prefix=STUDY_PREFIX)


def is_study(path: Path) -> bool:
    return (Path(path) / STUDY_FILE).is_file()
