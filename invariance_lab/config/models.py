"""A config's models resolved to their full factor sets, and checked against the canvas.

    resolved_models(cfg)          # name -> factors (preset, then the factors given beside it)
    model_problems(cfg)           # name -> why it cannot be built on cfg.data.canvas (config.load refuses them)
"""

from __future__ import annotations

from ..core.errors import ConfigError, InvlabError, choose
from ..nn.models import check_model, resolve_spec
from ..schema.config import Config


def resolved_models(cfg: Config) -> dict[str, dict]:
    """Each model's full factor set (preset, then the factors given beside it)."""
    return {name: resolve_spec(spec.model_dump(exclude_none=True)) for name, spec in cfg.models.items()}


def chosen_models(cfg: Config, names: list[str] | None, where: object) -> list[str]:
    """The models a sweep of `cfg` takes: `names` (each one of cfg's, else a ConfigError naming `where` and the
    valid names), or every model when None or empty."""
    for name in names or []:
        try:
            choose("model", name, cfg.models)
        except InvlabError as e:
            raise ConfigError(f"{where}: {e}") from None
    return list(names or cfg.models)


def model_problems(cfg: Config) -> dict[str, str]:
    """Name -> why it cannot be built on the canvas, for each preset model that cannot (nn.models.check_model's
    message, by arithmetic: torch's RNG is untouched). A model of your own (factory) is checked when built, on a
    dummy batch: it is never imported while reading a config."""
    problems = {}
    for name, spec in cfg.models.items():
        if spec.factory is not None:
            continue
        try:
            check_model(resolve_spec(spec.model_dump(exclude_none=True)), cfg.data.canvas)
        except (ValueError, InvlabError) as e:
            problems[name] = str(e)
    return problems
