"""Tests for invariance_lab.nn.models: every registered model builds and runs or is refused clearly; the head
and preset registries; exact invariance of circular stride-1 networks."""

import copy
import functools
import itertools

import pytest
import torch
from conftest import ROOT

from invariance_lab.config.load import load_config
from invariance_lab.config.models import resolved_models
from invariance_lab.core.errors import ConfigError, InvlabError
from invariance_lab.nn.block import ConvBlock
from invariance_lab.nn.downsample import DOWNSAMPLES
from invariance_lab.nn.layers import PADDING_KINDS, BlurPool, Pad2d
from invariance_lab.nn.models import (HEADS, PRESETS, build_model, check_model, count_parameters, create_model,
    list_models, list_presets, place, register_preset, resolve_spec)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny convs: one thread beats two fighting for cores
# torch.manual_seed as far as CPU tensors go, without its queue of seeds for other devices (a formatted stack
# each, 0.4 ms under pytest, hundreds of times here)
seed = torch.random.default_generator.manual_seed

CHANNELS = [3, 4, 4]  # three blocks: total stride 8 with downsampling
CANVASES = (16, 24, 27, 32)  # 27 is odd, and valid padding shrinks maps to odd sides: APS refuses both

SPECS = [pytest.param({"arch": name}, id=name) for name in list_models()] + [
    pytest.param(dict(downsample=d, head=h, padding=p), id=f"{d}-{h}-{p}")
    for d, h, p in itertools.product(DOWNSAMPLES, HEADS, PADDING_KINDS)]


def first_failure(f: dict, canvas: int) -> tuple[int, int, str] | None:
    """The oracle: run bare blocks on a real map. (block number, side entering it, reason) of the first block
    that cannot run, or None if all run. Reason: 'even' (APS refused an odd map) or 'fit' (anything else).
    Asked once per factors and canvas (both tests below ask it of every spec)."""
    return _first_failure(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(f.items())), canvas)


@functools.lru_cache(maxsize=None)
def _bare_blocks(items: tuple) -> list[ConvBlock]:  # stateless: every canvas runs the same blocks
    f = dict(items)
    return [ConvBlock(cin, cout, f["kernel"], f["padding"], f["downsample"], f["blur_size"])
            for cin, cout in zip([1] + list(f["channels"][:-1]), f["channels"])]


@functools.lru_cache(maxsize=None)
def _first_failure(items: tuple, canvas: int) -> tuple[int, int, str] | None:
    x = torch.rand(1, 1, canvas, canvas, generator=torch.Generator().manual_seed(canvas))
    for i, block in enumerate(_bare_blocks(items), 1):
        side = x.shape[-1]
        try:
            x = block(x)
        except ValueError as e:
            assert "even" in str(e)
            return i, side, "even"
        except RuntimeError:
            return i, side, "fit"
        if min(x.shape[-2:]) == 0:
            return i, side, "fit"
    return None


REASONS = {"even": "needs an even feature map", "fit": "does not fit"}


@pytest.mark.parametrize("spec", SPECS)
def test_every_registered_model_builds_and_runs_or_is_refused_clearly(spec):
    """Every preset and every downsample x head x padding, on four canvases: check_model refuses exactly what
    cannot run (bare blocks are the oracle); a refusal names the block, the side it got, every factor and the
    reason; anything accepted builds through create_model, with the head's feature count and output shape."""
    f = resolve_spec({**spec, "channels": CHANNELS})
    for canvas in CANVASES:
        failure = first_failure(f, canvas)
        if failure is not None:
            block, side, reason = failure
            with pytest.raises(ValueError) as info:
                check_model(f, canvas)
            message = str(info.value)
            for part in (f"block {block} of 3 on a {canvas}px canvas", f"input {side}x{side}",
                         f"padding={f['padding']!r}", f"downsample={f['downsample']!r}", REASONS[reason]):
                assert part in message, (part, message)
            if reason == "even":
                assert message.startswith(f"block {block} of 3 on a {canvas}px canvas: {f['downsample']} needs")
            continue
        side = check_model(f, canvas)
        seed(0)
        net = create_model({**spec, "channels": CHANNELS}, num_classes=3, canvas=canvas)
        x = torch.rand(2, 1, canvas, canvas)
        features, own = [], net.features  # what features() hands the head, seen during the one forward pass
        net.features = lambda x: features.append((maps := own(x)).shape) or maps
        assert net(x).shape == (2, 3) and count_parameters(net) > 0
        assert features == [(2, CHANNELS[-1], side, side)]
        assert net.fc.in_features == HEADS[f["head"]].features(CHANNELS[-1], side)


