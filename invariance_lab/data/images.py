"""Images to measure a model on: a folder of PNG/JPEG files (the ImageFolder layout), a tensor, or a run folder's
own test letters. Every source is read a batch at a time, so memory does not grow with the number of images.

    images = open_folder("data/test", colour="grey", size=(32, 32))   # class subfolders -> labels
    x = images(slice(0, 64))          # (64, 1, 32, 32) float32 in [0, 1], decoded now (the last batch is kept)
    images.labels, images.classes     # None, None for a flat folder

Layout: `DIR/<class>/<image>` gives labels (the class index is the sorted position of the subfolder name, as
torchvision's ImageFolder); `DIR/<image>` alone means no labels. Names starting with "." are skipped (.DS_Store);
anything else that is not a .png, .jpg or .jpeg file, and any file Pillow cannot read, is refused by name before
anything is measured. write.write_folder saves a tensor of images in the same layout.

Pixels are read as what they are (pixels.py: 16-bit grey scaled by its range, transparency composited on black,
a picture held in alpha read as ink = alpha). Refused by name, each a DataError: a FIFO, device or socket (checked
with stat before anything opens it: opening a FIFO would wait forever), a multi-frame image (animated PNG,
multi-picture JPEG: which frame is the picture?), and an image over MAX_SIDE px a side or MAX_PIXELS pixels, read
from its header before anything is decoded (invlab's own decompression-bomb limit: Pillow's global
Image.MAX_IMAGE_PIXELS, which other code may set, is left as it is).
"""

from __future__ import annotations

import os
import stat
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core.errors import DataError, InvlabError, choose, clip, quote
from ..core.open_flags import READ
from .pixels import image_array

