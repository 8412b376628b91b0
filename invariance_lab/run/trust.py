"""Whose word a config's factories run on. A config you name is yours: naming it asks for its factories. One
inside a run folder (its folder holds invlab's meta.json) came with that folder, from anyone, so `invlab run`,
`sweep` and `claims` on it import and call its factories only with --trust-factory, as `invlab sweep RUN` does.

    check_config_trust(cfg, Path("results/quick/20261127-160351/config.yaml"), trusted=False)
    # FactoryError: ...config.yaml: model 'mine' names factory my_models:net(width=16). Loading it imports
    # module 'my_models' from /home/me/my_models.py, which runs that file's code, ... pass --trust-factory
"""

from __future__ import annotations

from pathlib import Path

from ..config.models import resolved_models
from ..nn.factory import is_custom, require_trust
from ..schema.config import Config
from ..store.layout import META_FILE


def in_run_folder(config: Path) -> bool:
    """Whether a config file lies in a run or sweep folder (beside a meta.json), or is a link to one there: made
    elsewhere, not by you. A meta.json of any content counts, even a damaged one: nothing of the folder is trusted
    before the user says so."""
    folders = {Path(config).parent, Path(config).resolve().parent}  # a link to a run's config.yaml counts too
    return any((f / META_FILE).exists() or (f / META_FILE).is_symlink() for f in folders)


def check_config_trust(cfg: Config, config: Path, *, trusted: bool) -> None:
    """Refuse, before anything is imported or called, a config from a run folder whose models name a factory,
    unless `trusted`; the message names the file that would run (searched from the config's folder, as a run
    would) and the whole call. A config of yours, or any trusted one, passes."""
    if trusted or not in_run_folder(config):
        return
    for name, factors in resolved_models(cfg).items():
        if is_custom(factors):
            require_trust(factors, trusted=False, where=f"{config} (inside a run folder): model {name!r}",
                          dirs=[Path(config).parent])
