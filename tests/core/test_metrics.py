"""metrics.py: the per-shift metrics on hand-made predictions."""

import torch

from invariance_lab.core.metrics import correct, flips, tv_distance


def test_correct_and_flips_count_rows():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert correct(logits, torch.tensor([0, 1, 1])) == 2
    assert flips(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1])) == 1


def test_tv_distance_is_half_the_l1_distance_and_bounded():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.6, 0.4]])
    assert torch.allclose(tv_distance(p, q), torch.tensor([1.0, 0.0, 0.4]))
    # for two classes it is the absolute change of one class's probability (Azulay & Weiss)
    assert torch.allclose(tv_distance(p, q), (p[:, 0] - q[:, 0]).abs())
