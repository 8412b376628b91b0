"""Weights files for `invlab measure`: read without ever running code, and loaded into a model with a clear
message when they do not fit.

    state, checkpoint = read_weights("mine.pt")          # checkpoint: the invlab checkpoint's dict, or None
    load_weights(model, state, "mine.pt")

Three kinds of file:
  * a state dict saved with torch.save(model.state_dict(), path): read with torch.load(weights_only=True), which
    refuses anything but tensors and plain values (also {"state_dict": {...}} as some trainers save it), after
    its zip archive's sizes are checked (checkpoints.check_archive: a compressed entry is not expanded);
  * a .safetensors file: parsed here (an 8-byte header length, a JSON header, raw little-endian tensor bytes), so
    no extra package is needed and nothing in the file can run; its header is checked (dtypes, shapes, offsets,
    nesting) and its tensors memory-mapped, so a file larger than RAM is not read whole;
  * an invlab checkpoint (checkpoints.py), checked like any other (fields, fingerprint).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import check_blob, is_checkpoint, load_tensors
from ..core.errors import CheckpointError, clip, quote

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
    "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
MAX_HEADER = 100 * 2**20  # bytes of a safetensors JSON header (the format's own limit)
MAX_RANK = 32  # dimensions of one tensor: far beyond any network's weights
# One dimension of a tensor, and the product of its dimensions with a 0 counted as 1: a tensor's bytes bound a shape
# that holds values, but not one with a 0 in it ([0, 10**20] holds nothing), and torch's sizes and strides are 64-bit
# ints (torch.empty([0, 10**20]) overflows, [0, 2**30, 2**30, 2**30] overflows its strides). Both are far beyond any
# network's weights: a weight 2**31 values long in one dimension is 8 GiB of float32.
MAX_DIM, MAX_EXTENT = 2**31 - 1, 2**62
TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save's zip archive; the legacy format's pickle (protocol >= 2)


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """(state dict, the invlab checkpoint's dict or None) of a weights file; a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--weights {path}: {'no such file' if not path.exists() else 'not a file'}")
    if path.suffix.lower() == ".safetensors":
        return read_safetensors(path), None
    with open(path, "rb") as f:
        head = f.read(4)
    if head and not head.startswith(TORCH_MAGIC):  # an image, a JSON file...: not "a whole pickled model"
        raise CheckpointError(f"{path} is not a torch file: torch.save writes a zip archive (or, before torch 1.6, a "
                              f"pickle), and this file begins with {head!r}. Give the weights saved by "
                              "torch.save(model.state_dict(), path), or a .safetensors file")
    if head.startswith(TORCH_MAGIC[0]) and _is_torchscript(path):
        raise CheckpointError(f"{path} is a TorchScript archive (torch.jit.save): it holds the model's code, which "
                              "invlab does not load, since loading it would run that code. Save the weights alone, "
                              "torch.save(model.state_dict(), path), and give --model the function that builds the "
                              "network; from Python, il.measure takes the scripted module itself")
    try:
        blob = load_tensors(path, "cpu")
    except CheckpointError:  # refused before torch reads it (an archive that would expand): the message says why
        raise
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path} holds objects other than tensors and plain values (a whole pickled model?), "
                              "which invlab refuses to load: loading them could run code. Save the weights alone: "
                              "torch.save(model.state_dict(), path)") from None
    except Exception as e:
        raise CheckpointError(f"{path} cannot be read as weights: it is truncated or not a torch file "
                              f"({type(e).__name__}: {clip(e, 120)})") from None
    if is_checkpoint(blob):
        blob = check_blob(blob, path)
        return blob["state_dict"], blob
    if isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict):
        blob = blob["state_dict"]
    blob = _inner_state_dict(blob, path)
    if not isinstance(blob, dict) or not blob:
        raise CheckpointError(f"{path} holds a {type(blob).__name__}, not a state dict (a mapping of parameter names "
                              "to tensors): save it with torch.save(model.state_dict(), path)")
    bad = next(((k, v) for k, v in blob.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)
                and not k.endswith("_extra_state")), None)  # a module's get_extra_state() may hold anything
    if bad is not None and not isinstance(bad[0], str):
        raise CheckpointError(f"{path} is not a state dict: its key {quote(bad[0])} is not a parameter name "
                              "(a string); save it with torch.save(model.state_dict(), path)")
    if bad is not None:
        raise CheckpointError(f"{path} is not a state dict: entry {quote(bad[0])} holds a {type(bad[1]).__name__}, "
                              "not a tensor; save it with torch.save(model.state_dict(), path)")
    return blob, None


