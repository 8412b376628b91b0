"""A run's other test sets (data.test_sets), measured on every checkpoint after training with the run's sweep, and
again by each translation sweep of `invlab sweep` with its own grid (sweeps/<id>/test_sets/<name>/).

    measure_test_sets(run_dir, meta, trained, factors, cfg.data, cfg.sweep, device)
    # writes test_sets/<name>/invariance.csv and summary.csv, the same columns as the run's own
    check_sweep_data(cfg, sweep, kind, source)   # a sweep checked against the data and each test set's

The run's own invariance.csv and summary.csv stay as they are (byte for byte: a config without test_sets writes
exactly what it wrote before); each test set gets its own folder, named in store/layout.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..config.memory import check_sweep_fits
from ..data.shifts import check_sweep
from ..eval.sweep import ModelKey, evaluate_shifts
from ..schema.config import Config, DataConfig, SweepConfig
from ..store.atomic import write_csv
from ..store.layout import INVARIANCE_CSV, SUMMARY_CSV, TEST_SETS_DIR, other_test_set_dir, refuse_linked_folders
from ..store.meta import Meta


def other_test_set_data(data: DataConfig, name: str) -> DataConfig:
    """The run's data with test set `name`'s keys in place (checked when the config was read: schema/data.py)."""
    return data.model_copy(update={**data.test_sets[name], "test_sets": None})


def measure_test_sets(folder: Path, meta: Meta, models: dict[ModelKey, torch.nn.Module], factors: dict,
                      data: DataConfig, sweep: SweepConfig, device: torch.device, progress: bool = False,
                      engine: str = "auto") -> None:
    """Sweep every model on each of data.test_sets; write test_sets/<name>/ and record them in meta.json's
    protocol (test_sets: name -> its keys) and timings (test_sets_s). Nothing when the run has none. `folder` is
    the run's, or one of its sweep folders (`invlab sweep` measures the test sets on its own grid too)."""
    if not data.test_sets:
        return
    refuse_linked_folders(folder, (TEST_SETS_DIR,))  # a resumed run's test_sets/ came with its folder
    t0 = time.perf_counter()
    for name in data.test_sets:
        inv, summary = evaluate_shifts(models, factors, other_test_set_data(data, name), sweep, device, progress,
                                       engine=engine)
        out = other_test_set_dir(folder, name)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / INVARIANCE_CSV, inv)
        write_csv(out / SUMMARY_CSV, summary)
    meta.data["protocol"]["test_sets"] = {name: dict(spec) for name, spec in data.test_sets.items()}
    meta.data["timings"]["test_sets_s"] = round(time.perf_counter() - t0, 2)
    meta.save()


def check_sweep_data(cfg: Config, sweep: SweepConfig, kind: str, source: str) -> list[DataConfig]:
    """Refuse a sweep that does not apply to the config's data or cannot give useful inputs for it (check_sweep,
    check_sweep_fits); returns the data.test_sets a translation sweep measures too, each checked as the run's own
    data is. invlab sweep CONFIG calls it before a run is trained for the sweep (and before --jobs' workers are
    charged, which would otherwise name --jobs for a shift that blanks the image)."""
    others = [other_test_set_data(cfg.data, n) for n in (cfg.data.test_sets or {})] if kind == "translation" else []
    for data in [cfg.data, *others]:
        check_sweep(data, sweep, kind)
        check_sweep_fits(data, sweep, source, kind=kind)
    return others