@pytest.mark.parametrize("name", list_models())
def test_create_model_by_name_is_the_preset(name):
    seed(0)
    a = create_model(name, num_classes=2, canvas=32)
    seed(0)
    b = build_model(resolve_spec({"arch": name}), num_classes=2, canvas=32)
    assert a.factors == b.factors == resolve_spec(a.factors)  # resolving is idempotent: fingerprints stay put
    assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))
    assert list_presets()[name]["description"] == PRESETS[name]["description"]


def test_heads_pool_as_registered():
    h = torch.rand(2, 3, 4, 4)
    assert torch.equal(HEADS["global_avg"].pool(h), h.mean(dim=(2, 3)))
    assert torch.equal(HEADS["global_max"].pool(h), h.amax(dim=(2, 3)))
    assert torch.equal(HEADS["flatten"].pool(h), h.reshape(2, 48))
    assert [HEADS[k].features(3, 4) for k in ("flatten", "global_avg", "global_max")] == [48, 3, 3]


@pytest.mark.parametrize("spec, needle", [
    ({"arch": "conv_maxpol"}, "unknown arch 'conv_maxpol'; did you mean 'conv_maxpool'?"),
    ({"downsample": "maxx"}, "unknown downsample 'maxx'; did you mean 'max'?"),
    ({"head": "gap"}, "unknown head 'gap'"),
    ({"padding": "wrap"}, "choose one of: zeros, circular, reflect, valid"),
])
def test_unknown_names_are_refused_with_the_choices(spec, needle):
    with pytest.raises(InvlabError, match=needle.replace("?", r"\?")):
        create_model(spec, num_classes=2, canvas=32)


@pytest.mark.parametrize("spec, kwargs, needle", [
    # a misspelt factor had built the default (zero padding) without a word
    ({"arch": "conv_gap", "paddin": "circular"}, {}, "[paddin] unknown key; did you mean 'padding'?"),
    ({"arch": "conv_gap", "kernel": 0}, {}, "[kernel]"),
    (["conv_gap"], {}, "create_model takes a preset name (list_models()) or a dict of factors"),
    ("conv_gap", {"num_classes": 0}, "num_classes must be a whole number of at least 1; got 0"),
    ("conv_gap", {"canvas": "32"}, "canvas must be a whole number of at least 1; got '32'"),
    ("conv_gap", {"in_channels": 0}, "in_channels must be a whole number of at least 1; got 0"),
])
def test_a_spec_is_checked_as_a_configs_model_is(spec, kwargs, needle):
    with pytest.raises(ConfigError) as e:
        create_model(spec, **{"num_classes": 2, "canvas": 32, **kwargs})
    assert needle in str(e.value)


def test_register_preset_checks_its_names(monkeypatch):
    from invariance_lab.nn import models

    monkeypatch.setattr(models, "PRESETS", dict(PRESETS))

    with pytest.raises(InvlabError, match="unknown head 'gap'"):
        register_preset("bad", "a typo", head="gap")
    assert "bad" not in models.PRESETS
    register_preset("wide", "wider blocks", channels=[64, 64], head="global_max")
    assert models.list_models()[-1] == "wide"
    assert create_model("wide", num_classes=2, canvas=16).fc.in_features == 64


def test_presets_match_the_card():
    p = list_presets()
    assert (p["conv_only"]["downsample"], p["conv_only"]["head"]) == ("none", "flatten")
    assert (p["conv_maxpool"]["downsample"], p["conv_maxpool"]["head"]) == ("max", "flatten")
    assert (p["strided_conv"]["downsample"], p["strided_conv"]["head"]) == ("stride", "flatten")
    assert (p["conv_gap"]["downsample"], p["conv_gap"]["head"]) == ("none", "global_avg")


