"""What `invlab run`, `sweep` and `measure` print at the end: the folder's brief tables, then the certificate of a
folder over every circular shift (report/certificate.py).

    show_result(load_result(folder), "sweep: mean ± 95% CI over seeds")
"""

from __future__ import annotations

from ..report.certificate import certificate_lines
from ..report.display import brief_tables
from ..store.results import Result
from .options import line, out


def show_result(result: Result, title: str) -> None:
    for table in brief_tables(result, title=title):
        out.print(table)
    for text in certificate_lines(result):  # every roll of the canvas or images: the exact worst case
        line(text)