def _is_state_dict(value) -> bool:
    """Parameter names to tensors; a module's _extra_state (from get_extra_state()) may hold anything."""
    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, str) and (isinstance(v, torch.Tensor) or k.endswith("_extra_state")) for k, v in value.items())


def _inner_state_dict(blob, path: Path):
    """A training checkpoint saved as PyTorch's tutorials do, {'epoch': 3, 'model_state_dict': {...},
    'optimizer_state_dict': {...}, 'loss': ...}: the one entry that is a state dict. Several (a model and its
    EMA copy) are refused, naming them; anything else is returned as it was."""
    if not isinstance(blob, dict) or _is_state_dict(blob):
        return blob  # a state dict is never looked inside
    inner = [k for k, v in blob.items() if isinstance(k, str) and _is_state_dict(v)]
    if len(inner) > 1:
        names = ", ".join(quote(k) for k in inner)
        raise CheckpointError(f"{path} holds several state dicts ({names}): save the one to measure alone, e.g. "
                              f"torch.save(checkpoint[{inner[0]!r}], path)")
    return blob[inner[0]] if inner else blob


def _is_torchscript(path: Path) -> bool:
    """Whether a zip archive is TorchScript's: torch.jit.save stores the model's code (code/) and its constants
    (constants.pkl) beside the tensors, which torch.save's archives never hold."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False  # not a readable zip: torch.load's own refusal says so


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file (https://github.com/huggingface/safetensors, format section), memory-
    mapped: only the header is read, and a tensor's bytes are paged in when they are used (copied into a model
    by load_weights), so a file of many GB costs no more memory than the weights a model takes from it. The
    header is checked before any tensor is made (_tensor_entries)."""
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a valid .safetensors file: {why}")

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise bad("shorter than its 8-byte header length")
            n = int.from_bytes(head, "little")
            if n > min(MAX_HEADER, size - 8):
                raise bad(f"its header length ({n} bytes) runs past the end of the file"
                          + (f" or over the format's {MAX_HEADER} bytes" if n > MAX_HEADER else ""))
            text = f.read(n)
            entries = _tensor_entries(text, size - 8 - n, bad)
            # a private (copy-on-write) mapping: writable, so torch shares it without a copy, and nothing goes back
            # to the file; the mapping outlives the file object
            body = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    except OSError as e:  # a folder, no permission, a file removed meanwhile
        raise CheckpointError(f"{path} cannot be read: {clip(e, 120)}") from None
    out = {}
    for name, dtype, shape, start, end in entries:
        offset, itemsize = 8 + n + start, torch.empty(0, dtype=dtype).element_size()
        if end == start:
            out[name] = torch.empty(shape, dtype=dtype)
            continue
        if offset % itemsize == 0:  # a view of the mapping (the safetensors library pads its header to 8 bytes)
            t = torch.frombuffer(body, dtype=dtype, count=(end - start) // itemsize, offset=offset)
        else:  # a header of another length leaves it misaligned: one aligned copy of its bytes
            t = torch.from_numpy(np.frombuffer(body, np.uint8, end - start, offset).copy()).view(dtype)
        out[name] = t.reshape(shape)
    if not out:
        raise bad("it holds no tensors")
    return out


def _tensor_entries(text: bytes, body: int, bad) -> list[tuple[str, torch.dtype, list[int], int, int]]:
    """(name, dtype, shape, start, end) of every tensor of a safetensors header, each checked: the header is a
    JSON object of {"dtype": one of SAFETENSORS_DTYPES, "shape": whole numbers >= 0, "data_offsets": [begin, end]}
    with begin <= end inside the `body` bytes after the header and end - begin = the shape's values x the dtype's
    size, plus an optional "__metadata__" of strings. Nothing may nest deeper than that. Each dimension is at most
    MAX_DIM and their product (a 0 counted as 1) at most MAX_EXTENT, so torch can make a tensor of that shape."""
    try:
        header = json.loads(text.decode("utf-8"))
    except RecursionError:  # json's parser recurses per level; the format has three (header, tensor, shape)
        raise bad("its header nests far deeper than the format's three levels") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise bad(f"its header is not JSON ({clip(e, 80)})") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("its __metadata__ is not an object of strings")
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"} \
                or not isinstance(info["dtype"], str) \
                or info["dtype"] not in SAFETENSORS_DTYPES or not _whole_numbers(info["shape"], MAX_RANK) \
                or not _whole_numbers(info["data_offsets"], 2) or len(info["data_offsets"]) != 2:
            raise bad(f"tensor {quote(name)} is not {{\"dtype\": one of {', '.join(SAFETENSORS_DTYPES)}, \"shape\": "
                      f"at most {MAX_RANK} whole numbers >= 0, \"data_offsets\": [begin, end]}}; it holds "
                      f"{quote(info, 120)}")
        dtype, shape, (start, end) = SAFETENSORS_DTYPES[info["dtype"]], info["shape"], info["data_offsets"]
        if max(shape, default=0) > MAX_DIM or math.prod(max(d, 1) for d in shape) > MAX_EXTENT:
            raise bad(f"tensor {quote(name)}: its shape {quote(shape, 80)} is out of range; each dimension is at most "
                      f"{MAX_DIM} (2**31 - 1) and their product, a 0 counted as 1, at most 2**62 (torch's sizes are "
                      "64-bit), far beyond any network's weights")
        size = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()  # Python ints: no overflow
        if not start <= end <= body or end - start != size:
            raise bad(f"tensor {quote(name)}: its offsets {start}..{end} do not hold {quote(shape, 80)} "
                      f"{info['dtype']} values ({size} bytes) within the {body} bytes after the header")
        entries.append((name, dtype, shape, start, end))
    return entries


def _whole_numbers(values, most: int) -> bool:
    return isinstance(values, list) and len(values) <= most and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """model with `state` loaded (strictly: every name and shape must match); a CheckpointError saying what
    differs. A complex tensor for a real one is refused: load_state_dict would keep its real part (with a warning)."""
    own = model.state_dict()
    lost = next((k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_complex() and k in own
                 and not own[k].is_complex()), None)
    if lost is not None:
        raise CheckpointError(f"--weights {path}: tensor {quote(lost)} is complex, where the model's is "
                              f"{str(own[lost].dtype).removeprefix('torch.')}; loading it would drop its imaginary "
                              f"part. Give the weights the model was trained with")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:] or lines)
        hint, prefix = "", _common_prefix(state)
        fits = bool(prefix) and {k[len(prefix):] for k in state} == set(model.state_dict())
        if fits and prefix == "module.":  # a model's own self.module is not DataParallel's: the names must fit
            hint = " (every name starts with 'module.': saved from DataParallel; save model.module.state_dict())"
        elif fits and prefix == "_orig_mod.":  # torch.compile's wrapper keeps the network as _orig_mod
            hint = (" (every name starts with '_orig_mod.': saved from a torch.compile'd model; save "
                    "model._orig_mod.state_dict(), or the same names without '_orig_mod.')")
        elif fits:
            hint = (f" (every name starts with {prefix!r}, and without it they are the model's: the network was "
                    f"saved inside a wrapper, as PyTorch Lightning does; save the inner network's state_dict(), or "
                    f"the same names without {prefix!r})")
        raise CheckpointError(f"--weights {path} does not fit the model: {clip(detail, 400)}{hint}") from None
    return model


def _common_prefix(state: dict) -> str:
    """'module.' when every name starts with it: the first component that all the names share, or ''."""
    firsts = {k.split(".", 1)[0] for k in state}
    return f"{firsts.pop()}." if len(firsts) == 1 and all("." in k for k in state) else ""
