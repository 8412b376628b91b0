"""`invlab run`: parse the options, call run.launch, print the run's tables (or the study's).

    invlab run configs/seed_question.yaml --set train.epochs=2 --set "seeds=[0,1]"
    invlab run configs/factorial.yaml --vary data.train_shift=0,4 --jobs 2
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..config.factorial import left_out_note
from ..report.display import render
from ..report.study import build_study_report
from ..run.executors import DEFAULT_TIME_MIN, EXECUTORS
from ..run.launch import launch
from ..store.results import load_result
from .options import QUIET, RESULTS_DIR, SET, THREADS, choice, line, nonempty, out, say
from .show import show_result


def run_cli(config: Path = typer.Argument(..., parser=nonempty("config", "configs/quick.yaml"), help="YAML config, e.g. configs/seed_question.yaml."),
            set_: List[str] = SET,
            vary: List[str] = typer.Option([], "--vary", help="Run a study: one run per combination of the values, --vary data.train_shift=0,4 (repeatable; a list value in brackets: --vary 'seeds=[0,1],[2,3]')."),
            fresh: bool = typer.Option(False, "--fresh", help="Train every model again in a new folder (default: resume an interrupted run and reuse matching checkpoints)."),
            reuse_old: bool = typer.Option(False, "--reuse-old", help="Also reuse checkpoints (and resume runs) made by another invlab version, torch major.minor or other font files; recorded in meta.json (reused_old). Without it they are trained again, with a message."),
            jobs: int = typer.Option(1, "--jobs", "-j", help="(model, seed) units trained at once, each in its own worker process with cores/jobs torch threads unless --threads says; the same numbers as --jobs 1. With --executor slurm: array jobs running at once."),
            executor: str = choice("processes", "--executor", EXECUTORS, "processes: worker processes on this machine; slurm: a SLURM job array through submitit (needs submitit: pip install submitit, or the package's slurm extra; the results folder must be on a shared filesystem); submitit-local: the slurm path run on this machine."),
            partition: Optional[str] = typer.Option(None, "--partition", help="slurm: the partition."),
            time_min: int = typer.Option(DEFAULT_TIME_MIN, "--time", help="slurm: minutes per unit's job."),
            cpus: Optional[int] = typer.Option(None, "--cpus", help="slurm: CPUs per unit's job (default: --threads, else 1)."),
            gpus: int = typer.Option(0, "--gpus", help="slurm: GPUs per unit's job."),
            mem: Optional[float] = typer.Option(None, "--mem", help="slurm: memory per unit's job, GB."),
            trust_factory: bool = typer.Option(False, "--trust-factory", help="Import the Python modules that build the models (factory:) of a config inside a run folder (beside its meta.json: it came with the folder); without it invlab refuses and names the file that would run."),
            threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Train each model for each seed, sweep input translations, write invariance tables to a run folder.

    Re-running the same config resumes an interrupted run (Ctrl-C, SIGTERM, SIGKILL) and reuses every finished
    checkpoint with the same settings; --fresh trains everything again. --jobs N trains N units at once; --vary
    runs a study (one run per combination; `invlab report STUDY` compares them)."""
    folder = launch(config, overrides=set_, vary=vary, fresh=fresh, reuse_old=reuse_old, jobs=jobs, executor=executor,
                    partition=partition, time_min=time_min, cpus=cpus, gpus=gpus, mem=mem, threads=threads,
                    results_dir=results_dir, progress=not quiet, on_event=say(quiet), trust_factory=trust_factory)
    if vary:
        for table in render(build_study_report(folder), "table").tables:
            out.print(table)
        line(f"study folder: {folder}")
        return
    result = load_result(folder)
    show_result(result, f"{result.meta.get('name')}: mean ± 95% CI over seeds")
    if result.meta.get("factorial_left_out"):
        line(left_out_note(result.meta["factorial_left_out"]))
    line(f"run folder: {folder}")
