"""Models of your own, as a user writes them, for tests/test_factory.py and tests/test_measure.py.

A config names them as `factory: "custom_models:circular_gap"` (tests/ is on sys.path under pytest), and
`invlab measure --model custom_models:circular_gap`.
"""

import sys

import torch
from torch import nn


def circular_gap(channels: int = 4, classes: int = 2, in_channels: int = 1) -> nn.Module:
    """Circular padding, stride 1, global average pooling: exactly invariant to every circular shift."""
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, padding_mode="circular"), nn.BatchNorm2d(channels), nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


def on_meta(classes: int = 2) -> nn.Module:
    """circular_gap built on torch's meta device: shapes without values, as an empty-weights initialiser leaves them."""
    with torch.device("meta"):
        return circular_gap(classes=classes)


def flatten_head(channels: int = 4, classes: int = 2, side: int = 24) -> nn.Module:
    """The same features, but a flatten + dense head: every position its own weights, so not invariant."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Flatten(), nn.Linear(channels * side * side, classes))


class Strided(nn.Module):
    """A stride-2 conv and a 2 x 2 max pool: taps at cumulative strides 2 and 4."""

    def __init__(self, classes: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4, classes)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).mean(dim=(2, 3)))


def strided(classes: int = 2) -> nn.Module:
    return Strided(classes)


def wrong_shape() -> nn.Module:
    """Returns a map (N, 3, 1, 1), not logits (N, classes)."""
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.AdaptiveAvgPool2d(1))


def raises(**kwargs) -> nn.Module:
    raise RuntimeError("this factory always fails")


def frozen() -> nn.Module:
    """Nothing to train."""
    model = circular_gap()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = circular_gap()

    def forward(self, x):
        return self.net(x).detach()


def detached() -> nn.Module:
    """Its output does not depend on its parameters (detached): training would change nothing."""
    return Detached()


def not_a_module() -> str:
    return "a string"


class Later(nn.Module):
    """circular_gap on the first check's small batch (two images), then, on any larger batch, what `how` says: a
    memory error, a hard-coded batch size, a tuple, NaN, sys.exit(0), one logit per image."""

    def __init__(self, how: str):
        super().__init__()
        self.how, self.net = how, circular_gap()

    def forward(self, x):
        logits = self.net(x)
        if len(x) <= 2:
            return logits
        if self.how == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        if self.how == "batch2":
            return logits.reshape(2, -1)
        if self.how == "tuple":
            return logits, None
        if self.how == "nan":
            return logits * float("nan")
        if self.how == "exit":  # it ended invlab quietly, with exit code 0 and a run or measure folder left failed
            sys.exit(0)
        return logits[:, :1]  # "one_class"


def later(how: str = "oom") -> nn.Module:
    return Later(how)


class NoInference(nn.Module):
    """Trains and runs under no_grad, but refuses inference mode: it fails only when its memory is measured."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        if torch.is_inference_mode_enabled():
            raise RuntimeError("needs autograd")
        return self.conv(x).mean((2, 3))


def no_inference() -> nn.Module:
    return NoInference()


def lazy(classes: int = 2) -> nn.Module:
    """A flatten head built lazily: nn.LazyLinear draws its weights at the first forward pass, not when built."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(classes))
