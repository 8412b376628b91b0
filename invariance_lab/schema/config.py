"""The experiment config: a typed schema (pydantic v2) with commented defaults, one section per module.

    cfg = load_config("configs/seed_question.yaml", overrides=["train.epochs=2"])   # config/load.py: the entry point
    cfg.data.canvas, cfg.models["conv_gap"].arch, cfg.sweep.dx

Every bad input is refused before any work starts, as one ConfigError (an InvlabError: the CLI prints it, exit
code 2) naming the file, the dotted key path, the value (quoted, cut to 200 characters) and what is allowed.
The sections live in data.py, model.py, train.py and sweep.py, their building blocks in fields.py; this module
re-exports them (__all__), so `from invariance_lab.schema.config import DataConfig` keeps working. The checks
that need the glyphs, an image folder or the networks are given as the validation context (checks.py):
config.load.parse_config and load_config validate fully; Config(...) alone checks the shape only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator, model_serializer, model_validator

from ..core.errors import quote
from .checks import checks_of, needs_checks
from .data import DataConfig
from .fields import (SEED_MAX, FolderName, Seed, Str, _distinct, _Problem, _Schema, check_range,
    not_a_folder_everywhere, parse_range, same_but_case)
from .model import ModelSpec
from .paper import check_names, check_paper
from .sweep import SweepConfig
from .train import TrainConfig

__all__ = ["Config", "DataConfig", "ModelSpec", "SweepConfig", "TrainConfig", "SEED_MAX", "check_range",
           "parse_range"]


class Config(_Schema):
    name: FolderName = "experiment"  # run folders go to results/<name>/<run id>/
    seeds: list[Seed] = [0]  # one trained network per model per seed, each 0 .. 2**32-1; more seeds, narrower CIs
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available, else cpu
    data: DataConfig = Field(default_factory=DataConfig)  # the letters: classes, fonts, sizes, placements
    factorial: Optional[dict[Str, Any]] = None  # factor -> values: a model per combination, after models (factorial.py)
    models: dict[Str, ModelSpec] = Field(default_factory=lambda: {"conv_gap": ModelSpec(arch="conv_gap")})  # name: spec
    train: TrainConfig = Field(default_factory=TrainConfig)  # optimiser and schedule, the same for every model
    sweep: SweepConfig = Field(default_factory=SweepConfig)  # the shifts the trained networks are tested on
    paper: Optional[dict[Str, Any]] = None  # published numbers: model -> {metric: %}; compare: values/order (paper.py)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v) or v.startswith("."):
            raise ValueError("name must use ASCII letters, digits, '_', '-', '.' and not start with '.' (it names a folder)")
        trouble = not_a_folder_everywhere(v)
        if trouble:
            raise ValueError(f"name names the run's folder (results/<name>/): {trouble}; choose another name")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not _distinct(v):
            raise ValueError("seeds must be a non-empty list of distinct ints")
        return v

    @field_validator("factorial")
    @classmethod
    def _factorial(cls, v, info: ValidationInfo):
        if v is None:
            return None
        checks = checks_of(info)
        if checks is None:  # without the expansion the models would silently be the hand-written ones alone
            raise needs_checks((), "factorial (its values and the models it makes)", v)
        return checks.factorial(v)  # the factors' values are checked against the networks' registries

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
        # the name begins each checkpoint's file name: ".." or ".x" would make checkpoints/..-seed0.pt, hidden
        bad = [k for k in v if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", k)]
        if bad:
            raise ValueError(f"model names must use ASCII letters, digits, '_', '-', '.' (at most 100), and begin with a "
                             f"letter, digit or '_'; got {quote(bad)}")
        twins = same_but_case(v)
        if twins:  # checkpoints/Gap-seed0.pt and gap-seed0.pt: one file on macOS and Windows
            raise ValueError(f"model names {quote(twins)} differ only in letter case: their checkpoints would be one "
                             "file on macOS and Windows; rename one")
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
    def _expand_factorial(self, info: ValidationInfo) -> "Config":
        checks = checks_of(info)
        if self.factorial is not None and checks is not None:  # (none: _factorial refused it already)
            self.models = checks.expand(self.factorial, self.models, self.data.canvas)  # config/factorial.py
        return self

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler):
        # factorial came after runs were fingerprinted: written only when given, so older digests stay the same
        d = handler(self)
        for key in ("factorial", "paper"):  # paper came later still: the same
            if d.get(key) is None:
                d.pop(key, None)
        return d

    @field_validator("paper")
    @classmethod
    def _paper(cls, v):
        return v if v is None else check_paper(v)

    @model_validator(mode="after")
    def _paper_names(self) -> "Config":
        if self.paper is not None:  # the models after the factorial's expansion
            try:
                check_names(self.paper, self.models, list(self.data.test_sets or {}))
            except _Problem as e:
                raise _Problem(("paper",) + e.key, str(e), e.value) from None
        return self

    @model_validator(mode="after")
    def _validation_set(self) -> "Config":
        # train.select: best_val and train.patience read the validation loss: a validation set must exist
        # (data/validation.py); "val" is data/folder.py's VAL_SPLIT (data sits above this floor)
        data = self.data
        val_folder = data.source == "folder" and data.path is not None and Path(data.path, "val").is_dir()
        if self.data.val_fraction > 0 and val_folder:
            raise _Problem(("data", "val_fraction"), f"{self.data.path} has a val/ folder, which is the validation "
                           "set; leave data.val_fraction at 0, or remove the folder", self.data.val_fraction)
        if self.train.validates and not (self.data.val_fraction > 0 or val_folder):
            key, value = ("select", self.train.select) if self.train.select == "best_val" else \
                ("patience", self.train.patience)
            raise _Problem(("train", key), f"train.{key}: {value} needs a validation set: set data.val_fraction "
                           "(e.g. 0.2: that share of the training images, by data.seed), or, for an image folder, "
                           "give it a val/ folder beside train/ and test/", value)
        return self

    @model_validator(mode="after")
    def _sweep_fits(self, info: ValidationInfo) -> "Config":
        checks = checks_of(info)
        problem = checks.shifts(self.data, self.sweep) if checks else None  # the letters' sizes: config/limits.py
        if problem:
            raise _Problem(("sweep",) + problem.key, str(problem), problem.value)
        return self
