"""Reading a config: the file (its YAML read safely by safeyaml), --set overrides laid over it, and every problem
the schema finds turned into one ConfigError message that names the file, the dotted key path and the value.

    cfg = load_config("configs/seed_question.yaml", overrides=["train.epochs=2"])
    cfg = parse_config({"models": {"m": {"arch": "conv_gap"}}}, source="<dict>")

load_config and parse_config are THE entry points that validate a config fully: the schema with the checks that
need the glyphs, an image folder and the networks (config/checks.py, given as pydantic's validation context),
each model against the canvas, and the run's memory. Config(...) or Config.model_validate(raw) alone checks the
shape only (schema/checks.py says what that leaves out).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ..core.errors import ConfigError, quote
from ..schema.config import Config
from ..schema.fields import SEED_MAX, _Problem
from ..schema.safeyaml import TooBig, count_values, cut, load_yaml
from .checks import CHECKS
from .memory import check_resources
from .models import model_problems, resolved_models

MAX_FILE_BYTES = 2**20  # a config is a few KB
MAX_LISTED = 12  # problems listed in one message
MINIMAL_CONFIG = "name: my_experiment\nmodels:\n  conv_gap: {arch: conv_gap}\n"


# ------------------------------------------------------------------------------------------------- reading


def _where_configs_are(path: Path) -> str:
    """For a missing configs/... (the README's): the close names in that folder, or, where there is none (an
    installed package has no configs/), where the configs are and a config of one line."""
    if not path.parent.is_dir():
        return ("" if path.parts[:1] != ("configs",) else " (configs/ comes with invlab's checkout: run from there, "
                "or give the path to it; a config of your own can be one line: {name: mine, models: {conv_gap: "
                "{arch: conv_gap}}})")
    names = sorted(p.name for p in path.parent.glob("*.y*ml"))
    close = difflib.get_close_matches(path.name, names, n=3)
    return f"; did you mean {', '.join(str(path.parent / c) for c in close)}?" if close else ""


def read_yaml(path: str | Path) -> Any:
    """The parsed YAML of a config file (not yet validated); a missing, unreadable or oversized file, or text
    that is not YAML, is a ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}{_where_configs_are(path)}")
    if not path.is_file():
        raise ConfigError(f"{path} is not a file; give a YAML config such as configs/quick.yaml")
    try:
        n_bytes = path.stat().st_size
        if n_bytes > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: {n_bytes} bytes is too large for a config (at most {MAX_FILE_BYTES}; a config "
                              "is a few KB); is this the right file?")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not readable as YAML: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror or e})") from None
    return load_yaml(text, str(path))


# ------------------------------------------------------------------------------------------------- messages


def _schema_at(path: tuple) -> Any:
    """What the schema has at the key path: a section's class, the models mapping (dict[str, ModelSpec]), a
    setting's type; None where the path leaves the schema (an unknown key, or a key inside a setting)."""
    node: Any = Config
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


def _is_section(path: tuple) -> bool:
    """Whether the schema has a section of keys at `path`. An unknown key counts as one (its error follows),
    except inside a model, all of whose keys are factors."""
    node = _schema_at(path)
    if node is None:
        return path[0] != "models"
    return get_origin(node) is dict or isinstance(node, type) and issubclass(node, BaseModel)


def _dotted(loc: tuple) -> str:
    parts = [str(p) if str(p) and str(p).isprintable() else repr(str(p)) for p in loc]
    return ".".join(p if len(p) <= 40 else p[:30] + f"...({len(p)} chars)" for p in parts) or "(top level)"


def _shown(text: Any, limit: int = 80) -> str:
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


def _format_errors(err: ValidationError, source: str, note: Callable[[tuple], str]) -> str:
    lines = []
    errors = err.errors()
    for e in errors[:MAX_LISTED]:
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        value = e.get("input")
        problem = (e.get("ctx") or {}).get("error")
        if isinstance(problem, _Problem):
            loc, value = loc + problem.key, problem.value
        path = _dotted(loc)
        if e["type"] == "extra_forbidden":
            cls = _schema_at(loc[:-1])
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
    return f"{source}: invalid config.\n" + "\n".join("  " + line for line in lines)


