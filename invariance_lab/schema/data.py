"""The data: section of a config: which images, drawn letters, an image folder of your own, or the built-in
red and green boxes of Kayhan & van Gemert 2020 (data/boxes.py).

    data = DataConfig(letters=["A", "B"], canvas=32, size=16)   # the shape checked; see schema/checks.py
    data.model_dump()                                           # what a run folder's config.yaml holds

Letter sizes against the canvas, outline fonts and an image folder's files are checked through the validation
context (schema/checks.py), which config.load.parse_config gives.
"""

from __future__ import annotations

import difflib

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_serializer, model_validator

from ..core.errors import InvlabError, choose, quote
from .checks import checks_of, needs_checks
from .fields import BIG, Float, Int, Seed, Str, _distinct, _Problem, _Schema, same_but_case, without_defaults
from .fonts import DEFAULT_OUTLINE_FONTS, LATIN_FONTS
from .test_sets import check_test_set, merged


# data keys that describe drawn letters: a folder's images (source: folder) have none of them
LETTER_KEYS = ("letters", "glyphs", "fonts", "size", "size_jitter", "thickness", "ink", "gain")
# data keys of an image folder: letters have none of them (data/folder.py)
FOLDER_KEYS = ("path", "colour", "test_fraction", "fill", "folder_digest")
# data keys of the built-in boxes (data/boxes.py): letters and folders have none of them
BOX_KEYS = ("test_set",)
_DATA_DEFAULTS = {"glyphs": "stroke", "ink": "free", "gain": None, "source": "letters", "path": None, "colour": "grey",
                  "test_fraction": 0.2, "fill": "zeros", "folder_digest": None, "test_set": "similar",
                  "val_fraction": 0.0, "test_sets": None}


