"""LPS (lps.LPSDown) is exact as claimed: with circular padding and a global average head, EVERY circular shift of a
16 px input gives the same logits (to float round-off) and the same prediction, untrained and briefly trained; the
module's output is a roll of the unshifted one even on inputs whose components tie; and its tie rule matters."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from invariance_lab.nn.lps import LPSDown
from invariance_lab.nn.models import build_model, resolve_spec
from .test_aps import TIES, all_rolls, distinct, images, worst_roll_distance

S = 16
TOL = 1e-5  # largest |logit change| allowed: float32 round-off

pytestmark = pytest.mark.usefixtures("one_thread")


def small_net(downsample: str, trained: bool, seed: int = 0, head: str = "global_avg",
              steps: int = 5) -> torch.nn.Module:
    """channels [4, 8] on a 16 px canvas, circular padding; trained: `steps` Adam steps on 24 random images."""
    torch.manual_seed(seed)
    f = resolve_spec(dict(downsample=downsample, head=head, padding="circular", channels=[4, 8], kernel=3,
                          blur_size=1))
    net = build_model(f, num_classes=3, canvas=S)
    if trained:
        g = torch.Generator().manual_seed(2)
        x, y = torch.rand(24, 1, S, S, generator=g), torch.randint(0, 3, (24,), generator=g)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(steps):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert not torch.equal(net.state_dict()["blocks.0.conv.weight"], small_net(downsample, False, seed).state_dict()[
            "blocks.0.conv.weight"]), "training changed nothing"
    return net.eval()


@functools.lru_cache(maxsize=1)
def probes() -> torch.Tensor:
    """Noise and inputs whose polyphase components tie (tests/nn/test_aps.py)."""
    return torch.cat([torch.rand(2, 1, S, S, generator=torch.Generator().manual_seed(5)),
                      images(["blank", "two_blobs_2x2", "dots_2_vs_3", "mirror_blobs"])])


def logits_at_every_shift(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(S*S, N, classes): the logits of every circular shift of every image, shift (0, 0) first."""
    rolls, index = distinct(all_rolls(x))  # the blank image's rolls are one image
    with torch.no_grad():
        return net(rolls)[index].view(S * S, len(x), -1)


def assert_exact(out: torch.Tensor) -> None:
    assert torch.equal(out.argmax(-1), out[0].argmax(-1).expand(len(out), -1))  # predictions never change
    assert (out - out[0]).abs().max().item() <= TOL
    assert (out[0] - out[0].mean(0)).abs().max().item() > 1e-4  # the network does tell the images apart


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