SUFFIXES = (".png", ".jpg", ".jpeg")
FORMATS = {"PNG", "JPEG"}  # what Pillow must find inside those files
COLOURS = {"grey": ("L", 1), "rgb": ("RGB", 3)}  # --colour -> (Pillow mode, channels)
MAX_SIDE = 4096  # px: larger images are refused (a measurement runs the model at every shift)
MAX_PIXELS = MAX_SIDE * MAX_SIDE  # invlab's decompression-bomb limit, checked on the header before decoding
_NOT_REGULAR = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def pillow():
    """PIL.Image, imported where images are read or written (images.py, write.py)."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with matplotlib, one of invlab's requirements
        raise InvlabError("reading images needs Pillow: pip install pillow") from None
    return Image


@dataclass
class Images:
    """A source of N images (C, H, W), float32, read a batch at a time: images(slice) -> (n, C, H, W)."""

    n: int
    shape: tuple[int, int, int]  # (C, H, W)
    labels: torch.Tensor | None  # (N,) class indices, or None (accuracy is not measured)
    classes: list[str] | None  # the class names, in index order
    describe: str  # where the images come from, for meta.json and messages

    def __len__(self) -> int:
        return self.n

    def __call__(self, chunk: slice) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class TensorImages(Images):
    tensor: torch.Tensor = field(default=None, repr=False)

    def __call__(self, chunk: slice) -> torch.Tensor:
        return self.tensor[chunk]


def label_tensor(labels) -> torch.Tensor:
    """Labels as a flat long tensor: class indices, whole numbers >= 0 (a string, a fraction or -1 is refused:
    torch would fail on the first and truncate or keep the others, and a label -1 scores every image wrong)."""
    try:
        y = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError):
        raise InvlabError(f"labels are class indices (whole numbers from 0); got {clip(repr(labels), 80)}") from None
    if y.dim() > 1 and (sum(d > 1 for d in y.shape) > 1 or y.shape[-1] > 1):  # (N, classes): one-hot or scores
        raise InvlabError(f"labels are one class index per image, shape (N,); got shape {tuple(y.shape)} (one-hot "
                          "labels or scores? give labels.argmax(1))")
    y = y.flatten()
    if y.is_floating_point() and bool((y != y.round()).any()) or y.dtype == torch.bool or y.is_complex():
        raise InvlabError(f"labels are class indices (whole numbers from 0); got {clip(repr(labels), 80)}")
    y = y.long()
    if len(y) and int(y.min()) < 0:
        raise InvlabError(f"labels are class indices (whole numbers from 0); a label is {int(y.min())}")
    return y


def from_tensor(images, labels=None, classes: list[str] | None = None, describe: str = "a tensor") -> TensorImages:
    """A source of an in-memory batch (N, C, H, W) or (N, H, W) (one channel), with optional labels (N,). Float
    pixels are taken as they are; uint8 pixels (0-255, as torchvision and PIL give them) are divided by 255, as
    invlab reads image files; other integer types are refused (their range is not known)."""
    try:
        if isinstance(images, (list, tuple)) and images and all(isinstance(i, torch.Tensor) for i in images):
            images = torch.stack(list(images))  # a list of images (C, H, W), as a dataset gives them
        x = torch.as_tensor(images)
    except (TypeError, ValueError, RuntimeError) as e:
        raise InvlabError(f"images must be a tensor (N, C, H, W) or (N, H, W), or a list of images of one shape; "
                          f"got {type(images).__name__} ({clip(e, 160)})") from None
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or min(x.shape) < 1:
        raise InvlabError(f"images must be a tensor (N, C, H, W) or (N, H, W) with N >= 1; got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float().div_(255)
    elif x.dtype == torch.bool:
        x = x.float()
    elif not x.is_floating_point():
        raise InvlabError(f"images of dtype {str(x.dtype).removeprefix('torch.')}: give float pixels (in [0, 1], "
                          "as invlab reads image files) or uint8 pixels (0-255, divided by 255)")
    y = None
    if labels is not None:
        y = label_tensor(labels)
        if len(y) != len(x):
            raise InvlabError(f"{len(y)} labels for {len(x)} images; give one label per image, or none")
    return TensorImages(n=len(x), shape=tuple(x.shape[1:]), labels=y, classes=classes, describe=describe,
                        tensor=x.float())


@dataclass
class FolderImages(Images):
    files: list[Path] = field(default_factory=list, repr=False)
    colour: str = "grey"
    size: tuple[int, int] | None = None  # (H, W) every image is resized to, or None (as they are)
    _cache: tuple | None = field(default=None, repr=False)

    def __call__(self, chunk: slice) -> torch.Tensor:
        key = (chunk.start, chunk.stop, chunk.step)
        if self._cache is None or self._cache[0] != key:  # layer profiles ask for the same batch at every shift
            self._cache = (key, torch.stack([self._read(f) for f in self.files[chunk]]))
        return self._cache[1]

    def _read(self, path: Path) -> torch.Tensor:
        Image = pillow()
        mode, _ = COLOURS[self.colour]
        try:
            with _open_image(path) as im:  # checked again: the file may have changed since open_folder
                a = image_array(im, mode, self.size)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise DataError(f"{path}: cannot read this image ({type(e).__name__}: {clip(e)}); remove or replace it") \
                from None
        t = torch.from_numpy(a.copy())
        return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)


def _visible(folder: Path) -> list[Path]:
    """The entries of `folder` but hidden ones, sorted; a name that is not UTF-8 (its bytes from another system's
    encoding) is refused by name: class names and file names are written into CSV, YAML and JSON files."""
    found = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for p in found:
        shown = p.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if shown != p.name:  # bytes that are not UTF-8, which Python holds as surrogates
            raise DataError(f"{folder}: the name '{shown}' is not UTF-8 (bytes shown as \\x..); rename it "
                            f"(invlab writes class and file names into its CSV, YAML and JSON files)")
    return found


def _regular(path: Path, st: os.stat_result) -> None:
    """Refuses anything but a regular file (after links), from its stat alone: nothing is opened."""
    kind = next((name for test, name in _NOT_REGULAR if test(st.st_mode)), None if stat.S_ISREG(st.st_mode)
                else "not a regular file")
    if kind is not None:
        raise DataError(f"{path} is {kind}, not an image file; only regular PNG/JPEG files are read: move it out of "
                        "the image folder")


def _header(Image, f, path: Path):
    """Image.open without Pillow's own decompression-bomb warning or error (its limit, Image.MAX_IMAGE_PIXELS, is
    others' to set): a picture that large is refused by invlab's MAX_PIXELS, in invlab's words."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(f)
        except Image.DecompressionBombError as e:
            raise DataError(f"{path} is too large ({clip(e, 80)}); images of at most {MAX_SIDE} px a side are read: "
                            "shrink it with an image tool, or move it out of the folder") from None


