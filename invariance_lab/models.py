"""Models from factors: N conv blocks (conv, ReLU, downsampling), a head, a linear classifier.

A preset names a factor set (`conv_maxpool` = max pooling + flatten head); a config may override any factor.
Names become objects through the PRESETS registry, whose errors list the valid names (see `invlab models`).

    net = build_model(resolve_spec({"arch": "conv_gap", "padding": "circular"}), num_classes=2, canvas=32)
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import InvlabError
from .layers import DOWNSAMPLE_KINDS, PADDING_KINDS, ConvBlock

HEADS = ("flatten", "global_avg", "global_max")

# Factors every model has; a preset or the config fills in the rest.
DEFAULTS = dict(downsample="none", head="flatten", padding="zeros", channels=[16, 32, 32], kernel=3, blur_size=3)

PRESETS: dict[str, dict] = {}


def register_preset(name: str, description: str, **factors) -> None:
    PRESETS[name] = dict(description=description, **factors)


register_preset("conv_only", "3 stride-1 conv blocks, flatten + dense head", downsample="none", head="flatten")
register_preset("conv_maxpool", "conv blocks each followed by 2x2 max pooling (stride 2), flatten head", downsample="max", head="flatten")
register_preset("strided_conv", "conv blocks with stride 2, flatten head", downsample="stride", head="flatten")
register_preset("conv_gap", "3 stride-1 conv blocks, global average pooling head", downsample="none", head="global_avg")
register_preset("conv_maxpool_gap", "max pooling blocks, global average pooling head", downsample="max", head="global_avg")
register_preset("blurpool", "MaxPool(k2,s1) + BlurPool(s2) (Zhang 2019), global average head", downsample="blur_max", head="global_avg")
register_preset("aps", "MaxPool(k2,s1) + adaptive polyphase sampling (Chaman & Dokmanic 2021), global average head, circular padding", downsample="aps_max", head="global_avg", padding="circular")


def list_presets() -> dict[str, dict]:
    return {name: {**DEFAULTS, **p} for name, p in PRESETS.items()}


def _choose(kind: str, value, valid) -> None:
    if value not in valid:
        raise InvlabError(f"unknown {kind} {value!r}; choose one of: {', '.join(map(str, valid))}")


def resolve_spec(spec: dict) -> dict:
    """Fill a model spec from its preset and the defaults; validate every name."""
    arch = spec.get("arch")
    base = dict(DEFAULTS)
    if arch is not None:
        _choose("arch", arch, list(PRESETS))
        base.update({k: v for k, v in PRESETS[arch].items() if k != "description"})
    base.update({k: v for k, v in spec.items() if v is not None and k != "arch"})
    _choose("downsample", base["downsample"], DOWNSAMPLE_KINDS)
    _choose("head", base["head"], HEADS)
    _choose("padding", base["padding"], PADDING_KINDS)
    return {"arch": arch, **{k: base[k] for k in DEFAULTS}}


def check_model(factors: dict, canvas: int) -> int:
    """The side of the last feature map for this canvas; raises ValueError naming the combination if none."""
    size = canvas
    for i in range(len(factors["channels"])):
        block = ConvBlock(1, 1, factors["kernel"], factors["padding"], factors["downsample"], factors["blur_size"])
        try:
            size = block.out_size(size)
        except ValueError as e:
            raise ValueError(f"block {i + 1} of {len(factors['channels'])} on a {canvas}px canvas: {e}") from None
        if size < 1:
            raise ValueError(
                f"padding {factors['padding']!r}, downsample {factors['downsample']!r}, kernel {factors['kernel']} "
                f"leave no feature map after block {i + 1} on a {canvas}px canvas; use fewer channels entries or a larger canvas")
    return size


class InvNet(nn.Module):
    def __init__(self, factors: dict, num_classes: int, canvas: int, in_channels: int = 1):
        super().__init__()
        self.factors = dict(factors)
        side = check_model(factors, canvas)
        chans = [in_channels] + list(factors["channels"])
        self.blocks = nn.ModuleList(
            ConvBlock(cin, cout, factors["kernel"], factors["padding"], factors["downsample"], factors["blur_size"])
            for cin, cout in zip(chans[:-1], chans[1:]))
        self.head = factors["head"]
        features = chans[-1] * side * side if self.head == "flatten" else chans[-1]
        self.fc = nn.Linear(features, num_classes)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        if self.head == "global_avg":
            return h.mean(dim=(2, 3))
        if self.head == "global_max":
            return h.amax(dim=(2, 3))
        return h.flatten(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)))


def build_model(factors: dict, num_classes: int, canvas: int) -> InvNet:
    return InvNet(factors, num_classes, canvas)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
