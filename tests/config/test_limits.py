"""limits.py: a config whose letters cannot fit its canvas is refused naming the key to change."""

import pytest

from invariance_lab.config.load import parse_config
from invariance_lab.core.errors import ConfigError

BASE = {"name": "t", "seeds": [0], "models": {"m": {"arch": "conv_gap"}},
        "data": {"letters": ["A", "B"], "canvas": 24, "size": 10}}


@pytest.mark.parametrize("thickness", [[1, 1e300], [1, 30], [24, 24]])
def test_a_stroke_wider_than_the_canvas_blames_thickness_not_size(thickness):
    raw = {**BASE, "data": {**BASE["data"], "thickness": thickness}}
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    said = str(e.value)
    assert "[data.thickness]" in said and "leaves no room for a letter in 24 px" in said
    assert "[data.size]" not in said and "at most -" not in said  # never a negative size to aim for


def test_a_thick_stroke_in_the_position_task_is_judged_by_its_own_rule():
    """task: position lets the pen overrun the middle by half its width: a stroke wider than half the canvas is
    not refused for that alone."""
    cfg = parse_config({**BASE, "data": {"letters": ["A"], "task": "position", "canvas": 16, "size": 6,
                                         "thickness": [1, 8]}, "sweep": {"mode": "circular"}})
    assert cfg.data.thickness == [1.0, 8.0]


def test_a_letter_too_tall_for_the_canvas_still_blames_size():
    with pytest.raises(ConfigError, match=r"\[data.size\].*lower data.size \(at most 20 px here\)"):
        parse_config({**BASE, "data": {**BASE["data"], "size": 30}})
