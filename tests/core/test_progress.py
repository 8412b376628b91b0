"""core/progress.py: a log gets a line now and then with the time left, never a bar's carriage-return frames."""

import io

import pytest

from invariance_lab.core import progress as pg


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (0.2, "1s"), (59, "59s"), (61, "1m01s"), (3600, "1h00m"),
                                           (3725, "1h02m")])
def test_duration(seconds, text):
    assert pg.duration(seconds) == text


def test_time_left_from_the_rate_so_far():
    assert pg.time_left(0, 10, 5.0) == "estimating the time left"
    assert pg.time_left(2, 10, 4.0) == "about 16s left"
    assert pg.time_left(10, 10, 4.0) == "about 0s left"


def test_lines_at_most_once_a_period_and_one_at_the_end(monkeypatch):
    clock = iter(float(t) for t in [0, 1, 2, 11, 12, 13, 25, 26])  # started, then one reading per update / close
    monkeypatch.setattr(pg.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    bar = pg.LineProgress(total=6, desc="train m seed 0", unit="step", stream=out, period=10)
    for _ in range(6):
        bar.update(1)
        bar.set_postfix(loss="0.5")
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines == ["train m seed 0: 3/6 steps (50%), about 11s left; loss=0.5",
                     "train m seed 0: 6/6 steps (100%), done in 26s; loss=0.5"]


@pytest.mark.parametrize("unit, units", [("step", "steps"), ("shift", "shifts"), ("batch", "batches"),
                                         ("transform", "transforms")])
def test_every_unit_a_bar_counts_in_has_its_plural(unit, units):
    assert pg.plural(unit) == units
    out = io.StringIO()
    bar = pg.LineProgress(total=2, desc="measure", unit=unit, stream=out)
    bar.update(2)
    bar.close()
    assert out.getvalue().startswith(f"measure: 2/2 {units} (100%), done in ")


def test_a_bar_only_on_a_terminal():
    assert isinstance(pg.progress_bar(5, "x", "step", enabled=True), pg.LineProgress)  # pytest's stderr: no tty
    quiet = pg.progress_bar(5, "x", "step", enabled=False)
    quiet.update(3), quiet.set_postfix(a=1), quiet.close()  # nothing to see, nothing raised