def _empty(source: str) -> ConfigError:
    example = "".join(f"    {line}\n" for line in MINIMAL_CONFIG.splitlines())
    return ConfigError(f"{source}: the config is empty (no keys, perhaps only comments). It would run a default "
                       f"experiment you did not describe; write at least a name and the models, e.g.\n{example}"
                       "(every other key has a default: see the configuration reference, docs/configuration.md).")


# ------------------------------------------------------------------------------------------------- --set


def _set_dotted(raw: dict, override: str) -> tuple[str, ...]:
    """Apply one --set KEY.PATH=VALUE to raw (copying the dicts on the path); returns the key path."""
    if not isinstance(override, str) or "=" not in override:
        raise ConfigError(f"--set {quote(override)}: expected KEY.PATH=VALUE, e.g. --set train.epochs=2")
    key, value = override.split("=", 1)
    parts = [p.strip() for p in key.split(".")]
    if not all(parts):
        raise ConfigError(f"--set {quote(override)}: empty part in key path {quote(key)}; "
                          "write KEY.PATH=VALUE, e.g. --set train.epochs=2")
    parsed = load_yaml(value, f"--set {quote(override)}, the value after '='") if value.strip() else None
    node = raw
    for i, part in enumerate(parts[:-1]):
        where = tuple(parts[: i + 1])
        child = node.get(part)
        if child is None and not _is_section(where):
            raise ConfigError(f"--set {quote(override)}: {_dotted(where)} is a single setting, not a section of "
                              f"keys; set it whole, e.g. --set {_dotted(where)}=VALUE (a list as --set 'seeds=[0, 1]')")
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {quote(override)}: {_dotted(where)} holds a value ({quote(child)}), not a "
                              "section of keys, so nothing can be set inside it")
        node[part] = node = dict(child)
    node[parts[-1]] = parsed
    return tuple(parts)


# ------------------------------------------------------------------------------------------------- validation


def validate(raw: Any, source: str, overrides: list[str] | None = None) -> Config:
    """The Config of a parsed config (a dict) with --set overrides laid over it, checked whole: the schema, each
    model's factors against the canvas (models.model_problems) and the run's memory (memory.check_resources);
    every problem is a ConfigError (config.parse_config)."""
    overrides = list(overrides or [])
    if raw is None:
        raise _empty(source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (name, seeds, data, models, ...); "
                          f"got {type(raw).__name__} {quote(raw)}")
    set_by: dict[tuple, str] = {}
    raw = dict(raw)
    for o in overrides:
        set_by[_set_dotted(raw, o)] = o
    if overrides:  # a bad value may come from the command line rather than the file: say so
        source = f"{source} (with --set {' --set '.join(_shown(o) for o in overrides[:8])}" \
                 f"{' ...' if len(overrides) > 8 else ''})"
    try:
        count_values(raw)
    except TooBig as e:
        raise ConfigError(f"{source}: the config {e}; refusing it") from None

    def note(loc: tuple) -> str:
        """' (from --set K=V)' when the key at loc, or one inside or above it, was given by --set."""
        loc = tuple(str(p) for p in loc)
        hits = [o for path, o in set_by.items() if loc and (path[:len(loc)] == loc or loc[:len(path)] == path)]
        return f" (from --set {_shown(hits[-1])})" if hits else ""

    try:
        cfg = Config.model_validate(raw, context=CHECKS)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source, note)) from None
    problems = [f"  [models.{name}] {why}{note(('models', name))}" for name, why in model_problems(cfg).items()]
    if problems:
        raise ConfigError(f"{source}: invalid config.\n" + "\n".join(problems[:MAX_LISTED]))
    check_resources(cfg, source, lambda key: note(tuple(key.split("."))))
    return cfg


# ------------------------------------------------------------------------------------------------- entry points


def parse_config(raw: Any, source: str = "<config>", overrides: list[str] | None = None) -> Config:
    """Validate a parsed config (a dict) with --set overrides laid over it; raises ConfigError. overrides:
    KEY.PATH=VALUE texts (one such text alone is taken as a list of one, not read character by character)."""
    return validate(raw, source, [overrides] if isinstance(overrides, str) else overrides)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file and validate it (parse_config, which takes the overrides); raises ConfigError."""
    return parse_config(read_yaml(path), str(Path(path)), overrides)


def to_yaml(cfg: Config) -> str:
    """The resolved config (models with every factor filled in), as saved in a run folder."""
    d = cfg.model_dump(mode="json")
    d["models"] = resolved_models(cfg)
    return yaml.safe_dump(d, sort_keys=False)
