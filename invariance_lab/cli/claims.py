"""`invlab claims`: call claims.answers.write_answers, print each claim's verdict.

    invlab claims configs/question_claims.yaml --threads 1                          # the page: <run folder>/answers.md
    invlab claims configs/question_claims.yaml --threads 1 --out docs/answers.md    # the repository's page
    invlab claims configs/question_claims.yaml --jobs 2                              # two units at a time
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..claims.answers import answers_page, write_answers
from .options import QUIET, RESULTS_DIR, SET, THREADS, line, nonempty, say


def claims_cli(config: Path = typer.Argument(Path("configs/question_claims.yaml"), parser=nonempty("config", "configs/question_claims.yaml"), help="The claims config (its models are the ones the claims read)."),
               set_: List[str] = SET,
               out_file: Optional[Path] = typer.Option(None, "--out", parser=nonempty("--out", "answers.md"), metavar="<path>", help="The answers page to write (atomically); default: answers.md in the run folder. `--out docs/answers.md` rewrites the repository's page."),
               force: bool = typer.Option(False, "--force", help="Replace an existing --out file that invlab did not write."),
               trust_factory: bool = typer.Option(False, "--trust-factory", help="Import the Python modules that build the models (factory:) of a config inside a run folder (it came with the folder); without it invlab refuses and names the file that would run."),
               jobs: int = typer.Option(1, "--jobs", "-j", help="Train the run's units, and sweep each extra sweep's models, N at a time in worker processes (cores/N torch threads each unless --threads says); the same numbers as --jobs 1."),
               threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Test the question's six claims: run the config (or reuse its finished run), add the sweeps each claim needs
    (or reuse them), decide every verdict from the numbers and write the answers page (invariance_lab/claims/claims.py)."""
    answers = write_answers(config, overrides=set_, out_file=out_file, results_dir=results_dir, threads=threads,
                            progress=not quiet, on_event=say(quiet), force=force,
                            trust_factory=trust_factory, jobs=jobs)
    for c, f in answers.findings:
        line(f"{c.number}. {c.text}: {f.verdict.upper()}: {f.condition}")
    line(f"answers: {answers_page(answers.folders['run'], out_file)} (run folder: {answers.folders['run']})")
