"""A model under models: a preset `arch` and/or its factors, or a `factory` of your own with its `kwargs`.

    ModelSpec(arch="conv_maxpool", padding="circular")
    ModelSpec(factory="my_models:small_cnn", kwargs={"width": 16})

Registry names (arch, downsample, head, padding) and what fits the canvas are checked when the config is read
(config.load.validate, nn/models.py's registries); a factory's form and plain-value kwargs are checked here.
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

from pydantic import Field, field_validator, model_validator

from ..core.errors import quote
from .fields import MAX_BLOCKS, Int, KindName, Str, Width, _Problem, _Schema

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
FACTORY_PATTERN = re.compile(rf"({_NAME}(?:\.{_NAME})*):({_NAME}(?:\.{_NAME})*)")
MAX_KWARG_DEPTH = 8  # kwargs are a few plain values: a deeper structure is a mistake


def check_path(text: str) -> str:
    """`text` if it reads "package.module:function"; a ValueError saying the form otherwise (the schema's check; nn/factory.py imports by it)."""
    if not isinstance(text, str) or not FACTORY_PATTERN.fullmatch(text):
        raise ValueError(f"factory must read \"package.module:function\" (a Python module path, a colon, a function "
                         f"in it), e.g. \"my_models:small_cnn\"; got {quote(text)}")
    return text


def check_kwargs(value: Any, where: str = "kwargs", depth: int = 0) -> Any:
    """`value` if it is plain data (None, bool, int, finite float, str, lists, dicts with string keys): what a
    checkpoint may hold (it is read with weights_only) and what the fingerprint hashes. ValueError otherwise."""
    if depth > MAX_KWARG_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_KWARG_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number; got {value}")
        return value
    if isinstance(value, (list, tuple)):
        return [check_kwargs(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ValueError(f"{where} keys must be strings; got {quote(bad[0])}")
        return {k: check_kwargs(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    raise ValueError(f"{where} must hold plain values (numbers, strings, booleans, null, lists, mappings); got "
                     f"{type(value).__name__} {quote(value)}")


class ModelSpec(_Schema):
    """A model: a preset `arch` and/or factors (factors given beside a preset override it), or a `factory` of your
    own called with `kwargs` (factory.py), instead of both."""

    arch: Optional[KindName] = None  # preset: conv_only | conv_maxpool | strided_conv | conv_gap | ... (invlab models)
    factory: Optional[Str] = Field(None, max_length=200)  # "package.module:function" returning your nn.Module
    kwargs: Optional[dict[Str, Any]] = None  # the factory's keyword arguments, plain values; only with factory
    downsample: Optional[KindName] = None  # after each block: none | max | avg | stride | blur_* | aps_* | lps |
    # tips | afc (none)
    head: Optional[KindName] = None  # flatten | global_avg | global_max (flatten)
    padding: Optional[KindName] = None  # zeros | circular | reflect | valid | full (zeros; full: map grows by k-1)
    channels: Optional[list[Width]] = Field(None, max_length=MAX_BLOCKS)  # one conv block per entry ([16, 32, 32])
    kernel: Optional[Int] = Field(None, ge=1, le=15)  # conv kernel side (3; odd keeps padding symmetric)
    blur_size: Optional[Int] = Field(None, ge=1, le=7)  # binomial blur side for blur_*, aps_*, lps (3: Zhang's;
    # 1 = none)
    blur_padding: Optional[KindName] = None  # what the blur of blur_*, aps_*, lps pads with: zeros | circular |
    # reflect (the network's padding; Zhang 2019's BlurPool: reflect)
    bias: Optional[bool] = Field(None, strict=True)  # conv bias (true); false: none, as Kayhan & van Gemert 2020
    first_stride: Optional[Int] = Field(None, ge=1, le=1)  # 1: block 1 does not downsample (strides 1-2-2-2)

    @field_validator("channels")
    @classmethod
    def _channels(cls, v):
        if v is not None and (not v or any(c < 1 for c in v)):
            raise ValueError(f"channels must be a non-empty list of positive ints; got {quote(v)}")
        return v

    @field_validator("factory")
    @classmethod
    def _factory(cls, v):
        return v if v is None else check_path(v)

    @field_validator("kwargs")
    @classmethod
    def _kwargs(cls, v):
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
