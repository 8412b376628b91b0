"""Checkpoints: one trained (model, seed) unit, saved atomically and loaded without ever running code.

A checkpoint holds only tensors and plain values (str, int, float, list, dict), so it is read with
``torch.load(weights_only=True)``, which refuses anything else: a file crafted to run code on load is refused
like a corrupt one. It carries its own settings and the fingerprint of them, and loading checks both: against
each other (an edited checkpoint) and against what the run folder's config.yaml expects (an edited config, a
swapped or foreign checkpoint). Paths come from layout.py (the run folder's contract). A file that cannot be used
is a CheckpointError naming it; a run folder whose files disagree with each other is a RunFolderError.
    save_checkpoint(checkpoint_path(run_dir, "conv_gap", 0), model, name="conv_gap", seed=0, ...)
    model, blob = load_checkpoint(path, "cpu", expect=dict(factors=..., data=..., train=..., seed=0))
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..core.errors import CheckpointError, InvlabError, RunFolderError, clip, quote
from ..core.runtime import check_device
from ..nn.factory import is_custom, require_trust
from ..core.versions import __version__
from ..data.folder import data_channels
from ..data.font_files import font_digests
from ..nn.models import build_model, count_parameters, place
from .atomic import write_file
from .layout import CONFIG_FILE, META_FILE, checkpoint_path, unit_key
from ..config.models import resolved_models
from ..schema.data import DataConfig
from ..schema.fields import MAX_BLOCKS, SEED_MAX

# key -> type every checkpoint must hold (anything else is left alone)
_FIELDS = dict(state_dict=dict, name=str, seed=int, factors=dict, data=dict, train=dict, classes=list,
               fingerprint=str, history=dict)
SETTINGS = ("factors", "data", "train", "seed")  # what the fingerprint covers
# torch.save stores every entry of its zip archive as is (ZIP_STORED): the entries' bytes lie in the file, so their
# sizes add up to less than the file's own. A deflated entry can say it expands to 1000 times its bytes, and torch.load
# expands it in memory before anything is checked (a 4 MB file took 4.5 GB); torch's reader allocates what the
# archive's directory says, so an archive saying more than its size plus this allowance (room for a few small entries
# that a tool repacking the archive compressed) is refused unread. Entries sharing bytes (overlapping) each count.
ZIP_ALLOWANCE = 2**20


def fingerprint(factors: dict, data: dict, train: dict, seed: int) -> str:
    """Identifies a trained model: same factors, data, training settings and seed -> same weights."""
    blob = json.dumps(dict(factors=factors, data=data, train=train, seed=seed), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(path: Path, model: nn.Module, *, name: str, seed: int, data: dict, train: dict,
                    classes: list[str], history: pd.DataFrame, factors: dict | None = None,
                    epoch_kept: int | None = None) -> None:
    """`factors`: the resolved spec (default: model.factors, which presets carry; a factory model's is its
    {"factory", "kwargs"}, plain values, so the file stays loadable with weights_only)."""
    factors = dict(factors if factors is not None else model.factors)
    # contiguous: the file does not depend on the layout the model ran in (models.place)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    blob = dict(state_dict=state, name=name, seed=seed, factors=factors, data=data, train=train, classes=list(classes),
                n_params=count_parameters(model), fingerprint=fingerprint(factors, data, train, seed),
                history={k: [_plain(v) for v in vals] for k, vals in history.to_dict("list").items()})
    if epoch_kept is not None:  # train.select: best_val: the epoch whose weights these are (not the last)
        blob["epoch_kept"] = int(epoch_kept)
    # atomic: a checkpoint file is either complete or absent; never written through a link planted in the folder
    write_file(path, lambda f: torch.save(blob, f), binary=True)


def _plain(v):
    """numpy scalars -> Python numbers, so the weights_only loader accepts the file."""
    return v.item() if hasattr(v, "item") else v


def _differences(want: dict, have: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(want) | set(have), key=str):
        a, b = want.get(key, "<missing>"), have.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {quote(a, 60)} expected, {quote(b, 60)} in the checkpoint")
    return out


def load_checkpoint(path: Path, device: torch.device | str, expect: dict | None = None,
                    trust: bool = False, dirs: Iterable[str | Path] = ()) -> tuple[nn.Module, dict]:
    """(model in eval mode on `device`, a torch.device or a name: cpu, cuda, auto; the checkpoint's dict). `expect` =
    the settings (factors, data, train, seed) the caller's config says this unit has: a checkpoint trained with
    other settings is refused, naming them. A factory model's module is imported only with `trust`
    (factory.require_trust says why, and which file), searched first in `dirs`."""
    device = check_device(device)
    blob = read_checkpoint(path, device, expect)
    if is_custom(blob["factors"]):
        require_trust(blob["factors"], trusted=trust, where=f"checkpoint {path}", dirs=dirs)
    try:
        data = blob["data"]
        # the initial weights, replaced by the file's at once, are drawn from a fork of torch's generator: loading
        # a checkpoint (a sweep, a report's gallery) leaves the caller's random numbers as they were
        with torch.random.fork_rng(devices=[]):
            model = build_model(blob["factors"], num_classes=len(blob["classes"]), canvas=int(data["canvas"]),
                                in_channels=data_channels(data), dirs=dirs)
    except InvlabError as e:
        if is_custom(blob["factors"]):  # the factory's own problem (import, call, output): its message says which
            raise type(e)(f"{path}: {e}") from None
        raise _unfit(path, e) from None
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise _unfit(path, e) from None
    try:
        model.load_state_dict(blob["state_dict"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise _unfit(path, e) from None
    return place(model, device).eval(), blob


def _unfit(path: Path, e: Exception) -> CheckpointError:
    return CheckpointError(f"{path}: its weights do not fit the model its settings describe "
                           f"({type(e).__name__}: {clip(e, 200)})")


def load_tensors(path: Path, map_location) -> object:
    """torch.load with weights_only=True: tensors and plain values, never code (pickle.UnpicklingError otherwise).
    torch's warning about a pickle protocol other than its own (a crafted file, or one saved with another
    protocol) is not passed on: it asks the reader to report it to torch, and the file is read or refused either
    way; nor is its note that a TorchScript archive goes to torch.jit.load (weights_only refuses it). A zip archive
    is checked first (check_archive): one that would expand far beyond its size is a CheckpointError, unread."""
    check_archive(Path(path))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        # a TorchScript archive: torch refuses it under weights_only, after this warning, and the refusal is ours
        warnings.filterwarnings("ignore", message=".*looks like a TorchScript archive", category=UserWarning)
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:
            protocol = _pickle_protocol(Path(path))
            if protocol is None or protocol < 4:  # an object the safe loader refuses, or not a pickle at all
                raise
            raise CheckpointError(f"{path} is a pickle of protocol {protocol} (torch.save(..., pickle_protocol="
                                  f"{protocol}), or a plain pickle), whose instructions torch's safe loader "
                                  f"(weights_only) cannot read, and invlab reads no pickle otherwise (loading one "
                                  f"could run code). Save the weights again: torch.save(model.state_dict(), path)") \
                from None


def _pickle_protocol(path: Path) -> int | None:
    """The pickle protocol a torch file was written with (the PROTO opcode opening its pickle: data.pkl in a zip
    archive, the file itself in the legacy format), or None where it opens with none."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            if zipfile.is_zipfile(f):
                with zipfile.ZipFile(f) as z:
                    name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                    head = z.open(name).read(2) if name else b""
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    return head[1] if len(head) == 2 and head[0] == 0x80 else None


