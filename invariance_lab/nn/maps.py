"""What a network's forward pass holds in memory, measured by forward hooks on a small batch: the largest input +
output + scratch of one module, and every module's output summed. `invlab measure` charges the first for a batch
(eval/measure_memory.py); a run charges its own models (factories) both, for training (config/memory.py).

    peak, total = feature_map_bytes({"mine": model}, torch.zeros(2, 1, 64, 64))   # bytes per image
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

# oneDNN (torch's CPU convolution for float32) computes in a blocked layout, channels in blocks of 16 on AVX-512
# (8 on AVX2: 16 is the larger), so a convolution makes a blocked copy of its output, and of its input when that has
# more than ONEDNN_PLAIN_INPUT channels; the input's copy is freed before the output is copied back
# (bench/measure_memory.py measured each case within 3%)
ONEDNN_BLOCK = 16
ONEDNN_PLAIN_INPUT = 8


def _blocked(nbytes: int, channels: int) -> int:
    """The bytes of a map of `channels` channels with them rounded up to a whole number of oneDNN blocks."""
    return nbytes * (-(-channels // ONEDNN_BLOCK) * ONEDNN_BLOCK) // max(channels, 1)


def _onednn(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and bool(torch.backends.mkldnn.enabled))


def conv_scratch(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """Bytes a convolution holds beyond its input x and its output, as bench/measure_memory.py measures them: the
    padded copy of its input (a padding_mode other than zeros), and on oneDNN (CPU, float32, a 2-D convolution)
    the blocked copies, max(blocked input + blocked output - output, blocked output): a 64-channel 3 x 3
    convolution holds one map more than its input and output, not the nine of its unfolded input. Elsewhere (CUDA,
    float64, 1-D and 3-D, transposed) the unfolded input (in_channels x kernel area values per output position),
    the most the native path (im2col) makes."""
    if not isinstance(module, nn.modules.conv._ConvNd) or out.dim() <= 2 or x.dim() != out.dim():
        return 0
    out_bytes = out.numel() * out.element_size()
    conv_in = padded = 0
    if module.padding_mode != "zeros":  # F.pad's copy, which the convolution then reads
        pad, spatial = module._reversed_padding_repeated_twice, x.shape[2:]
        grown = math.prod(s + pad[2 * i] + pad[2 * i + 1] for i, s in enumerate(reversed(spatial)))
        conv_in = padded = x.numel() // max(math.prod(spatial), 1) * grown * x.element_size()
    if isinstance(module, nn.Conv2d) and not module.transposed and _onednn(x):
        conv_in = conv_in or x.numel() * x.element_size()
        src = _blocked(conv_in, module.in_channels) if module.in_channels > ONEDNN_PLAIN_INPUT else 0
        dst = _blocked(out_bytes, module.out_channels)
        return padded + max(src + dst - out_bytes, dst)
    return padded + module.in_channels * math.prod(module.kernel_size) * out_bytes // max(module.out_channels, 1)


@torch.inference_mode()
def feature_map_bytes(models: dict[str, nn.Module], x: torch.Tensor,
                      run: Callable[[nn.Module, torch.Tensor, str], Any] = lambda m, x, what: m(x)) -> tuple[int, int]:
    """(the largest input + output + scratch of one module, every module's output summed), in bytes per image,
    over the models, measured by forward hooks on x (one image is enough). Inference frees a module's input once
    the next has run, so about the largest such sum is alive at once; a layer profile keeps every tap. A
    convolution's scratch: conv_scratch. `run(model, x, "model NAME")` runs a model (nn/forward.call: a model of
    your own that fails is a FactoryError naming it)."""
    peak, total = 0, 0

    def sizes(out) -> int:
        items = out if isinstance(out, (tuple, list)) else (out,)
        return sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))

    for name, m in models.items():
        seen = {"total": 0, "peak": 0}

        def hook(module, args, out):
            scratch = 0
            if args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
                scratch = conv_scratch(module, args[0], out)
            seen["peak"] = max(seen["peak"], sizes(args) + sizes(out) + scratch)
            seen["total"] += sizes(out)

        # a TorchScript module takes no hooks: only its input and output are counted (its maps are unseen)
        inner = [] if isinstance(m, torch.jit.ScriptModule) else [s for s in m.modules() if not list(s.children())]
        handles = [s.register_forward_hook(hook) for s in inner]
        try:
            out = run(m, x, f"model {name}")
            if not inner:
                hook(m, (x,), out)
        finally:
            for h in handles:
                h.remove()
        peak, total = max(peak, seen["peak"]), max(total, seen["total"])
    n = max(len(x), 1)
    return peak // n, total // n
