"""What fits the canvas: the size of the largest letter and the rules that keep letters in the frame, an image
folder's files, and sweep shifts that leave something to see.

    canvas_problem(cfg.data)              # None, or the _Problem naming the key (size, train_shift, canvas, ...)
    shift_problem(cfg.data, cfg.sweep)    # a sweep shift that blanks every image, or None

The schema's validators call these through the validation context (config/checks.py, schema/checks.py): each
returns a _Problem naming the key, which config/load.py turns into a message. memory.py builds on the letter
sizes here for the memory estimate.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from ..core.errors import InvlabError
from ..data.folder import folder_split
from ..data.letters import load_glyphs
from ..data.shifts import turned_inputs
from ..data.transforms import flat_at_scale
from ..schema.data import DataConfig
from ..schema.fields import _Problem
from ..schema.sweep import SweepConfig, axis, turn_problem

# ------------------------------------------------------------------------------------------------- canvas


@lru_cache(maxsize=64)
def _glyph_stats(letters: tuple[str, ...], fonts: tuple[str, ...], glyphs: str = "stroke") -> tuple[float, str, int]:
    """(widest normalised glyph width (height = 1), which glyph that is, most segments of one glyph)."""
    table = load_glyphs(letters, fonts, glyphs)
    xs, real = table.segments[..., 0::2], table.mask[..., None]
    widths = xs.masked_fill(~real, -math.inf).amax((1, 2)) - xs.masked_fill(~real, math.inf).amin((1, 2))
    g = int(torch.argmax(widths))
    return float(widths[g]), f"{letters[g // len(fonts)]} in {fonts[g % len(fonts)]}", int(table.mask.sum(1).max())


def pen_width(data: DataConfig) -> float:
    """How much wider than the glyph its ink is, px: the thickest stroke, or for filled outlines the anti-aliasing
    ramp (0.5 px beyond the outline on each side; thickness does not apply to them)."""
    return 1.0 if data.glyphs == "outline" else data.thickness[1]


def letter_size(data: DataConfig) -> tuple[float, float, str]:
    """(height, width, which glyph is widest) in px of the largest letter drawn: at size*(1+size_jitter) with the
    thickest stroke, pen included (ink goes half the stroke width beyond the glyph's outline on every side)."""
    width, widest, _ = _glyph_stats(tuple(data.letters), tuple(data.fonts), data.glyphs)
    h, pen = data.size * (1 + data.size_jitter), pen_width(data)
    return h + pen, width * h + pen, widest


def canvas_problem(data: DataConfig) -> _Problem | None:
    """The first reason the letters do not fit the canvas, or a training offset moves them out of the frame (or,
    for the position task, into the other half), or a roll is not by whole pixels; None when they fit."""
    c, s = data.canvas, data.train_shift
    if data.task == "position" and c % 2:
        # the paired test set rolls the top image by canvas/2 rows; 1/4 maps onto 3/4 only for an even side
        return _Problem("canvas", "task: position needs an even canvas (the bottom test image is the top one "
                        "rolled by canvas/2)", c)
    if data.train_mode == "circular" and s != int(s):
        return _Problem("train_shift", "train_mode: circular rolls by whole pixels; train_shift must be a whole "
                        "number", s)
    try:
        height, width, widest = letter_size(data)
    except InvlabError as e:  # a glyph the renderer cannot use (letters.load_glyphs says which)
        return _Problem("fonts", str(e), data.fonts)
    room = c / 2 if data.task == "position" else c
    if data.task == "letter" and data.glyphs == "stroke" and pen_width(data) >= c:  # no size fits: blame the stroke
        return _Problem("thickness", f"a stroke {pen_width(data):.4g} px wide (the largest data.thickness) leaves "
                        f"no room for a letter in {room:g} px; strokes of 1 to 2 px suit a 32 px canvas",
                        data.thickness)
    if data.task == "position" and height - pen_width(data) > room:
        # The label is the half the letter's centre is in; its pen may overrun the middle by half its width.
        return _Problem("size", f"task: position draws each letter in one half of the canvas: its height "
                        f"size*(1+size_jitter) = {height - pen_width(data):.4g} px must fit in canvas/2 = "
                        f"{room:g} px; lower data.size or enlarge data.canvas", data.size)
    if data.task == "letter" and height > room:
        return _Problem("size", f"the letters do not fit the {c} px canvas: the tallest is size*(1+size_jitter) "
                        f"+ the thickest stroke = {height:.4g} px; lower data.size (at most "
                        f"{(c - pen_width(data)) / (1 + data.size_jitter):.4g} px here) or enlarge data.canvas",
                        data.size)
    if width > c:
        return _Problem("size", f"the letters do not fit the {c} px canvas: the widest glyph ({widest}) is "
                        f"{width:.4g} px wide at the largest size and stroke; lower data.size or enlarge "
                        "data.canvas", data.size)
    if data.task == "position" and s >= c / 4:
        return _Problem("train_shift", f"task: position labels a letter by the half its centre is in, drawn at "
                        f"canvas/4 from the middle; an offset of canvas/4 = {c / 4:g} px or more moves it into the "
                        f"other half under the wrong label; use train_shift < {c / 4:g}", s)
    if data.task == "letter" and data.train_mode == "canvas" and s >= c / 2:
        return _Problem("train_shift", f"an offset of canvas/2 = {c / 2:g} px or more puts a training letter's "
                        f"centre outside the {c} px frame (less than half of it visible, none at all beyond "
                        f"{c / 2 + width / 2:.4g} px): labelled images without their letter; use "
                        f"train_shift < {c / 2:g}", s)
    if data.task == "letter" and data.train_mode == "circular" and s > c / 2:
        return _Problem("train_shift", f"train_mode: circular rolls the letter around the {c} px canvas: a roll "
                        f"by canvas/2 = {c / 2:g} px already reaches every position, and a larger one repeats a "
                        f"smaller one (r and r - {c}), so positions would not be uniform; use train_shift <= "
                        f"{c // 2}", s)
    return None


def folder_problem(data: DataConfig) -> _Problem | None:
    """source: folder: the first problem with the folder (a bad file, named), counts or a digest that disagree
    with the folder, or a training offset out of bounds; None when fine. Fills in train_images, test_images and
    folder_digest from the folder (data/folder.py)."""
    try:
        split = folder_split(data)
    except InvlabError as e:
        return _Problem("path", str(e), data.path)
    except OSError as e:  # a folder or file that cannot be listed or opened (permissions, a vanished disk)
        return _Problem("path", f"{e.filename or data.path} cannot be read ({e.strerror or type(e).__name__}); give "
                        "a folder invlab may read", data.path)
    if data.folder_digest is not None and data.folder_digest != split.digest:
        return _Problem("folder_digest", f"the files of {data.path} changed since this config was written (names, "
                        "sizes or classes differ from the run's record), so its models were trained on other images; "
                        "restore the folder, or start a new run (remove folder_digest)", data.folder_digest)
    for key, n in (("train_images", split.train.n), ("test_images", split.test.n)):
        if key in data.model_fields_set and getattr(data, key) != n:
            return _Problem(key, f"{data.path} holds {n} {key.split('_')[0]}ing images (the split of data/folder.py); "
                            f"leave {key} out: the folder decides", getattr(data, key))
        setattr(data, key, n)
    data.folder_digest = split.digest
    c, s = data.canvas, data.train_shift
    if data.train_mode == "circular" and (s != int(s) or s > c / 2):
        return _Problem("train_shift", f"train_mode: circular rolls by whole pixels, at most canvas/2 = {c // 2} "
                        "(a larger roll repeats a smaller one)", s)
    if data.train_mode == "canvas" and s >= c / 2:
        return _Problem("train_shift", f"an offset of canvas/2 = {c / 2:g} px or more moves more than half of a "
                        f"training image out of its frame; use train_shift < {c / 2:g}", s)
    return None


FLAT_SAMPLE = 32  # letters drawn at a large scale factor to see whether any of them is more than one flat value


def scale_problem(data: DataConfig, sweep: SweepConfig) -> _Problem | None:
    """A scale factor that leaves nothing to see: the largest letter (or a folder's image) under a pixel, or, at
    the largest factor, each of the first FLAT_SAMPLE test letters one flat value (all ink or none); a folder's
    image (or circular mode's reference image) scaled so much that one of its pixels is wider than the frame is
    flat too."""
    values = axis(sweep.scales)
    small, large = min(values), max(values)
    if data.source != "letters" or sweep.mode == "circular":  # pixels: a folder's image, or the reference rolled
        flat = [s for s in (small, large) if flat_at_scale(s, data.canvas, data.canvas)]
        if flat:
            bad = flat[0] if flat[0] < 1 else flat[-1]  # the factor too small, else the largest too large
            return _Problem("scales", f"scale {bad:g} of a {data.canvas} px image leaves one flat value: useful "
                            f"factors lie between 1/{data.canvas} and {data.canvas}", sweep.scales)
        return None
    tallest = letter_size(data)[0]
    if small * tallest < 1:
        return _Problem("scales", f"at scale {small:g} the largest letter is {small * tallest:.2g} px tall, under a "
                        f"pixel: every image blank; useful factors are above {1 / tallest:.2g}", sweep.scales)
    # only a letter taller than the frame can fill it; the largest factor alone is tried (one drawing)
    if large * tallest > data.canvas and _all_flat(data, sweep.mode, large):
        return _Problem("scales", f"at scale {large:g} each of the first {FLAT_SAMPLE} test letters fills the "
                        f"{data.canvas} px frame with one value (all ink, or none: the frame lies inside a stroke or "
                        "between strokes); use smaller factors", sweep.scales)
    return None


def _all_flat(data: DataConfig, mode: str, scale: float) -> bool:
    """Whether the first FLAT_SAMPLE test letters drawn (or rolled reference images turned) at `scale` are each one
    flat value."""
    sample = SweepConfig(mode=mode, transform="scale", scales=[scale, scale])
    inputs, _ = turned_inputs(data.model_copy(update={"test_images": FLAT_SAMPLE}), sample, FLAT_SAMPLE)
    images = inputs(slice(0, FLAT_SAMPLE), scale).flatten(1)
    return bool(((images.amax(1) - images.amin(1)) < 1e-6).all())


def shift_problem(data: DataConfig, sweep: SweepConfig) -> _Problem | None:
    """A sweep shift that can only give useless inputs, or None.

    canvas mode: a letter moved by |d| >= canvas/2 + its half-extent (pen included) has no pixel left in the
    frame, so a shift that does this to the largest letter blanks every image. circular mode: a roll by r equals
    a roll by r - canvas, so |shift| >= canvas only repeats a smaller shift."""
    c = data.canvas
    if sweep.transform == "scale":
        return scale_problem(data, sweep)
    if sweep.transform == "rotate" and (twice := turn_problem(axis(sweep.angles))):
        return _Problem("angles", twice, sweep.angles)
    # a folder's image (or boxes anywhere in theirs) fills its frame; translate_image needs |shift| < side - 1
    height, width = (c - 2, c - 2) if data.source != "letters" else letter_size(data)[:2]
    for key, extent in (("dx", width), ("dy", height)):
        values = axis(getattr(sweep, key))
        worst = max(values, key=abs)
        if sweep.mode == "circular" and abs(worst) >= c:
            same = worst - c * round(worst / c) + 0.0
            return _Problem(key, f"mode: circular rolls around the {c} px canvas, so a roll by {worst:g} px equals one "
                            f"by {same:g} px; keep |{key}| < {c}", getattr(sweep, key))
        limit = c / 2 + extent / 2
        if sweep.mode == "canvas" and abs(worst) >= limit:
            half = "half-width" if key == "dx" else "half-height"
            return _Problem(key, f"a shift of {worst:g} px moves every letter wholly out of the {c} px frame, leaving "
                            f"a blank image (canvas/2 + the largest letter's {half} = {limit:.4g} px or more); the "
                            f"useful shifts are below {limit:.4g} px", getattr(sweep, key))
    return None