@pytest.mark.parametrize("spec", SPECS)
def test_place_runs_own_networks_channels_last_on_cpu_with_the_same_values(spec):
    """models.place: every 4-D weight channels_last, outputs equal to the default layout's up to float round-off,
    the state dict's values unchanged, and the same after a backward pass (the gradients too)."""
    # the first of these that builds (APS with valid padding needs an even map: one block on 32 px)
    f, canvas = next((f, c) for f in (resolve_spec({**spec, "channels": ch}) for ch in (CHANNELS, [3]))
                     for c in CANVASES if first_failure(f, c) is None)
    seed(0)
    plain = build_model(f, num_classes=3, canvas=canvas)
    placed = place(copy.deepcopy(plain), torch.device("cpu"))  # the same weights, without building it twice
    conv_weights = [p for p in placed.parameters() if p.dim() == 4]
    assert conv_weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), placed.state_dict().values()))
    x = torch.rand(5, 1, canvas, canvas)
    seed(1)  # the same draws for both where a layer samples in training (LPS's Gumbel-softmax)
    a = plain(x)
    seed(1)
    b = placed(x)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), float((a - b).abs().max())
    a.square().sum().backward()
    b.square().sum().backward()
    for p, q in zip(plain.parameters(), placed.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6)


def test_place_leaves_a_model_of_your_own_in_its_layout():
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net(torch.rand(1, 2, 8, 8))
    place(net, torch.device("cpu"))
    assert net[0].weight.is_contiguous()
    assert not net[0].weight.is_contiguous(memory_format=torch.channels_last)


GAP_SIDE = 16  # stride 1: exact at every shift whatever the side, and every shift of 16 px is a distinct roll


def circular_gap_net(seed=0, placed=False):
    torch.random.default_generator.manual_seed(seed)
    f = resolve_spec(dict(downsample="none", head="global_avg", padding="circular", channels=[8, 8, 8], kernel=3))
    net = build_model(f, num_classes=2, canvas=GAP_SIDE).eval()
    return place(net, torch.device("cpu")) if placed else net


@pytest.mark.parametrize("placed", [False, True], ids=["default-layout", "placed"])
def test_circular_stride1_gap_is_exactly_invariant_untrained(placed):
    net = circular_gap_net(placed=placed)
    x = torch.rand(4, 1, GAP_SIDE, GAP_SIDE)
    with torch.no_grad():
        ref = net(x)
        worst = max(float((net(torch.roll(x, (dy, dx), (2, 3))) - ref).abs().max())
                    for dx in range(GAP_SIDE) for dy in range(GAP_SIDE))
    assert worst < 1e-5


@pytest.mark.parametrize("placed", [False, True], ids=["default-layout", "placed"])
def test_circular_stride1_gap_is_exactly_invariant_after_training(placed):
    net = circular_gap_net(1, placed)
    x = torch.rand(64, 1, GAP_SIDE, GAP_SIDE)
    y = (x[:, 0, :GAP_SIDE // 2].mean((1, 2)) > x[:, 0, GAP_SIDE // 2:].mean((1, 2))).long()
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
                    for dx in range(0, GAP_SIDE, 3) for dy in range(0, GAP_SIDE, 5))
    assert worst < 1e-5


def test_zero_padding_flatten_is_not_invariant():
    seed(0)
    net = build_model(resolve_spec({"arch": "conv_only", "channels": [4, 4]}), num_classes=2, canvas=16).eval()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert float((net(torch.roll(x, 1, 3)) - net(x)).abs().max()) > 1e-4


# ----------------------------------------------------------------------------------------------- later factors: bias


def test_bias_is_in_a_resolved_spec_only_where_it_is_not_the_default():
    """A resolved spec is what checkpoints fingerprint: the default (bias true) must leave it as it always was."""
    for spec in ({"arch": "conv_gap"}, {"arch": "conv_gap", "bias": True}, {"padding": "full"}):
        assert set(resolve_spec(spec)) == {"arch", "downsample", "head", "padding", "channels", "kernel", "blur_size"}
    f = resolve_spec({"arch": "strided_conv", "bias": False, "padding": "full"})
    assert f["bias"] is False and resolve_spec(f) == f  # idempotent: a checkpoint's factors resolve to themselves
    with pytest.raises(InvlabError, match="bias must be true or false"):
        resolve_spec({"arch": "conv_gap", "bias": "no"})


def test_seeded_weights_of_the_quick_config_are_unchanged():
    """configs/quick.yaml's conv_only (channels [4, 8], 24 px), seed 0: the sha256 of its state dict as it was before
    bias and full padding existed. A default that draws one more (or one fewer) random number changes it."""
    import hashlib

    seed(0)
    net = create_model({"arch": "conv_only", "channels": [4, 8]}, num_classes=2, canvas=24)
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.contiguous().numpy().tobytes())
    assert h.hexdigest()[:16] == "ccf52d962586c29c"


