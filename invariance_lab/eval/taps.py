"""Layer taps of any model, for the layer profile (layerwise.profile_layers): an invlab preset's own, any other
model's through forward hooks.

    tap = taps_for(model)                 # an invlab preset (InvNet): its own taps, layer_taps
    tap = taps_for(model, ["layer1.0.conv1", "output"])   # named modules (model.named_modules()) and the logits
    [(name, stride, activation), ...] = tap(x)

By default a model of your own is tapped at the output of every convolution, pooling and normalisation module
(TAP_TYPES), in the order they run, then at its output ("output", the logits). A module run twice is tapped twice
("name", "name#2"). A tap's cumulative stride is inferred from its shape relative to the input: s = round(H / h),
the same along both axes, with h within one step of H / s (31 -> 16 is stride 2; 32 -> 30, a valid convolution's
crop, is not a stride); where no stride fits, the stride is 0 and only the pooled invariance is computed, not the
equivariance error. Only maps (N, C, h, w) and vectors (N, F) can be profiled; a default tap of another shape is
skipped, a named one refused.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..core.errors import InvlabError, choose, quote
from ..nn.aps import APSDown
from ..nn.layers import BlurPool, MaxPoolS1
from ..nn.models import InvNet

OUTPUT = "output"  # the tap of the model's own output (the logits)
TAP_TYPES = (
    nn.modules.conv._ConvNd,  # convolutions
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._LPPoolNd, BlurPool, MaxPoolS1, APSDown,  # pooling
    nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,  # normalisation
)
Tap = tuple[str, int, torch.Tensor]  # (name, cumulative stride, activation)


def layer_taps(model: InvNet, x: torch.Tensor) -> list[tuple[str, int, torch.Tensor]]:
    """[(name, cumulative stride, activation)] for every tap, in depth order; same arithmetic as model(x)."""
    taps, stride = [], 1
    for i, block in enumerate(model.blocks, 1):
        a = block.act(block.conv(block.padded(x)))
        taps.append((f"block{i}.conv", stride * block.conv.stride[0], a))
        x = block.down(a)
        stride *= block.stride  # the block's own (its downsampling kind's registry entry)
        taps.append((f"block{i}.down", stride, x))
    taps.append(("head", stride, model.pool(x)))
    return taps


def infer_stride(input_hw: tuple[int, int], tap_hw: tuple[int, int]) -> int:
    """The cumulative stride of a map of side tap_hw computed from an input of side input_hw; 0 if none fits."""
    (H, W), (h, w) = input_hw, tap_hw
    if min(h, w) < 1:
        return 0
    s = round(H / h)
    if s < 1 or s != round(W / w) or abs(H - s * h) >= s or abs(W - s * w) >= s:
        return 0
    return s


def default_taps(model: nn.Module) -> list[str]:
    """The names of the modules tapped by default: every convolution, pooling and normalisation module."""
    return [name for name, m in model.named_modules() if name and isinstance(m, TAP_TYPES)]


def taps_for(model: nn.Module, names: list[str] | None = None) -> Callable[[torch.Tensor], list[Tap]]:
    """tap(x) -> [(name, cumulative stride, activation)] in the order the model runs, for one batch x."""
    if isinstance(names, (str, bytes)):  # iterated, "output" would be the taps o, u, t, ...
        raise InvlabError(f"taps is a list of module names; got the string {quote(names)}: give [{quote(names)}]")
    if names is None and isinstance(model, InvNet):
        return lambda x: layer_taps(model, x)
    if isinstance(model, torch.jit.ScriptModule):  # its modules take no hooks: only the output would be profiled
        raise InvlabError("the layer profile taps a model's modules with forward hooks, which a TorchScript module "
                          "does not take; profile the nn.Module it was scripted from, with the same weights "
                          "(model.load_state_dict(scripted.state_dict()))")
    modules = dict(model.named_modules())
    chosen = default_taps(model) if names is None else list(names)
    for name in chosen:
        if name != OUTPUT:
            choose("tap", name, [n for n in modules if n] + [OUTPUT])
    explicit = names is not None

    def tap(x: torch.Tensor) -> list[Tap]:
        found: list[tuple[str, torch.Tensor]] = []
        seen: dict[str, int] = {}

        def hook(name):
            def record(module, inputs, output):
                seen[name] = seen.get(name, 0) + 1
                kept = output.clone() if isinstance(output, torch.Tensor) else output  # an in-place ReLU may follow
                found.append((name if seen[name] == 1 else f"{name}#{seen[name]}", kept))
            return record

        handles = [modules[n].register_forward_hook(hook(n)) for n in chosen if n != OUTPUT]
        try:
            out = model(x.clone())  # a copy: a model that writes into its input must not change the caller's batch
        finally:
            for h in handles:
                h.remove()
        if names is None or OUTPUT in chosen:
            found.append((OUTPUT, out))
        taps = []
        for name, a in found:
            if not isinstance(a, torch.Tensor) or a.dim() not in (2, 4):
                if explicit:
                    shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
                    raise InvlabError(f"tap {name!r} gives {shape}; only maps (N, C, H, W) and vectors (N, F) can be "
                                      "profiled: name another module")
                continue
            stride = infer_stride(tuple(x.shape[-2:]), tuple(a.shape[-2:])) if a.dim() == 4 else 1
            taps.append((name, stride, a))
        if not taps and explicit:  # every named module exists, but none ran in the forward pass
            raise InvlabError(f"the modules named by --taps ({', '.join(chosen)}) are not called in "
                              f"{type(model).__name__}'s forward pass, so they give nothing to profile; name modules "
                              "it calls (print(model) lists them; a module defined but unused gives nothing)")
        if not taps:
            raise InvlabError(f"{type(model).__name__} has no module to tap (no convolution, pooling or "
                              "normalisation module gives a map); name some with --taps")
        return taps

    return tap
