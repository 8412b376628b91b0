"""`invlab claims`: call claims.answers.write_answers, print each claim's verdict.

    invlab claims configs/question_claims.yaml --threads 1
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..claims.answers import write_answers
from .options import QUIET, RESULTS_DIR, SET, THREADS, line, say


def claims_cli(config: Path = typer.Argument(Path("configs/question_claims.yaml"), help="The claims config (its models are the ones the claims read)."),
               set_: List[str] = SET,
               out_file: Path = typer.Option(Path("docs/answers.md"), "--out", help="The answers page to write (atomically)."),
               threads: Optional[int] = THREADS, results_dir: Path = RESULTS_DIR, quiet: bool = QUIET):
    """Test the question's six claims: run the config (or reuse its finished run), add the sweeps each claim needs
    (or reuse them), decide every verdict from the numbers and write the answers page (invariance_lab/claims/claims.py)."""
    answers = write_answers(config, overrides=set_, out_file=out_file, results_dir=results_dir, threads=threads,
                            progress=not quiet, on_event=say(quiet))
    for c, f in answers.findings:
        line(f"{c.number}. {c.text}: {f.verdict.upper()}: {f.condition}")
    line(f"answers: {out_file} (run folder: {answers.folders['run']})")