@pytest.mark.parametrize("head", list(HEADS))
def test_kayhans_network_full_padding_without_bias_builds_with_every_head(head):
    """Four 3x3 convs, stride 2 each (the presets' one stride per kind), full padding, no bias: maps grow in the
    convs ((s + 2 * 2 - 3) // 2 + 1: 32 -> 17 -> 10 -> 6 -> 4) and every head reads the grown map."""
    spec = dict(downsample="stride", head=head, padding="full", bias=False, channels=[8, 8, 16, 16])
    net = create_model(spec, num_classes=2, canvas=32, in_channels=3)
    assert check_model(net.factors, 32) == 4 and net.features(torch.rand(2, 3, 32, 32)).shape == (2, 16, 4, 4)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 2)
    assert all(b.conv.bias is None for b in net.blocks) and net.fc.bias is not None
    assert not any(k.endswith("conv.bias") for k in net.state_dict())


# ----------------------------------------------------------------------------------------------- first_stride


def test_first_stride_one_gives_kayhans_strides_and_leaves_every_other_spec_as_it_was():
    """first_stride: 1 is the paper's strides 1-2-2-2 (32 -> 32 -> 16 -> 8 -> 4 with zeros; 34 -> 18 -> 10 -> 6 full);
    absent, a resolved spec has no such key (fingerprints unchanged), and check_model agrees with the network."""
    assert "first_stride" not in resolve_spec({"arch": "strided_conv", "bias": False})
    for padding, side in (("zeros", 4), ("full", 6), ("valid", 2), ("circular", 4)):
        spec = dict(arch="strided_conv", first_stride=1, padding=padding, bias=False, head="global_max",
                    channels=[4, 4, 8, 8])
        net = create_model(spec, num_classes=2, canvas=32, in_channels=3)
        assert [b.stride for b in net.blocks] == [1, 2, 2, 2]
        assert check_model(net.factors, 32) == side == net.features(torch.rand(1, 3, 32, 32)).shape[-1]
        assert resolve_spec(net.factors) == net.factors  # a checkpoint's factors resolve to themselves
    with pytest.raises(InvlabError, match="first_stride must be 1"):
        resolve_spec({"arch": "strided_conv", "first_stride": 2})


# ----------------------------------------------------------------------------------------------- blur_padding


@pytest.mark.parametrize("downsample", ["blur_max", "blur_stride", "aps_max", "lps"])
def test_blur_padding_pads_the_blur_alone_and_leaves_every_other_spec_as_it_was(downsample):
    """blur_padding: reflect pads each blur by reflection (Zhang 2019's BlurPool) and nothing else (the convs and
    MaxPool(k2, s1) keep the network's zeros); absent, a resolved spec has no such key (fingerprints unchanged) and
    the network is the one built before the key existed, weight for weight."""
    assert "blur_padding" not in resolve_spec({"downsample": downsample})
    spec = dict(downsample=downsample, head="global_avg", padding="zeros", channels=[4, 8], blur_size=3)
    seed(0)
    plain = create_model(spec, num_classes=2, canvas=16)
    seed(0)
    net = create_model({**spec, "blur_padding": "reflect"}, num_classes=2, canvas=16)
    assert net.factors["blur_padding"] == "reflect" and resolve_spec(net.factors) == net.factors
    pads, before = ({name: m.padding for name, m in model.named_modules() if isinstance(m, Pad2d)}
                    for model in (net, plain))
    blurs = {name for name, m in net.named_modules() if isinstance(m, BlurPool)}
    assert {p for name, p in pads.items() if name.rsplit(".", 1)[0] in blurs} == {"reflect"}
    assert {before[name] for name in pads if name.rsplit(".", 1)[0] in blurs} == {"zeros"}
    assert {name: p for name, p in pads.items() if name.rsplit(".", 1)[0] not in blurs} == \
        {name: p for name, p in before.items() if name.rsplit(".", 1)[0] not in blurs}  # LPS's scores: circular
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), net.state_dict().values()))
    assert check_model(net.factors, 16) == net.features(torch.rand(1, 1, 16, 16)).shape[-1]


