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
from typing import Any, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ..core.errors import ConfigError, quote
from ..schema.config import Config
from ..schema.messages import MAX_LISTED, dotted, format_errors, schema_at, shown
from ..schema.safeyaml import TooBig, count_values, load_yaml
from .checks import CHECKS
from .memory import check_resources
from .models import model_problems, resolved_models

MAX_FILE_BYTES = 2**20  # a config is a few KB
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


def _is_section(path: tuple) -> bool:
    """Whether the schema has a section of keys at `path`. An unknown key counts as one (its error follows),
    except inside a model, all of whose keys are factors."""
    node = schema_at(path, Config)
    if node is None:
        return path[0] != "models"
    return get_origin(node) is dict or isinstance(node, type) and issubclass(node, BaseModel)


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
            raise ConfigError(f"--set {quote(override)}: {dotted(where)} is a single setting, not a section of "
                              f"keys; set it whole, e.g. --set {dotted(where)}=VALUE (a list as --set 'seeds=[0, 1]')")
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {quote(override)}: {dotted(where)} holds a value ({quote(child)}), not a "
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
        source = f"{source} (with --set {' --set '.join(shown(o) for o in overrides[:8])}" \
                 f"{' ...' if len(overrides) > 8 else ''})"
    try:
        count_values(raw)
    except TooBig as e:
        raise ConfigError(f"{source}: the config {e}; refusing it") from None

    def note(loc: tuple) -> str:
        """' (from --set K=V)' when the key at loc, or one inside or above it, was given by --set."""
        loc = tuple(str(p) for p in loc)
        hits = [o for path, o in set_by.items() if loc and (path[:len(loc)] == loc or loc[:len(path)] == path)]
        return f" (from --set {shown(hits[-1])})" if hits else ""

    try:
        cfg = Config.model_validate(raw, context=CHECKS)
    except ValidationError as err:
        raise ConfigError(format_errors(err, source, Config, note)) from None
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


class _Plain(yaml.SafeDumper):
    """YAML without anchors and aliases: models sharing a default list (channels) had been written `&id001` and
    `*id001`, so the config.yaml of a run read back (its lists no longer shared) gave other text, another digest,
    and `invlab run RUN/config.yaml` started a new run instead of resuming that one."""

    def ignore_aliases(self, data) -> bool:
        return True


def _resolved(cfg: Config) -> dict:
    d = cfg.model_dump(mode="json")
    d["models"] = resolved_models(cfg)
    return d


def to_yaml(cfg: Config) -> str:
    """The resolved config (models with every factor filled in), as saved in a run folder: the same text for a
    config and for the config.yaml it writes, read back."""
    return yaml.dump(_resolved(cfg), Dumper=_Plain, sort_keys=False)


def aliased_yaml(cfg: Config) -> str:
    """to_yaml as invlab wrote it before it left out aliases: the text whose digest older run folders and studies
    record (the same text unless models share a list), so that they are still found and resumed."""
    return yaml.safe_dump(_resolved(cfg), sort_keys=False)
