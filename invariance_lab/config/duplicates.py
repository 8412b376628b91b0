"""Which factorial combinations build the same network, so that a factorial trains each network once.

A factor a network does not use still names a combination: `blur_padding` or `blur_size` beside a downsample that
does not blur, `padding` around a 1x1 conv when nothing else pads, two presets (`arch`) whose differences the
factorial overrides, `head` when the last map is 1x1 (flatten, global average and global max then return the
same numbers), two downsample kinds that build the same layers (blur_avg and blur_stride). Each would train the
same network once more per seed and stand in a report as a model of its own.

Rather than a list of such cases, `network_key` describes the network a resolved spec builds: each block built
small (a 2-channel ConvBlock, torch's RNG seeded and given back) as its modules' types, settings (extra_repr),
weights and buffers, then what the head computes on the last map. A downsample kind registered later is judged
the same way, by what it builds; tests/config/test_duplicates.py checks the rule against whole networks built
with one seed, for every registered kind and head.

    key = network_key(factors, side)       # equal keys: the same layers and, for a seed, the same weights
    same_as("max-blur_zeros", {"downsample": "max", "blur_padding": "zeros"}, values, factors, side)
    # 'the same network as max-blur_zeros: max does not blur, so blur_padding changes nothing'
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from ..nn.block import ConvBlock
from ..nn.downsample import DOWNSAMPLES
from ..nn.models import HEADS, LATER_DEFAULTS, block_downsamples

SAME = "the same network as"  # how a duplicate's reason begins (left_out_note counts them by it)
_CHANNELS = 2  # a block is built this wide to read its structure: cheap, and wide enough for grouped convs
# Heads have no weights: a function of the last map. On a 1x1 map flatten, mean and max all return the map's values;
# distinct signed values in a probe tell those apart from a head that computes anything else (an absolute value,
# a sum of squares), and the test builds every registered head to check it.
_PROBE = torch.tensor([0.5, -1.25, 2.0, 3.0, 0.0, -0.75]).view(2, 3, 1, 1)


def network_key(factors: dict, side: int) -> tuple:
    """What the network of a resolved spec (nn.models.resolve_spec) is, as a hashable value: two specs with equal
    keys build the same layers and, from one seed, the same weights. `side`: its last map's side
    (nn.models.check_model). Not a factory model's: those are never expanded from a factorial."""
    kinds = block_downsamples(factors)
    blocks = tuple(_block(kind, factors["kernel"], factors["padding"], factors["blur_size"],
                          factors.get("blur_padding"), factors.get("bias", LATER_DEFAULTS["bias"]))
                   for kind in kinds)
    # a kind no block uses (one block under first_stride: 1) still decides the weights: InvNet draws throwaway
    # blocks of the model's kind first (nn/models._draw_as_before), and some kinds draw more random numbers
    unused = factors["downsample"] if factors["downsample"] not in kinds else None
    return tuple(factors["channels"]), blocks, side, _head(factors["head"], side), unused


@functools.lru_cache(maxsize=4096)
def _block(kind: str, kernel: int, padding: str, blur_size: int, blur_padding: str | None, bias: bool) -> tuple:
    """One block's structure. Built with torch's RNG seeded inside fork_rng, so the weights drawn are comparable
    between calls and the caller's random numbers (a seeded model built next) are left as they were."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(0)
        block = ConvBlock(_CHANNELS, _CHANNELS, kernel, padding, kind, blur_size, bias=bias,
                          blur_padding=blur_padding)
    return _structure(block)


def _structure(module: nn.Module) -> tuple:
    """Every submodule's place, type, settings and tensors: what the module computes and what it starts from."""
    def tensors(m: nn.Module) -> tuple:
        return tuple((name, str(t.dtype), tuple(t.shape), t.detach().numpy().tobytes())
                     for name, t in [*m.named_parameters(recurse=False), *m.named_buffers(recurse=False)])
    return tuple((name, type(m).__module__, type(m).__qualname__, m.extra_repr(), tensors(m))
                 for name, m in module.named_modules())


def _head(name: str, side: int) -> Any:
    """The head's part of the key: its name, unless the last map is 1x1, where heads returning the same numbers
    for the probe (and so the same number of features) are the same head."""
    if side > 1:
        return name
    head = HEADS[name]
    with torch.no_grad():
        pooled = head.pool(_PROBE)
    return "1x1", head.features(_PROBE.shape[1], 1), tuple(pooled.shape), pooled.numpy().tobytes()


def same_as(first: str, first_values: dict, values: dict, factors: dict, side: int) -> str:
    """Why a combination (its factor values, its resolved spec `factors` and last side) is left out: the first
    combination building its network (`first`, with `first_values`), and what makes each factor that differs
    change nothing."""
    causes: dict[str, list[str]] = {}
    for factor in (k for k in values if values[k] != first_values.get(k)):
        causes.setdefault(_cause(factor, values[factor], first_values.get(factor), factors, side), []).append(factor)
    parts = [f"{cause}, so {_and(names)} change{'s' if len(names) == 1 else ''} nothing"
             for cause, names in causes.items()]
    return f"{SAME} {first}: " + "; ".join(parts)


def _cause(factor: str, mine: Any, theirs: Any, factors: dict, side: int) -> str:
    """Why `factor` (`mine` here, `theirs` in the combination kept) changes nothing in this network: the usual
    reasons in words, from the registries; any other in general terms."""
    kind = factors["downsample"]
    blurs = any(stage.blurs for k in block_downsamples(factors) for stage in DOWNSAMPLES[k].stages)
    if factor in ("blur_size", "blur_padding") and not blurs:
        return f"{kind} does not blur"
    if factor == "blur_padding" and factors["blur_size"] == 1:
        return "a blur of size 1 pads nothing"
    if factor == "blur_padding" and None in (mine, theirs) and factors["padding"] in (mine, theirs):
        return f"a blur_padding left out pads the blur with the network's padding, {factors['padding']}"
    if factor == "padding" and factors["kernel"] == 1:
        return "a 1x1 conv pads nothing"
    if factor == "head" and side == 1:
        return f"the last feature map is 1x1, where {mine} returns what {theirs} does"
    if factor == "downsample":
        return f"{mine} builds the same blocks as {theirs}"
    if factor == "arch":
        return f"what {mine} sets otherwise than {theirs} is set by the factorial or unused"
    return f"{factor} {mine} builds the same layers as {theirs} here"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
