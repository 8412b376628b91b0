"""Units: one (model, seed) network, trained and checkpointed on its own: the code every worker runs.

    invlab run configs/factorial.yaml --jobs 2                    # two worker processes on this machine
    invlab run configs/factorial.yaml --executor slurm --jobs 8 --partition cpu --time 60 --cpus 4
    invlab status results/factorial/<run id>                      # each unit: done, running, failed, missing

A unit is independent of every other (checkpoints.py: atomic and fingerprinted), so `run_experiment` hands the
units it has no checkpoint for (`units_to_train`) to scheduler.train_units, which runs them in worker processes
(`processes`, --jobs N at once, each with cores // N torch threads unless --threads says), as a SLURM job array
through submitit (`slurm`), or through submitit's local executor (`submitit-local`: the cluster path on this
machine, for tests). Every worker reads the run's images from units/data.pt, trains with `train_unit` (the code
the in-process loop runs too: the same seed gives the same weights, bit for bit with the same threads) and keeps
units/<key>.json (its state, with a heartbeat, like meta.json) and units/<key>.log (a failed unit's traceback
last). The run itself then loads the checkpoints and sweeps as ever.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import torch
import yaml

from ..config.load import parse_config
from ..core.errors import InvlabError
from ..store.atomic import append_text, write_file
from ..store.checkpoints import read_checkpoint, save_checkpoint, unit_settings
from ..store.layout import checkpoint_path, unit_data_path, unit_key, unit_log_path
from ..store.meta import UnitRecord
from ..core.runtime import resolve_device, set_threads
from ..core.columns import EPOCH_KEPT
from ..core.speed import release_freed_memory
from .train import kept_row, train_model


class UnitData(NamedTuple):
    """What every unit trains and tests on: the run's images, drawn once."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    val_x: torch.Tensor | None = None  # the validation images (data/validation.py), if the run has them
    val_y: torch.Tensor | None = None


def train_unit(cfg, name: str, seed: int, settings: dict, data: UnitData, device: torch.device, run_dir: Path,
               progress: bool = False, factory_dirs: Iterable[str | Path] = ()):
    """Train one unit and save its checkpoint (atomic); (model, history). The one way a unit is trained: in the
    run's own process and in every worker alike, a factory imported from `factory_dirs` first (the config's
    folder: the file the run checked and recorded, not one of the same name in the current directory)."""
    model, hist = train_model(settings["factors"], data.train_x, data.train_y, data.test_x, data.test_y, cfg.train,
                              noise=cfg.data.noise, seed=seed, num_classes=len(data.classes), canvas=cfg.data.canvas,
                              device=device, progress=progress, label=f"{name} seed {seed}",
                              val=None if data.val_x is None else (data.val_x, data.val_y), factory_dirs=factory_dirs)
    save_checkpoint(checkpoint_path(run_dir, name, seed), model, name=name, seed=seed, data=settings["data"],
                    train=settings["train"], factors=settings["factors"], classes=data.classes, history=hist,
                    epoch_kept=hist.attrs.get(EPOCH_KEPT))
    release_freed_memory()  # the next unit's batches do not stack on this one's leftovers (core/speed.py)
    return model, hist


def save_unit_data(run_dir: Path, data: UnitData) -> None:
    """units/data.pt, written atomically: tensors and a list of names, read back with weights_only."""
    path = unit_data_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, lambda f: torch.save(data._asdict(), f), binary=True)


_DATA_CACHE: dict[tuple, UnitData] = {}  # a worker process trains several units on the same images


def load_unit_data(run_dir: Path) -> UnitData:
    path = unit_data_path(run_dir)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = UnitData(**torch.load(path, weights_only=True))
    return _DATA_CACHE[key]


@dataclass(frozen=True)
class Task:
    """Everything a worker needs, as plain values: it is pickled to another process or a cluster node."""

    config_text: str  # the run's config.yaml (every model resolved)
    run_dir: str
    model: str
    seed: int
    threads: int | None  # torch threads in the worker (None: torch's default, e.g. a cluster job's cpus)
    executor: str
    factory_dirs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return unit_key(self.model, self.seed)

    def run(self) -> dict:
        return run_task(self)


def run_task(task: Task) -> dict:
    """A worker's entry point: train one unit into the run folder; {key, seconds, test_accuracy}. Raises what
    the unit raised, after recording it in units/<key>.json and .log."""
    run_dir = Path(task.run_dir)
    set_threads(task.threads)
    log = unit_log_path(run_dir, task.key)
    record = UnitRecord(run_dir, task.key, executor=task.executor, threads=torch.get_num_threads(),
                        job_id=os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID"))
    _log(log, f"start on {socket.gethostname()}, pid {os.getpid()}, {torch.get_num_threads()} torch threads")
    t0 = time.perf_counter()
    with record.recording():
        try:
            cfg = parse_config(yaml.safe_load(task.config_text), f"{run_dir}/config.yaml")
            settings = unit_settings(cfg)[(task.model, task.seed)]
            _, hist = train_unit(cfg, task.model, task.seed, settings, load_unit_data(run_dir),
                                 resolve_device(cfg.device), run_dir, factory_dirs=task.factory_dirs)
        except BaseException as e:
            what = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            _log(log, f"{what} after {time.perf_counter() - t0:.1f}s:\n" + _failure(e))
            raise
        seconds = round(time.perf_counter() - t0, 2)
        accuracy = float(kept_row(hist).test_accuracy)  # the kept weights' (train.select)
        record.data.update(seconds=seconds, test_accuracy=accuracy)
    _log(log, f"done in {seconds}s: test accuracy {accuracy:.3f}")
    return dict(key=task.key, seconds=seconds, test_accuracy=accuracy)


def _log(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    append_text(path, f"[{datetime.now().isoformat(timespec='seconds')}] {line}\n")  # never through a link


def _failure(e: BaseException) -> str:
    """A failed unit's traceback for its log: the error, then the one it came from (a model's own error, which
    nn/forward.py words as a FactoryError) last, so that the log's last lines, which `invlab status` shows, are
    where the model raised it."""
    if e.__cause__ is None:
        return "".join(traceback.format_exception(e)).rstrip()
    return ("".join(traceback.format_exception(e, chain=False)) + "\nit came from:\n"
            + "".join(traceback.format_exception(e.__cause__))).rstrip()


def split_key(key: str) -> tuple[str, int]:
    """A unit's key back to (model, seed): 'conv_gap-seed1' -> ('conv_gap', 1)."""
    model, _, seed = key.rpartition("-seed")
    return model, int(seed)


def units_to_train(run_dir: Path, settings: dict[tuple[str, int], dict], earlier: dict[str, Path],
                   fingerprints: dict[str, str]) -> list[tuple[str, int]]:
    """The units of a run with no usable checkpoint: none in the run folder that matches its settings, and none of
    the same fingerprint in an earlier run (run_experiment reuses those, as it always has)."""
    todo = []
    for (model, seed), expect in settings.items():
        key = unit_key(model, seed)
        path = checkpoint_path(run_dir, model, seed)
        if fingerprints[key] in earlier:
            continue
        if path.is_file():
            try:
                read_checkpoint(path, torch.device("cpu"), expect)
                continue
            except InvlabError:
                pass  # damaged or foreign: trained again
        todo.append((model, seed))
    return todo
