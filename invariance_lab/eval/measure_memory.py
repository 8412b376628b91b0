"""The memory estimate that refuses a measurement too big to hold, as config/memory.py does for a run: the big
allocations of `invlab measure` (and il.measure), in bytes, from the number and size of the images, the batch
and the network's feature maps, against the same limit (config/memory.memory_limit).

    check_measure_memory(src, batch_size=256, mode="canvas")              # before any image is decoded
    check_measure_memory(src, batch_size=256, mode="canvas", maps=maps)   # with maps = feature_map_bytes(...)

The first call needs only the images' headers (open_folder reads no pixels); the second adds the networks' feature
maps, measured on one image (forward hooks), before the first batch is read. Memory does not grow with the number
of shifts (every shift of a batch is evaluated in turn), but it does with the batch: --batch-size images are
decoded, shifted and passed through the network at once.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config.memory import _size, memory_limit
from ..core.errors import ConfigError
from ..data.images import FolderImages, Images
from ..nn.forward import call
from .engine_plan import ENGINE_MEMORY

# A batch is held three times while the next is decoded (the per-image floats, their stack, and the last batch,
# which FolderImages caches); a canvas shift by a fraction of a pixel makes up to three more copies (the bilinear
# mean of whole-pixel shifts), a roll one, and --mean / --std one more (subtract, then divide in place of it).
DECODED_COPIES = 3
SHIFT_COPIES = {"canvas": 4, "circular": 2}

# what each part grows with, for the message
_GROWS_WITH = {"decoded images": "the batch and the image size", "shifted inputs": "the batch and the image size",
               "network feature maps": "the batch, the image size and the network's width",
               "layer profile": "--layer-images, the image size and the network's width"}


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
def feature_map_bytes(models: dict[str, nn.Module], x: torch.Tensor) -> tuple[int, int]:
    """(the largest input + output + scratch of one module, every module's output summed), in bytes per image,
    over the models, measured by forward hooks on x (one image is enough). Inference frees a module's input once
    the next has run, so about the largest such sum is alive at once; a layer profile keeps every tap. A
    convolution's scratch: conv_scratch."""
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
            out = call(m, x, f"model {name}")  # a model of your own that fails here is a FactoryError, as on any batch
            if not inner:
                hook(m, (x,), out)
        finally:
            for h in handles:
                h.remove()
        peak, total = max(peak, seen["peak"]), max(total, seen["total"])
    n = max(len(x), 1)
    return peak // n, total // n


def measure_memory(src: Images, *, batch_size: int, mode: str, maps: tuple[int, int] | None = None,
                   layer_images: int | None = None, engine_only: bool = False) -> dict[str, int]:
    """Estimated bytes of a measurement's big allocations, by part (_GROWS_WITH names what each grows with).
    engine_only: every model runs on the all-shift engine, which sizes its chunks to ENGINE_MEMORY."""
    c, h, w = src.shape
    image = 4 * c * h * w  # float32
    batch = min(batch_size, len(src)) * image
    parts = {"decoded images": DECODED_COPIES * batch if isinstance(src, FolderImages) else 0,
             "shifted inputs": SHIFT_COPIES.get(mode, 4) * batch}
    if maps is not None:
        network = min(batch_size, len(src)) * maps[0]
        parts["network feature maps"] = min(network, ENGINE_MEMORY) if engine_only else network
        if layer_images:  # the reference taps of a batch are kept, and every tap of the shift being profiled
            parts["layer profile"] = min(batch_size, layer_images, len(src)) * 2 * maps[1]
    return parts


def check_measure_memory(src: Images, *, batch_size: int, mode: str, maps: tuple[int, int] | None = None,
                         layer_images: int | None = None, engine_only: bool = False) -> None:
    """Refuse (ConfigError, one paragraph) a measurement whose estimate (measure_memory) is over memory_limit()."""
    parts = measure_memory(src, batch_size=batch_size, mode=mode, maps=maps, layer_images=layer_images,
                           engine_only=engine_only)
    total = sum(parts.values())
    limit, rule = memory_limit()
    if total <= limit:
        return
    biggest = max(parts, key=parts.get)
    listing = ", ".join(f"{p} {_size(b)}" for p, b in sorted(parts.items(), key=lambda kv: -kv[1]) if b)
    c, h, w = src.shape
    raise ConfigError(
        f"--images {src.describe}: too big to measure: {len(src)} images of {h} x {w} px x {c} channel(s), "
        f"{min(batch_size, len(src))} at a time (--batch-size {batch_size}), would need about {_size(total)} of "
        f"memory ({listing}), over the limit of {_size(limit)} ({rule}). The largest part, {biggest}, grows with "
        f"{_GROWS_WITH[biggest]}: lower {'--layer-images' if biggest == 'layer profile' else '--batch-size'} "
        f"(memory does not grow with the number of images beyond one batch, nor with the number of shifts), or "
        f"give a smaller --size (the side every image is resized to).")
