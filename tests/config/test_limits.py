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


@pytest.mark.parametrize("mode", ["canvas", "circular"])
@pytest.mark.parametrize("scales, words", [
    ([1e-9, 1e-9], "under a pixel: every image blank"),
    ([1000, 10000, 9000], "at scale 10000 each of the first 32 test letters fills the 24 px frame with one value"),
])
def test_a_scale_that_leaves_nothing_to_see_is_refused(mode, scales, words):
    """As a shift that moves every letter out of the frame is refused, so is a scale factor that shrinks the
    letters under a pixel or enlarges them until the frame holds one value (tried on the first test letters);
    factors that leave an edge in some letters pass (at 20, 40% of quick.yaml's letters are flat, not all)."""
    raw = {**BASE, "sweep": {"mode": mode, "transform": "scale", "scales": scales}}
    with pytest.raises(ConfigError, match=r"\[sweep.scales\]") as e:
        parse_config(raw)
    bad = f"{scales[1] if scales[0] > 1 else scales[0]:g}"  # circular mode scales the reference image's pixels
    assert (f"scale {bad} of a 24 px image leaves one flat value" if mode == "circular" else words) in str(e.value)
    assert parse_config({**BASE, "sweep": {"mode": mode, "transform": "scale", "scales": [0.5, 20, 0.5]}})


def test_a_scale_of_a_folder_image_beyond_its_pixels_is_refused():
    from invariance_lab.config.limits import scale_problem
    from invariance_lab.schema.data import DataConfig
    from invariance_lab.schema.sweep import SweepConfig

    folder = DataConfig.model_construct(source="folder", canvas=32)  # scale_problem reads these two only
    for scales in ([0.01, 0.01], [40, 40]):
        assert "leaves one flat value" in str(scale_problem(folder, SweepConfig(transform="scale", scales=scales)))
    assert scale_problem(folder, SweepConfig(transform="scale", scales=[0.5, 2, 0.5])) is None


def test_a_circular_roll_of_half_the_canvas_is_allowed_for_training():
    """Catches train_shift = canvas/2 refused in circular mode, where the doc allows train_shift <= canvas/2."""
    cfg = parse_config({**BASE, "data": {**BASE["data"], "train_mode": "circular", "train_shift": 12},
                        "sweep": {"mode": "circular"}})
    assert cfg.data.train_shift == 12
    with pytest.raises(ConfigError, match=r"\[data.train_shift\]"):
        parse_config({**BASE, "data": {**BASE["data"], "train_mode": "circular", "train_shift": 13},
                      "sweep": {"mode": "circular"}})


def test_a_canvas_shift_reaching_the_blank_limit_is_refused():
    """Catches a shift of exactly canvas/2 + half the image allowed (off by one: it leaves no pixel to see)."""
    from invariance_lab.config.limits import shift_problem
    from invariance_lab.schema.data import DataConfig
    from invariance_lab.schema.sweep import SweepConfig

    folder = DataConfig.model_construct(source="folder", canvas=32)  # an image fills 30 px: limit 16 + 15 = 31
    problem = shift_problem(folder, SweepConfig(mode="canvas", dx=[-31, 31, 1], dy=[0, 0, 1]))
    assert problem is not None and "the useful shifts are below 31 px" in str(problem)
    assert shift_problem(folder, SweepConfig(mode="canvas", dx=[-30, 30, 1], dy=[0, 0, 1])) is None


def _folder_data(monkeypatch, **fields):
    """A folder DataConfig whose folder_split is stubbed: 10 training and 5 test images."""
    from types import SimpleNamespace

    from invariance_lab.config import limits
    from invariance_lab.schema.data import DataConfig

    split = SimpleNamespace(train=SimpleNamespace(n=10), test=SimpleNamespace(n=5), digest="d1")
    monkeypatch.setattr(limits, "folder_split", lambda data: split)
    return DataConfig.model_construct(**{"source": "folder", "path": "imgs", "canvas": 32, "folder_digest": None,
                                         "train_images": 10, "test_images": 5, **fields})


@pytest.mark.parametrize("mode, shift, refused", [("canvas", 15.5, False), ("canvas", 16, True),
                                                  ("circular", 16, False), ("circular", 2.5, True),
                                                  ("circular", 17, True)])
def test_a_folders_training_offset_is_bounded_as_for_letters(monkeypatch, mode, shift, refused):
    """Catches a folder's train_shift of canvas/2 allowed in canvas mode, or a fractional roll in circular mode."""
    from invariance_lab.config.limits import folder_problem
    problem = folder_problem(_folder_data(monkeypatch, train_mode=mode, train_shift=shift))
    assert (problem is not None and problem.key == ("train_shift",)) == refused, problem
