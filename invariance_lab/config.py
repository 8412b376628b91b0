"""The experiment config: a typed schema (pydantic v2) with commented defaults, and a loader with polite errors.

    cfg = load_config("configs/seed_question.yaml", overrides=["train.epochs=2", "seeds=[0,1]"])

Unknown keys are rejected at every level; every error names the file, the dotted key path, the bad value and
what is allowed, and is raised as ConfigError (an InvlabError: the CLI prints it and exits with code 2).
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvlabError


class ConfigError(InvlabError):
    pass


class _Schema(BaseModel):
    # forbid: a typo such as `epoch:` must be an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _check_range(v: list[float], key: str) -> list[float]:
    """[start, stop] or [start, stop, step], inclusive; returned as [start, stop, step]."""
    if len(v) not in (2, 3):
        raise ValueError(f"{key} must be [start, stop] or [start, stop, step]; got {v}")
    start, stop = float(v[0]), float(v[1])
    step = float(v[2]) if len(v) == 3 else 1.0
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise ValueError(f"{key} values must be finite numbers; got {v}")
    if step <= 0:
        raise ValueError(f"{key} step must be > 0; got {step:g}")
    if stop < start:
        raise ValueError(f"{key} stop ({stop:g}) must be >= start ({start:g})")
    if (stop - start) / step > 10_000:
        raise ValueError(f"{key} {v} has more than 10000 steps; use a larger step")
    return [start, stop, step]


class DataConfig(_Schema):
    letters: list[str] = ["A", "B"]  # the classes, any of A-Z; order = class index
    fonts: list[str] = ["futural", "futuram", "timesr"]  # Hershey stroke fonts drawn at random per image
    canvas: int = Field(32, ge=8, le=256)  # image side in px; 32 keeps CPU training to seconds
    size: float = Field(16.0, gt=0)  # letter (cap) height in px before jitter; half the canvas leaves room to move
    size_jitter: float = Field(0.1, ge=0, lt=1)  # height drawn uniformly in size * [1 - j, 1 + j]
    thickness: list[float] = [1.0, 2.0]  # stroke width in px, drawn uniformly in [min, max]
    noise: float = Field(0.0, ge=0)  # std of Gaussian pixel noise added to TRAINING images only (tests stay clean)
    train_images: int = Field(2000, ge=2)
    test_images: int = Field(500, ge=1)
    train_shift: float = Field(0.0, ge=0)  # letters placed uniformly within +-train_shift px of the centre; 0 = centred
    train_mode: Literal["canvas", "circular"] = "canvas"  # how training placements are made (see docs/protocols)
    task: Literal["letter", "position"] = "letter"  # position = label is top/bottom half (a padding probe)
    seed: int = 0  # data seed: every model and model seed sees the same train and test images

    @field_validator("letters")
    @classmethod
    def _letters(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if not (isinstance(x, str) and len(x) == 1 and "A" <= x <= "Z")]
        if bad:
            raise ValueError(f"letters must be capitals A-Z; got {bad}")
        if len(set(v)) != len(v) or len(v) < 1:
            raise ValueError(f"letters must be distinct and not empty; got {v}")
        return v

    @field_validator("fonts")
    @classmethod
    def _fonts(cls, v: list[str]) -> list[str]:
        from .letters import LATIN_FONTS

        bad = [f for f in v if f not in LATIN_FONTS]
        if bad or not v:
            raise ValueError(f"unknown font(s) {bad or v}; choose from: {', '.join(LATIN_FONTS)}")
        return v

    @field_validator("thickness")
    @classmethod
    def _thickness(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0 < v[0] <= v[1]:
            raise ValueError(f"thickness must be [min, max] with 0 < min <= max; got {v}")
        return v

    @model_validator(mode="after")
    def _fits(self) -> "DataConfig":
        if self.task == "position" and self.canvas % 2:
            # the paired test set rolls the top image by canvas/2 rows; 1/4 maps onto 3/4 only for an even side
            raise ValueError(f"task: position needs an even canvas (the bottom test image is the top one rolled by canvas/2); got {self.canvas}")
        if self.train_mode == "circular" and self.train_shift != int(self.train_shift):
            raise ValueError(f"train_mode: circular rolls by whole pixels; train_shift must be an integer, got {self.train_shift:g}")
        return self


class ModelSpec(_Schema):
    """A model: a preset `arch` and/or factors; factors given beside a preset override it."""

    arch: Optional[str] = None  # conv_only | conv_maxpool | strided_conv | conv_gap | ... (invlab models)
    downsample: Optional[str] = None  # after each conv block: none | max | avg | stride | blur_* | aps_*
    head: Optional[str] = None  # flatten | global_avg | global_max
    padding: Optional[str] = None  # zeros | circular | reflect | valid
    channels: Optional[list[int]] = None  # one entry per conv block
    kernel: Optional[int] = Field(None, ge=1, le=15)  # conv kernel side (odd keeps padding symmetric)
    blur_size: Optional[int] = Field(None, ge=1, le=7)  # binomial blur side for blur_*/aps_* (1 = no blur)

    @field_validator("channels")
    @classmethod
    def _channels(cls, v):
        if v is not None and (not v or any(c < 1 for c in v)):
            raise ValueError(f"channels must be a non-empty list of positive ints; got {v}")
        return v


class TrainConfig(_Schema):
    epochs: int = Field(5, ge=0)  # 0 = evaluate untrained (randomly initialised) networks
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # sgd uses momentum 0.9


class SweepConfig(_Schema):
    mode: Literal["canvas", "circular"] = "canvas"  # canvas: re-rendered at the shift; circular: torch.roll
    dx: list[float] = [-8, 8]  # inclusive [start, stop] or [start, stop, step], px
    dy: list[float] = [0, 0]
    grid: Literal["product", "axes"] = "product"  # product: every (dx, dy); axes: dx with dy=0, then dy with dx=0
    batch_size: int = Field(500, ge=1)  # images per forward pass during the sweep

    @field_validator("dx", "dy")
    @classmethod
    def _range(cls, v, info):
        return _check_range(v, info.field_name)

    @model_validator(mode="after")
    def _integers_for_roll(self) -> "SweepConfig":
        if self.mode == "circular":
            for key in ("dx", "dy"):
                if any(float(x) != int(x) for x in getattr(self, key)):
                    raise ValueError(f"mode: circular rolls by whole pixels; {key} must be integers, got {getattr(self, key)}")
        return self


class Config(_Schema):
    name: str = "experiment"  # the run folder is results/<name>/<run id>/
    seeds: list[int] = [0]  # one trained model per architecture per seed
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available
    data: DataConfig = DataConfig()
    models: dict[str, ModelSpec] = Field(default_factory=lambda: {"conv_gap": ModelSpec(arch="conv_gap")})
    train: TrainConfig = TrainConfig()
    sweep: SweepConfig = SweepConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v) or v.startswith("."):
            raise ValueError(f"name must use letters, digits, '_', '-', '.' (it names a folder); got {v!r}")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"seeds must be a non-empty list of distinct ints; got {v}")
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: dict) -> dict:
        if not v:
            raise ValueError("models must name at least one model")
        bad = [k for k in v if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(k))]
        if bad:
            raise ValueError(f"model names must use letters, digits, '_', '-', '.'; got {bad}")
        return v

    @model_validator(mode="after")
    def _position_sweeps_roll(self) -> "Config":
        if self.data.task == "position" and self.sweep.mode != "circular":
            # Canvas shifts would redraw the bottom letters instead of rolling them, breaking the exact pairing.
            raise ValueError("task: position is swept with sweep.mode: circular (its test images are rolled pairs); "
                             f"got mode: {self.sweep.mode}")
        return self

    def resolved_models(self) -> dict[str, dict]:
        """Each model's full factor set (preset, then the factors given beside it)."""
        from .models import resolve_spec

        return {name: resolve_spec(spec.model_dump(exclude_none=True)) for name, spec in self.models.items()}


