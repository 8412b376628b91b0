"""APS (aps.APSDown) is exact as claimed: with circular padding, the output for EVERY circular shift of the
input is a circular shift of the unshifted output, on inputs built to make polyphase components tie.

Adversarial inputs (16 x 16): blank, constant, checkerboards, stripes, a diagonal, two identical blobs, mirror
images, dots spaced differently in different components, sparse dots, noise and blurred noise. Checked on the
module alone (blur sizes 1..7, one and three channels) and on whole aps_max / aps_stride networks (circular
padding, global average head, total stride 8), untrained and briefly trained: worst total-variation distance
between softmax outputs <= 1e-6, and every block's output a roll of the unshifted one.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from invariance_lab.nn.aps import TIE_ULPS, APSDown
from invariance_lab.eval.taps import layer_taps
from invariance_lab.nn.models import build_model, resolve_spec
from .adversarial import (NETWORK_IMAGES, ROLL_TOL, S, TIES, all_rolls, distance_to_nearest_roll, distinct, images,
                          three_channels, worst_roll_distance)

TV_TOL = 1e-6

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------------------------- the module

@pytest.mark.parametrize("blur_size", range(1, 8))
def test_aps_output_is_a_roll_for_every_shift(blur_size):
    assert worst_roll_distance(APSDown(1, blur_size), images()) < ROLL_TOL
    assert worst_roll_distance(APSDown(3, blur_size), three_channels(images(NETWORK_IMAGES))) < ROLL_TOL


def first_tied(comps: torch.Tensor) -> torch.Tensor:
    """A rule to contrast with: the same norms and tie tolerance, ties settled by the fixed order."""
    energy = comps.double().pow(2).sum(dim=(2, 3, 4))
    best = energy.amax(1, keepdim=True)
    return (energy >= best * (1 - TIE_ULPS * torch.finfo(comps.dtype).eps)).to(torch.uint8).argmax(1)


def plain_argmax(comps: torch.Tensor) -> torch.Tensor:
    return comps.double().pow(2).sum(dim=(2, 3, 4)).argmax(1)


@pytest.mark.parametrize("rule", [first_tied, plain_argmax])
def test_the_tied_inputs_do_defeat_position_based_tie_breaks(rule, monkeypatch):
    """The inputs in TIES exercise the tie-break: settled by position, each of them is no longer a roll."""
    monkeypatch.setattr(APSDown, "choose", lambda self, comps: rule(comps))
    aps = APSDown(1, blur_size=1)
    for name in TIES:
        assert worst_roll_distance(aps, images([name])) > 0.1, name


def test_aps_keeps_the_largest_norm_and_passes_gradients():
    x = torch.zeros(2, 1, 4, 4)
    x[0, 0, 1, 0] = 3.0  # component (1, 0)
    x[1, 0, 1, 1] = 2.0  # component (1, 1)
    x.requires_grad_(True)
    y = APSDown(1)(x)
    assert y[0, 0].max().item() == 3.0 and y[1, 0].max().item() == 2.0
    y.sum().backward()
    assert x.grad[0, 0, 1, 0].item() == 1.0 and x.grad.sum().item() == 8.0  # 4 kept pixels per sample
    with pytest.raises(ValueError, match="even"):
        APSDown(1)(torch.rand(1, 1, 5, 5))


def comps_of(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[..., i::2, j::2] for i in (0, 1) for j in (0, 1)], dim=1)


def test_the_norm_decides_beyond_the_tolerance_and_content_within_it():
    """The paper's rule (largest norm) wherever norms differ by more than the float-noise tolerance; within it,
    the content: a component of a tie made 1 ulp larger does not win by that, one made 16 ulps larger does."""
    aps = APSDown(1)
    comps = comps_of(torch.rand(512, 1, 8, 8, generator=torch.Generator().manual_seed(1)))
    energy = comps.double().pow(2).sum(dim=(2, 3, 4))
    top2 = energy.topk(2, dim=1).values
    apart = (top2[:, 0] - top2[:, 1]) > TIE_ULPS * 2 ** -23 * top2[:, 0]
    assert apart.float().mean() > 0.99  # noise is (nearly) never tied ...
    assert torch.equal(aps.choose(comps)[apart], energy.argmax(1)[apart])  # ... and then the norm decides

    tied = comps_of(images(["dots_2_vs_3"]))  # (0,0): dots 2 apart wins the tie-break over (1,1): 3 apart
    assert aps.choose(tied).item() == 0
    for ulps, winner in [(1, 0), (16, 3)]:
        nudged = tied.clone()
        nudged[0, 3, 0, 0, 0] = 1 + ulps * 2 ** -23  # a dot of (1, 1): its energy 2 -> 2 (1 + ulps * 2**-23)
        assert aps.choose(nudged).item() == winner, ulps


# ----------------------------------------------------------------------------------------------- whole networks

def aps_net(downsample: str, blur_size: int, trained: bool) -> torch.nn.Module:
    torch.manual_seed(blur_size)
    f = resolve_spec(dict(downsample=downsample, head="global_avg", padding="circular", channels=[4, 8, 8],
                          kernel=3, blur_size=blur_size))
    net = build_model(f, num_classes=3, canvas=S)
    if trained:  # a few Adam steps on random images: weights no longer at their initial values
        g = torch.Generator().manual_seed(2)
        x = torch.rand(48, 1, S, S, generator=g)
        y = torch.randint(0, 3, (48,), generator=g)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(8):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@functools.lru_cache(maxsize=1)
def adversarial_rolls() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network images, their distinct rolls and where each of the S * S * n rolls is among them (distinct)."""
    x = images(NETWORK_IMAGES)
    return x, *distinct(all_rolls(x))


@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "trained"])
@pytest.mark.parametrize("blur_size", range(1, 8))
@pytest.mark.parametrize("downsample", ["aps_max", "aps_stride"])
def test_aps_network_is_exactly_invariant_to_every_circular_shift(downsample, blur_size, trained):
    net = aps_net(downsample, blur_size, trained)
    x, rolls, index = adversarial_rolls()
    with torch.no_grad():
        ref, out = layer_taps(net, x), [(name, stride, f[index]) for name, stride, f in layer_taps(net, rolls)]
    n = len(x)
    for (name, _, f_ref), (_, _, f) in zip(ref, out):
        if name.endswith(".down"):  # after APS: a roll of the unshifted map, image by image
            assert distance_to_nearest_roll(f, f_ref).max().item() < ROLL_TOL, name
    p_ref = net.fc(ref[-1][2]).softmax(-1)
    p = net.fc(out[-1][2]).softmax(-1).view(S * S, n, -1)
    assert (0.5 * (p - p_ref).abs().sum(-1)).max().item() <= TV_TOL
    assert (p_ref - p_ref.mean(0)).abs().max().item() > 1e-4  # the network does tell the images apart
