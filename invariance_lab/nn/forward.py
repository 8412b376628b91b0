"""A model's forward pass on one batch of a sweep, a measurement or a training step, held to what the first check
held it to (outputs.check_output, on a small batch before any work). A model of your own can still fail on a later
batch (a hard-coded batch size, the memory a full batch needs, an input it does not handle), return something else
than logits. Each is a FactoryError naming the model and the batch (exit 2); the model's own
exception is chained to it, so `invlab --debug` shows its traceback (and a unit's log, with --jobs). invlab's own
networks (InvNet) are not wrapped: an error there is invlab's, and keeps its traceback. NaN in the outputs is
found once per sweep, from the sums (eval/accumulate.sweep_result), not batch by batch.
A model that gives one logit per image is measured as two (nn/logits.class_logits).

    logits = forward(model, x, "model mine")                  # (N, classes) float, or a FactoryError
    p = probabilities(model, x, "model mine", classes=2)     # its softmax in float32
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import FactoryError, InvlabError, clip
from .logits import class_logits
from .models import InvNet
from .outputs import check_dense


def call(model: nn.Module, x: torch.Tensor, what: str):
    """model(x) as it is, whatever it returns; the model's own exception becomes a FactoryError naming it. The model
    gets a copy of x: one that writes into its input (x -= mean) would otherwise change the batch that every later
    shift and model reads (and the caller's own tensor)."""
    try:
        return model(x.clone())
    except InvlabError:
        raise
    except (Exception, SystemExit) as e:  # the model's own, sys.exit() too; Ctrl-C (KeyboardInterrupt) still stops
        raise FactoryError(f"{what} failed on a batch of shape {tuple(x.shape)} ({type(e).__name__}: {clip(e, 240)}); "
                           f"it had run on the first images, so the failure depends on this batch: its size, the "
                           f"memory it needs or its values (with --jobs, the unit's log holds the model's "
                           f"traceback)") from e


def forward(model: nn.Module, x: torch.Tensor, what: str, classes: int | None = None) -> torch.Tensor:
    """model(x), which must be logits (N, classes) of a floating-point type (`classes`, when given: that many, as
    the first check counted them); one logit per image comes back as two (nn/logits.py)."""
    if isinstance(model, InvNet):
        return model(x)
    shape, out = tuple(x.shape), call(model, x, what)
    if not (isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == shape[0]
            and out.is_floating_point() and (classes is None or out.shape[1] == classes)):
        got = f"a tensor of shape {tuple(out.shape)} ({out.dtype})" if isinstance(out, torch.Tensor) else \
            type(out).__name__
        want = f"({shape[0]}, {classes})" if classes else f"({shape[0]}, classes)"
        raise FactoryError(f"{what} returned {got} for a batch of shape {shape}; it must return the logits {want} "
                           f"of every batch, as it did for the first images")
    check_dense(out, x, what)
    return class_logits(out)


def probabilities(model: nn.Module, x: torch.Tensor, what: str, classes: int | None = None) -> torch.Tensor:
    """softmax(model(x)) in float32: the probabilities the accumulator sums (eval/accumulate.py)."""
    return torch.softmax(forward(model, x, what, classes).float(), dim=1)
