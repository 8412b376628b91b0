"""network_key against brute force: whole networks built from one seed, their weights and outputs compared.

The rule reads what each block builds, so a downsample kind or head registered later is covered by these tests
without an edit: each runs over every registered kind (and head)."""

import itertools

import pytest
import torch

from invariance_lab.config.duplicates import network_key
from invariance_lab.nn.downsample import DOWNSAMPLES
from invariance_lab.nn.layers import PADDING_KINDS
from invariance_lab.nn.models import HEADS, build_model, check_model, resolve_spec

KINDS = list(DOWNSAMPLES)


_BUILT: dict = {}  # (resolved spec, canvas) -> _built's answer: the grids below share many networks, only read


def _built(spec: dict, canvas: int):
    """(network_key, what brute force compares), or None where the spec cannot be built on the canvas. Specs that
    resolve to the same factors (a blur_padding resolve_spec leaves out) share one build: both the key and the
    network are made from the resolved factors alone."""
    factors = resolve_spec(spec)
    at = (repr(sorted(factors.items())), canvas)
    if at not in _BUILT:
        _BUILT[at] = _build(factors, canvas)
    return _BUILT[at]


def _build(factors: dict, canvas: int):
    try:
        side = check_model(factors, canvas)
    except ValueError:
        return None
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(0)
        net = build_model(factors, num_classes=3, canvas=canvas).eval()
    x = torch.randn(4, 1, canvas, canvas, generator=torch.Generator().manual_seed(1))  # signed: few dead units
    with torch.no_grad():
        maps = net.features(x)
        outputs = (maps, net.fc(net.pool(maps)))  # net(x), from the maps already computed
    return network_key(factors, side), (net.state_dict(), outputs)


def _same(a, b) -> bool:
    """The same weights and buffers, and bit for bit the same feature maps and logits."""
    (weights_a, out_a), (weights_b, out_b) = a, b
    return (weights_a.keys() == weights_b.keys()
            and all(weights_a[k].shape == weights_b[k].shape and torch.equal(weights_a[k], weights_b[k])
                    for k in weights_a)
            and all(p.shape == q.shape and torch.equal(p, q) for p, q in zip(out_a, out_b)))


def _grid(kind: str, canvas: int, kernels, paddings, blur_sizes, blur_paddings, **more) -> dict:
    specs = {}
    for k, p, b, bp in itertools.product(kernels, paddings, blur_sizes, blur_paddings):
        spec = dict(downsample=kind, kernel=k, padding=p, blur_size=b, channels=[6, 6], **more)
        built = _built(spec if bp is None else dict(spec, blur_padding=bp), canvas)
        if built is not None:
            specs[(k, p, b, bp)] = built
    return specs


def _disagreements(built: dict, only_same: bool = False) -> list:
    """Pairs the rule calls one network that are two (or the other way round; with `only_same`, the first kind
    alone: the pairs the rule calls two are not compared)."""
    return [(a, b, "rule: same" if built[a][0] == built[b][0] else "rule: different")
            for a, b in itertools.combinations(built, 2)
            if not (only_same and built[a][0] != built[b][0])
            and (built[a][0] == built[b][0]) != _same(built[a][1], built[b][1])]


@pytest.mark.parametrize("kind", KINDS)
def test_the_rule_agrees_with_brute_force_for_every_downsample_kind(kind, one_thread):
    # blur_padding and blur_size beside a kind that does not blur, padding around a 1x1 conv: the same network;
    # beside a blur, or around a 3x3 conv: another. 14 px, where the second block's map is odd, for kinds that take
    # it: a stride-2 window then reads the padded column, which on an even map it skips (padding there changes
    # nothing only by that coincidence, which the rule does not claim: a network trained twice, never one lost).
    canvas = 14 if _built({"downsample": kind, "channels": [6, 6]}, 14) is not None else 16
    built = _grid(kind, canvas, (1, 3), ("zeros", "circular", "reflect", "valid"), (1, 3), (None, "zeros", "reflect"))
    assert len(built) >= 8, sorted(built)
    assert not _disagreements(built)


@pytest.mark.parametrize("kind", KINDS)
def test_the_rule_never_calls_two_networks_one(kind, one_thread):
    # every padding kind, even kernels and blurs too: where the rule says "the same network" it is, bit for bit
    built = _grid(kind, 16, (1, 2, 3), PADDING_KINDS, (1, 2, 3), (None, "zeros", "reflect"))
    assert _disagreements(built, only_same=True) == []


@pytest.mark.parametrize("kind", KINDS)
def test_heads_are_one_network_exactly_when_the_last_map_is_1x1(kind, one_thread):
    # 16 px: four stride-2 blocks leave 1x1, where flatten, global_avg and global_max return the same numbers
    built = {}
    for head, blocks in itertools.product(HEADS, (2, 4)):
        one = _built({"downsample": kind, "head": head, "channels": [6] * blocks, "padding": "circular"}, 16)
        if one is not None:
            built[(head, blocks)] = one
    assert not _disagreements(built)
    if DOWNSAMPLES[kind].stride > 1:
        assert len({built[(h, 4)][0] for h in HEADS if (h, 4) in built}) == 1


def test_kinds_that_build_the_same_blocks_are_one_network(one_thread):
    built = {kind: one for kind in KINDS
             if (one := _built({"downsample": kind, "channels": [6, 6], "padding": "circular"}, 16)) is not None}
    assert len(built) == len(KINDS)
    assert not _disagreements(built)
    assert built["blur_avg"][0] == built["blur_stride"][0]  # the registry's alias (alias_of)


def test_the_rule_leaves_torchs_random_numbers_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    network_key(resolve_spec({"downsample": "tips", "kernel": 7}), 4)  # a block not built before: draws weights
    assert torch.equal(torch.rand(3), expected)


def test_a_kind_no_block_uses_still_tells_networks_apart(one_thread):
    # one block under first_stride: 1 downsamples with none whatever the kind, yet the kind's throwaway blocks
    # (nn/models._draw_as_before) draw other random numbers before the weights: lps and tips are other networks
    built = {kind: _built({"downsample": kind, "channels": [6], "first_stride": 1, "head": "global_avg"}, 16)
             for kind in ("none", "lps", "tips", "max")}
    assert _disagreements(built, only_same=True) == []  # (none and max: the same, kept apart)
    assert not _same(built["none"][1], built["lps"][1])


def test_networks_of_other_widths_are_not_duplicates():
    """Catches the channel widths left out of the key: [8, 16] would be dropped as the network of [4, 8]."""
    from invariance_lab.config.factorial import expand
    kept = expand({"arch": "conv_gap", "channels": [[4, 8], [8, 16]]}, 32)
    assert list(kept.models) == ["c4x8", "c8x16"] and kept.left_out == {}
    narrow, wide = (resolve_spec({"arch": "conv_gap", "channels": c}) for c in ([4, 8], [8, 16]))
    assert network_key(narrow, check_model(narrow, 32)) != network_key(wide, check_model(wide, 32))
