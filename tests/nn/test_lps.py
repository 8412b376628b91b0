"""LPS (lps.LPSDown) is exact as claimed: with circular padding and a global average head, EVERY circular shift of a
16 px input gives the same logits (to float round-off) and the same prediction, untrained and briefly trained; the
module's output is a roll of the unshifted one even on inputs whose components tie; and its tie rule matters."""

from __future__ import annotations

import pytest
import torch

from invariance_lab.nn.lps import LPSDown
from .adversarial import TIES, assert_exact, images, logits_at_every_shift, probes, small_net, worst_roll_distance

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "trained"])
def test_lps_network_is_exactly_invariant_to_every_circular_shift(trained):
    assert_exact(logits_at_every_shift(small_net("lps", trained), probes()))


def test_lps_output_is_a_roll_for_every_shift_even_where_components_tie():
    torch.manual_seed(0)
    down = LPSDown(1, blur_size=1).eval()
    assert worst_roll_distance(down, images()) < 1e-6


def test_a_plain_argmax_of_the_scores_is_not_shift_consistent_on_ties(monkeypatch):
    """Scores are sums of local features, so components of isolated dots tie whatever their spacing: settled by
    the fixed order (a bare argmax of float-noisy scores), the output is no longer a roll; aps.py's rule fixes it."""
    monkeypatch.setattr(LPSDown, "choose", lambda self, comps, logits, hidden: logits.argmax(dim=1))
    torch.manual_seed(0)
    down = LPSDown(1, blur_size=1).eval()
    assert max(worst_roll_distance(down, images([name])) for name in TIES) > 0.1


def test_lps_trains_through_a_gumbel_softmax_mix_and_keeps_one_component_in_eval():
    torch.manual_seed(0)
    down = LPSDown(2, blur_size=1)
    x = torch.rand(3, 2, 8, 8)
    comps = torch.stack([x[..., i::2, j::2] for i in (0, 1) for j in (0, 1)], dim=1)
    mixed = down(x)  # training mode: a convex mix of the four components, gradients reach the scorer
    assert not any(torch.allclose(mixed, comps[:, k]) for k in range(4))
    mixed.sum().backward()
    assert down.score[1].weight.grad.abs().sum() > 0
    kept = down.eval()(x)
    assert all(any(torch.equal(kept[n], comps[n, k]) for k in range(4)) for n in range(3))
    with pytest.raises(ValueError, match="even"):
        down(torch.rand(1, 2, 5, 5))
