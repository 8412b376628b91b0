"""The building blocks of the config's schema: strict scalar types, the base model, a validator's complaint about
one key (_Problem) and inclusive ranges.

    check_range([-4, 4], "dx")            # [-4.0, 4.0, 1.0]
    range_values([0, 1, 0.25])            # [0.0, 0.25, 0.5, 0.75, 1.0]: the values a sweep uses
    parse_range("-4:4:0.5", "--dx")       # the CLI's START:STOP[:STEP], checked the same way

The sections built on them: data.py, model.py, train.py, sweep.py, and config.py (the whole config).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import ConfigError, quote


# ----------------------------------------------------------------------------------- limits of the schema
SEED_MAX = 2**32 - 1  # seeds are 32-bit unsigned: every RNG (torch, numpy, random) takes them as they are
MAX_BLOCKS = 32  # conv blocks (channels entries) per model
BIG = 2**63 - 1  # the largest count any setting may have: torch's int64 (a config refers to far smaller ones)
DECIMALS = 9  # a range's values are rounded to this many decimals (range_values), so 0.1 * 3 is 0.3

# Strict scalar types: no booleans or strings for numbers, no numbers for strings, finite floats only.
Int = Annotated[int, Field(strict=True)]  # every Int field also states an upper bound, at most BIG
Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # an int is accepted (and becomes a float)
Str = Annotated[str, Field(strict=True)]
Seed = Annotated[int, Field(strict=True, ge=0, le=SEED_MAX)]
KindName = Annotated[str, Field(strict=True, max_length=64)]  # a registry name (arch, downsample, ...)
Width = Annotated[int, Field(strict=True, le=BIG)]  # a conv block's channel count
FolderName = Annotated[str, Field(strict=True, max_length=100)]  # a run folder's name

# Windows keeps these names for devices, with any extension after them (nul.txt is the device too), and drops a
# name's trailing dots (a folder "quick." is "quick" there): such a name cannot be a folder of its own there.
WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul",
                             *(f"{port}{i}" for port in ("com", "lpt") for i in range(1, 10))})


def not_a_folder_everywhere(name: str) -> str | None:
    """Why `name` cannot name a folder on every system invlab runs on (Windows' device names and its dropping of
    a trailing '.'), or None. Names are ASCII letters, digits, '_', '-' and '.' already."""
    if name.endswith("."):
        return f"{quote(name)} ends with '.', which Windows drops from a folder's name"
    if name.split(".")[0].lower() in WINDOWS_DEVICES:
        return f"{quote(name)} is a device's name on Windows ({name.split('.')[0].upper()}), not a folder's"
    return None


def same_but_case(names) -> list[str]:
    """Names that differ only in letter case: one file or folder on macOS' and Windows' file systems."""
    seen: dict[str, str] = {}
    for name in names:
        if name.casefold() in seen and seen[name.casefold()] != name:
            return [seen[name.casefold()], name]
        seen.setdefault(name.casefold(), name)
    return []


class _Problem(ValueError):
    """A validator's complaint about one key: `key` is its path below the model validated, `value` the value to
    quote; config/load.py puts both into the message (pydantic reports model-level errors at the model)."""

    def __init__(self, key: str | tuple, message: str, value: Any):
        super().__init__(message)
        self.key = (key,) if isinstance(key, str) else tuple(key)
        self.value = value


class _Schema(BaseModel):
    # forbid: a typo such as `epoch:` must be an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", validate_default=True)


def without_defaults(d: dict, defaults: dict) -> dict:
    """`d` (a serialised section) without the keys that hold their default. For fields added after runs were
    fingerprinted: written only when set, a config that leaves them out keeps its digest and its checkpoints."""
    for key, default in defaults.items():
        if key in d and d[key] == default:
            del d[key]
    return d


def _distinct(v: list) -> bool:
    """Not empty, and no value twice."""
    return bool(v) and len(set(v)) == len(v)


def range_values(r: list[float]) -> list[float]:
    """Inclusive values of [start, stop, step] (step defaults to 1), robust to float round-off: each is rounded to
    DECIMALS decimals. These are the values a sweep or measurement uses, so checks of them look at these."""
    start, stop = float(r[0]), float(r[1])
    step = float(r[2]) if len(r) > 2 else 1.0
    n = int((stop - start) / step + 1e-9) + 1
    return [round(start + i * step, DECIMALS) + 0.0 for i in range(n)]


def check_range(v: list[float], key: str) -> list[float]:
    """[start, stop] or [start, stop, step], inclusive; returned as [start, stop, step]. Raises ValueError. A step
    so fine that two of its values round to the same one (range_values) is refused."""
    if len(v) not in (2, 3):
        raise ValueError(f"{key} must be [start, stop] or [start, stop, step]; got {quote(v)}")
    start, stop = float(v[0]), float(v[1])
    step = float(v[2]) if len(v) == 3 else 1.0
    if not all(math.isfinite(x) for x in (start, stop, step)):
        raise ValueError(f"{key} values must be finite numbers; got {quote(v)}")
    if step <= 0:
        raise ValueError(f"{key} step must be > 0; got {step:g}")
    for x in (start, stop):  # the values used are rounded (range_values): 1e-10 would be swept as 0, named 1e-10
        if f"{x:g}" != f"{round(x, DECIMALS) + 0.0:g}":  # as the tables' captions print a range (report/protocol)
            raise ValueError(f"{key} {x:g} has more than the {DECIMALS} decimals a range's values are rounded to "
                             f"(it would be used as {round(x, DECIMALS) + 0.0:g}, and named {x:g}); give at most "
                             f"{DECIMALS} decimals")
    if stop < start:
        raise ValueError(f"{key} stop ({stop:g}) must be >= start ({start:g})")
    if not math.isfinite(stop - start):
        raise ValueError(f"{key} {quote(v)} spans more than a float can hold; give a smaller range")
    if (stop - start) / step > 10_000:
        raise ValueError(f"{key} {quote(v)} has more than 10000 steps; use a larger step")
    values = range_values([start, stop, step])
    if len(set(values)) < len(values):
        raise ValueError(f"{key} step {step:g} is finer than the {DECIMALS} decimals its values are rounded to "
                         f"(two of its values would be the same); use a step of at least 1e-{DECIMALS}")
    return [start, stop, step]


def parse_range(text: str, option: str) -> list[float]:
    """'START:STOP[:STEP]' (inclusive) or a single value 'V' -> [start, stop, step], checked like the config, and
    refused when STOP is not on the grid (`-1:1:0.3` would sweep -1 .. 0.8)."""
    try:
        if not re.fullmatch(r"[0-9eE+\-.:infatyINFATY ]*", text):  # float() also reads '３' and '1_0'
            raise ValueError(text)
        values = [float(v) for v in text.split(":")]
    except ValueError:
        raise ConfigError(f"{option} {quote(text)}: expected START:STOP[:STEP] with numbers, "
                          f"e.g. {option} -4:4:0.5") from None
    if len(values) == 1:
        values = values * 2
    try:
        start, stop, step = check_range(values, option)
    except ValueError as e:
        raise ConfigError(f"{option} {quote(text)}: {e}") from None
    last = range_values([start, stop, step])[-1]
    if abs(last - stop) > 10 ** -DECIMALS:  # the header would state a stop never swept (a typed range: stored
        # configs and run folders keep theirs as they were swept)
        raise ConfigError(f"{option} {quote(text)} does not reach its stop: in steps of {step:g} from {start:g} the "
                          f"last value is {last:g}; give that stop, or a step that divides {stop - start:g}")
    return [start, stop, step]
