"""Progress for people: a bar on a terminal, a line every few seconds with the time left anywhere else.

    bar = progress_bar(total=300, desc="train conv_gap seed 0", unit="step", enabled=not quiet)
    for ...: bar.update(1)
    bar.close()

A bar redraws itself with carriage returns, which a terminal overwrites in place; written to a file (a cluster
job's log, `invlab run ... 2> log`) every frame stays, and one run made a 155 KB log of them. So where stderr is
not a terminal (and not a notebook, where tqdm draws a widget) the same calls print one line at most every
LINE_PERIOD_S seconds and one at the end, each with the count, the elapsed time and an estimate of the time left.
"""

from __future__ import annotations

import math
import sys
import time

from tqdm.auto import tqdm

LINE_PERIOD_S = 10.0  # seconds between two progress lines in a log


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m."""
    s = math.ceil(max(seconds, 0))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def time_left(done: float, total: float, elapsed: float) -> str:
    """"about 40s left" from the rate so far, or "estimating the time left" before anything is done."""
    if done <= 0:
        return "estimating the time left"
    return f"about {duration(elapsed / done * max(total - done, 0))} left"


class LineProgress:
    """tqdm's update / set_postfix / close, as a line every LINE_PERIOD_S seconds on stderr."""

    def __init__(self, total: int, desc: str, unit: str, stream=None, period: float = LINE_PERIOD_S):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.stream, self.period, self.postfix = stream or sys.stderr, period, ""
        self.started = self.shown = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.shown >= self.period and self.n < self.total:
            self.shown = now
            self._line(f"{time_left(self.n, self.total, now - self.started)}")

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.n:
            self._line(f"done in {duration(time.perf_counter() - self.started)}")

    def _line(self, when: str) -> None:
        pct = f" ({self.n / self.total:.0%})" if self.total else ""
        extra = f"; {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.n}/{self.total} {plural(self.unit)}{pct}, {when}{extra}", file=self.stream,
              flush=True)


def plural(noun: str) -> str:
    """The plural of a progress unit (step, shift, batch, transform)."""
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


class _Off:
    """A disabled bar (--quiet)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True):
    """A tqdm bar on a terminal or in a notebook, a LineProgress elsewhere, nothing when not `enabled`."""
    if not enabled:
        return _Off()
    if sys.stderr.isatty() or "ipykernel" in sys.modules:
        return tqdm(total=total, desc=desc, unit=unit, leave=False)
    return LineProgress(total, desc, unit)
