"""What a model's output means to a measurement: logits over the classes, one per class.

A model that gives one logit z per image (a binary classifier trained with a sigmoid, BCEWithLogitsLoss) is
measured as the two logits (0, z): their softmax is (1 - sigmoid(z), sigmoid(z)), class 1 where z > 0, so flip
rates, probability changes and the Lie derivative are those of its sigmoid. The softmax of a single logit would
be 1 for every image, and no shift could ever change it. Training keeps one logit per class (cross-entropy).
"""

from __future__ import annotations

import torch


def class_logits(out: torch.Tensor) -> torch.Tensor:
    """Logits over the classes along the last dimension: one logit z becomes (0, z); any other number of logits
    is returned as it is."""
    return torch.cat([torch.zeros_like(out), out], dim=-1) if out.shape[-1] == 1 else out


def class_count(n_logits: int) -> int:
    """The number of classes of a model that gives `n_logits` logits per image."""
    return 2 if n_logits == 1 else n_logits
