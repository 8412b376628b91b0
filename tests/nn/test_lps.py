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


def scored_by_mean() -> LPSDown:
    """An LPS whose score of a component >= 0 is its mean: both score convs pass the centre tap through."""
    down = LPSDown(1, blur_size=1).eval()
    with torch.no_grad():
        for conv in (down.score[1], down.score[4]):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
            conv.bias.zero_()
    return down


def test_in_eval_mode_the_component_with_the_highest_score_is_kept():
    """The paper's rule: the argmax of the scores (not the argmin). Components (0, 0), (0, 1), (1, 0), (1, 1) of
    sample 0 hold 0.1, 0.4, 0.9, 0.2 (scores those), of sample 1 0.3, 0.8, 0.1, 0.5."""
    x = torch.empty(2, 1, 4, 4)
    for n, values in enumerate([(0.1, 0.4, 0.9, 0.2), (0.3, 0.8, 0.1, 0.5)]):
        for (i, j), v in zip([(0, 0), (0, 1), (1, 0), (1, 1)], values):
            x[n, :, i::2, j::2] = v
    x += 0.01 * torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))  # no two components alike
    kept = scored_by_mean()(x)
    assert torch.equal(kept[0], x[0, :, 1::2, 0::2]) and torch.equal(kept[1], x[1, :, 0::2, 1::2])


def test_the_score_decides_beyond_the_tolerance_and_content_within_it():
    """Scores within TIE_ULPS units of the map's precision (float32: 2**-23) times the sample's largest |hidden
    value| tie, and then the content decides (component 0 holds the larger value): a score 1 ulp higher does not
    win by that, one 16 ulps higher does, unless the hidden values are 8 times larger (the tolerance with them)."""
    down = LPSDown(1, blur_size=1).eval()
    comps = torch.zeros(1, 4, 1, 2, 2)
    comps[0, 0, 0, 0, 0], comps[0, 1, 0, 1, 1] = 1.0, 0.5
    for ulps, scale, winner in [(0, 1.0, 0), (1, 1.0, 0), (16, 1.0, 1), (16, 8.0, 0)]:
        logits = torch.tensor([[0.25, 0.25 + ulps * 2 ** -23, 0.0, 0.0]], dtype=torch.float64)
        hidden = torch.full((1, 4, 1, 2, 2), scale)
        assert down.choose(comps, logits, hidden).item() == winner, (ulps, scale)