def check_archive(path: Path) -> None:
    """Refuse a zip archive (torch.save's format, as torch.load tells it: the first 4 bytes) whose entries say they
    expand to more than the file's size plus ZIP_ALLOWANCE, reading only its directory; anything else passes."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                return  # a legacy (pickle) file, or not a torch file: torch.load says which
            size = os.fstat(f.fileno()).st_size
            f.seek(0)
            with zipfile.ZipFile(f) as z:
                entries = z.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # no readable directory (truncated, not a zip): torch's reader finds none either, and says so
    except Exception as e:  # a directory zipfile cannot read (names, zip64 fields): not one torch.save wrote
        raise CheckpointError(f"{path} is a zip archive whose directory cannot be read ({type(e).__name__}: "
                              f"{clip(e, 120)}); torch.save writes a plain zip archive, so this file is damaged "
                              "or was not written by torch.save") from None
    total = sum(e.file_size for e in entries)
    if total > size + ZIP_ALLOWANCE:
        big = max(entries, key=lambda e: e.file_size)
        raise CheckpointError(f"{path} is a zip archive whose entries would expand to {total:,} bytes, from a file of "
                              f"{size:,} bytes (entry {quote(big.filename, 80)} alone: {big.file_size:,} bytes from "
                              f"{big.compress_size:,}); torch would expand them in memory before anything is checked, "
                              f"so invlab refuses it unread. torch.save stores its entries uncompressed, so an archive "
                              f"it wrote never expands: at most the file's size plus {ZIP_ALLOWANCE:,} bytes "
                              f"({size + ZIP_ALLOWANCE:,} here) is allowed. If the weights are yours, save them again "
                              "with torch.save(model.state_dict(), path)")


def read_checkpoint(path: Path, device: torch.device, expect: dict | None = None) -> dict:
    """A checkpoint's dict, checked (fields, its own fingerprint, `expect` as load_checkpoint); nothing built."""
    path = Path(path)
    if not path.is_file():
        if path.exists():  # a folder or a FIFO at its name
            raise CheckpointError(f"{path} is not a file (a folder or a device where a checkpoint goes); move it "
                                  "away")
        raise CheckpointError(f"checkpoint not found: {path}; the run folder is incomplete")
    try:
        blob = load_tensors(path, device)
    except CheckpointError:  # refused before torch read it (an archive that would expand): the message says why
        raise
    except pickle.UnpicklingError:  # the weights_only loader met something other than tensors and plain values
        raise CheckpointError(f"{path} cannot be loaded as an invlab checkpoint: it is damaged, or holds objects "
                              f"other than tensors and plain values, which invlab refuses (loading them could run "
                              f"code; invlab never runs code from a file)") from None
    except Exception as e:  # truncated, empty, random bytes: torch raises several kinds
        raise CheckpointError(f"{path} cannot be loaded as an invlab checkpoint: it is truncated or not a checkpoint "
                              f"({type(e).__name__}); invlab never runs code from a file") from None
    return check_blob(blob, path, expect)


