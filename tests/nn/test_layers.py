"""Tests for invariance_lab.nn.layers: filters, the downsampling registry, sizes, refusals, and exact (in)variance
under circular shifts. APS has its own file, tests/nn/test_aps.py."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from invariance_lab.nn.block import ConvBlock
from invariance_lab.nn.downsample import (DOWNSAMPLE_KINDS, DOWNSAMPLES, get_downsample, make_downsample,
    register_downsample)
from invariance_lab.nn.models import create_model
from invariance_lab.nn.layers import PADDING_KINDS, BlurPool, LayerConfigError, MaxPoolS1, binomial_filter
from .adversarial import distinct

SIDE = 32  # every circular-shift test uses 32x32 inputs and all 32*32 shifts


def all_rolls(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (H*W*N, C, H, W): every circular shift of every image, shift (0, 0) first."""
    h, w = x.shape[-2:]
    return torch.cat([torch.roll(x, (dy, dx), dims=(-2, -1)) for dy in range(h) for dx in range(w)])


def stack(downsample: str, blur_size: int, seed: int, channels: int = 4) -> nn.Module:
    """Three circular ConvBlocks (total stride 8 when downsampling) and global average pooling."""
    torch.manual_seed(seed)
    blocks = [ConvBlock(1 if i == 0 else channels, channels, 3, "circular", downsample, blur_size) for i in range(3)]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def probe_images(seed: int) -> torch.Tensor:
    """(3, 1, 32, 32): uniform noise; a sparse 'letter' (three 2-pixel-wide strokes and a dot on a zero
    background); a horizontal stripe that wraps around."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, SIDE, SIDE, generator=g)
    letter = torch.zeros(1, 1, SIDE, SIDE)
    for _ in range(3):
        r, c = torch.randint(0, SIDE - 12, (2,), generator=g).tolist()
        length = int(torch.randint(4, 12, (1,), generator=g))
        if torch.rand(1, generator=g) < 0.5:
            letter[..., r:r + 2, c:c + length] = 1.0
        else:
            letter[..., r:r + length, c:c + 2] = 1.0
    letter[..., 28, 29] = 1.0
    stripe = torch.zeros(1, 1, SIDE, SIDE)
    stripe[..., 10:12, :] = 1.0
    return torch.cat([noise, letter, stripe])


def max_shift_change(net: nn.Module, x: torch.Tensor, shifts: list[tuple[int, int]]) -> float:
    """Largest |f(roll(x)) - f(x)| over the given shifts and all images."""
    with torch.no_grad():
        base = net(x)
        return max((net(torch.roll(x, s, dims=(-2, -1))) - base).abs().max().item() for s in shifts)


# --- binomial filter --------------------------------------------------------------------------------

@pytest.mark.parametrize("size", range(1, 8))
def test_binomial_filter(size):
    f = binomial_filter(size)
    assert f.shape == (size, size) and f.dtype == torch.float32
    assert f.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(f, f.T) and torch.equal(f, f.flip(0)) and torch.equal(f, f.flip(1))
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    row = row / row.sum()
    assert torch.allclose(f, torch.outer(row, row).float(), atol=1e-7)


def test_binomial_filter_known_values():
    assert torch.equal(binomial_filter(1), torch.tensor([[1.0]]))
    row = torch.tensor([1.0, 2.0, 1.0])
    assert torch.allclose(binomial_filter(3), torch.outer(row, row) / 16)


@pytest.mark.parametrize("size", [0, 8])
def test_binomial_filter_rejects_sizes(size):
    with pytest.raises(ValueError, match="blur size"):
        binomial_filter(size)


# --- sizes and refusals -----------------------------------------------------------------------------

def expected_refused(downsample: str, padding: str, size: int) -> bool:
    """The documented refusals for kernel 3, blur 3 at sides 16..32: only the polyphase kinds (APS, LPS, TIPS,
    AFC) on an odd map.

    'same' paddings keep the side until the subsampling; 'valid' loses 2 (conv), 1 (max-pool k2 s1), 2 (blur)."""
    if not (downsample.startswith("aps") or downsample in ("lps", "tips", "afc")):
        return False
    if padding != "valid":
        return size % 2 == 1
    before = size - 2 - (1 if downsample == "aps_max" else 0) - (2 if downsample in ("aps_max", "aps_stride", "lps")
                                                               else 0)
    return before % 2 == 1


@pytest.mark.parametrize("padding", PADDING_KINDS)
@pytest.mark.parametrize("downsample", DOWNSAMPLE_KINDS)
def test_every_combination_builds_and_reports_its_size(downsample, padding):
    torch.manual_seed(0)
    block = ConvBlock(2, 4, 3, padding, downsample, blur_size=3)
    for size in (16, 17, 24, 32):
        if expected_refused(downsample, padding, size):
            with pytest.raises(ValueError):
                block.out_size(size)
            continue
        out = block.out_size(size)
        y = block(torch.rand(3, 2, size, size))
        assert y.shape == (3, 4, out, out), (downsample, padding, size)


@pytest.mark.parametrize("padding", PADDING_KINDS)
@pytest.mark.parametrize("downsample", DOWNSAMPLE_KINDS)
def test_out_size_refuses_exactly_what_cannot_run(downsample, padding):
    """On tiny maps (and even kernels / blurs), out_size raises iff forward fails or gives an empty map."""
    for kernel, blur in [(3, 3), (2, 4), (5, 1)]:
        block = ConvBlock(1, 2, kernel, padding, downsample, blur_size=blur)
        for size in range(1, 8):
            try:
                y = block(torch.rand(1, 1, size, size))
                runs = min(y.shape[-2:]) > 0
            except (RuntimeError, ValueError):
                runs = False
            if runs:
                assert block.out_size(size) == y.shape[-1], (kernel, blur, size)
            else:
                with pytest.raises(ValueError):
                    block.out_size(size)


def test_odd_size_aps_message_names_the_setting():
    block = ConvBlock(1, 4, 3, "circular", "aps_max")
    with pytest.raises(ValueError) as info:
        block.out_size(15)
    message = str(info.value)
    for part in ("aps_max", "even", "15x15", "'circular'", "kernel=3"):
        assert part in message


def test_sizes_through_a_three_block_stack():
    blocks = [ConvBlock(1, 2, 3, "circular", "max") for _ in range(3)]
    size = 28
    for b in blocks:
        size = b.out_size(size)
    assert size == 3  # 28 -> 14 -> 7 -> 3 (floor, as PyTorch)
    blocks = [ConvBlock(1, 2, 3, "valid", "stride") for _ in range(3)]
    assert blocks[0].out_size(32) == 15  # (32 - 3) // 2 + 1


def test_unknown_kind_lists_valid_names():
    with pytest.raises(LayerConfigError) as info:
        make_downsample("maxx", 4, "circular", 3)
    assert "unknown downsample 'maxx'; did you mean 'max'?" in str(info.value)
    assert ", ".join(DOWNSAMPLE_KINDS) in str(info.value)
    with pytest.raises(ValueError, match="circular, reflect, valid"):
        ConvBlock(1, 2, 3, "wrap", "max")


def test_block_structure():
    block = ConvBlock(1, 4, 3, "circular", "stride")
    assert block.conv.stride == (2, 2) and block.conv.padding == (0, 0)
    assert isinstance(block.down, nn.Identity) and isinstance(block.act, nn.ReLU)
    assert isinstance(ConvBlock(1, 4, 3, "valid", "none").pad, nn.Identity)
    assert ConvBlock(1, 4, 3, "circular", "blur_stride").conv.stride == (1, 1)


# --- the downsampling registry ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", DOWNSAMPLES)
def test_the_registry_entry_says_what_the_block_does(kind):
    """The conv's stride, the block's stride and its output size all come from the kind's one entry, and agree
    with what the module does to a real map."""
    entry = get_downsample(kind)
    block = ConvBlock(2, 3, 3, "circular", kind, blur_size=3)
    assert block.conv.stride == (entry.conv_stride, entry.conv_stride) and block.stride == entry.stride
    for side in (16, 32):
        y = block(torch.rand(1, 2, side, side))
        assert y.shape[-1] == block.out_size(side) == side // block.stride
    assert entry.describe() and kind in DOWNSAMPLE_KINDS


def test_a_newly_registered_kind_works_everywhere(monkeypatch):
    """Registering is all it takes: two stacked 2x2 max pools make a stride-4 kind that builds, runs, sizes and
    refuses like the others."""
    from invariance_lab.nn.downsample import MAX_S2, Downsample

    monkeypatch.setitem(DOWNSAMPLES, "max4", Downsample("max4", stages=(MAX_S2, MAX_S2)))
    block = ConvBlock(1, 2, 3, "zeros", "max4")
    assert block.stride == 4 and block.out_size(24) == 6 == block(torch.rand(1, 1, 24, 24)).shape[-1]
    assert isinstance(block.down, nn.Sequential) and len(block.down) == 2
    with pytest.raises(LayerConfigError, match="does not fit a 1x1 map"):
        block.out_size(3)  # 3 -> 1 after the first pool: no room for the second


def test_register_downsample_returns_the_entry(monkeypatch):
    from invariance_lab.nn import downsample

    monkeypatch.setattr(downsample, "DOWNSAMPLES", dict(DOWNSAMPLES))

    entry = register_downsample("stride4", conv_stride=4)
    assert downsample.DOWNSAMPLES["stride4"] is entry and entry.stride == 4
    assert entry.describe() == "the conv itself has stride 4"


# --- downsampling modules -----------------------------------------------------------------------------

def test_classic_max_pool_aliasing_example():
    """Max-pool stride 2: [0,0,1,1,0,0,1,1] -> [0,1,0,1]; shifted by one pixel -> [1,1,1,1]."""
    pool = make_downsample("max", 1, "circular", 3)
    row = torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1])
    image = row.expand(2, 8)[None, None]  # two equal rows: 2-D equivalent of the 1-D signal
    assert pool(image)[0, 0, 0].tolist() == [0, 1, 0, 1]
    assert pool(torch.roll(image, 1, dims=-1))[0, 0, 0].tolist() == [1, 1, 1, 1]


def test_blurpool_is_equivariant_to_even_shifts_and_keeps_constants():
    torch.manual_seed(0)
    blur = BlurPool(3, size=3, stride=2, padding="circular")
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(blur(torch.roll(x, (2, 4), (-2, -1))), torch.roll(blur(x), (1, 2), (-2, -1)), atol=1e-6)
    for padding in ("circular", "reflect"):
        ones = BlurPool(3, size=5, padding=padding)(torch.ones(1, 3, 9, 9))
        assert ones.shape[-1] == 5 and torch.allclose(ones, torch.ones_like(ones))
    assert torch.equal(BlurPool(3, size=1)(x), x[..., ::2, ::2])  # blur size 1 = plain subsampling


# --- invariance of whole stacks ------------------------------------------------------------------------

@pytest.mark.parametrize("downsample", ["max", "stride"])
def test_circular_strided_stack_is_invariant_only_to_multiples_of_8(downsample):
    net = stack(downsample, 3, seed=0)
    x = torch.rand(4, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    multiples = [(dy, dx) for dy in range(0, SIDE, 8) for dx in range(0, SIDE, 8)]
    assert max_shift_change(net, x, multiples) < 1e-5
    assert max_shift_change(net, x, [(0, 1), (1, 0)]) > 1e-3  # aliasing: a one-pixel shift matters


def test_stride_one_circular_stack_is_invariant_and_equivariant():
    net = stack("none", 3, seed=0)
    x = probe_images(0)
    rolls, index = distinct(all_rolls(x))  # the stripe's rolls along it are one image
    with torch.no_grad():
        out = net(rolls)[index].view(SIDE * SIDE, x.shape[0], -1)
    assert (out - out[0]).abs().max().item() < 1e-5
    block = ConvBlock(1, 4, 3, "circular", "none")
    for shift in [(0, 1), (3, 5), (17, 30)]:
        rolled_after = torch.roll(block(x), shift, (-2, -1))
        assert torch.allclose(block(torch.roll(x, shift, (-2, -1))), rolled_after, atol=1e-6)


@pytest.mark.parametrize("downsample", ["none", "max", "stride", "blur_max", "aps_stride"])
@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_zero_padding_done_by_the_conv_is_bit_for_bit_the_explicit_padding(downsample, kernel):
    torch.manual_seed(0)
    block = ConvBlock(3, 5, kernel=kernel, padding="zeros", downsample=downsample).eval()
    x = torch.rand(4, 3, 16, 16)
    explicit = block.down(block.act(F.conv2d(F.pad(x, (kernel // 2,) * 4), block.conv.weight, block.conv.bias,
                                             stride=block.conv.stride)))
    assert torch.equal(block(x), explicit)
    assert block.out_size(16) == block(x).shape[-1]


def test_blur_avg_is_blur_stride_by_another_name():
    # Zhang 2019's blurred average pooling and blurred strided conv are one BlurPool(s2) after the ReLU: one
    # network, which the registry says, and which a seed builds with the same weights and the same outputs
    assert get_downsample("blur_avg").alias_of == "blur_stride"
    assert "the same network as blur_stride" in get_downsample("blur_avg").describe()
    assert not get_downsample("blur_stride").alias_of
    x = torch.rand(3, 1, 16, 16)
    nets = []
    for kind in ("blur_stride", "blur_avg"):
        torch.manual_seed(0)
        nets.append(create_model(dict(downsample=kind, head="global_avg", padding="circular", channels=[4, 8]),
                                 num_classes=2, canvas=16).eval())
    a, b = nets
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("downsample", DOWNSAMPLES)
def test_circular_padding_of_channels_last_maps_is_bit_for_bit_f_pad(downsample, monkeypatch):
    """A block pads a channels-last map that needs no gradient for its channels-last conv with two torch.cat
    (layers.wrap): the same values as F.pad, in the map's layout, and a placed circular network gives the same bits
    as with F.pad everywhere, whatever its kernel, blur and batch; where a gradient flows F.pad itself runs."""
    from invariance_lab.nn import block as block_module
    from invariance_lab.nn.layers import WRAP_MIN, wrap
    from invariance_lab.nn.models import place

    x = torch.rand(5, 6, 14, 15).to(memory_format=torch.channels_last)
    for amounts in [(1, 1, 1, 1), (0, 1, 0, 1), (2, 2, 2, 2), (1, 2, 1, 2), (3, 1, 0, 4)]:
        out = wrap(x, *amounts)
        assert torch.equal(out, F.pad(x, amounts, mode="circular")), amounts
        assert out.is_contiguous(memory_format=torch.channels_last)  # what the next convolution reads
    with pytest.raises(RuntimeError):  # more than the side: F.pad's own refusal
        wrap(x, 16, 16, 16, 16)
    conv = ConvBlock(6, 4, kernel=3, padding="circular", downsample="none").to(memory_format=torch.channels_last)
    assert x.numel() >= WRAP_MIN and conv.padded(x).is_contiguous(memory_format=torch.channels_last)
    assert not conv.padded(x.clone().requires_grad_()).is_contiguous(memory_format=torch.channels_last)  # F.pad's

    # the largest networks' maps (33 x 3 x 16 x 16) are padded by wrap, the smaller ones by F.pad
    nets, images = [], [torch.rand(n, 1, c, c) for n, c in ((1, 8), (7, 12), (33, 16))]
    for kernel, blur in ((3, 3), (2, 1), (5, 5)):
        torch.manual_seed(0)
        f = dict(downsample=downsample, head="flatten", padding="circular", channels=[3, 5], kernel=kernel,
                 blur_size=blur)
        nets += [(place(create_model(f, num_classes=2, canvas=x.shape[-1]), torch.device("cpu")).eval(), x)
                 for x in images]
    wrapped = []
    monkeypatch.setattr(block_module, "wrap", lambda x, *a: wrapped.append(x.shape) or wrap(x, *a))
    with torch.inference_mode():
        ours = [net(x) for net, x in nets]
        monkeypatch.setattr(ConvBlock, "padded", lambda self, x: self.pad(x))
        theirs = [net(x) for net, x in nets]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert bool(wrapped) == (downsample not in ("tips", "afc"))  # whose maps leave a block in another layout


def test_the_stride_1_max_pool_pads_one_pixel_right_and_bottom_in_the_networks_mode():
    """MaxPoolS1 keeps the size by padding right/bottom (output (i, j) = max of x[i:i+2, j:j+2]), not left/top,
    with the padding's own fill ('full' pads only convs k-1: here zeros); 'valid' pads nothing and shrinks by 1."""
    x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))  # negative values: zero fill matters
    fills = [("zeros", "constant"), ("circular", "circular"), ("reflect", "reflect"), ("full", "constant")]
    for padding, mode in fills:
        assert torch.equal(MaxPoolS1(padding)(x), F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode=mode), 2, 1)), padding
    assert torch.equal(MaxPoolS1("valid")(x), F.max_pool2d(x, 2, 1))