# ----------------------------------------------------------------------------------------------- loading


def _schema_at(loc: tuple) -> type[BaseModel] | None:
    """The schema class that holds the key at `loc` (for suggesting the closest valid key)."""
    cls: Any = Config
    for i, part in enumerate(loc[:-1]):
        if cls is Config and part == "models":
            cls = ModelSpec
            # skip the model name that follows
            return ModelSpec if len(loc) == i + 3 else None
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if field is None:
            return None
        cls = field.annotation
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            cls = _schema_at(loc)
            valid = list(cls.model_fields) if cls else []
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            lines.append(f"[{path}] unknown key{hint} Valid keys here: {', '.join(valid)}.")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"[{path}] {msg} (got {e.get('input')!r}).")
    return f"{source}: invalid config.\n" + "\n".join("  " + line for line in lines)


def _set_dotted(raw: dict, override: str, source: str) -> None:
    if "=" not in override:
        raise ConfigError(f"--set {override!r}: expected KEY.PATH=VALUE, e.g. --set train.epochs=2")
    key, value = override.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {override!r}: empty part in key path {key!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value  # a plain string such as a name
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {override!r}: {'.'.join(parts[: i + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = parsed


def parse_config(raw: Any, source: str = "<config>", overrides: list[str] | None = None) -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (name, seeds, data, models, ...); got {type(raw).__name__}")
    for o in overrides or []:
        _set_dotted(raw, o, source)
    if overrides:  # a bad value may come from the command line rather than the file: say so
        source = f"{source} (with --set {' --set '.join(overrides)})"
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None
    from .models import check_model, resolve_spec

    problems = []
    for name, spec in cfg.models.items():
        try:
            check_model(resolve_spec(spec.model_dump(exclude_none=True)), cfg.data.canvas)
        except (ValueError, InvlabError) as e:
            problems.append(f"  [models.{name}] {e}")
    if problems:
        raise ConfigError(f"{source}: invalid config.\n" + "\n".join(problems))
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"{path} is not a file; give a YAML config such as configs/quick.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(f"{path}: YAML syntax error at {where}: {e.problem or e.context}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not readable as YAML: {e}") from None
    return parse_config(raw, str(path), overrides)


def to_yaml(cfg: Config) -> str:
    """The resolved config (models with every factor filled in), as saved in a run folder."""
    d = cfg.model_dump(mode="json")
    d["models"] = cfg.resolved_models()
    return yaml.safe_dump(d, sort_keys=False)