@contextmanager
def _open_image(path: Path):
    """Pillow's image of a regular file, its header checked (one frame, at most MAX_SIDE a side and MAX_PIXELS)
    before anything is decoded. The file is stat'ed before it is opened (a FIFO is never opened) and fstat'ed once
    open (O_NONBLOCK: a FIFO swapped in between cannot block either)."""
    Image = pillow()
    _regular(path, os.stat(path))
    fd = os.open(path, READ)
    try:
        _regular(path, os.fstat(fd))
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f, _header(Image, f, path) as im:
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            raise DataError(f"{path} holds {frames} frames (an animated or multi-picture {im.format}); invlab reads "
                            "single pictures: save the frame you mean as its own PNG")
        w, h = im.size
        if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
            # refused before decoding (a huge image is slow and large to decode), so resizing cannot rescue it
            raise DataError(f"{path} is {w} x {h} px; images of at most {MAX_SIDE} px a side are read: shrink it "
                            "with an image tool, or move it out of the folder")
        yield im


def _check_files(paths: list[Path], where: Path) -> None:
    for p in paths:
        if p.is_dir():
            raise InvlabError(f"{p}: a folder inside class folder {where}; the layout is DIR/<class>/<image> (one "
                              "level of class folders) or DIR/<image>")
        if p.suffix.lower() not in SUFFIXES:
            raise InvlabError(f"{p} is not a PNG or JPEG image (only {', '.join(SUFFIXES)} files are read); move it "
                              "out of the image folder")
        try:
            _regular(p, p.stat())
        except OSError as e:  # a dangling link, a file that vanished, no permission
            raise DataError(f"{p} cannot be read ({e.strerror or type(e).__name__}); remove or replace it") from None


def _probe(path: Path) -> tuple[int, int]:
    """(width, height) of an image, checked to be a whole single-frame PNG/JPEG of a bounded size without decoding
    it (_open_image, then Pillow's verify)."""
    try:
        with _open_image(path) as im:
            fmt, size = im.format, im.size
            if fmt in FORMATS:
                im.verify()
    except InvlabError:
        raise
    except Exception as e:  # Pillow raises many kinds for damaged files
        # an unidentified file's message names Pillow's file object (<_io.BufferedReader name=3>), not the file
        why = ("no image format Pillow knows" if isinstance(e, pillow().UnidentifiedImageError)
               else f"{type(e).__name__}: {clip(e)}")
        raise DataError(f"{path} is not a readable image ({why}); remove or replace it") from None
    if fmt not in FORMATS:
        raise DataError(f"{path} holds a {fmt} image, not PNG or JPEG")
    return size


def image_size(value, what: str = "size") -> tuple[int, int] | None:
    """(H, W) px from N, "N", "HxW" (as --size takes it) or (H, W); None for None."""
    if value is None:
        return None
    hw: list = []
    if isinstance(value, str):
        try:
            hw = [int(p) for p in value.lower().split("x")]
        except ValueError:
            pass
    elif isinstance(value, (int, tuple, list)) and not isinstance(value, bool):
        hw = [value] if isinstance(value, int) else list(value)
    if (len(hw) not in (1, 2) or not all(isinstance(v, int) and not isinstance(v, bool) for v in hw)
            or not 1 <= min(hw) <= max(hw) <= MAX_SIDE):
        examples = "--size 32 or --size 224x224" if what.startswith("--") else "32, '224x224' or (224, 224)"
        raise InvlabError(f"{what} {value!r}: expected N or HxW in px, each 1 .. {MAX_SIDE}, e.g. {examples}")
    return hw[0], hw[-1]


