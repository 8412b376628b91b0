"""The layer kinds the all-shift engine (engine.py) knows: each module becomes steps that commute with circular shifts.

A step is "map" (commutes with circular shifts and keeps the side) or "down" (stride 2: commutes with even shifts
and halves an even side). Register a rule for a new layer kind with `@register_rule(ModuleType)`; a module
without a rule, or with a padding that is not circular, leaves its model to brute force (NotApplicable says why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from ..nn.afc import AliasFreeDown, PolyActivation
from ..nn.aps import APSDown
from ..core.errors import InvlabError
from ..nn.block import ConvBlock
from ..nn.layers import BlurPool, MaxPoolS1, Pad2d
from ..nn.lps import LPSDown
from ..nn.tips import TIPSDown

PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # polyphase offsets (row, column) of a stride-2 layer


class NotApplicable(InvlabError):
    """The all-shift engine does not apply to this model or sweep; the message says why."""


@dataclass(frozen=True)
class Step:
    """One step of a plan: `map` (commutes with circular shifts), `down` (stride 2: commutes with even shifts)
    or `tap` (a named point whose maps the layer profile reads)."""

    kind: str
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    label: str = ""  # where it comes from, for messages: "block 2: MaxPool2d"
    # down steps: the outputs for all four offsets at once, [fn(roll(x, p)) for p in PHASES], where a faster way
    # gives the same values (max pooling: maxima of the same pairs)
    phases: Callable[[torch.Tensor], list[torch.Tensor]] | None = None


Rule = Callable[[nn.Module], list[Step]]  # raises NotApplicable(reason) where the module does not qualify
RULES: dict[type, Rule] = {}


def register_rule(*types: type) -> Callable[[Rule], Rule]:
    """Decorator: the rule splitting modules of exactly these types into steps (subclasses need their own)."""
    def add(rule: Rule) -> Rule:
        for t in types:
            RULES[t] = rule
        return rule

    return add


def steps_of(module: nn.Module) -> list[Step]:
    rule = RULES.get(type(module))
    if rule is None:
        raise NotApplicable(f"{type(module).__name__} is not a layer the all-shift engine knows (no rule for it in "
                            "eval/engine_rules.py's RULES; @register_rule adds one)")
    return rule(module)


def roll2d(x: torch.Tensor, sy: int, sx: int) -> torch.Tensor:
    """torch.roll(x, (sy, sx), dims=(-2, -1)) (x itself for no shift), by at most four block copies: one pass
    over memory where torch.roll makes one per dimension."""
    h, w = x.shape[-2:]
    sy, sx = sy % h, sx % w
    if sy == 0 and sx == 0:
        return x
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    for src_y, dst_y in ((slice(0, h - sy), slice(sy, h)), (slice(h - sy, h), slice(0, sy))):
        for src_x, dst_x in ((slice(0, w - sx), slice(sx, w)), (slice(w - sx, w), slice(0, sx))):
            if dst_y.start != dst_y.stop and dst_x.start != dst_x.stop:
                out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def _circular(pad: nn.Module, what: str) -> None:
    """A module's own padding must wrap around (or be absent, for windows of one pixel)."""
    if isinstance(pad, Pad2d) and pad.padding != "circular":
        raise NotApplicable(f"{what} pads with {pad.padding!r}: the border does not move with a roll")
    if not isinstance(pad, (Pad2d, nn.Identity)):
        raise NotApplicable(f"{what}: unknown padding module {type(pad).__name__}")


def _by_stride(stride, module: nn.Module, fn=None) -> list[Step]:
    stride = _pair(stride)
    if stride == (1, 1):
        return [Step("map", fn or module, type(module).__name__)]
    if stride == (2, 2):
        return [Step("down", fn or module, type(module).__name__)]
    raise NotApplicable(f"{type(module).__name__} has stride {stride}: only 1 and 2 split into polyphase branches")


@register_rule(nn.Identity)
def _nothing(m: nn.Module) -> list[Step]:
    return []


@register_rule(nn.Sequential)
def _sequence(m: nn.Sequential) -> list[Step]:
    return [s for child in m for s in steps_of(child)]


@register_rule(nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid)
def _pointwise(m: nn.Module) -> list[Step]:
    return [Step("map", m, type(m).__name__)]


@register_rule(nn.BatchNorm2d)
def _batch_norm(m: nn.BatchNorm2d) -> list[Step]:
    if m.training:
        raise NotApplicable("BatchNorm2d in training mode normalises with the batch's statistics; call model.eval()")
    return [Step("map", m, "BatchNorm2d")]


@register_rule(nn.Dropout, nn.Dropout2d)
def _dropout(m: nn.Module) -> list[Step]:
    if m.training:
        raise NotApplicable(f"{type(m).__name__} in training mode drops at random; call model.eval()")
    return []  # the identity in eval mode


