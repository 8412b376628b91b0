"""The checks the schema cannot make alone, handed to its validators as pydantic's validation context.

    cfg = Config.model_validate(raw, context=CHECKS)   # config/checks.py's CHECKS: what parse_config does

Some rules need what lives above the schema: the glyphs' sizes (data/), an image folder's files, the networks'
map sizes (nn/). The validators call them through the Checks given as the context, so their problems are
reported beside the schema's own, under the same key paths and in the same order.

Validated without them (Config(...), DataConfig(...), model_validate without a context) a config gets the
shape checks only: letter sizes, sweep shifts and outline font names are not checked, and what the checks fill
in (an image folder's counts and digest, a factorial's models) is refused rather than silently left out.
config.load.parse_config and load_config are the entry points that validate fully.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from pydantic import ValidationInfo

from .fields import _Problem


@dataclass(frozen=True)
class Checks:
    """Each check returns the first _Problem (naming the key below the section it is given) or None, or raises."""

    canvas: Callable[[Any], Optional[_Problem]]  # DataConfig of drawn letters: they fit the canvas and the frame
    folder: Callable[[Any], Optional[_Problem]]  # DataConfig of an image folder: reads it, fills counts and digest
    shifts: Callable[[Any, Any], Optional[_Problem]]  # (DataConfig, SweepConfig): a shift that blanks every image
    outline_font: Callable[[str], Any]  # an outline font's file; raises InvlabError naming the valid fonts
    factorial: Callable[[Any], Optional[dict]]  # the factorial: section checked; raises _Problem
    expand: Callable[[dict, dict, int], dict]  # (factorial, models, canvas) -> models with the expansion; _Problem


def checks_of(info: ValidationInfo) -> Checks | None:
    """The Checks a validator was given, or None when validated without them (the shape checks only)."""
    return info.context if isinstance(info.context, Checks) else None


def needs_checks(key: str | tuple, what: str, value: Any) -> _Problem:
    """The refusal of a setting that only the full validation can complete (see the module docstring)."""
    return _Problem(key, f"{what} is completed when the config is read: validate it with config.load.parse_config "
                    "or load_config (or with context=config.checks.CHECKS)", value)
