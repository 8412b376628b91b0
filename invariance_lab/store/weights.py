"""Weights files for `invlab measure`: read without ever running code, and loaded into a model with a clear
message when they do not fit.

    state, checkpoint = read_weights("mine.pt")          # checkpoint: the invlab checkpoint's dict, or None
    load_weights(model, state, "mine.pt")

Three kinds of file:
  * a state dict saved with torch.save(model.state_dict(), path): read with torch.load(weights_only=True), which
    refuses anything but tensors and plain values (also {"state_dict": {...}} as some trainers save it);
  * a .safetensors file: parsed here (an 8-byte header length, a JSON header, raw little-endian tensor bytes), so
    no extra package is needed and nothing in the file can run;
  * an invlab checkpoint (checkpoints.py), checked like any other (fields, fingerprint).
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import torch
from torch import nn

from .checkpoints import check_blob, is_checkpoint
from ..core.errors import CheckpointError, clip, quote

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
    "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
MAX_HEADER = 100 * 2**20  # bytes of a safetensors JSON header (the format's own limit)


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """(state dict, the invlab checkpoint's dict or None) of a weights file; a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--weights {path}: {'no such file' if not path.exists() else 'not a file'}")
    if path.suffix.lower() == ".safetensors":
        return read_safetensors(path), None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
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
    if not isinstance(blob, dict) or not blob:
        raise CheckpointError(f"{path} holds a {type(blob).__name__}, not a state dict (a mapping of parameter names "
                              "to tensors): save it with torch.save(model.state_dict(), path)")
    bad = next(((k, v) for k, v in blob.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"{path} is not a state dict: entry {quote(bad[0])} holds a {type(bad[1]).__name__}, "
                              "not a tensor; save it with torch.save(model.state_dict(), path)")
    return blob, None


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file (https://github.com/huggingface/safetensors, format section)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:  # a folder, no permission, a file removed meanwhile
        raise CheckpointError(f"{path} cannot be read: {clip(e, 120)}") from None

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a valid .safetensors file: {why}")

    if len(data) < 8:
        raise bad("shorter than its 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > min(MAX_HEADER, len(data) - 8):
        raise bad(f"its header length ({n} bytes) runs past the end of the file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise bad(f"its header is not JSON ({clip(e, 80)})") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    body, out = memoryview(data)[8 + n:], {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = SAFETENSORS_DTYPES[info["dtype"]]
            shape = [int(s) for s in info["shape"]]
            start, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise bad(f"tensor {quote(name)} has no valid dtype ({', '.join(SAFETENSORS_DTYPES)}), shape and "
                      "data_offsets") from None
        size = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
        if min(shape, default=0) < 0 or not 0 <= start <= end <= len(body) or end - start != size:
            raise bad(f"tensor {quote(name)}: its offsets {start}..{end} do not hold {shape} {info['dtype']} values "
                      f"within the file")
        raw = bytearray(body[start:end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(shape)
    if not out:
        raise bad("it holds no tensors")
    return out


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """model with `state` loaded (strictly: every name and shape must match); a CheckpointError saying what
    differs."""
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:] or lines)
        hint = ""
        if all(k.startswith("module.") for k in state):
            hint = " (every name starts with 'module.': saved from DataParallel; save model.module.state_dict())"
        raise CheckpointError(f"--weights {path} does not fit the model: {clip(detail, 400)}{hint}") from None
    return model
