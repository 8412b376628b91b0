"""write_folder: a tensor of images saved as 8-bit PNGs in the layout open_folder reads (images.py), into a folder
of its own: a new or empty one, so that no file invlab did not make is overwritten or mixed in with the new ones.

    write_folder(x, "results/letters_png", labels, ["A", "B"])   # results/letters_png/<class>/<i>.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.errors import DataError, quote
from .images import pillow

TOLERANCE = 1e-6  # float round-off past 0 or 1 (a resampled image) is clamped; anything further is refused


def _pixels(images) -> torch.Tensor:
    """(N, C, H, W) uint8: uint8 pixels as they are, float ones in [0, 1] scaled by 255."""
    x = torch.as_tensor(images)
    x = x.unsqueeze(1) if x.dim() == 3 else x
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"write_folder needs images (N, 1 or 3, H, W); got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.cpu()
    if not x.is_floating_point():
        raise DataError(f"write_folder takes float pixels in [0, 1] or uint8 ones; got {x.dtype}")
    x = x.detach().float()
    finite = x[torch.isfinite(x)]
    low, high = (finite.min().item(), finite.max().item()) if finite.numel() else (0.0, 0.0)
    if finite.numel() < x.numel() or low < -TOLERANCE or high > 1 + TOLERANCE:
        found = [f"values from {low:g} to {high:g}"] * (finite.numel() > 0) + \
            ["NaN or infinite ones"] * (finite.numel() < x.numel())
        raise DataError(f"write_folder takes float pixels in [0, 1]; these hold {' and '.join(found)}: scale them "
                        "first (x.clamp(0, 1) where a little over is round-off)")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def _class_folders(labels, classes, n: int) -> list[str]:
    """Each image's class folder name: `classes[label]`, else the label number."""
    try:
        values = [int(v) for v in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
    except (TypeError, ValueError):
        raise DataError(f"write_folder's labels are one class index per image; got {quote(labels)}") from None
    if len(values) != n or min(values, default=0) < 0:
        raise DataError(f"write_folder's labels are one class index (>= 0) per image: {n} images, got "
                        f"{len(values)} labels{'' if min(values, default=0) >= 0 else ' (a negative one)'}")
    if classes is None:
        return [str(v) for v in values]
    try:
        names = None if isinstance(classes, (str, bytes)) else list(classes)
    except TypeError:
        names = None
    if names is None or len(names) <= max(values, default=-1) or len(set(names)) != len(names) \
            or not all(isinstance(c, str) and c not in ("", ".", "..") and not set(c) & {"/", "\\", "\0"}
                       for c in names):
        raise DataError(f"write_folder's classes name a folder per class index (distinct names, no '/', '\\' or "
                        f"'..'), {max(values, default=-1) + 1} at least for these labels; got {quote(classes)}")
    return [names[v] for v in values]


def write_folder(images: torch.Tensor, folder: str | Path, labels=None, classes: list[str] | None = None) -> Path:
    """Save images (N, C, H, W) (float pixels in [0, 1], or uint8) as 8-bit PNGs: folder/<class>/<i>.png with
    labels (class names from `classes`, else the label numbers), folder/<i>.png without. `folder` must be new or
    empty. Returns the folder."""
    Image = pillow()
    pixels = _pixels(images)
    subfolders = None if labels is None else _class_folders(labels, classes, len(pixels))
    folder = Path(folder)
    if folder.is_symlink() or folder.exists() and not folder.is_dir():
        raise DataError(f"write_folder: {folder} is {'a link' if folder.is_symlink() else 'a file'}; give a new or "
                        "empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise DataError(f"write_folder: {folder} holds files already; give a new or empty folder (images written "
                        "among others would be read with them)")
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(pixels):
        out = folder if subfolders is None else folder / subfolders[i]
        out.mkdir(exist_ok=True)
        a = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(a)).save(out / f"{i:05d}.png")  # uint8 (H, W): L; (H, W, 3): RGB
    return folder