def open_folder(folder: str | Path, *, colour: str = "grey", size: int | str | tuple[int, int] | None = None
                ) -> FolderImages:
    """The images of a folder (layout in the module docstring), every file checked; nothing decoded yet.

    colour: grey (1 channel) or rgb (3); size: (H, W), N or "HxW" to resize every image to (bilinear), or None:
    then every image must have the same size."""
    choose("colour", colour, COLOURS)
    folder = Path(folder)
    if not folder.is_dir():
        raise InvlabError(f"images {folder}: {'no such folder' if not folder.exists() else 'not a folder'}; give "
                          "a folder of PNG/JPEG images (class subfolders for labels)")
    size = image_size(size)
    entries = _visible(folder)
    dirs, files = [p for p in entries if p.is_dir()], [p for p in entries if not p.is_dir()]
    if dirs and files:
        raise InvlabError(f"{folder} holds both files ({files[0].name}, ...) and subfolders ({dirs[0].name}, ...); "
                          "use class subfolders only (DIR/<class>/<image>: labels) or images only (DIR/<image>: no "
                          "labels)")
    if dirs:
        classes = [d.name for d in dirs]
        found, labels = [], []
        for i, d in enumerate(dirs):
            inside = _visible(d)
            _check_files(inside, d)
            if not inside:
                raise InvlabError(f"class folder {d} holds no images; every class subfolder needs at least one "
                                  "PNG/JPEG image (or remove it)")
            found += inside
            labels += [i] * len(inside)
        y = torch.tensor(labels)
    else:
        _check_files(files, folder)
        classes, found, y = None, files, None
    if not found:
        raise InvlabError(f"{folder} holds no images; give a folder of PNG/JPEG files (DIR/<image>, or "
                          "DIR/<class>/<image> for labels)")
    sizes = {p: _probe(p) for p in found}
    if size is None:
        first = found[0]
        odd = next((p for p in found if sizes[p] != sizes[first]), None)
        if odd is not None:
            raise InvlabError(f"images differ in size: {first} is {sizes[first][0]} x {sizes[first][1]} px, {odd} is "
                              f"{sizes[odd][0]} x {sizes[odd][1]}; give a size to resize them all to (--size)")
        size = (sizes[first][1], sizes[first][0])
    channels = COLOURS[colour][1]
    return FolderImages(n=len(found), shape=(channels, *size), labels=y, classes=classes, describe=str(folder),
                        files=found, colour=colour, size=tuple(size))


MAX_OUTPUTS = 10**7  # outputs of a classifier whose index a class folder may name: far beyond any model's


def relabel(src: Images, class_index: dict, option: str = "--class-index") -> None:
    """Label a folder's images by the model's own output index of each class folder ({folder name: index}): a model
    with more outputs than the folder has classes (a few classes of a larger classifier) is measured with its
    accuracy. Every class folder is named once; the indices are distinct whole numbers >= 0 (the measurement
    checks them against the model's outputs)."""
    if not src.classes:
        raise DataError(f"{option} maps class folders to the model's outputs; {src.describe} has no class folders "
                        "(DIR/<class>/<image>)")
    unknown = sorted(set(class_index) - set(src.classes))
    missing = [c for c in src.classes if c not in class_index]
    if unknown or missing:
        raise DataError(f"{option} {quote(class_index)} must name every class folder of {src.describe} once: "
                        + "; ".join(([f"no folder {quote(unknown)}"] if unknown else [])
                                    + ([f"{quote(missing)} not named"] if missing else []))
                        + f" (its folders: {quote(src.classes)})")
    idx = list(class_index.values())
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < MAX_OUTPUTS for i in idx) or \
            len(set(idx)) != len(idx):
        raise DataError(f"{option} {quote(class_index)}: the output indices must be distinct whole numbers from 0 "
                        f"to {MAX_OUTPUTS - 1:,}")
    lookup = torch.tensor([class_index[c] for c in src.classes])
    src.labels, src.classes = lookup[src.labels], None  # the model's indices: no longer the folders' count
