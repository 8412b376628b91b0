"""Your own images as the data set (`data.source: folder`): an image folder split into training and test images,
converted to the canvas, kept as 8-bit pixels.

    data:
      source: folder
      path: my_symbols        # my_symbols/<class>/<image>, or my_symbols/train/<class>/... and .../test/<class>/...
      colour: grey            # grey (1 channel) or rgb (3)
      test_fraction: 0.2      # without train/ and test/: this share of every class is the test set, by data.seed
      fill: zeros             # canvas shifts: what enters the frame (zeros | edge | reflect)

The layout is torchvision's ImageFolder: the class of an image is its subfolder, class index = sorted position of
the name. With `train/` and `test/` subfolders (and nothing else) those are the split, and both must hold the same
classes; otherwise every class is split at random by data.seed, each giving round(n * test_fraction) images (at
least one, and leaving at least one) to the test set, so the split is stratified and the same for every model and
seed. Every image is resized to canvas x canvas (Pillow's bilinear resampling, aspect ratio not kept: square
images are the expected input), as grey or RGB.

Memory: files are decoded one batch at a time and only the canvas-sized 8-bit pixels are kept (canvas**2 bytes a
channel per image, 1 KiB for a 32 x 32 grey image), never the files themselves: a folder far larger than RAM fits
as long as its images at canvas size do, which the run's memory estimate checks before anything is read. The
pixels are turned into floats in [0, 1] a batch at a time (to_float).

Shifts: the canvas protocol translates an image inside its frame (transforms.translate_image: whole pixels exact,
sub-pixel bilinear, `fill` entering at the border); circular rolls it. Training offsets (data.train_shift) are
applied once per image, like the letters' placement, and rounded back to 8 bits. The position probe and part
displacement need drawn letters and refuse folders.

Bad files (not PNG/JPEG, unreadable, damaged, too large, multi-frame, a FIFO or device), empty class folders, stray
files and classes missing from one split are refused by name (images.open_folder) when the config is validated,
before any work starts. Pixels are read as what they are (pixels.py: 16-bit scaled, transparency on black).

Changes are noticed: the config records data.folder_digest (every file's name, size, label and sha256 of its
bytes, FolderSplit.digest), so a run folder refuses a folder whose pixels changed, and checkpoints trained on
other pixels are never reused (the digest is part of their fingerprint). Within a process the split is cached
while nothing in the folder's whole tree changed (digests.tree_stamp), and each file is hashed once.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cached_property, lru_cache
from pathlib import Path

import torch

from ..core.errors import DataError, InvlabError, quote
from .digests import file_digest, tree_stamp
from .images import COLOURS, FolderImages, open_folder

SPLITS = ("train", "test")  # subfolder names that mean "the split is given"
VAL_SPLIT = "val"  # an optional third one beside them: the validation images (train.select: best_val)
DECODE_BATCH = 256  # files decoded at once: bounds the float scratch memory while reading


@dataclasses.dataclass(frozen=True)
class FolderSplit:
    classes: tuple[str, ...]
    train: FolderImages
    test: FolderImages
    given: bool  # True: train/ and test/ subfolders; False: split here by data.seed
    val: FolderImages | None = None  # a val/ folder beside train/ and test/, if there is one

    @cached_property
    def digest(self) -> str:
        """A digest of every file's path (below the folder), size, contents (sha256, digests.file_digest) and
        label: a run's config records it, so a run folder refuses to be swept on a folder whose files were added,
        removed, renamed, resized or rewritten since, and checkpoints of other pixels are never reused (the digest
        is part of their fingerprint)."""
        return folder_digest(self)


def folder_digest(split: FolderSplit) -> str:
    """FolderSplit.digest: sha256 over (path below the folder, size, label, sha256 of the bytes) of every file of
    both splits, in order; 32 hex digits."""
    h = hashlib.sha256()
    # val/ only when there is one: the digests of folders without it are what they always were
    for part in (split.train, split.test) + ((split.val,) if split.val is not None else ()):
        root = Path(part.describe)
        for f, y in zip(part.files, part.labels.tolist()):
            try:
                size, content = f.stat().st_size, file_digest(f)
            except OSError as e:
                raise DataError(f"{f} cannot be read ({e.strerror or type(e).__name__}) while its digest is taken; "
                                "give a folder invlab may read, and leave it unchanged while a run reads it") from None
            h.update(f"{f.relative_to(root)}\0{size}\0{y}\0{content}\n".encode())
        h.update(b"--\n")
    return h.hexdigest()[:32]


def image_channels(colour: str) -> int:
    return COLOURS[colour][1]


def data_channels(data: dict) -> int:
    """Input channels of a network trained on a data section as checkpoints store it (a dict): 3 for an rgb
    folder, else 1 (colour is written only when it is not grey)."""
    colour = data.get("colour", "grey")
    return image_channels(colour) if colour in COLOURS else 1


def _subset(images: FolderImages, idx: list[int], describe: str) -> FolderImages:
    return dataclasses.replace(images, n=len(idx), files=[images.files[i] for i in idx], labels=images.labels[idx],
                               describe=describe, _cache=None)


def _split(all_images: FolderImages, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified random split of indices: (train, test), each sorted (files stay in folder order)."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c, name in enumerate(all_images.classes):
        idx = (all_images.labels == c).nonzero().flatten()
        if len(idx) < 2:
            raise InvlabError(f"class folder {Path(all_images.describe) / name} holds {len(idx)} image; a random "
                              "train/test split needs at least two per class (one for each side): add images, or "
                              "give the split as train/ and test/ subfolders")
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = min(max(1, round(len(idx) * test_fraction)), len(idx) - 1)
        test += idx[:k].tolist()
        train += idx[k:].tolist()
    return sorted(train), sorted(test)


@lru_cache(maxsize=8)
def _open(path: str, colour: str, canvas: int, test_fraction: float, seed: int, stamp: tuple) -> FolderSplit:
    folder = Path(path)
    if not folder.is_dir():
        raise InvlabError(f"{'no such folder' if not folder.exists() else 'not a folder'}: {quote(path)}; give a "
                          "folder of images in class subfolders (DIR/<class>/<image>), or DIR/train/<class>/... "
                          "and DIR/test/<class>/...")
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    size = (canvas, canvas)
    if set(names) & set(SPLITS):
        if sorted(set(names) - {VAL_SPLIT}) != sorted(SPLITS):
            raise InvlabError(f"{folder} holds {quote(names)}: with a train/ or test/ subfolder it must hold exactly "
                              "train/ and test/, and optionally val/ (each DIR/<split>/<class>/<image>)")
        parts = [open_folder(folder / s, colour=colour, size=size) for s in (*SPLITS, VAL_SPLIT) if s in names]
        train, test, val = parts + [None] * (3 - len(parts))
        for part in parts:
            if part.classes is None:
                raise InvlabError(f"{part.describe} holds images but no class subfolders; the layout is "
                                  f"{folder}/<split>/<class>/<image>")
        for other in parts[1:]:
            if train.classes != other.classes:
                missing = sorted(set(train.classes) ^ set(other.classes))
                raise InvlabError(f"{folder}: train/ and {Path(other.describe).name}/ hold different classes "
                                  f"({quote(missing)} in only one); both splits need the same class subfolders")
        return FolderSplit(tuple(train.classes), train, test, given=True, val=val)
    everything = open_folder(folder, colour=colour, size=size)
    if everything.classes is None:
        raise InvlabError(f"{folder} holds images but no class subfolders; training needs labels: put each class's "
                          f"images in its own subfolder ({folder}/<class>/<image>)")
    train, test = _split(everything, test_fraction, seed)
    return FolderSplit(tuple(everything.classes), _subset(everything, train, str(folder)),
                       _subset(everything, test, str(folder)), given=False)


def folder_split(data) -> FolderSplit:
    """The training and test images of a `data.source: folder` config (DataConfig), every file checked; cached
    per process while no entry of the folder's whole tree changed (digests.tree_stamp)."""
    # the whole tree's listing (every file's size, mtime, inode): a file changed inside a class folder is read anew
    stamp = tree_stamp(data.path)
    return _open(str(Path(data.path)), data.colour, data.canvas, data.test_fraction, data.seed, stamp)


def read_pixels(images: FolderImages) -> torch.Tensor:
    """Every image of the source as (N, C, H, W) uint8, decoded DECODE_BATCH files at a time."""
    out = torch.empty((images.n, *images.shape), dtype=torch.uint8)
    for i in range(0, images.n, DECODE_BATCH):
        out[i:i + DECODE_BATCH] = to_bytes(images(slice(i, i + DECODE_BATCH)))
    images._cache = None  # the last batch's floats are not needed any more
    return out


def to_bytes(x: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] -> uint8 (rounded): exact for pixels read from 8-bit files."""
    return (x.clamp(0, 1) * 255).round_().to(torch.uint8)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """Pixels as float32 in [0, 1]: uint8 divided by 255, floats as they are."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def folder_test_set(data) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, C, canvas, canvas), labels): the test images at the reference position, as read."""
    split = folder_split(data)
    return read_pixels(split.test), split.test.labels.clone()