@register_rule(nn.MaxPool2d, nn.AvgPool2d)
def _pool(m: nn.Module) -> list[Step]:
    kernel, stride, padding = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
    if padding != (0, 0) or _pair(getattr(m, "dilation", 1)) != (1, 1) or m.ceil_mode or max(kernel) > min(stride):
        raise NotApplicable(f"{m}: only windows no wider than their stride, without padding, split into polyphase "
                            "branches")
    steps = _by_stride(stride, m)
    if isinstance(m, nn.MaxPool2d) and kernel == stride == (2, 2) and not m.return_indices:
        steps = [replace(steps[0], phases=_max_pool_phases)]
    return steps


def _max_pool_phases(x: torch.Tensor) -> list[torch.Tensor]:
    """MaxPool(k2, s2) of x rolled by each offset in PHASES, as maxima of row pairs, then of column pairs: the
    offset-1 pairs are (2i - 1, 2i). The same maxima of the same values as nn.MaxPool2d (a max does not round),
    several times faster than rolling x and pooling four times."""
    v = x.unflatten(-2, (x.shape[-2] // 2, 2)).unflatten(-1, (x.shape[-1] // 2, 2))  # (..., h, 2, w, 2)
    even, odd = v[..., :, 0, :, :], v[..., :, 1, :, :]
    rows = [torch.maximum(even, odd), torch.maximum(torch.roll(odd, 1, dims=-3), even)]  # row offset 0, 1
    out = []
    for r in rows:
        even, odd = r[..., 0], r[..., 1]
        out += [torch.maximum(even, odd), torch.maximum(torch.roll(odd, 1, dims=-1), even)]  # column offset 0, 1
    return out


@register_rule(nn.Conv2d)
def _conv(m: nn.Conv2d) -> list[Step]:
    if _pair(m.dilation) != (1, 1):
        raise NotApplicable(f"{m}: dilated convolutions are not supported")
    if m.padding_mode != "circular" and (m.padding not in ((0, 0), "valid") or _pair(m.kernel_size) != (1, 1)):
        raise NotApplicable(f"{m}: padding mode {m.padding_mode!r}: the border does not move with a roll")
    return _by_stride(m.stride, m)


@register_rule(MaxPoolS1)
def _max_pool_s1(m: MaxPoolS1) -> list[Step]:
    _circular(m.pad, "MaxPool(k2, s1)")
    return [Step("map", m, "MaxPool(k2, s1)")]


@register_rule(BlurPool)
def _blur_pool(m: BlurPool) -> list[Step]:
    _circular(m.pad, "BlurPool")
    return _by_stride(m.stride, m)


@register_rule(APSDown)
def _aps(m: APSDown) -> list[Step]:
    return steps_of(m.blur) + [Step("down", m.subsample, "APS")]


@register_rule(LPSDown)
def _lps(m: LPSDown) -> list[Step]:
    """In eval mode an even shift rolls each polyphase component in place (no permutation); the scores are circular
    convs and a global mean of the rolled values, so the same choice by the same rule (ties: aps.py's) and a
    rolled output: LPS commutes with even shifts, all a down step needs (as APS)."""
    if m.training:
        raise NotApplicable("LPS in training mode mixes its components with Gumbel noise; call model.eval()")
    for pad in (m.score[0], m.score[3]):
        _circular(pad, "LPS's scoring convs")
    return steps_of(m.blur) + [Step("down", m.subsample, "LPS")]


@register_rule(TIPSDown)
def _tips(m: TIPSDown) -> list[Step]:
    raise NotApplicable("TIPS weights its polyphase components by averages over fixed quadrants of the map, which "
                        "do not move with a roll: it does not commute with even shifts, so its shifts have no "
                        "polyphase decomposition (brute force measures it)")


@register_rule(AliasFreeDown)
def _alias_free_down(m: AliasFreeDown) -> list[Step]:
    """The FFT low-pass commutes with every circular shift; keeping every second sample, with even ones."""
    return [Step("down", m, "alias-free downsampling")]


@register_rule(PolyActivation)
def _poly_activation(m: PolyActivation) -> list[Step]:
    """FFT upsampling turns a roll by s into a roll by 2s (its split Nyquist bin too), the polynomial is pointwise,
    and the low-pass + subsampling back turns the roll by 2s into s: a map step."""
    return [Step("map", m, "PolyActivation")]


def _front(block: ConvBlock) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: block.act(block.conv(block.padded(x)))


@register_rule(ConvBlock)
def _conv_block(block: ConvBlock) -> list[Step]:
    """pad + conv + activation (one step: the padding belongs to the conv), tap `conv`, the downsampling, tap
    `down`. The activation (ReLU, or afc's PolyActivation) must have a rule of its own."""
    if block.padding != "circular":
        raise NotApplicable(f"padding {block.padding!r}: the border does not move with a roll")
    if _pair(block.conv.padding) != (0, 0) or _pair(block.conv.dilation) != (1, 1):
        raise NotApplicable("a ConvBlock whose conv pads or dilates itself")
    if any(step.kind != "map" for step in steps_of(block.act)):  # the activation needs a rule too
        raise NotApplicable(f"the activation {type(block.act).__name__} does not keep the map's side")
    front = replace(_by_stride(block.conv.stride, block.conv, _front(block))[0], label=f"conv ({block.downsample})")
    return [front, Step("tap", label="conv"), *steps_of(block.down), Step("tap", label="down")]


