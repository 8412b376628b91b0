"""Models from factors: N conv blocks (conv, ReLU, downsampling), a head, a linear classifier.

Names become objects through registries, whose errors list the valid names (see `invlab models`):
PRESETS (a model name -> a factor set: `conv_maxpool` = max pooling + flatten head), HEADS (a head name ->
its pooling and feature count) here, and DOWNSAMPLES in downsample.py. A config may override any factor.

    net = create_model("conv_gap", num_classes=2, canvas=32)
    net = create_model({"arch": "conv_gap", "padding": "circular"}, num_classes=2, canvas=32)
    list_models()  # ['conv_only', 'conv_maxpool', ...]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import ValidationError
from torch import nn

from ..core.errors import ConfigError, InvlabError, choose, quote, whole
from ..schema.messages import format_errors
from ..schema.model import ModelSpec
from .block import ConvBlock
from .downsample import BLUR_PADDINGS, DOWNSAMPLES, get_downsample
from .factory import build_custom
from .layers import PADDING_KINDS, LayerConfigError

# ----------------------------------------------------------------------------------------------- heads


@dataclass(frozen=True)
class Head:
    """What turns the last feature map (N, C, side, side) into the vector the dense classifier reads."""

    name: str
    description: str
    pool: Callable[[torch.Tensor], torch.Tensor]  # (N, C, side, side) -> (N, features)
    features: Callable[[int, int], int]  # (channels, side) -> features
    # pool(roll(h)) == pool(h) for every circular shift (a symmetric function of the positions): the all-shift
    # engine (engine.py) then pools each branch once instead of once per shift
    roll_invariant: bool = False


HEADS: dict[str, Head] = {}


def register_head(name: str, description: str, pool: Callable, features: Callable,
                  roll_invariant: bool = False) -> Head:
    HEADS[name] = head = Head(name, description, pool, features, roll_invariant)
    return head


def _flatten(h: torch.Tensor) -> torch.Tensor:
    return h.flatten(1)


def _global_avg(h: torch.Tensor) -> torch.Tensor:
    return h.mean(dim=(2, 3))


def _global_max(h: torch.Tensor) -> torch.Tensor:
    return h.amax(dim=(2, 3))


def _per_position(channels: int, side: int) -> int:
    return channels * side * side


def _per_channel(channels: int, side: int) -> int:
    return channels


register_head("flatten", "every position its own weights: remembers where things were", _flatten, _per_position)
register_head("global_avg", "mean over positions: invariant to any permutation of positions", _global_avg,
              _per_channel, roll_invariant=True)
register_head("global_max", "max over positions: invariant to any permutation of positions", _global_max,
              _per_channel, roll_invariant=True)

# ----------------------------------------------------------------------------------------------- presets

# Factors every model has; a preset or the config fills in the rest.
DEFAULTS = dict(downsample="none", head="flatten", padding="zeros", channels=[16, 32, 32], kernel=3, blur_size=3)
# Factors added after checkpoints were fingerprinted: a resolved spec holds one only where it is not the default, so
# every earlier model resolves, fingerprints and draws its weights as before. bias: False = convolutions without bias.
# first_stride: 1 = the first block neither strides nor pools (Kayhan & van Gemert 2020's strides 1-2-2-2).
# blur_padding: what the blurs of blur_*, aps_* and lps pad with (BLUR_PADDINGS); None = the network's padding.
LATER_DEFAULTS = dict(bias=True, first_stride=None, blur_padding=None)
FIRST_STRIDES = (1,)  # what first_stride may say; None (the default): the first block downsamples like the others

PRESETS: dict[str, dict] = {}


def register_preset(name: str, description: str, **factors) -> None:
    """Add a named factor set; its names are checked now, so a typo fails at import, not in a run."""
    PRESETS[name] = dict(description=description, **factors)
    try:
        resolve_spec({"arch": name})
    except InvlabError:
        del PRESETS[name]
        raise


def resolve_spec(spec: dict) -> dict:
    """Fill a model spec from its preset and the defaults; validate every name.

    The returned dict (arch, the DEFAULTS keys, and a LATER_DEFAULTS key only where it is not the default) is what
    checkpoint fingerprints hash: keep its keys. A factory
    spec (factory.py) resolves to {"factory": "package.module:function", "kwargs": {...}} alone."""
    if spec.get("factory") is not None:
        return {"factory": spec["factory"], "kwargs": dict(spec.get("kwargs") or {})}
    arch = spec.get("arch")
    base = dict(DEFAULTS)
    if arch is not None:
        choose("arch", arch, PRESETS)
        base.update({k: v for k, v in PRESETS[arch].items() if k != "description"})
    base.update({k: v for k, v in spec.items() if v is not None and k != "arch"})
    choose("downsample", base["downsample"], DOWNSAMPLES)
    choose("head", base["head"], HEADS)
    choose("padding", base["padding"], PADDING_KINDS)
    if not isinstance(base.get("bias", True), bool):
        raise LayerConfigError(f"bias must be true or false; got {base['bias']!r}")
    first = base.get("first_stride")
    if first is not None and (isinstance(first, bool) or first not in FIRST_STRIDES):
        raise LayerConfigError(f"first_stride must be 1 (the first block without downsampling, as Kayhan & van "
                               f"Gemert 2020's strides 1-2-2-2) or left out (every block downsamples); got {first!r}")
    if base.get("blur_padding") is not None:
        choose("blur_padding", base["blur_padding"], BLUR_PADDINGS)
        blurs = any(stage.blurs for stage in DOWNSAMPLES[base["downsample"]].stages) and base["blur_size"] > 1
        if not blurs or base["blur_padding"] == base["padding"]:  # the same network: one name, one fingerprint
            base["blur_padding"] = None
    later = {k: base[k] for k, default in LATER_DEFAULTS.items() if base.get(k, default) != default}
    return {"arch": arch, **{k: base[k] for k in DEFAULTS}, **later}


register_preset("conv_only", "3 stride-1 conv blocks, flatten + dense head", downsample="none", head="flatten")
register_preset("conv_maxpool", "conv blocks each followed by 2x2 max pooling (stride 2), flatten head",
                downsample="max", head="flatten")
register_preset("strided_conv", "conv blocks with stride 2, flatten head", downsample="stride", head="flatten")
register_preset("conv_gap", "3 stride-1 conv blocks, global average pooling head", downsample="none",
                head="global_avg")
register_preset("conv_maxpool_gap", "max pooling blocks, global average pooling head", downsample="max",
                head="global_avg")
register_preset("blurpool", "MaxPool(k2,s1) + BlurPool(s2) (Zhang 2019), global average head",
                downsample="blur_max", head="global_avg")
register_preset("aps", "MaxPool(k2,s1) + BlurPool[1,2,1](s1) + adaptive polyphase sampling (Chaman & Dokmanic 2021; "
                "blur_size: 1 for none), global average head, circular padding", downsample="aps_max",
                head="global_avg", padding="circular")


def list_presets() -> dict[str, dict]:
    """Every preset with all its factors (defaults filled in) and its description."""
    return {name: {**DEFAULTS, **p} for name, p in PRESETS.items()}


def list_models() -> list[str]:
    """The preset names create_model accepts, in registration order."""
    return list(PRESETS)


# ----------------------------------------------------------------------------------------------- the network


def block_downsamples(factors: dict) -> list[str]:
    """Each block's downsample kind: the model's, but "none" for the first block under first_stride: 1."""
    kinds = [factors["downsample"]] * len(factors["channels"])
    if factors.get("first_stride") == 1 and kinds:
        kinds[0] = "none"
    return kinds


def check_model(factors: dict, canvas: int) -> int:
    """The side of the last feature map for this canvas, by arithmetic (torch's RNG untouched); raises
    LayerConfigError (a ConfigError and a ValueError) naming the combination if none."""
    size, n = canvas, len(factors["channels"])
    for i, name in enumerate(block_downsamples(factors)):
        try:
            size = get_downsample(name).out_size(size, factors["kernel"], factors["padding"], factors["blur_size"],
                                                 factors.get("blur_padding"))
        except LayerConfigError as e:
            raise LayerConfigError(f"block {i + 1} of {n} on a {canvas}px canvas: {e}") from None
        if size < 1:
            raise LayerConfigError(
                f"padding {factors['padding']!r}, downsample {factors['downsample']!r}, kernel {factors['kernel']} "
                f"leave no feature map after block {i + 1} on a {canvas}px canvas; use fewer channels entries or a "
                f"larger canvas")
    return size


def _draw_as_before(factors: dict) -> None:
    """Build and drop one one-channel block per block, as check_model once did: each draws its conv's initial
    weights from torch's RNG, so skipping them would change every seeded model's weights (and no longer match
    trained checkpoints)."""
    for _ in factors["channels"]:
        ConvBlock(1, 1, factors["kernel"], factors["padding"], factors["downsample"], factors["blur_size"])


class InvNet(nn.Module):
    """Conv blocks, a head (HEADS), a linear classifier. `factors` is a resolved spec (resolve_spec)."""

    def __init__(self, factors: dict, num_classes: int, canvas: int, in_channels: int = 1):
        super().__init__()
        self.factors = dict(factors)
        side = check_model(factors, canvas)
        _draw_as_before(factors)
        chans = [in_channels] + list(factors["channels"])
        bias = factors.get("bias", LATER_DEFAULTS["bias"])
        self.blocks = nn.ModuleList(
            ConvBlock(cin, cout, factors["kernel"], factors["padding"], down, factors["blur_size"], bias=bias,
                      blur_padding=factors.get("blur_padding"))
            for cin, cout, down in zip(chans[:-1], chans[1:], block_downsamples(factors)))
        self.head = choose("head", factors["head"], HEADS)
        self.fc = nn.Linear(HEADS[self.head].features(chans[-1], side), num_classes)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return HEADS[self.head].pool(h)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)))


def create_model(name_or_spec: str | dict, *, num_classes: int, canvas: int, in_channels: int = 1) -> InvNet:
    """A network from a preset name (`list_models()`) or a spec dict (a preset and / or factors), checked as a
    config's model is: a misspelt factor is a ConfigError naming it, not a default silently built."""
    if not isinstance(name_or_spec, (str, dict)):
        raise ConfigError(f"create_model takes a preset name (list_models()) or a dict of factors, e.g. {{'arch': "
                          f"'conv_gap', 'padding': 'circular'}}; got {quote(name_or_spec)}")
    for what, value in (("num_classes", num_classes), ("canvas", canvas), ("in_channels", in_channels)):
        whole(what, value, error=ConfigError)
    try:
        spec = ModelSpec.model_validate({"arch": name_or_spec} if isinstance(name_or_spec, str) else name_or_spec)
    except ValidationError as e:
        raise ConfigError(format_errors(e, "create_model", ModelSpec, what="model spec")) from None
    return build_model(resolve_spec(spec.model_dump(exclude_none=True)), num_classes, canvas, in_channels)


def build_model(factors: dict, num_classes: int, canvas: int, in_channels: int = 1,
                dirs: Iterable[str | Path] = ()) -> nn.Module:
    """A network from a resolved factor dict, as checkpoints store them (create_model resolves for you); a factory
    spec calls your function (factory.build_custom: imported, called with its kwargs, checked on a dummy batch),
    its module searched first in `dirs` (the folder of the config that names it), as the run checked it."""
    if "factory" in factors:
        return build_custom(factors, num_classes=num_classes, canvas=canvas, in_channels=in_channels, dirs=dirs)
    return InvNet(factors, num_classes, canvas, in_channels)


def place(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` on `device`, in the memory layout measured fastest there. On a CPU invlab's own networks keep their
    4-D weights channels_last (NHWC), so convolutions and pooling run on NHWC maps: on the 2-core machine, one
    thread, forward passes 0.96-2.2x and train steps 1.06-1.5x the speed of the default layout (max pooling gains
    most; bench/layout.py). The values are the same up to float round-off, not bit for bit (the kernels sum in
    another order). A model of your own keeps its layout (its forward may .view() a map), and on CUDA nothing
    changes: the layout was not measured there."""
    model = model.to(device)
    if isinstance(model, InvNet) and device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
