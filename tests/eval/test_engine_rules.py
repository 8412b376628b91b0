"""The all-shift engine's rules for the newer downsampling layers (engine_rules.py): LPS and AFC are evaluated
exactly (the engine's logits equal brute force at every circular shift), TIPS and LPS in training mode are left
to brute force with the reason, and a block's activation needs a rule of its own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from invariance_lab.eval.engine import allshift_plan, why_not
from invariance_lab.nn.models import build_model, resolve_spec

S = 16

pytestmark = pytest.mark.usefixtures("one_thread")


def net(downsample: str) -> nn.Module:
    torch.manual_seed(0)
    f = resolve_spec(dict(downsample=downsample, head="global_avg", padding="circular", channels=[4, 8], blur_size=1))
    return build_model(f, num_classes=3, canvas=S).eval()


@pytest.mark.parametrize("downsample", ["lps", "afc"])
def test_engine_equals_brute_force_at_every_shift(downsample):
    model = net(downsample)
    x = torch.rand(2, 1, S, S, generator=torch.Generator().manual_seed(3))
    shifts = [(dx, dy) for dy in range(S) for dx in range(S)]
    fast = allshift_plan(model, S).logits(x, shifts)
    with torch.no_grad():  # every rolled input in one batch: the same bits as one forward pass per shift
        rolled = torch.cat([torch.roll(x, (dy, dx), dims=(-2, -1)) for dx, dy in shifts])
        brute = model(rolled).view(len(shifts), len(x), -1)
    assert (fast - brute).abs().max().item() < 1e-5


def test_tips_and_training_lps_are_left_to_brute_force_with_the_reason():
    assert "quadrants" in why_not(net("tips"), S) and "even shifts" in why_not(net("tips"), S)
    assert "Gumbel" in why_not(net("lps").train(), S)


def test_an_activation_without_a_rule_is_not_certified():
    model = net("afc")
    model.blocks[1].act = nn.Softplus()  # a pointwise map, but the engine has not been told so
    assert "Softplus is not a layer the all-shift engine knows" in why_not(model, S)


@pytest.mark.parametrize("blur_padding", ["zeros", "reflect"])
def test_a_circular_network_whose_blur_pads_otherwise_is_left_to_brute_force(blur_padding):
    """blur_padding: a blur that does not wrap around breaks the circular equivariance the engine relies on, even
    in a circular network: the engine names it and leaves the network to brute force; blur_padding: circular is
    the network as before, and the engine applies."""
    for downsample in ("blur_max", "aps_max"):
        spec = dict(downsample=downsample, head="global_avg", padding="circular", channels=[4, 8], blur_size=3)
        model = build_model(resolve_spec({**spec, "blur_padding": blur_padding}), num_classes=3, canvas=S).eval()
        assert f"BlurPool pads with {blur_padding!r}" in why_not(model, S)
        same = build_model(resolve_spec({**spec, "blur_padding": "circular"}), num_classes=3, canvas=S).eval()
        assert why_not(same, S) is None
