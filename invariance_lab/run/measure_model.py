"""The network `invlab measure` measures: your factory (`--model pkg.mod:fn`, its kwargs from `--model-kwargs`)
or the architecture an invlab checkpoint describes (`--weights`), built before its weights are loaded.

    net, factors, name, seed = measured_model("my_models:small_cnn", {"width": 16}, None, None)
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import CheckpointError, InvlabError, quote
from ..data.folder import data_channels
from ..nn.factory import TRUST_LIMIT, call, describe, is_custom, require_trust
from ..nn.models import build_model
from ..schema.model import check_kwargs


def measured_model(model: str | None, kwargs: dict | None, checkpoint: dict | None, weights: Path | None,
                   trust_factory: bool = False):
    """(module, factors, name, seed) for invlab measure: your factory (named by --model), or the architecture an
    invlab checkpoint describes. A checkpoint's factory, and its kwargs, come from whoever sent the file: they are
    used only with trust_factory (the refusal shows them and the file that would run); kwargs you give are yours."""
    if kwargs is not None:
        try:
            kwargs = check_kwargs(kwargs, "--model-kwargs")
        except ValueError as e:
            raise InvlabError(str(e)) from None
        if not isinstance(kwargs, dict):
            raise InvlabError(f"--model-kwargs must be a JSON object of keyword arguments; got {quote(kwargs)}")
    name, seed = (checkpoint["name"], checkpoint["seed"]) if checkpoint else (None, 0)
    own = checkpoint["factors"] if checkpoint and is_custom(checkpoint["factors"]) else None
    if model is not None:
        if kwargs is None and own and own["factory"] == model and own.get("kwargs"):
            if not trust_factory:  # the checkpoint's kwargs choose what your function does: never used unseen
                raise InvlabError(
                    f"{weights} was trained from factory {describe(own, TRUST_LIMIT)}; invlab does not pass a "
                    f"file's kwargs to a function unseen (a checkpoint can come from anyone, and kwargs choose what "
                    f"the function runs: torch.hub:load's repo_or_dir names code to run). Read them, then give "
                    f"the kwargs you choose with --model-kwargs JSON, or pass --trust-factory to use the "
                    f"checkpoint's as they are")
            kwargs = dict(own["kwargs"])
        factors = {"factory": model, "kwargs": kwargs or {}}
        label = name or model.rpartition(":")[2].rpartition(".")[2]
        return seeded_call(model, factors["kwargs"], seed), factors, label, seed
    if checkpoint is None:
        raise InvlabError("--model package.module:function is needed (the function that builds your network), "
                          "unless --weights is an invlab checkpoint, which says its own architecture")
    factors = checkpoint["factors"]
    if own:  # the refusal names the file and the call; it suggests no command that would run them
        require_trust(own, trusted=trust_factory, where=f"{weights} (--weights)", option="--trust-factory, or "
                      "build the network with a function of your own: --model package.module:function "
                      "--model-kwargs JSON")
        if kwargs is not None:
            raise InvlabError("--model-kwargs applies to --model; with --trust-factory alone the checkpoint's own "
                              "factory and kwargs are used")
        return seeded_call(own["factory"], own.get("kwargs"), seed), dict(own), name, seed
    if kwargs is not None:
        raise InvlabError("--model-kwargs applies to --model; an invlab preset checkpoint has its own settings")
    try:
        model = build_model(factors, num_classes=len(checkpoint["classes"]), canvas=int(checkpoint["data"]["canvas"]),
                            in_channels=data_channels(checkpoint["data"]))
    except InvlabError as e:  # its settings, not your options: named as the file's
        raise CheckpointError(f"{weights}: the network its settings describe cannot be built ({e}). The file is "
                              "damaged or was not written by this version of invlab") from None
    return model, factors, name, seed


def seeded_call(factory: str, kwargs: dict | None, seed: int):
    """The factory's module, its initial weights drawn from torch's generator seeded with `seed` (in a fork: the
    caller's random numbers are left alone): without --weights they are what is measured, the same each time."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        return call(factory, kwargs)
