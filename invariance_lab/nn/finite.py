"""Weights that hold NaN or infinity, found before a measurement: one such value makes every logit downstream NaN,
and every number of the tables with it.

    bad = nonfinite(state.items())     # "'0.weight' holds 1 NaN value (of 36)", or None when all are finite
    check_logits(model, model(x), "model mine")   # a FactoryError when the probabilities are NaN
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

import torch
from torch import nn

from ..core.errors import CheckpointError, FactoryError, quote


def nonfinite(tensors: Iterable[tuple[str, object]]) -> str | None:
    """The first named floating-point tensor holding NaN or +-infinity, in words, or None. Other entries (integer
    buffers such as BatchNorm's counter, non-tensors) are skipped."""
    for name, t in tensors:
        if (kinds := _nonfinite_counts(t)) is not None:
            return f"{quote(name)} holds {kinds}"
    return None


def _nonfinite_counts(t) -> str | None:
    """How many NaN and infinite values a floating-point tensor holds, in words ("1 NaN value (of 36)"); None
    when it holds none, or is not a floating-point tensor."""
    if not isinstance(t, torch.Tensor) or not (t.is_floating_point() or t.is_complex()):
        return None
    finite = torch.isfinite(t)
    if bool(finite.all()):
        return None
    nans = int(torch.isnan(t).sum())
    infs = int(t.numel() - int(finite.sum())) - nans
    kinds = " and ".join(f"{n} {word} value{'s' if n > 1 else ''}" for n, word in ((nans, "NaN"), (infs, "infinite"))
                         if n)
    return f"{kinds} (of {t.numel()})"


def check_logits(model: nn.Module, logits: torch.Tensor, what: str, x: torch.Tensor | None = None) -> None:
    """A FactoryError when the class probabilities of `logits` (model's output on real images) are not all
    finite (a -inf logit is fine: its probability is 0), naming the weight to blame, else the images (`x`, the
    batch as the model saw it), else the forward pass."""
    if bool(torch.isfinite(torch.softmax(logits.detach().float(), dim=1)).all()):
        return
    bad = nonfinite(chain(model.named_parameters(), model.named_buffers()))
    pixels = _nonfinite_counts(x)
    why = (f"its weight {bad}" if bad else f"the images it was given hold {pixels}: give images of finite pixels"
           if pixels else "its weights are all finite, so its forward makes them NaN or its inputs overflow it (a "
           "--std far below the pixels' spread, or a --mean far from their values?)")
    raise FactoryError(f"{what} gives NaN or infinite logits on the first {len(logits)} images, so every number "
                       f"measured would be NaN: {why}")


def check_weights(state: dict, path) -> None:
    """A CheckpointError naming the weights file and its first NaN or infinite tensor, before anything is built
    from it or written."""
    bad = nonfinite(state.items())
    if bad:
        raise CheckpointError(f"--weights {path}: parameter {bad}; a network with such a weight gives NaN logits, "
                              f"so nothing could be measured. Measure finite weights (NaN in a weight usually "
                              f"means the training diverged: a lower learning rate helps)")