def test_a_blur_padding_that_changes_nothing_is_left_out_of_the_spec():
    """No blur (max, stride, blur_size 1) or the network's own padding: the same network, so one spec and one
    fingerprint (a checkpoint made without the key is reused; a factorial trains the first combination naming such
    a value and leaves the others out, as for blur_size: invariance_lab/config/duplicates.py)."""
    same = [(dict(downsample=d), b) for d in ("max", "stride", "none") for b in ("zeros", "circular", "reflect")]
    same += [(dict(downsample="blur_max", blur_size=1), "reflect"), (dict(downsample="blur_max"), "zeros"),
             (dict(downsample="aps_max", padding="circular"), "circular")]
    for spec, blur_padding in same:
        assert resolve_spec({**spec, "blur_padding": blur_padding}) == resolve_spec(spec), (spec, blur_padding)
    assert resolve_spec({"downsample": "blur_max", "blur_padding": "reflect"})["blur_padding"] == "reflect"


def test_a_reflect_padded_blur_keeps_a_blank_map_flat_where_a_zero_padded_one_darkens_its_border():
    """What blur_padding is for: after a ReLU with a positive bias a blank background is a constant map; blurred
    with zero padding its border rows fall (a landmark of absolute position, the larger the filter the wider), by
    reflection it stays constant, as in Zhang 2019's code."""
    flat = torch.full((1, 1, 8, 8), 0.5)
    for size in (3, 5):
        zeros = ConvBlock(1, 1, 3, "zeros", "blur_stride", blur_size=size).down(flat)
        reflect = ConvBlock(1, 1, 3, "zeros", "blur_stride", blur_size=size, blur_padding="reflect").down(flat)
        assert torch.allclose(reflect, flat[..., ::2, ::2])
        assert zeros.min() < 0.45 and zeros.max() == 0.5
    with pytest.raises(InvlabError, match="unknown blur_padding 'valid'; choose one of: zeros, circular, reflect"):
        resolve_spec({"arch": "blurpool", "blur_padding": "valid"})
    with pytest.raises(InvlabError, match="blur-pool: reflect padding by 2 does not fit a 2x2 map .*blur_padding="):
        check_model(resolve_spec({"arch": "blurpool", "blur_padding": "reflect", "blur_size": 5, "channels": [4] * 5}), 32)


def test_circular_network_with_total_stride_8_is_exactly_invariant_to_a_16_pixel_roll():
    """Kayhan's circular network (strides 1-2-2-2, global max): a roll by a multiple of the total stride 8 rolls
    the last map by a whole number of its pixels, so the output is the same: the dissimilar boxes (moved 16 rows) are
    classified as the similar ones, image by image, even untrained."""
    seed(0)
    net = create_model(dict(arch="strided_conv", first_stride=1, padding="circular", bias=False, head="global_max",
                            channels=[8, 8, 16, 16]), num_classes=2, canvas=32, in_channels=3).eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(torch.roll(x, 16, 2)), net(x), atol=1e-5)
        assert not torch.allclose(net(torch.roll(x, 4, 2)), net(x), atol=1e-5)  # 4 px: not a multiple of 8


@pytest.mark.parametrize("config", ["seed_question.yaml", "where_invariance_comes_from.yaml"])
def test_outputs_do_not_depend_on_the_batch_they_are_computed_in(config, one_thread):
    """schema/sweep.py's batch_size note: every network of a config gives the same bits for an image in batches of
    32, 64 or 128 (the sweep's and the test pass's batches are memory and speed only, but for prob_change's sums).
    136 images: each batch size splits them into whole batches and a last one of 8."""
    cfg = load_config(ROOT / "configs" / config)
    x = torch.rand(136, 1, cfg.data.canvas, cfg.data.canvas, generator=torch.Generator().manual_seed(0))
    for name, factors in resolved_models(cfg).items():
        seed(0)
        model = place(build_model(factors, num_classes=2, canvas=cfg.data.canvas), torch.device("cpu")).eval()
        with torch.inference_mode():
            whole = model(x)
            for batch in (32, 64, 128):
                parts = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
                assert torch.equal(parts, whole), (name, batch, float((parts - whole).abs().max()))


def test_a_heads_roll_invariant_flag_matches_its_pooling():
    """Catches global_max (or another head) flagged wrongly: the engine pools once per leaf only when pool is
    invariant to every circular shift, so the flag must say exactly that (flatten: not)."""
    h = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    for name, head in HEADS.items():
        same = all(torch.allclose(head.pool(torch.roll(h, (dy, dx), dims=(-2, -1))), head.pool(h), atol=1e-6)
                   for dy in range(4) for dx in range(4))
        assert head.roll_invariant == same, name