def is_checkpoint(blob) -> bool:
    """Whether a dict loaded from a file looks like an invlab checkpoint (rather than a bare state dict)."""
    return isinstance(blob, dict) and {"state_dict", "fingerprint", "factors"} <= set(blob)


def check_blob(blob, path: Path, expect: dict | None = None) -> dict:
    """The checks of read_checkpoint on a dict already loaded (weights_only) from `path`."""
    bad = [k for k, t in _FIELDS.items() if not isinstance(blob, dict) or not isinstance(blob.get(k), t)]
    if bad:
        raise CheckpointError(f"{path} is not an invlab checkpoint: {', '.join(bad)} missing or of the wrong type")
    try:
        own = fingerprint(*(blob[k] for k in SETTINGS))
    except (TypeError, ValueError) as e:  # settings holding tensors or mixed keys: not plain JSON values
        raise CheckpointError(f"{path} is not an invlab checkpoint: its settings are not plain values "
                              f"({type(e).__name__}: {clip(e, 120)})") from None
    if own != blob["fingerprint"]:
        raise CheckpointError(f"{path}: its settings do not match its own fingerprint; the checkpoint was edited")
    seed = blob["seed"]
    if isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise CheckpointError(f"{path}: [seed] {quote(seed)} is out of range; a checkpoint's seed is a whole number 0 "
                              f"to {SEED_MAX}, as a config's. The file is damaged or was not written by invlab")
    classes = blob["classes"]  # not in the fingerprint: held to what a run writes, the names of its outputs
    if not classes or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes):
        raise CheckpointError(f"{path}: [classes] {quote(classes)} is not a list of distinct class names (strings), "
                              "one per output, as invlab writes it. The file is damaged or was not written by invlab")
    if expect is not None and fingerprint(*(expect[k] for k in SETTINGS)) != own:
        diff = _differences({k: expect[k] for k in SETTINGS}, {k: blob[k] for k in SETTINGS})
        raise CheckpointError(f"{path} was trained with other settings than its run folder's config.yaml says "
                              f"({'; '.join(diff[:5]) or 'fingerprints differ'}). The config or the checkpoint was "
                              f"edited or swapped; re-run `invlab run` on the config to train matching models.")
    check_sizes(blob, path)
    return blob


def _field_range(model, key: str) -> tuple[int, int]:
    """(ge, le) of a schema field: the config's own bounds, so a checkpoint is held to what a config may say."""
    meta = model.model_fields[key].metadata
    return next(m.ge for m in meta if hasattr(m, "ge")), next(m.le for m in meta if hasattr(m, "le"))


