"""The memory charge of `invlab sweep --jobs N`: the sweep of a finished run dealt to worker processes
(run/sweep_jobs.py), each drawing the test set and the shifted inputs again and loading its share of the models,
counted with memory.py's parts so that a sweep and a run charge a sweep worker alike.

    sweep_estimate(cfg, sweep, "translation", ["conv_gap"], shares=2)   # part -> (bytes, the key that scales it)
    check_sweep_jobs(cfg, sweep, "translation", ["conv_gap"], jobs=4, cpu=True, source="invlab sweep RUN")
"""

from __future__ import annotations

from ..schema.config import Config
from ..schema.sweep import SweepConfig
from .memory import SWEPT, Workers, _data_memory, _network_memory, refuse_jobs, sweep_shares


def sweep_estimate(cfg: Config, sweep: SweepConfig, kind: str, models: list[str],
                   shares: int) -> dict[str, tuple[int, str]]:
    """Estimated bytes of a sweep of `models` (names in cfg) dealt to `shares` workers (sweep_shares; 1: the
    command's own process), by part. Nothing trains and no training image is drawn: what sweeps holds the test
    images, the sweep inputs and their drawing or decoding (memory.SWEPT), and evaluates a sweep batch at a time.
    With workers, each holds its own copy of those images (the command's process draws none meanwhile) and loads
    its share of the checkpoints again: the weights are held twice, once here and once among the workers."""
    data = _data_memory(cfg.data, sweep, kind)
    swept = cfg.model_copy(update={"sweep": sweep, "models": {m: cfg.models[m] for m in models},
                                   "train": cfg.train.model_copy(update={"epochs": 0})})
    # Workers(0, ...): no training worker, so no test pass; models of your own are left out (not built here)
    parts = {"networks": _network_memory(swept, None, Workers(0, shares, 0))}
    drawn = {p: data[p] for p in SWEPT if p in data}
    if shares == 1:
        parts.update(drawn)
    else:
        parts["workers' images"] = (sum(b for b, _ in drawn.values()) * shares, "--jobs")
        # Workers(0, 0): no batch in flight, so the weights alone, as the networks part counts them
        parts["workers' networks"] = (_network_memory(swept, None, Workers(0, 0, 0))[0], "--jobs")
    return parts


def check_sweep_jobs(cfg: Config, sweep: SweepConfig, kind: str, models: list[str], jobs: int, cpu: bool,
                     source: str) -> None:
    """Refuse (ConfigError) a sweep whose --jobs workers would need more than memory_limit(), naming the largest
    --jobs that fits, before anything is written. A sweep that runs in the command's own process (sweep_shares:
    one model, a GPU, --jobs 1) starts no worker and is left to the checks it had (check_sweep_fits)."""
    models = list(dict.fromkeys(models))  # a name given twice is swept once (run/sweep_jobs.py deals names)

    def total(j: int) -> int:
        return sum(b for b, _ in sweep_estimate(cfg, sweep, kind, models, sweep_shares(j, len(models), cpu)).values())

    top = sweep_shares(jobs, len(models), cpu)
    if top > 1:  # the estimate stops growing at a worker per model: count up to that
        refuse_jobs(source, "sweep", jobs, [total(j) for j in range(1, top + 1)])
