"""Per-shift invariance metrics as pure tensor functions; sums over a batch, so the sweep can stream.

flip_rate          Zhang (ICML 2019) consistency, turned around: fraction of images whose predicted class at a
                   shift differs from the prediction at the reference shift (0, 0). flip_rate = 1 - consistency.
prob_change        total-variation distance between softmax outputs, 1/2 * sum_c |p_c(shifted) - p_c(reference)|,
                   averaged over images (0 = same distribution, 1 = disjoint). For two classes it equals
                   |p_A(shifted) - p_A(reference)|: the change of a class probability against the reference,
                   which is Azulay & Weiss's mean absolute change (MAC) only one step from the reference (they
                   compare neighbouring positions).
neighbor_flip_rate Azulay & Weiss (JMLR 2019) "probability of top-1 change": fraction of images whose prediction
                   differs from the prediction at the previous shift on the same line (one step back), so jagged
                   outputs show even far from the reference.
accuracy           fraction of images classified correctly at the shift.
"""

from __future__ import annotations

import torch


def correct(logits: torch.Tensor, labels: torch.Tensor) -> int:
    return int((logits.argmax(1) == labels).sum())


def flips(pred: torch.Tensor, other: torch.Tensor) -> int:
    return int((pred != other).sum())


def tv_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Total-variation distance between probability vectors (the last axis: classes), broadcast: (N,) for two
    (N, classes) matrices, (S, N) for the (S, N, classes) outputs at S shifts against the reference's (N, classes)."""
    return 0.5 * (p - q).abs().sum(-1)