def check_sizes(blob: dict, path: Path) -> None:
    """Refuse, before any model or tensor is built, a checkpoint whose recorded sizes are out of range or do not
    match its own weights: data.canvas within the config's bounds (schema/data.py), factors.channels 1 ..
    MAX_BLOCKS entries, each from 1 to the values its largest stored tensor holds (a block of c channels stores at
    least c), and then every weight's shape as the model its settings describe has it, built on torch's meta
    device (shapes only, nothing allocated). Without this a file claiming canvas 10**6 or channels [10**7] makes
    the loader allocate terabytes."""
    lo, hi = _field_range(DataConfig, "canvas")
    canvas = blob["data"].get("canvas")
    if not isinstance(canvas, int) or isinstance(canvas, bool) or not 1 <= canvas <= hi:
        # below `lo` the network may still be built (check_model says whether the layers fit), so only the top
        raise CheckpointError(f"{path}: [data.canvas] {quote(canvas)} is out of range; a checkpoint's canvas is a "
                              f"whole number of px up to {hi} (a config's range is {lo} to {hi}). The file is damaged "
                              "or was not written by invlab")
    if is_custom(blob["factors"]):
        return  # your own factory builds the model: its sizes are its own (and it runs only when trusted)
    channels = blob["factors"].get("channels")
    top = max((t.numel() for t in blob["state_dict"].values() if isinstance(t, torch.Tensor)), default=0)
    ok = isinstance(channels, list) and 1 <= len(channels) <= MAX_BLOCKS and all(
        isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= top for c in channels)
    if not ok:
        raise CheckpointError(f"{path}: [factors.channels] {quote(channels)} is out of range; a checkpoint's "
                              f"channels are 1 to {MAX_BLOCKS} whole numbers, each from 1 to {top} (the values its "
                              "largest stored tensor holds). The file is damaged or was not written by invlab")
    try:
        shapes = _model_shapes(json.dumps(blob["factors"], sort_keys=True), len(blob["classes"]), canvas,
                               data_channels(blob["data"]))
    except (InvlabError, ValueError, KeyError, TypeError, RuntimeError):
        return  # settings that build no model: the real build refuses them as before (check_model runs first)
    have = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in blob["state_dict"].items()}
    odd = sorted(set(shapes) ^ set(have)) or [k for k in shapes if shapes[k] != have[k]]
    if odd:
        k = odd[0]
        raise CheckpointError(f"{path}: its weights do not fit the model its settings describe ({quote(k)}: "
                              f"{quote(have.get(k, 'missing'))} in the file, {quote(shapes.get(k, 'missing'))} "
                              f"in the model; {len(odd)} entries differ)")


@functools.lru_cache(maxsize=64)
def _model_shapes(factors: str, num_classes: int, canvas: int, in_channels: int) -> dict[str, tuple[int, ...]]:
    """Each weight's shape in the model these settings (factors as sorted JSON) describe, built on torch's meta
    device (shapes only: a model of any claimed size costs nothing here). Cached: a run's seeds share their
    settings, and building even on the meta device takes tens of milliseconds."""
    with torch.device("meta"):
        model = build_model(json.loads(factors), num_classes=num_classes, canvas=canvas, in_channels=in_channels)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def unit_settings(cfg) -> dict[tuple[str, int], dict]:
    """(model, seed) -> the settings (factors, data, train, seed) a Config says that unit is trained with."""
    data, train = cfg.data.model_dump(mode="json"), cfg.train.model_dump(mode="json")
    data.pop("test_sets", None)  # measured after training: they change no checkpoint, so none is trained again
    return {(name, seed): dict(factors=f, data=data, train=train, seed=seed)
            for name, f in resolved_models(cfg).items() for seed in cfg.seeds}


def unit_fingerprints(cfg) -> dict[str, str]:
    """unit key -> fingerprint, as meta.json records them."""
    return {unit_key(*k): fingerprint(*(s[f] for f in SETTINGS)) for k, s in unit_settings(cfg).items()}


def trained_with(cfg) -> dict:
    """What a run's checkpoints depend on beyond their settings, recorded in meta.json (`trained_with`) and
    compared before a checkpoint is reused (find.reusable_checkpoints): invlab's version, torch's major.minor
    (training numerics change between minor releases) and the digests of the font files the letters are drawn
    from (data/font_files.py). Kept apart from the fingerprint, which names the settings alone: a checkpoint's
    fingerprint, and the numbers of a run, are what they always were."""
    return dict(invlab=__version__, torch=".".join(torch.__version__.split("+")[0].split(".")[:2]),
                fonts=font_digests(cfg.data))


def load_run_models(run_dir: Path, cfg, meta: dict, models: list[str], device: torch.device,
                    trust: bool = False, dirs: Iterable[str | Path] = ()) -> dict:
    """{(model, seed): trained model} of a finished run, each checkpoint checked against config.yaml and
    meta.json: an edited config, an edited meta.json or a swapped checkpoint is refused with what differs.
    Factory models are imported only with `trust` (load_checkpoint), searched first in `dirs`."""
    if list(meta.get("seeds", [])) != list(cfg.seeds):
        raise RunFolderError(f"{run_dir}: seeds {quote(meta.get('seeds'))} in {META_FILE} but {cfg.seeds} in "
                              f"{CONFIG_FILE}; the run folder was edited")
    settings = unit_settings(cfg)
    recorded = meta.get("fingerprints", {})
    loaded = {}
    for name in models:
        for seed in cfg.seeds:
            path = checkpoint_path(run_dir, name, seed)
            model, blob = load_checkpoint(path, device, expect=settings[(name, seed)], trust=trust, dirs=dirs)
            key = unit_key(name, seed)
            if recorded.get(key) != blob["fingerprint"]:
                raise RunFolderError(f"{run_dir}: {META_FILE} records fingerprint {quote(recorded.get(key))} "
                                     f"for {key}, but its checkpoint and {CONFIG_FILE} say "
                                     f"{blob['fingerprint']}; the run folder was edited")
            loaded[(name, seed)] = model
    return loaded
