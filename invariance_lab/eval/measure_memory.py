"""The memory estimate that refuses a measurement too big to hold, as config/memory.py does for a run: the big
allocations of `invlab measure` (and il.measure), in bytes, from the number and size of the images, the batch
and the network's feature maps, against the same limit (config/memory.memory_limit).

    check_measure_memory(src, batch_size=256, mode="canvas")              # before any image is decoded
    check_measure_memory(src, batch_size=256, mode="canvas", maps=maps)   # maps: nn/maps.feature_map_bytes

The first call needs only the images' headers (open_folder reads no pixels); the second adds the networks' feature
maps, measured on the first two images (nn/maps.py), before the first batch is read. Memory does not grow with the
number of shifts (every shift of a batch is evaluated in turn), but it does with the batch: --batch-size images are
decoded, shifted and passed through the network at once.
"""

from __future__ import annotations

from ..config.memory import _size, memory_limit
from ..core.errors import ConfigError
from ..data.images import FolderImages, Images
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


def measure_total(parts: dict[str, int]) -> int:
    """The bytes alive at once: the sweep's feature maps and the layer profile come one after the other (the
    profile runs once the shifts are measured), so the larger of the two counts; the images, throughout. With
    --layers --layer-images 256 on a VGG-like model of 64 channels (128 px), the two summed made 14.5 GiB for 8.0-8.1
    GiB used (two runs); the larger, 11.5 GiB."""
    sequential = [parts.get("network feature maps", 0), parts.get("layer profile", 0)]
    return sum(parts.values()) - min(sequential)


def check_measure_memory(src: Images, *, batch_size: int, mode: str, maps: tuple[int, int] | None = None,
                         layer_images: int | None = None, engine_only: bool = False) -> None:
    """Refuse (ConfigError, one paragraph) a measurement whose estimate (measure_memory) is over memory_limit()."""
    parts = measure_memory(src, batch_size=batch_size, mode=mode, maps=maps, layer_images=layer_images,
                           engine_only=engine_only)
    total = measure_total(parts)
    limit, rule = memory_limit()
    if total <= limit:
        return
    biggest = max(parts, key=parts.get)
    listing = ", ".join(f"{p} {_size(b)}" for p, b in sorted(parts.items(), key=lambda kv: -kv[1]) if b)
    if parts.get("layer profile") and parts.get("network feature maps"):
        listing += "; the feature maps and the layer profile one after the other: the larger counted"
    c, h, w = src.shape
    raise ConfigError(
        f"--images {src.describe}: too big to measure: {len(src)} images of {h} x {w} px x {c} channel(s), "
        f"{min(batch_size, len(src))} at a time (--batch-size {batch_size}), would need about {_size(total)} of "
        f"memory ({listing}), over the limit of {_size(limit)} ({rule}). The largest part, {biggest}, grows with "
        f"{_GROWS_WITH[biggest]}: lower {'--layer-images' if biggest == 'layer profile' else '--batch-size'} "
        f"(memory does not grow with the number of images beyond one batch, nor with the number of shifts), or "
        f"give a smaller --size (the side every image is resized to).")
