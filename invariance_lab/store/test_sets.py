"""Reading a run's other test sets (data.test_sets): test_sets/<name>/summary.csv, checked like the run's own.

    summaries = load_test_sets(load_result(run_dir))   # {"dissimilar": summary DataFrame, ...}
"""

from __future__ import annotations

import pandas as pd

from ..core.columns import SUMMARY_METRICS
from ..core.errors import InvlabError
from .layout import SUMMARY_CSV, other_test_set_dir
from .results import Result, _read_csv


def other_test_sets(result: Result) -> list[str]:
    """The test sets a run measured besides its own, as its meta.json's protocol records them (none: [])."""
    return list((result.meta.get("protocol") or {}).get("test_sets") or {})


def load_test_sets(result: Result) -> dict[str, pd.DataFrame]:
    """{name: summary.csv of test_sets/<name>/} of a finished run; an InvlabError naming a file missing or damaged."""
    out = {}
    for name in other_test_sets(result):
        path = other_test_set_dir(result.path, name) / SUMMARY_CSV
        if not path.is_file():
            raise InvlabError(f"{path} is missing: meta.json says the run measured test set {name!r} "
                              "(data.test_sets); the folder was edited, or the run did not finish writing it")
        out[name] = _read_csv(path, ["model", "seed", *SUMMARY_METRICS], ["seed", "clean_accuracy"])
    return out