class DataConfig(_Schema):
    source: Literal["letters", "folder", "boxes"] = "letters"  # letters: drawn; folder: data.path; boxes: built in
    letters: list[Str] = ["A", "B"]  # the classes, A-Z, in class order; A vs B: the simplest task that needs shape
    glyphs: Literal["stroke", "outline"] = "stroke"  # stroke: Hershey pen strokes; outline: filled outlines.py
    fonts: list[Str] = ["futural", "futuram", "timesr"]  # one per image at random; 3 distinct designs; `invlab fonts`
    # (outline: DejaVu Sans, DejaVu Serif)
    canvas: Int = Field(32, ge=8, le=256)  # image side, px; 32 keeps CPU training to seconds
    size: Float = Field(16.0, gt=0)  # letter height, px, before jitter; half the canvas leaves room to move
    size_jitter: Float = Field(0.1, ge=0, lt=1)  # height drawn uniformly in size * [1 - j, 1 + j]: some variety
    thickness: list[Float] = [1.0, 2.0]  # stroke width range [min, max], px, drawn uniformly per image
    noise: Float = Field(0.0, ge=0, le=10)  # std of Gaussian pixel noise (ink = 1) on TRAINING images; 0 = none
    train_images: Int = Field(2000, ge=2, le=BIG)  # rendered once, held in memory; 2000 is seconds per epoch on a CPU
    test_images: Int = Field(500, ge=1, le=BIG)  # the same test letters for every model, seed and shift
    train_shift: Float = Field(0.0, ge=0)  # training letters placed uniformly within +-train_shift px; 0 = centred
    train_mode: Literal["canvas", "circular"] = "canvas"  # canvas: drawn at the offset; circular: rolled, whole px
    task: Literal["letter", "position"] = "letter"  # letter | position (label = top or bottom half: padding probe)
    ink: Literal["free", "matched", "invariant"] = "free"  # matched: total ink from one range; invariant: the
    # invariant statistics matched too (total, spread, peak, mean and area of the ink; data/ink.py)
    gain: Optional[list[Float]] = None  # [lo, hi]: every letter's intensity x U(lo, hi), whatever its class
    seed: Seed = 0  # data seed, 0 .. 2**32-1: every model and model seed sees the same train and test images

    # validation images (train.select: best_val, train.patience), held out by data.seed, the same for every
    # model and seed; 0 = none (or an image folder's val/ folder)
    val_fraction: Float = Field(0.0, ge=0, lt=1)  # this share of each class of the training images validates

    # source: folder (data/folder.py); train_images and test_images are then the folder's counts
    path: Optional[Str] = Field(None, max_length=1000)  # DIR/<class>/<image> or DIR/{train,test}/<class>/<image>
    colour: Literal["grey", "rgb"] = "grey"  # images read as grey (1 channel) or rgb (3), resized to the canvas
    test_fraction: Float = Field(0.2, gt=0, lt=1)  # no train/ and test/: this share of each class tests, by seed
    fill: Literal["zeros", "edge", "reflect"] = "zeros"  # canvas shifts of an image: what enters at the border
    folder_digest: Optional[Str] = Field(None, max_length=64)  # written by invlab: the folder's files, checked

    # source: boxes (data/boxes.py): red and green boxes, RGB (colour: rgb), 1000 test images unless set
    test_set: Literal["similar", "dissimilar"] = "similar"  # dissimilar: the boxes moved to the other class's half

    # other test sets measured after training, each in test_sets/<name>/ (and by invlab sweep, in its folder):
    # name -> the data keys that replace the run's for its test images alone (schema/test_sets.py)
    test_sets: Optional[dict[Str, dict[Str, Any]]] = None  # e.g. {dissimilar: {test_set: dissimilar}}

    @model_validator(mode="after")
    def _test_sets(self, info: ValidationInfo) -> "DataConfig":
        # each test set is the run's data with a few keys replaced: checked as a whole, as the run's own data is
        twins = same_but_case(self.test_sets or {})
        if twins:  # test_sets/Dissimilar/ and test_sets/dissimilar/: one folder on macOS and Windows
            raise _Problem(("test_sets",), "test set names that differ only in letter case would be one folder on "
                           "macOS and Windows; rename one", twins)
        for name, spec in (self.test_sets or {}).items():
            check_test_set(name, spec)
            try:
                type(self).model_validate(merged(self.model_dump(), spec), context=info.context)
            except ValidationError as e:
                first = e.errors()[0]
                problem = first.get("ctx", {}).get("error")
                key = problem.key if isinstance(problem, _Problem) else tuple(map(str, first["loc"]))
                value = problem.value if isinstance(problem, _Problem) else first.get("input")
                words = str(problem or first["msg"])
                if first["type"] == "extra_forbidden":  # as an unknown key of the run's own data is named
                    close = difflib.get_close_matches(key[-1], list(type(self).model_fields), n=1)
                    words = "unknown key of data" + (f"; did you mean '{close[0]}'?" if close else "")
                raise _Problem(("test_sets", name) + key, words, value) from None
        return self

    @field_validator("letters")
    @classmethod
    def _letters(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if not (len(x) == 1 and "A" <= x <= "Z")]
        if bad:
            raise ValueError(f"letters must be single capitals A-Z; got {quote(bad)}")
        if not _distinct(v):
            raise ValueError(f"letters must be distinct and not empty; got {quote(v)}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _outline_fonts(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            _check_source_keys(raw)
        # The stroke fonts' default means nothing to outline glyphs: they get outline fonts of their own.
        if isinstance(raw, dict) and raw.get("glyphs") == "outline" and "fonts" not in raw:
            raw = {**raw, "fonts": list(DEFAULT_OUTLINE_FONTS)}
        if isinstance(raw, dict) and raw.get("source") == "boxes":  # red and green: 3 channels; the paper's 1000
            raw = {"colour": "rgb", "test_images": 1000, **raw}
        return raw

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler):
        # Fields added after runs were fingerprinted are written only when they differ from their default.
        d = without_defaults(handler(self), _DATA_DEFAULTS)
        if self.source in ("folder", "boxes"):  # not drawn letters: written, they would be refused on reading back
            for key in LETTER_KEYS:
                d.pop(key, None)
        return d

    @field_validator("fonts")
    @classmethod
    def _fonts(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("source") in ("folder", "boxes"):
            return v  # not used: the images come from the folder or are boxes
        if info.data.get("glyphs") == "outline":
            if not _distinct(v):
                raise ValueError("fonts must be distinct and not empty; `invlab fonts` lists the outline fonts")
            checks = checks_of(info)
            for font in v:
                if font in LATIN_FONTS:
                    raise ValueError(f"{font!r} is a stroke font; glyphs: outline takes outline fonts (e.g. "
                                     "\"DejaVu Sans\"; `invlab fonts` lists them) or .ttf/.otf paths")
                try:
                    if checks:  # finding an outline font reads the font folders: data/outlines.py
                        checks.outline_font(font)
                except InvlabError as e:
                    raise ValueError(str(e)) from None
            return v
        if not _distinct(v):
            raise ValueError(f"fonts must be distinct and not empty; choose from: {', '.join(LATIN_FONTS)}")
        for font in v:
            choose("font", font, LATIN_FONTS, error=ValueError)
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        # relative to the current folder, stored absolute: a run folder's config must find it from anywhere
        return v if v is None else str(Path(v).expanduser().resolve())

    @field_validator("gain")
    @classmethod
    def _gain(cls, v: list[float] | None, info: ValidationInfo) -> list[float] | None:
        if v is not None and (len(v) != 2 or not 0 < v[0] <= v[1] <= 1):
            raise ValueError(f"gain must be [lo, hi] with 0 < lo <= hi <= 1 (a letter's ink scaled by U(lo, hi); "
                             f"ink stays within [0, 1]); got {quote(v)}")
        if v is not None and info.data.get("ink") == "matched":
            raise ValueError("gain does not apply to ink: matched, which sets each letter's gain itself; use ink: "
                             "free (the contrast-only control) or ink: invariant (its gain range)")
        return v

    @field_validator("thickness")
    @classmethod
    def _thickness(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0 < v[0] <= v[1]:
            raise ValueError(f"thickness must be [min, max] with 0 < min <= max; got {quote(v)}")
        return v

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> "DataConfig":
        checks = checks_of(info)
        if self.source == "folder":
            if checks is None:  # the rest of the code relies on the counts and digest the folder check fills in
                raise needs_checks("path", "source: folder (its image counts and digest)", self.path)
            problem = checks.folder(self)  # reads the folder's listing and checks every file
            if problem:
                raise problem
            return self
        if self.source == "boxes":
            return _boxes_fit(self)
        if self.task == "letter" and len(self.letters) < 2:
            raise _Problem("letters", "task: letter needs at least two letters: they are the classes, and one class "
                           "leaves nothing to tell apart; add one (e.g. [A, B]), or use task: position, whose classes "
                           "are the top and bottom halves", self.letters)
        problem = checks.canvas(self) if checks else None  # the letters fit the canvas and stay in the frame
        if problem:
            raise problem
        return self


def _boxes_fit(data: DataConfig) -> DataConfig:
    """The boxes' canvas, and the letter settings they cannot take (data/boxes.py draws them the paper's way)."""
    if data.canvas % 8 or data.canvas < 16:
        raise _Problem("canvas", "source: boxes scales the paper's 32 px layout (boxes of canvas/8 px, bands at "
                       "7/32 and 23/32 of the height): the canvas must be a multiple of 8 px, at least 16", data.canvas)
    if data.task != "letter" or data.train_shift:
        key = "task" if data.task != "letter" else "train_shift"
        raise _Problem(key, "source: boxes places the boxes as the paper does (the class is which colour is on the "
                       "left; each class in its own half); remove it", getattr(data, key))
    return data


def _check_source_keys(raw: dict) -> None:
    """Keys of the other source are refused (a folder has no fonts; letters have no path), named."""
    if raw.get("source") == "boxes":
        wrong = [k for k in LETTER_KEYS + FOLDER_KEYS if k in raw and k != "colour"]
        if raw.get("colour", "rgb") != "rgb":
            raise _Problem("colour", "source: boxes draws a red and a green box: its images are rgb", raw["colour"])
        if wrong:
            raise _Problem(wrong[0], f"{wrong[0]} does not apply to source: boxes (red and green boxes drawn as in "
                           "Kayhan & van Gemert 2020); remove it", raw[wrong[0]])
        return
    if "test_set" in raw:
        raise _Problem("test_set", "test_set chooses the test images of source: boxes (similar | dissimilar); add "
                       "source: boxes, or remove it", raw["test_set"])
    folder = raw.get("source") == "folder"
    wrong = [k for k in (LETTER_KEYS if folder else FOLDER_KEYS) if k in raw]
    if folder and raw.get("task", "letter") != "letter":
        raise _Problem("task", "task: position draws letters in the top or bottom half; source: folder trains on "
                       "your images' own classes (task: letter)", raw.get("task"))
    if folder and "path" not in raw:
        raise _Problem("path", "source: folder needs data.path, the image folder (DIR/<class>/<image>, or "
                       "DIR/train/<class>/<image> and DIR/test/<class>/<image>)", None)
    if wrong:
        what = ("describes drawn letters; source: folder takes its classes and images from data.path" if folder
                else "belongs to source: folder (your images); add source: folder, or remove it")
        raise _Problem(wrong[0], f"{wrong[0]} {what}", raw[wrong[0]])
