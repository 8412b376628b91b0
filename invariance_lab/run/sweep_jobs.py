"""A run's sweep split over worker processes (`invlab run --jobs N`): each worker loads its share of the trained
models from the run folder's checkpoints and sweeps them; the tables are put back in the run's model order.

Every model is swept on its own (sweep.run_sweep keeps per-model sums; the test inputs are drawn from the
config alone), so a share of the models gives exactly their rows of the whole table: with the same torch
thread count per process, `--jobs 2` writes the same invariance.csv and summary.csv as `--jobs 1`, byte for
byte (tests/run/test_units.py). All seeds of a model go to the same worker; models are dealt round-robin, so workers
get a mix of cheap and costly architectures. Layer profiles stay in the run's own process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ..config.load import parse_config
from ..core.errors import InvlabError
from ..eval.sweep import evaluate_shifts
from ..schema.config import SweepConfig
from ..store.checkpoints import load_checkpoint, unit_settings
from ..store.layout import checkpoint_path
from .executors import EXECUTORS, Resources, worker_threads
from .workers import WorkerDied
from ..core.runtime import resolve_device, set_threads
from ..config.models import resolved_models


@dataclass(frozen=True)
class SweepTask:
    """One worker's share of a sweep, as plain values (pickled to the worker)."""

    config_text: str  # the run's config.yaml
    run_dir: str
    models: tuple[tuple[str, int], ...]  # (model, seed) keys, in the run's order
    sweep: dict  # SweepConfig as a dict
    kind: str
    engine: str
    device: str  # where the share is swept: the sweep's device (--device, else the run's)
    threads: int | None
    factory_dirs: tuple[str, ...] = ()

    def run(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        set_threads(self.threads)
        cfg = parse_config(yaml.safe_load(self.config_text), f"{self.run_dir}/config.yaml")
        settings, device = unit_settings(cfg), resolve_device(self.device)
        models = {}
        for name, seed in self.models:
            # a factory from the folders the sweep itself imported it from
            models[(name, seed)], _ = load_checkpoint(checkpoint_path(Path(self.run_dir), name, seed), device,
                                                      expect=settings[(name, seed)], trust=True,
                                                      dirs=self.factory_dirs)
        factors = resolved_models(cfg)
        return evaluate_shifts(models, {n: factors[n] for n, _ in self.models}, cfg.data, SweepConfig(**self.sweep),
                               device, False, self.kind, engine=self.engine)


def shares(keys: list[tuple[str, int]], jobs: int) -> list[tuple[tuple[str, int], ...]]:
    """The keys dealt to at most `jobs` workers, model by model (all seeds of a model together), round-robin."""
    names = list(dict.fromkeys(name for name, _ in keys))
    out = [[] for _ in range(min(jobs, len(names)))]
    for i, name in enumerate(names):
        out[i % len(out)] += [k for k in keys if k[0] == name]
    return [tuple(s) for s in out if s]


def _in_order(tables: list[pd.DataFrame], keys: list[tuple[str, int]]) -> pd.DataFrame:
    order = {k: i for i, k in enumerate(keys)}
    df = pd.concat(tables, ignore_index=True)
    df["_order"] = [order[(m, s)] for m, s in zip(df.model, df.seed)]
    return df.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def sweep_in_workers(config_text: str, run_dir: Path, keys: list[tuple[str, int]], sweep, kind: str, engine: str,
                     jobs: int, threads: int | None, factory_dirs=(), *,
                     device: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(invariance table, summary table) of the run's models, swept `jobs` shares at a time in worker processes
    with cores // jobs torch threads each unless `threads` says. Ctrl-C stops the workers."""
    per_worker = worker_threads(jobs, threads, "processes", Resources())
    tasks = [SweepTask(config_text, str(run_dir), share, sweep.model_dump(mode="json"), kind, engine, device,
                       per_worker,
                       tuple(str(d) for d in factory_dirs)) for share in shares(keys, jobs)]
    backend = EXECUTORS["processes"].start(run_dir, jobs, None, len(tasks))
    try:
        results = [_share_result(task, handle) for task, handle in zip(tasks, backend.submit(tasks))]
    except BaseException:
        backend.stop()
        raise
    finally:
        backend.close()
    return _in_order([r[0] for r in results], keys), _in_order([r[1] for r in results], keys)


def _share_result(task: SweepTask, handle):
    """A share's tables; a worker that died sweeping it (killed, out of memory) is named with its models."""
    try:
        return handle.result()
    except WorkerDied as e:
        names = ", ".join(dict.fromkeys(name for name, _ in task.models))
        raise InvlabError(f"the sweep of {names} failed: {e}. The trained checkpoints are kept; run the same "
                          "command again (with --jobs 1 the sweep runs in the command's own process)") from None
