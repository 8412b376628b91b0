"""Factorial models: the product of factor lists, expanded into models named by their factors.

    factorial:
      downsample: [none, max, stride, blur_max, aps_max]
      head: [flatten, global_avg]
      padding: [zeros, circular]

gives 20 models named `none-flatten-zeros`, `max-global_avg-circular`, ... (each factor's value, in the order the
factors are written; channels as `c16x32x32`, kernel as `k5`, blur_size as `blur3`, blur_padding as `blur_reflect`),
merged after the hand-written `models:`. An optional `arch: PRESET` is the base every combination starts from (a
list of presets is a factor like the others). A combination that cannot be built on the canvas (an odd map for APS,
no map left, ...) is left out, and so is one that builds the same network as a combination before it (a factor
the network does not use: blur_padding beside max, say; config/duplicates.py), trained once under the first name;
`left_out` says which and why: meta.json records it and `invlab run` prints it. A hand-written model that cannot
be built is refused, as ever (config/load.py's validate), and one that builds a factorial's network is kept.

    expansion = expand(cfg.factorial, canvas=32)
    expansion.models     # name -> ModelSpec, in product order
    expansion.left_out   # name -> why: it cannot be built, or "the same network as <name kept>: ..."
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..core.errors import InvlabError, choose, quote
from ..nn.models import check_model, resolve_spec
from ..schema.fields import _Problem
from ..schema.model import ModelSpec
from .duplicates import SAME, network_key, same_as

FACTORS = ("arch", "downsample", "head", "padding", "channels", "kernel", "blur_size", "blur_padding")
MAX_COMBINATIONS = 1000  # models one factorial may make: each is trained once per seed
_PREFIX = {"channels": "c", "kernel": "k", "blur_size": "blur", "blur_padding": "blur_"}  # how a value reads in a name


@dataclass
class Expansion:
    models: dict[str, ModelSpec] = field(default_factory=dict)  # name -> spec, in product order
    left_out: dict[str, str] = field(default_factory=dict)  # name -> why: cannot be built, or a duplicate
    duplicates: dict[str, ModelSpec] = field(default_factory=dict)  # name -> spec of each duplicate left out


def value_name(factor: str, value: Any) -> str:
    """How one factor's value reads in a model name: 'max', 'c16x32x32', 'k5', 'blur3'."""
    if isinstance(value, list):
        return _PREFIX.get(factor, "") + "x".join(map(str, value))
    return f"{_PREFIX.get(factor, '')}{value}"


