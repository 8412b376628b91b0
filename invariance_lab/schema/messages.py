"""A pydantic validation's problems in words: one message naming each problem's dotted key path, the value and what
is allowed, for a config file (config/load.py) and for a schema built in Python (il.SweepConfig(...), a model spec
given to il.create_model), so both are refused alike."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..core.errors import quote
from .fields import SEED_MAX, _Problem
from .safeyaml import cut

MAX_LISTED = 12  # problems listed in one message


def schema_at(path: tuple, root: type[BaseModel]) -> Any:
    """What the schema `root` has at the key path: a section's class, the models mapping (dict[str, ModelSpec]), a
    setting's type; None where the path leaves the schema (an unknown key, or a key inside a setting)."""
    node: Any = root
    for part in path:
        if get_origin(node) is dict:  # any name, then the mapping's value type
            node = get_args(node)[1]
        elif isinstance(node, type) and issubclass(node, BaseModel) and part in node.model_fields:
            node = _unwrap(node.model_fields[part].annotation)
        else:
            return None
    return node


def _unwrap(node: Any) -> Any:
    """X for Optional[X] (a model's kwargs: a section of keys when given)."""
    args = [a for a in get_args(node) if a is not type(None)] if get_origin(node) is Union else []
    return args[0] if len(args) == 1 else node


def dotted(loc: tuple) -> str:
    parts = [str(p) if str(p) and str(p).isprintable() else repr(str(p)) for p in loc]
    return ".".join(p if len(p) <= 40 else p[:30] + f"...({len(p)} chars)" for p in parts) or "(top level)"


def shown(text: Any, limit: int = 80) -> str:
    """User text in a message: as typed when printable, else as a Python string literal; cut to `limit`."""
    return cut(text, limit) if isinstance(text, str) and text.isprintable() else quote(text, limit)


def _message(e: dict) -> str:
    """The error in words, for the strict-type errors more helpfully than pydantic says it."""
    kind, v = e["type"], e.get("input")
    what = {"int_type": "an integer", "float_type": "a number"}.get(kind)
    if what and isinstance(v, bool):
        return f"must be {what}, not a boolean"
    if what and isinstance(v, str):
        try:
            float(v.replace("_", ""))
        except ValueError:  # text, not a quoted number: 1:30, a range written as on the command line, a word
            return f"must be {what}"
        return f"must be {what}, written without quotes"
    if kind == "int_type" and isinstance(v, float):
        return "must be a whole number (an integer, written without a decimal point or exponent)"
    if kind == "float_type" and isinstance(v, int):
        return "is too large: must be a finite number"
    if kind == "finite_number":
        return "must be a finite number (not inf or nan)"
    if kind == "string_type":
        quoted = " (quote it, e.g. '2024', if it looks like a number or a boolean)" if isinstance(v, (int, float)) \
            else ""
        return f"must be a string{quoted}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a section of keys (a mapping such as {key: value})"
    if kind == "list_type":
        return "must be a list, e.g. [0, 1]"
    is_seed = e["loc"][:1] == ("seeds",) or e["loc"][-1:] == ("seed",)
    if kind in ("less_than_equal", "greater_than_equal") and is_seed:
        return f"seeds are 32-bit: 0 .. {SEED_MAX} (2**32 - 1)"
    return e["msg"].removeprefix("Value error, ")


def format_errors(err: ValidationError, source: str, root: type[BaseModel],
                  note: Callable[[tuple], str] = lambda loc: "", what: str = "config") -> str:
    """One message for all of a validation's problems (at most MAX_LISTED), each naming its dotted key path below
    `root` and the value: "<source>: invalid <what>." and a line per problem."""
    lines = []
    errors = err.errors()
    for e in errors[:MAX_LISTED]:
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        value = e.get("input")
        problem = (e.get("ctx") or {}).get("error")
        if isinstance(problem, _Problem):
            loc, value = loc + problem.key, problem.value
        path = dotted(loc)
        if e["type"] == "extra_forbidden":
            cls = schema_at(loc[:-1], root)
            valid = list(cls.model_fields) if isinstance(cls, type) and issubclass(cls, BaseModel) else []
            close = difflib.get_close_matches(str(loc[-1])[:100], valid, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "."
            lines.append(f"[{path}] unknown key{hint} Valid keys here: {', '.join(valid)}{note(loc)}.")
        else:
            message = _message(e)
            got = "" if "got " in message else f" (got {quote(value)})"  # some messages quote the value already
            lines.append(f"[{path}] {message}{got}{note(loc)}.")
    if len(errors) > MAX_LISTED:
        lines.append(f"... and {len(errors) - MAX_LISTED} more problems.")
    return f"{source}: invalid {what}.\n" + "\n".join("  " + line for line in lines)
