import itertools

import pytest
import torch

from invariance_lab.layers import DOWNSAMPLE_KINDS, PADDING_KINDS
from invariance_lab.models import HEADS, build_model, check_model, count_parameters, list_presets, resolve_spec


@pytest.mark.parametrize("arch", list(list_presets()))
def test_every_preset_builds_and_runs(arch):
    f = resolve_spec({"arch": arch, "channels": [4, 8, 8]})
    net = build_model(f, num_classes=3, canvas=32)
    assert net(torch.rand(5, 1, 32, 32)).shape == (5, 3)
    assert count_parameters(net) > 0


@pytest.mark.parametrize("downsample, head, padding", list(itertools.product(DOWNSAMPLE_KINDS, HEADS, PADDING_KINDS)))
@pytest.mark.parametrize("canvas", [16, 24, 27, 32])
def test_every_combination_builds_or_is_refused_clearly(downsample, head, padding, canvas):
    f = resolve_spec(dict(downsample=downsample, head=head, padding=padding, channels=[3, 4, 4]))
    try:
        check_model(f, canvas)
    except ValueError as e:  # refused: the message names the combination
        assert str(canvas) in str(e)
        return
    net = build_model(f, num_classes=2, canvas=canvas)
    assert net(torch.rand(2, 1, canvas, canvas)).shape == (2, 2)


def test_presets_match_the_card():
    p = list_presets()
    assert (p["conv_only"]["downsample"], p["conv_only"]["head"]) == ("none", "flatten")
    assert (p["conv_maxpool"]["downsample"], p["conv_maxpool"]["head"]) == ("max", "flatten")
    assert (p["strided_conv"]["downsample"], p["strided_conv"]["head"]) == ("stride", "flatten")
    assert (p["conv_gap"]["downsample"], p["conv_gap"]["head"]) == ("none", "global_avg")


def circular_gap_net(seed=0):
    torch.manual_seed(seed)
    f = resolve_spec(dict(downsample="none", head="global_avg", padding="circular", channels=[8, 8, 8], kernel=3))
    return build_model(f, num_classes=2, canvas=24).eval()


def test_circular_stride1_gap_is_exactly_invariant_untrained():
    net = circular_gap_net()
    x = torch.rand(4, 1, 24, 24)
    with torch.no_grad():
        ref = net(x)
        worst = max(float((net(torch.roll(x, (dy, dx), (2, 3))) - ref).abs().max())
                    for dx in range(24) for dy in range(24))
    assert worst < 1e-5


def test_circular_stride1_gap_is_exactly_invariant_after_training():
    net = circular_gap_net(1)
    x = torch.rand(64, 1, 24, 24)
    y = (x[:, 0, :12].mean((1, 2)) > x[:, 0, 12:].mean((1, 2))).long()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))  # it did train
    with torch.no_grad():
        ref = net(x[:8])
        worst = max(float((net(torch.roll(x[:8], (dy, dx), (2, 3))) - ref).abs().max())
                    for dx in range(0, 24, 3) for dy in range(0, 24, 5))
    assert worst < 1e-5


def test_zero_padding_flatten_is_not_invariant():
    torch.manual_seed(0)
    net = build_model(resolve_spec({"arch": "conv_only", "channels": [4, 4]}), num_classes=2, canvas=16).eval()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert float((net(torch.roll(x, 1, 3)) - net(x)).abs().max()) > 1e-4