def check_factorial(raw: Any) -> dict[str, Any] | None:
    """The `factorial:` section as given, checked: known factors, each a non-empty list of distinct values that a
    model spec accepts (a single `arch` name is the base). Raises _Problem naming the key (the schema's check)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise _Problem((), "factorial must be a mapping of factor -> list of values, e.g. "
                       "{downsample: [none, max], head: [flatten, global_avg]}", raw)
    out = {}
    for factor, values in raw.items():
        try:
            choose("factor", factor, FACTORS, error=ValueError)
        except ValueError as e:
            raise _Problem(str(factor), f"{e} (factorial lists values of the preset factors; a model of your own "
                           "(factory) is written under models:)", factor) from None
        if factor == "arch" and isinstance(values, str):
            _check_value(factor, values)
            out[factor] = values
            continue
        if not isinstance(values, list) or not values:
            raise _Problem(factor, f"must be a non-empty list of values, e.g. "
                           f"{factor}: {_example(factor)}", values)
        seen = set()
        for v in values:
            _check_value(factor, v)
            key = repr(v)
            if key in seen:
                raise _Problem(factor, f"lists {quote(v)} twice; each value once", values)
            seen.add(key)
        out[factor] = list(values)
    combinations = 1
    for factor, values in out.items():
        combinations *= len(values) if isinstance(values, list) else 1
    if combinations > MAX_COMBINATIONS:
        raise _Problem((), f"factorial makes {combinations} models (at most {MAX_COMBINATIONS}: each is trained once "
                       "per seed); list fewer values", {k: len(v) for k, v in out.items() if isinstance(v, list)})
    return out


def _example(factor: str) -> str:
    return {"channels": "[[16, 32, 32], [8, 16]]", "kernel": "[3, 5]", "blur_size": "[2, 3, 5]",
            "arch": "[conv_gap, conv_maxpool]", "head": "[flatten, global_avg]",
            "padding": "[zeros, circular]", "blur_padding": "[zeros, reflect]"}.get(factor, "[none, max]")


def _check_value(factor: str, value: Any) -> None:
    """Raise _Problem unless a model spec takes `value` for `factor` (types, ranges, registry names)."""
    try:
        spec = ModelSpec.model_validate({factor: value})
    except ValidationError as e:
        message = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise _Problem(factor, f"value {quote(value)}: {message}", value) from None
    try:
        resolve_spec(spec.model_dump(exclude_none=True))
    except InvlabError as e:
        raise _Problem(factor, str(e), value) from None


def expand(factorial: dict[str, Any] | None, canvas: int) -> Expansion:
    """Every combination of a checked factorial (check_factorial) as a ModelSpec named by its factors. Left out,
    with the reason: those that cannot be built on a `canvas` px image (models.check_model's message), and those
    that build the same network as a combination before them in product order (duplicates.same_as), which would
    train it again under another name."""
    result = Expansion()
    if not factorial:
        return result
    base = {k: v for k, v in factorial.items() if not isinstance(v, list)}  # a single arch: the base
    varied = {k: v for k, v in factorial.items() if isinstance(v, list)}
    kept: dict[tuple, tuple[str, dict]] = {}  # network_key -> the combination kept for that network
    for combo in itertools.product(*varied.values()):
        values = dict(zip(varied, combo))
        name = "-".join(value_name(k, v) for k, v in values.items())
        spec = ModelSpec.model_validate({**base, **values})
        try:
            factors = resolve_spec(spec.model_dump(exclude_none=True))
            side = check_model(factors, canvas)
        except ValueError as e:
            result.left_out[name] = str(e)
            continue
        first = kept.setdefault(network_key(factors, side), (name, values))
        if first[1] is not values:
            result.left_out[name] = same_as(*first, values, factors, side)
            result.duplicates[name] = spec
            continue
        result.models[name] = spec
    return result


def merge(models: dict[str, ModelSpec], expansion: Expansion) -> dict[str, ModelSpec]:
    """Hand-written models first, then the factorial's. A hand-written model may share the name of a combination
    (kept, or left out as a duplicate) only when it is the same model (as in a run folder's config.yaml, which lists
    every model resolved); raises _Problem otherwise."""
    merged = dict(models)
    for name, spec in {**expansion.duplicates, **expansion.models}.items():
        mine = merged.get(name)
        if mine is not None and resolve_spec(mine.model_dump(exclude_none=True)) != \
                resolve_spec(spec.model_dump(exclude_none=True)):
            raise _Problem(("models", name), f"model {name!r} is both written under models: and made by factorial: "
                           "with other factors; rename the hand-written one", mine.model_dump(exclude_none=True))
        if name in expansion.models:
            merged.setdefault(name, spec)
    return merged


def expand_into(factorial: dict[str, Any], models: dict[str, ModelSpec], canvas: int) -> dict[str, ModelSpec]:
    """The hand-written models merged with a checked factorial's expansion (the schema's check, through
    schema/checks.py); raises _Problem when nothing at all can be built on the canvas."""
    expansion = expand(factorial, canvas)
    merged = merge(models, expansion)
    if not merged:
        raise _Problem("factorial", f"no combination of factorial can be built on a {canvas}px canvas "
                       f"({'; '.join(expansion.left_out.values())[:300]}); change the factors or enlarge "
                       "data.canvas", factorial)
    return merged


def left_out(cfg) -> dict[str, str]:
    """The combinations of cfg's factorial left out (name -> why: it cannot be built, or it builds the same network
    as one kept); {} without a factorial. A name written under models: is a model of the run, not left out."""
    return {name: why for name, why in expand(cfg.factorial, cfg.data.canvas).left_out.items()
            if name not in cfg.models}


def left_out_note(skipped: dict[str, str], limit: int = 8) -> str:
    """One paragraph naming the left-out combinations and why: what `invlab run` prints."""
    names = list(skipped)
    n, same = len(names), sum(why.startswith(SAME) for why in skipped.values())
    what = "cannot be built"
    if same:
        what = f"{'builds' if n == 1 else 'build'} the same network as another" if same == n else \
            f"{what} or build the same network as another"
    shown = "; ".join(f"{name} ({skipped[name]})" for name in names[:limit])
    more = f"; and {n - limit} more (meta.json lists them)" if n > limit else ""
    were = "were" if n != 1 else "was"
    return f"factorial: {n} combination{'s' * (n != 1)} {what} and {were} left out: {shown}{more}"
