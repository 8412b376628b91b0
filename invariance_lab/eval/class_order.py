"""A clean accuracy far below chance: the images' class order probably differs from the model's output order.

    note = class_order_note(net, src, prepare, accuracy=0.0, n_outputs=2, batch_size=256, device=device)
    # "clean accuracy 0.000 on 8 images is far below chance (0.500): ... Under the reverse order (a → output 1,
    #  b → output 0) the accuracy would be 1.000. ..."

A network that answers the wrong class this consistently (core/stats.is_below_chance) has learned the classes,
only in another order than the folder's (class index = the sorted position of its folder name): "at chance" would
be the wrong word, and its consistency is as meaningful as any. `invlab measure` records the note in meta.json
(`class_order`), and the tables print it in place of the at-chance footnote. Only then is the confusion counted,
in one more pass over the images at the reference position.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.stats import chance_level, is_below_chance
from ..data.images import Images
from ..nn.forward import forward
from .accumulate import ORIGIN
from .stream import Prepare

SHOWN = 12  # classes named in a note; more are cut with "…" (the note is one footnote)


def clean_confusion(model: nn.Module, src: Images, prepare: Prepare, n_outputs: int, batch_size: int,
                    device: torch.device, origin: tuple[float, ...] = ORIGIN) -> torch.Tensor:
    """(labelled classes, outputs) image counts at the reference `origin` ((0, 0); angle 0 or scale 1 for a rotate
    or scale measurement): row = label, column = the argmax."""
    rows = max(len(src.classes or ()), int(src.labels.max()) + 1)
    counts = torch.zeros(rows, n_outputs, dtype=torch.long)
    with torch.inference_mode():
        for i in range(0, len(src), batch_size):
            chunk = slice(i, i + batch_size)
            predicted = forward(model, prepare(src(chunk), *origin).to(device), "the model").argmax(1).cpu()
            counts.index_put_((src.labels[chunk], predicted), torch.ones_like(predicted), accumulate=True)
    return counts


def order_note(counts: torch.Tensor, classes: list[str]) -> str | None:
    """The note for a confusion (clean_confusion), or None when its accuracy is not far below chance. Two outputs:
    the accuracy under the reverse order; more: the accuracy under each class's most common output when those
    differ (a permutation), else each class's most common output (the best permutation is not searched for)."""
    n, k = int(counts.sum()), counts.shape[1]
    correct = sum(int(counts[i, i]) for i in range(min(counts.shape)))
    if not is_below_chance(correct, n, k):
        return None
    present = [i for i in range(counts.shape[0]) if counts[i].sum() > 0]
    order = _cut([f"{classes[i]} → output {i}" for i in present])
    head = (f"clean accuracy {correct / n:.3f} on {n} images is far below chance ({chance_level(k):.3f}): the "
            f"images' class order probably differs from the model's output order ({order}; a folder's class index "
            "is the sorted position of its name).")
    top = counts.argmax(1)
    if k == 2:
        mapped = {i: 1 - i for i in present}
        tail = "Under the reverse order"
    elif len({int(top[i]) for i in present}) == len(present):
        mapped = {i: int(top[i]) for i in present}
        tail = "Under each class's most common output"
    else:
        common = _cut([f"{classes[i]} → output {int(top[i])} ({int(counts[i, top[i]])} of {int(counts[i].sum())})"
                       for i in present])
        return f"{head} Each class's most common output: {common}. {_FIX}"
    accuracy = sum(int(counts[i, j]) for i, j in mapped.items()) / n
    pairs = _cut([f"{classes[i]} → output {j}" for i, j in mapped.items()])
    return f"{head} {tail} ({pairs}) the accuracy would be {accuracy:.3f}. {_FIX}"


_FIX = ("Name the class folders so that they sort in the model's output order, or measure with an invlab "
        "checkpoint (it records its classes, and folders are matched to them by name).")


def _cut(items: list[str]) -> str:
    return ", ".join(items[:SHOWN] + ["…"] * (len(items) > SHOWN))


def class_order_note(model: nn.Module, src: Images, prepare: Prepare, accuracy: float, n_outputs: int,
                     batch_size: int, device: torch.device, origin: tuple[float, ...] = ORIGIN) -> str | None:
    """order_note of the model on src when its clean accuracy is far below chance (no pass over the images
    otherwise); None for unlabelled images."""
    if src.labels is None or not math.isfinite(accuracy):
        return None
    if not is_below_chance(round(accuracy * len(src)), len(src), n_outputs):
        return None
    counts = clean_confusion(model, src, prepare, n_outputs, batch_size, device, origin)
    names = list(src.classes or ()) + [str(i) for i in range(len(src.classes or ()), counts.shape[0])]
    return order_note(counts, names)
