"""The train: section of a config: the optimiser and schedule, the same for every model.

    TrainConfig(epochs=5, batch_size=64, lr=1e-3, optimizer="adam")
    TrainConfig(optimizer="adadelta", lr=1.0, weight_decay=5e-5, optimizer_kwargs={"rho": 0.9, "eps": 1e-6},
                select="best_val", patience=8)     # Kayhan & van Gemert 2020's protocol (needs data.val_fraction)

`optimizer` names any torch.optim class (case-insensitive; OPTIMIZERS lists them) and `optimizer_kwargs` its
other arguments, checked against the class's signature and by building it once on a dummy parameter, so a bad
value is a ConfigError before any work starts. make_optimizer builds it for a network's parameters. The weight
decay is always train.weight_decay (0 unless set), also where torch's own default is not 0 (adamw, adafactor), as
it always was for adamw.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Literal, Optional

import torch
from pydantic import Field, field_validator, model_serializer, model_validator

from ..core.errors import choose, quote
from .fields import BIG, Float, Int, Str, _Problem, _Schema, without_defaults

# torch.optim classes that cannot train invlab's networks with a plain loss.backward(); opt.step() loop
_UNFIT = {"lbfgs": "its step needs a closure that re-evaluates the loss",
          "sparseadam": "it takes sparse gradients only",
          "muon": "it takes 2-D parameters only (a conv weight is 4-D)"}
# lowercase name -> class: every torch.optim optimizer of this torch that fits the training loop
OPTIMIZERS: dict[str, type] = {
    name.lower(): cls for name, cls in sorted(vars(torch.optim).items(), key=lambda kv: kv[0].lower())
    if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer
    and name.lower() not in _UNFIT}
# optimizer_kwargs keys refused: each has its own key in train: (or is the network's parameters)
_OWN_KEYS = {"params": "the network's parameters are passed by invlab", "lr": "use train.lr",
             "weight_decay": "use train.weight_decay"}
_SGD_MOMENTUM = 0.9  # optimizer: sgd always had momentum 0.9; optimizer_kwargs.momentum overrides it
# images per forward pass of the test and validation passes during training (run/train.py): no more than the
# default training batch, whose step already holds more (its saved activations and their gradients), so the pass
# adds nothing to a run's peak memory; at 128 it raised the seed question's conv_only units' peak by about 30 MB
EVAL_BATCH = 64
_DEFAULTS = {"test_every": 1, "optimizer_kwargs": {}, "select": "last", "patience": None}


class TrainConfig(_Schema):
    epochs: Int = Field(5, ge=0, le=BIG)  # passes over the training set (5 learns A vs B); 0 = untrained networks
    batch_size: Int = Field(64, ge=1, le=BIG)  # mini-batch size: 64 gives ~30 steps per epoch of 2000 images
    lr: Float = Field(1e-3, gt=0, le=10)  # learning rate: Adam's usual 1e-3; above 10 only overflows
    weight_decay: Float = Field(0.0, ge=0, le=10)  # L2 penalty (decoupled for adamw); 0 = none
    optimizer: Str = "adam"  # a torch.optim class, any case (adam, adamw, sgd (momentum 0.9), adadelta, rmsprop, ...)
    test_every: Int = Field(1, ge=0, le=BIG)  # test accuracy every N epochs and after the last; 0: the last only
    optimizer_kwargs: dict[Str, Any] = {}  # its other arguments (numbers, bools, lists as long as torch's): {rho: 0.9}
    select: Literal["last", "best_val"] = "last"  # weights kept: the last epoch's, or those of the lowest val loss
    patience: Optional[Int] = Field(None, ge=1, le=BIG)  # stop after this many epochs without a lower val loss

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v: str) -> str:
        name = v.lower()
        if name in _UNFIT:
            raise ValueError(f"optimizer {v!r} cannot train invlab's networks: {_UNFIT[name]}; choose one of: "
                             f"{', '.join(OPTIMIZERS)}")
        return choose("optimizer", name, OPTIMIZERS, error=ValueError)

    @model_validator(mode="after")
    def _kwargs(self) -> "TrainConfig":
        if self.optimizer not in OPTIMIZERS:  # model_construct: not validated
            return self
        cls = OPTIMIZERS[self.optimizer]
        signature = inspect.signature(cls).parameters
        accepted = [p for p in signature if p not in ("self", "params")]
        for key, value in self.optimizer_kwargs.items():
            if key in _OWN_KEYS:
                raise _Problem(("optimizer_kwargs", key), f"{key} is not an optimizer_kwargs key: "
                               f"{_OWN_KEYS[key]}", value)
            try:
                choose(f"torch.optim.{cls.__name__} argument", key, [p for p in accepted if p not in _OWN_KEYS],
                       error=ValueError)
            except ValueError as e:
                raise _Problem(("optimizer_kwargs", key), str(e), key) from None
            if not _plain_value(value):
                raise _Problem(("optimizer_kwargs", key), "optimizer_kwargs values must be numbers, booleans or "
                               "lists of numbers", value)
            shape = _shape_problem(cls, key, value, signature[key].default)
            if shape:
                raise _Problem(("optimizer_kwargs", key), shape, value)
        if self.weight_decay and "weight_decay" not in accepted:
            raise _Problem("weight_decay", f"{cls.__name__} has no weight decay; leave train.weight_decay at 0",
                           self.weight_decay)
        if not self.optimizer_kwargs and not self.weight_decay:
            return self  # nothing the class could refuse: no need to build it (that imports torch's compiler, ~1 s)
        try:  # the class's own checks of its values (rho in [0, 1], ...), and one step, on a dummy parameter
            dummy = torch.zeros(1, requires_grad=True)
            step = make_optimizer([dummy], self)
            dummy.grad = torch.zeros(1)
            with torch.random.fork_rng(devices=[]):  # a step that draws (noise) leaves the caller's numbers alone
                step.step()  # capturable or differentiable fail here (CPU, in-place on a leaf), not after training
        except (ValueError, TypeError, RuntimeError, IndexError, KeyError, AssertionError) as e:
            raise _Problem("optimizer_kwargs", f"torch.optim.{cls.__name__} refuses these arguments: {e}",
                           self.optimizer_kwargs) from None
        return self

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler):
        # Added after runs were fingerprinted: written only when not the default, so older digests stay the same
        # (test_every changes no weight; the others are new settings).
        return without_defaults(handler(self), _DEFAULTS)

    @property
    def validates(self) -> bool:
        """True when training needs a validation set: select: best_val or a patience."""
        return self.select == "best_val" or self.patience is not None


def _plain_value(v) -> bool:
    if isinstance(v, bool):
        return True
    if isinstance(v, (int, float)):
        return math.isfinite(v)
    return isinstance(v, list) and bool(v) and all(_plain_value(x) and not isinstance(x, bool) for x in v)


def _shape_problem(cls: type, key: str, value, default) -> str | None:
    """Whether a plain optimizer_kwargs value has the shape of the argument's default in the class's signature:
    a tuple default (betas, rprop's etas and step_sizes, adafactor's eps) takes a list of as many numbers, any other
    argument one value, not a list. None when it does, else what is wrong."""
    name = f"torch.optim.{cls.__name__}'s {key}"
    if isinstance(default, tuple):
        if isinstance(value, list) and len(value) == len(default):
            return None
        given = f"a list of {len(value)}" if isinstance(value, list) else "one value"
        return (f"{name} is a list of {len(default)} numbers, like its default {list(default)}; got {given}: "
                f"{quote(value)}")
    if isinstance(value, list) and default is not inspect.Parameter.empty:
        return f"{name} is one value (its default: {default}), not a list; got {quote(value)}"
    return None


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """cfg.optimizer built for `params`: lr and weight_decay from their keys, then optimizer_kwargs (lists become
    tuples, e.g. betas); sgd keeps its momentum 0.9 unless optimizer_kwargs says otherwise."""
    cls = OPTIMIZERS[cfg.optimizer]
    kwargs: dict[str, Any] = {"momentum": _SGD_MOMENTUM} if cfg.optimizer == "sgd" else {}
    kwargs.update({k: tuple(v) if isinstance(v, list) else v for k, v in cfg.optimizer_kwargs.items()})
    if "weight_decay" in inspect.signature(cls).parameters:
        kwargs["weight_decay"] = cfg.weight_decay
    return cls(params, lr=cfg.lr, **kwargs)
