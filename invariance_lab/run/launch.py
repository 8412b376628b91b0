"""`invlab run` as one library call: one config run, or a study (one run per combination of --vary values),
with the options checked before anything is trained or submitted.

    run_dir = launch(Path("configs/quick.yaml"), overrides=["train.epochs=2"], threads=1)
    study = launch(Path("configs/factorial.yaml"), vary=["data.train_shift=0,4"])    # a study folder
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config.load import load_config
from ..core.errors import ConfigError
from ..schema.config import Config
from .executors import DEFAULT_TIME_MIN, Resources, check_jobs
from .experiment import run_experiment
from .study import run_study
from .trust import check_config_trust, in_run_folder
from .writable import writable

Say = Callable[[str], None]


def check_resources(*, time_min: int, cpus: int | None, gpus: int, mem: float | None) -> None:
    """The cluster options, checked before anything is submitted."""
    for flag, value, ok, allowed in (("--time", time_min, time_min >= 1, "at least 1 (minutes per unit's job)"),
                                     ("--cpus", cpus, cpus is None or cpus >= 1, "at least 1 (CPUs per unit's job)"),
                                     ("--gpus", gpus, gpus >= 0, "0 or more (GPUs per unit's job)"),
                                     ("--mem", mem, mem is None or mem > 0, "more than 0 (GB per unit's job)")):
        if not ok:
            raise ConfigError(f"{flag} must be {allowed}; got {value}")


def launch(config: Path, *, overrides: list[str] | None = None, vary: list[str] | None = None, fresh: bool = False,
           reuse_old: bool = False,
           jobs: int = 1, executor: str = "processes", partition: str | None = None, time_min: int = DEFAULT_TIME_MIN,
           cpus: int | None = None, gpus: int = 0, mem: float | None = None, threads: int | None = None,
           results_dir: Path = Path("results"), progress: bool = False, on_event: Say | None = None,
           trust_factory: bool = False) -> Path:
    """Run `config` with `overrides` (KEY=VALUE texts); returns the run folder, or with `vary` (--vary texts) the
    study folder. Every config is checked before the results folder is made; progress bars only show for a run
    trained in this process (--jobs 1, processes). A config inside a run folder came with it: its factories are
    imported only with `trust_factory` (trust.check_config_trust)."""
    if in_run_folder(config):  # checked first: nothing is imported, called or trained before the user's word
        check_config_trust(load_config(config, overrides=list(overrides or [])), config, trusted=trust_factory)
    check_jobs(jobs, executor)
    check_resources(time_min=time_min, cpus=cpus, gpus=gpus, mem=mem)
    slurm_only = [o for o, given in (("--partition", partition is not None), ("--time", time_min != DEFAULT_TIME_MIN),
                                     ("--cpus", cpus is not None), ("--gpus", gpus != 0), ("--mem", mem is not None))
                  if given]
    if slurm_only and executor == "processes":  # they size SLURM (submitit) jobs; worker processes ignore them
        raise ConfigError(f"{', '.join(slurm_only)}: the size of each unit's job under --executor slurm; worker "
                          f"processes (--executor {executor}) would ignore it: leave it out, or add --executor slurm")
    if fresh and reuse_old:
        raise ConfigError("--fresh trains every model again and --reuse-old reuses checkpoints of other versions: "
                          "give one of them")
    both = sorted({o.split("=", 1)[0].strip() for o in overrides or []} & {v.split("=", 1)[0].strip()
                                                                              for v in vary or []})
    if both:  # the study's values would win, while study.json recorded the --set
        raise ConfigError(f"{', '.join(both)} is given both by --set and by --vary; a study varies it over the "
                          "--vary values: leave out its --set")
    resources = Resources(partition=partition, time_min=time_min, cpus=cpus or threads, gpus=gpus, mem_gb=mem)

    def one_run(cfg: Config) -> Path:
        return run_experiment(cfg, results_dir=writable(results_dir, "--results-dir", create=False),
                              progress=progress and jobs == 1 and executor == "processes", fresh=fresh,
                              reuse_old=reuse_old,
                              threads=threads, on_event=on_event, factory_dirs=[config.parent], jobs=jobs,
                              executor=executor, resources=resources)

    if vary:
        return run_study(config, overrides=list(overrides or []), vary=list(vary), results_dir=results_dir,
                         run=one_run, on_event=on_event)
    return one_run(load_config(config, overrides=list(overrides or [])))
