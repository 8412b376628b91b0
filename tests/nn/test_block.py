"""Tests for invariance_lab.nn.block and the padding registry (nn/layers.py) it reads: full padding (k-1 zeros on
each side of a conv, the map grows by k-1: Kayhan & van Gemert 2020), convolutions without bias, and the ReLU
that works in place. The other padding kinds and every downsampling kind are tested in test_layers.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from invariance_lab.nn.block import ConvBlock
from invariance_lab.nn.downsample import DOWNSAMPLES
from invariance_lab.nn.layers import PADDINGS, LayerConfigError, Pad2d

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
def test_a_full_conv_grows_the_map_by_kernel_minus_one(kernel):
    block = ConvBlock(3, 4, kernel=kernel, padding="full", downsample="none")
    for side in (8, 13):
        assert tuple(block(torch.rand(2, 3, side, side)).shape) == (2, 4, side + kernel - 1, side + kernel - 1)
        assert block.out_size(side) == side + kernel - 1


@pytest.mark.parametrize("kernel", [2, 3, 5])
def test_a_full_conv_is_the_valid_conv_of_the_image_padded_with_kernel_minus_one_zeros(kernel):
    """The definition, with the padding written out: every pixel meets every kernel position."""
    torch.manual_seed(0)
    block = ConvBlock(2, 3, kernel=kernel, padding="full", downsample="stride").eval()
    x = torch.rand(2, 2, 11, 11)
    explicit = F.relu(F.conv2d(F.pad(x, (kernel - 1,) * 4), block.conv.weight, block.conv.bias, stride=2))
    assert torch.equal(block(x), explicit)
    assert block.out_size(11) == explicit.shape[-1] == (11 + 2 * (kernel - 1) - kernel) // 2 + 1


def test_full_padding_reads_the_border_pixel_like_any_other():
    """A one-pixel dot at the corner and at the centre give the same set of responses (a full conv of a dot is the
    whole kernel, wherever the dot is); zero 'same' padding cuts the corner's off."""
    torch.manual_seed(0)
    full, same = (ConvBlock(1, 1, kernel=3, padding=p, downsample="none", bias=False) for p in ("full", "zeros"))
    same.conv.weight.data = full.conv.weight.data.abs() + 0.1
    full.conv.weight.data = same.conv.weight.data.clone()
    corner, centre = torch.zeros(1, 1, 9, 9), torch.zeros(1, 1, 9, 9)
    corner[..., 0, 0], centre[..., 4, 4] = 1, 1
    assert torch.equal(full(corner).sum(), full(centre).sum())
    assert same(corner).sum() < same(centre).sum()


@pytest.mark.parametrize("downsample", ["max", "blur_max", "aps_stride", "avg"])
def test_full_padding_pads_the_windows_after_the_conv_like_zeros(downsample):
    """Only the conv grows the map; a blur or a stride-1 max-pool keeps its size with zeros, as in a zero-padded
    network (aps needs an even map: 9 + 2 = 11 would be odd, so 10 + 2 = 12)."""
    torch.manual_seed(0)
    full = ConvBlock(2, 3, kernel=3, padding="full", downsample=downsample, blur_size=3).eval()
    zeros = ConvBlock(2, 3, kernel=3, padding="zeros", downsample=downsample, blur_size=3).eval()
    zeros.load_state_dict(full.state_dict())
    x = torch.rand(2, 2, 10, 10)
    grown = F.pad(x, (1, 1, 1, 1))  # a 3x3 zero-padded conv of the image padded by one more pixel = a full conv
    assert torch.allclose(full(x), zeros(grown), atol=1e-6)
    assert full.out_size(10) == full(x).shape[-1] == zeros.out_size(12)
    for m in full.modules():
        if isinstance(m, Pad2d):
            assert m.mode == "constant"


def test_bias_false_builds_convolutions_without_bias():
    with_bias = ConvBlock(3, 4, kernel=3, padding="full", downsample="stride")
    without = ConvBlock(3, 4, kernel=3, padding="full", downsample="stride", bias=False)
    assert without.conv.bias is None and "conv.bias" not in without.state_dict()
    assert with_bias.conv.bias is not None
    assert not without(torch.zeros(1, 3, 8, 8)).any()  # no bias: a blank image gives a blank map


def test_the_padding_registry_says_how_much_each_kind_pads():
    assert PADDINGS["full"].amounts(5, conv=True) == (4, 4)
    assert PADDINGS["full"].amounts(5) == PADDINGS["zeros"].amounts(5) == (2, 2)
    assert PADDINGS["zeros"].amounts(4, conv=True) == (1, 2)
    assert PADDINGS["valid"].amounts(5, conv=True) == (0, 0)
    with pytest.raises(LayerConfigError, match="valid"):
        Pad2d("valid", 1, 1, 1, 1)  # 'valid' pads nothing: no Pad2d


@pytest.mark.parametrize("downsample", sorted(DOWNSAMPLES))
def test_the_in_place_relu_gives_the_numbers_of_a_separate_one(downsample):
    """The ReLU writes over the conv's output instead of allocating a map of its own: outputs, input gradients
    and weight gradients are those of the same block with a ReLU that makes a new tensor, bit for bit, in
    training and evaluation (afc keeps its own activation). Were anything to read the conv's output after the
    ReLU, the backward pass would raise or the gradients differ."""
    torch.manual_seed(0)
    block = ConvBlock(2, 4, kernel=3, padding="circular", downsample=downsample, blur_size=3)
    separate = ConvBlock(2, 4, kernel=3, padding="circular", downsample=downsample, blur_size=3)
    separate.load_state_dict(block.state_dict())
    if isinstance(block.act, nn.ReLU):
        assert block.act.inplace
        separate.act = nn.ReLU()
    x = torch.randn(3, 2, 16, 16)
    for train in (True, False):
        block.train(train), separate.train(train)
        xs, outs = [x.clone().requires_grad_(), x.clone().requires_grad_()], []
        for m, xi in zip((block, separate), xs):
            torch.manual_seed(1)  # lps samples with Gumbel noise in training: the same noise for both
            out = m(xi)
            (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
            outs.append(out)
        assert torch.equal(outs[0], outs[1]) and torch.equal(xs[0].grad, xs[1].grad)
        for (name, a), b in zip(block.named_parameters(), separate.parameters()):
            assert (a.grad is None and b.grad is None) or torch.equal(a.grad, b.grad), name  # lps's scores: eval
        block.zero_grad(), separate.zero_grad()


def test_make_downsample_refuses_an_unknown_padding():
    """Catches make_downsample no longer checking `padding`: max pooling ignores it, so a typo would pass silently."""
    from invariance_lab.nn.downsample import make_downsample
    with pytest.raises(LayerConfigError, match="circular"):
        make_downsample("max", 4, "circluar", 3)
