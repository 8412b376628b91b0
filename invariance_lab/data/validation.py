"""The validation images (train.select: best_val, train.patience): held out of the training images, or an image
folder's val/ folder.

    train_x, train_y, val = validation_split(cfg.data, *training_set(cfg.data, table))   # val: (x, y) or None

With data.val_fraction > 0, that share of every class of the training images (round(n * fraction), at least one,
leaving at least one) becomes the validation set and is never trained on. The images are the training images as
drawn (placed within data.train_shift like the others), so the validation loss measures the training
distribution. The split is drawn from data.seed alone: the same images for every model and every seed of a run,
as the training and test images are. An image folder with train/, test/ and val/ subfolders (data/folder.py)
gives its val/ images as read instead, and keeps every training image. Without either there is no validation
set, and the training set is exactly what it was.
"""

from __future__ import annotations

import torch

from ..core.errors import DataError
from .folder import folder_split, read_pixels

_VAL_STREAM = 2_000_029  # a stream of data.seed of its own: the training and test images' draws are untouched


def held_out(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held out) indices of a stratified random split, each sorted: `fraction` of every class held out."""
    gen = torch.Generator().manual_seed(seed + _VAL_STREAM)
    kept, out = [], []
    for c in torch.unique(labels).tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        k = min(max(1, round(len(idx) * fraction)), len(idx) - 1)
        out.append(idx[:k])
        kept.append(idx[k:])
    return torch.cat(kept).sort().values, torch.cat(out).sort().values


def validation_split(data, train_x: torch.Tensor, train_y: torch.Tensor):
    """(training images, labels, (validation images, labels) or None) for a DataConfig; see the module's text."""
    if data.val_fraction > 0:
        kept, out = held_out(train_y, data.val_fraction, data.seed)
        if not len(out):
            raise DataError(f"data.val_fraction {data.val_fraction:g} holds out no image: every class has a single "
                            "training image, which training needs; add training images")
        return train_x[kept], train_y[kept], (train_x[out], train_y[out])
    if data.source == "folder":
        split = folder_split(data)
        if split.val is not None:
            return train_x, train_y, (read_pixels(split.val), split.val.labels.clone())
    return train_x, train_y, None
