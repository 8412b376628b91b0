"""The experiment config: a typed schema (pydantic v2) with commented defaults, and its entry points.

    cfg = load_config("configs/seed_question.yaml", overrides=["train.epochs=2", "seeds=[0,1]"])

Every bad input is refused before any work starts, as one ConfigError (an InvlabError: the CLI prints it, exit
code 2) naming the file, the dotted key path, the value (quoted, cut to 200 characters) and what is allowed.
Built on this schema: limits.py (what fits the canvas and the machine: letter sizes, shifts out of the frame,
memory), safeyaml.py (YAML without alias bombs) and configfile.py (reading a config file, --set, the messages).
The names that moved there stay importable from here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import (BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer,
                      model_validator)

from ..core.errors import ConfigError, InvlabError, choose, quote


# ----------------------------------------------------------------------------------- limits of the schema
SEED_MAX = 2**32 - 1  # seeds are 32-bit unsigned: every RNG (torch, numpy, random) takes them as they are
MAX_BLOCKS = 32  # conv blocks (channels entries) per model
BIG = 2**63 - 1  # the largest count any setting may have: torch's int64 (a config refers to far smaller ones)

# Strict scalar types: no booleans or strings for numbers, no numbers for strings, finite floats only.
Int = Annotated[int, Field(strict=True)]  # every Int field also states an upper bound, at most BIG
Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # an int is accepted (and becomes a float)
Str = Annotated[str, Field(strict=True)]
Seed = Annotated[int, Field(strict=True, ge=0, le=SEED_MAX)]
KindName = Annotated[str, Field(strict=True, max_length=64)]  # a registry name (arch, downsample, ...)
Width = Annotated[int, Field(strict=True, le=BIG)]  # a conv block's channel count
FolderName = Annotated[str, Field(strict=True, max_length=100)]  # a run folder's name


class _Problem(ValueError):
    """A validator's complaint about one key: `key` is its path below the model validated, `value` the value to
    quote; configfile puts both into the message (pydantic reports model-level errors at the model)."""

    def __init__(self, key: str | tuple, message: str, value: Any):
        super().__init__(message)
        self.key = (key,) if isinstance(key, str) else tuple(key)
        self.value = value


class _Schema(BaseModel):
    # forbid: a typo such as `epoch:` must be an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _distinct(v: list) -> bool:
    """Not empty, and no value twice."""
    return bool(v) and len(set(v)) == len(v)


def check_range(v: list[float], key: str) -> list[float]:
    """[start, stop] or [start, stop, step], inclusive; returned as [start, stop, step]. Raises ValueError."""
    if len(v) not in (2, 3):
        raise ValueError(f"{key} must be [start, stop] or [start, stop, step]; got {quote(v)}")
    start, stop = float(v[0]), float(v[1])
    step = float(v[2]) if len(v) == 3 else 1.0
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise ValueError(f"{key} values must be finite numbers; got {quote(v)}")
    if step <= 0:
        raise ValueError(f"{key} step must be > 0; got {step:g}")
    if stop < start:
        raise ValueError(f"{key} stop ({stop:g}) must be >= start ({start:g})")
    if (stop - start) / step > 10_000:
        raise ValueError(f"{key} {quote(v)} has more than 10000 steps; use a larger step")
    return [start, stop, step]




def parse_range(text: str, option: str) -> list[float]:
    """'START:STOP[:STEP]' (inclusive) or a single value 'V' -> [start, stop, step], checked like the config."""
    try:
        values = [float(v) for v in text.split(":")]
    except ValueError:
        raise ConfigError(f"{option} {quote(text)}: expected START:STOP[:STEP] with numbers, "
                          f"e.g. {option} -4:4:0.5") from None
    if len(values) == 1:
        values = values * 2
    try:
        return check_range(values, option)
    except ValueError as e:
        raise ConfigError(f"{option} {quote(text)}: {e}") from None


# ------------------------------------------------------------------------------------------------- schema


# data keys that describe drawn letters: a folder's images (source: folder) have none of them
LETTER_KEYS = ("letters", "glyphs", "fonts", "size", "size_jitter", "thickness", "ink")
# data keys of an image folder: letters have none of them (folder_data.py)
FOLDER_KEYS = ("path", "colour", "test_fraction", "fill", "folder_digest")
_DATA_DEFAULTS = {"glyphs": "stroke", "ink": "free", "source": "letters", "path": None, "colour": "grey",
                  "test_fraction": 0.2, "fill": "zeros", "folder_digest": None}


class DataConfig(_Schema):
    source: Literal["letters", "folder"] = "letters"  # letters: drawn here; folder: your images (data.path)
    letters: list[Str] = ["A", "B"]  # the classes, A-Z, in class order; A vs B: the simplest task that needs shape
    glyphs: Literal["stroke", "outline"] = "stroke"  # stroke: Hershey pen strokes; outline: filled outlines.py
    fonts: list[Str] = ["futural", "futuram", "timesr"]  # one per image at random; 3 distinct designs; `invlab fonts`
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
    ink: Literal["free", "matched"] = "free"  # matched: every class's total ink drawn from one range (ink.py)
    seed: Seed = 0  # data seed, 0 .. 2**32-1: every model and model seed sees the same train and test images
    # source: folder (folder_data.py); train_images and test_images are then the folder's counts
    path: Optional[Str] = Field(None, max_length=1000)  # DIR/<class>/<image> or DIR/{train,test}/<class>/<image>
    colour: Literal["grey", "rgb"] = "grey"  # images read as grey (1 channel) or rgb (3), resized to the canvas
    test_fraction: Float = Field(0.2, gt=0, lt=1)  # no train/ and test/: this share of each class tests, by seed
    fill: Literal["zeros", "edge", "reflect"] = "zeros"  # canvas shifts of an image: what enters at the border
    folder_digest: Optional[Str] = Field(None, max_length=64)  # written by invlab: the folder's files, checked

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
            from ..data.outlines import DEFAULT_OUTLINE_FONTS

            raw = {**raw, "fonts": list(DEFAULT_OUTLINE_FONTS)}
        return raw

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler):
        # Fields added after runs were fingerprinted are written only when they differ from their default.
        d = handler(self)
        for key, default in _DATA_DEFAULTS.items():
            if key in d and d[key] == default:
                del d[key]
        if self.source == "folder":  # the folder decides these: written, they would be refused on reading back
            for key in LETTER_KEYS:
                d.pop(key, None)
        return d

    @field_validator("fonts")
    @classmethod
    def _fonts(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("source") == "folder":
            return v  # not used: the images come from the folder
        from ..data.letters import LATIN_FONTS  # letters imports torch: only when fonts are checked

        if info.data.get("glyphs") == "outline":
            from ..data.outlines import font_file

            if not _distinct(v):
                raise ValueError("fonts must be distinct and not empty; `invlab fonts` lists the outline fonts")
            for font in v:
                if font in LATIN_FONTS:
                    raise ValueError(f"{font!r} is a stroke font; glyphs: outline takes outline fonts (e.g. "
                                     "\"DejaVu Sans\"; `invlab fonts` lists them) or .ttf/.otf paths")
                try:
                    font_file(font)
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

    @field_validator("thickness")
    @classmethod
    def _thickness(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0 < v[0] <= v[1]:
            raise ValueError(f"thickness must be [min, max] with 0 < min <= max; got {quote(v)}")
        return v

    @model_validator(mode="after")
    def _fits(self) -> "DataConfig":
        if self.source == "folder":
            from ..config.limits import folder_problem  # reads the folder's listing and checks every file

            problem = folder_problem(self)
            if problem:
                raise problem
            return self
        if self.task == "letter" and len(self.letters) < 2:
            raise _Problem("letters", "task: letter needs at least two letters: they are the classes, and one class "
                           "leaves nothing to tell apart; add one (e.g. [A, B]), or use task: position, whose classes "
                           "are the top and bottom halves", self.letters)
        from ..config.limits import canvas_problem  # limits builds on this schema: imported when first used

        problem = canvas_problem(self)  # the letters fit the canvas and stay in the frame
        if problem:
            raise problem
        return self


def _check_source_keys(raw: dict) -> None:
    """Keys of the other source are refused (a folder has no fonts; letters have no path), named."""
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


class ModelSpec(_Schema):
    """A model: a preset `arch` and/or factors (factors given beside a preset override it), or a `factory` of your
    own called with `kwargs` (factory.py), instead of both."""

    arch: Optional[KindName] = None  # preset: conv_only | conv_maxpool | strided_conv | conv_gap | ... (invlab models)
    factory: Optional[Str] = Field(None, max_length=200)  # "package.module:function" returning your nn.Module
    kwargs: Optional[dict[Str, Any]] = None  # the factory's keyword arguments, plain values; only with factory
    downsample: Optional[KindName] = None  # after each block: none | max | avg | stride | blur_* | aps_* (none)
    head: Optional[KindName] = None  # flatten | global_avg | global_max (flatten)
    padding: Optional[KindName] = None  # zeros | circular | reflect | valid (zeros)
    channels: Optional[list[Width]] = Field(None, max_length=MAX_BLOCKS)  # one conv block per entry ([16, 32, 32])
    kernel: Optional[Int] = Field(None, ge=1, le=15)  # conv kernel side (3; odd keeps padding symmetric)
    blur_size: Optional[Int] = Field(None, ge=1, le=7)  # binomial blur side for blur_*/aps_* (3: Zhang's; 1 = none)

    @field_validator("channels")
    @classmethod
    def _channels(cls, v):
        if v is not None and (not v or any(c < 1 for c in v)):
            raise ValueError(f"channels must be a non-empty list of positive ints; got {quote(v)}")
        return v

    @field_validator("factory")
    @classmethod
    def _factory(cls, v):
        from ..nn.factory import check_path  # imports torch: only when a factory is given

        return v if v is None else check_path(v)

    @field_validator("kwargs")
    @classmethod
    def _kwargs(cls, v):
        from ..nn.factory import check_kwargs

        return v if v is None else check_kwargs(v)

    @model_validator(mode="after")
    def _factory_alone(self) -> "ModelSpec":
        if self.factory is None and self.kwargs is not None:
            raise _Problem("kwargs", "kwargs are the arguments of a factory: give factory: \"package.module:function\" "
                           "too, or remove kwargs", self.kwargs)
        given = [k for k in type(self).model_fields if k not in ("factory", "kwargs") and getattr(self, k) is not None]
        if self.factory is not None and given:
            raise _Problem(given[0], f"a factory model is built by your function alone; {', '.join(given)} "
                           f"do{'es' if len(given) == 1 else ''} not apply: remove {'it' if len(given) == 1 else 'them'}, "
                           "or pass what your function needs as kwargs", getattr(self, given[0]))
        return self


class TrainConfig(_Schema):
    epochs: Int = Field(5, ge=0, le=BIG)  # passes over the training set (5 learns A vs B); 0 = untrained networks
    batch_size: Int = Field(64, ge=1, le=BIG)  # mini-batch size: 64 gives ~30 steps per epoch of 2000 images
    lr: Float = Field(1e-3, gt=0, le=10)  # learning rate: Adam's usual 1e-3; above 10 only overflows
    weight_decay: Float = Field(0.0, ge=0, le=10)  # L2 penalty (decoupled for adamw); 0 = none
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # adam | adamw | sgd (momentum 0.9); adam needs no tuning
    test_every: Int = Field(1, ge=0, le=BIG)  # test accuracy every N epochs and after the last; 0: the last only

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler):
        # Added after runs were fingerprinted: written only when not the default (it changes no weight anyway).
        d = handler(self)
        if d.get("test_every") == 1:
            del d["test_every"]
        return d


class SweepConfig(_Schema):
    mode: Literal["canvas", "circular"] = "canvas"  # canvas: letter redrawn at the shift; circular: torch.roll
    dx: list[Float] = [-8, 8]  # inclusive [start, stop] or [start, stop, step], px; +-8: a whole stride-8 period
    dy: list[Float] = [0, 0]  # vertical shifts, the same way; [0, 0] = none
    grid: Literal["product", "axes"] = "product"  # product: every (dx, dy); axes: dx with dy = 0, then dy with dx = 0
    batch_size: Int = Field(128, ge=1, le=BIG)  # images per forward pass in the sweep (memory and speed only): the
    # activations of larger batches were most of a run's peak memory, and the convolutions run no faster on them

    @field_validator("dx", "dy")
    @classmethod
    def _range(cls, v, info):
        return check_range(v, info.field_name)

    @model_validator(mode="after")
    def _grid(self) -> "SweepConfig":
        from ..config.limits import grid_problem  # limits builds on this schema: imported when first used

        problem = grid_problem(self)  # whole pixels for circular rolls, at most MAX_SHIFTS shifts in the grid
        if problem:
            raise problem
        return self


class Config(_Schema):
    name: FolderName = "experiment"  # run folders go to results/<name>/<run id>/
    seeds: list[Seed] = [0]  # one trained network per model per seed, each 0 .. 2**32-1; more seeds, narrower CIs
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available, else cpu
    data: DataConfig = Field(default_factory=DataConfig)  # the letters: classes, fonts, sizes, placements
    factorial: Optional[dict[Str, Any]] = None  # factor -> values: a model per combination, after models (factorial.py)
    models: dict[Str, ModelSpec] = Field(default_factory=lambda: {"conv_gap": ModelSpec(arch="conv_gap")})  # name: spec
    train: TrainConfig = Field(default_factory=TrainConfig)  # optimiser and schedule, the same for every model
    sweep: SweepConfig = Field(default_factory=SweepConfig)  # the shifts the trained networks are tested on

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v) or v.startswith("."):
            raise ValueError("name must use letters, digits, '_', '-', '.' and not start with '.' (it names a folder)")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not _distinct(v):
            raise ValueError("seeds must be a non-empty list of distinct ints")
        return v

    @field_validator("factorial")
    @classmethod
    def _factorial(cls, v):
        from ..config.factorial import check_factorial

        return check_factorial(v)

    @model_validator(mode="before")
    @classmethod
    def _factorial_models(cls, raw: Any) -> Any:
        # With a factorial, models: are only the hand-written extras: none by default, not the default conv_gap.
        if isinstance(raw, dict) and raw.get("factorial") is not None and "models" not in raw:
            raw = {**raw, "models": {}}
        return raw

    @field_validator("models")
    @classmethod
    def _models(cls, v: dict, info: ValidationInfo) -> dict:
        if not v and "factorial" in info.data and info.data["factorial"] is None:  # (a bad factorial: said once)
            raise ValueError("models must name at least one model, e.g. models: {conv_gap: {arch: conv_gap}}")
        bad = [k for k in v if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", k)]
        if bad:
            raise ValueError(f"model names must use letters, digits, '_', '-', '.' (at most 100); got {quote(bad)}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _position_sweeps_roll(cls, raw: Any) -> Any:
        # Checked on the raw input, before the sections, so that it is said even when data has problems too
        # (the position task's letters must be smaller than the default size, for instance).
        data, sweep = (raw.get("data"), raw.get("sweep")) if isinstance(raw, dict) else (None, None)
        task = data.get("task") if isinstance(data, dict) else getattr(data, "task", None)
        if isinstance(sweep, (dict, type(None))):
            mode = (sweep or {}).get("mode", "canvas")
        else:
            mode = getattr(sweep, "mode", None)
        if task == "position" and mode is not None and mode != "circular":
            # Canvas shifts would redraw the bottom letters instead of rolling them, breaking the exact pairing.
            raise _Problem(("sweep", "mode"), "task: position is swept with sweep.mode: circular (its test images "
                           "are rolled pairs)", mode)
        return raw

    @model_validator(mode="after")
    def _expand_factorial(self) -> "Config":
        if self.factorial is not None:
            from ..config.factorial import expand, merge

            expansion = expand(self.factorial, self.data.canvas)
            self.models = merge(self.models, expansion)
            if not self.models:
                raise _Problem("factorial", "no combination of factorial can be built on a "
                               f"{self.data.canvas}px canvas ({'; '.join(expansion.left_out.values())[:300]}); "
                               "change the factors or enlarge data.canvas", self.factorial)
        return self

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler):
        # factorial came after runs were fingerprinted: written only when given, so older digests stay the same
        d = handler(self)
        if d.get("factorial") is None:
            d.pop("factorial", None)
        return d

    @model_validator(mode="after")
    def _sweep_fits(self) -> "Config":
        from ..config.limits import shift_problem  # limits builds on this schema: imported when first used

        problem = shift_problem(self.data, self.sweep)
        if problem:
            raise _Problem(("sweep",) + problem.key, str(problem), problem.value)
        return self

    def resolved_models(self) -> dict[str, dict]:
        """Each model's full factor set (preset, then the factors given beside it)."""
        from ..nn.models import resolve_spec

        return {name: resolve_spec(spec.model_dump(exclude_none=True)) for name, spec in self.models.items()}


# ------------------------------------------------------------------------------------------------- entry points
# configfile and limits build on the schema above, so they are imported when first used, not at the top.
