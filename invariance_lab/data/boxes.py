"""The Red-Green data of Kayhan & van Gemert (CVPR 2020, "On Translation Invariance in CNNs: Convolutional Layers
can Exploit Absolute Spatial Location", Exp2), built in: nothing is downloaded.

    data: {source: boxes}                        # 2000 training, 1000 test images of 32 x 32 px, RGB
    data: {source: boxes, test_set: dissimilar}  # the same test images with the boxes in the other half

Each image holds a red and a green box of canvas/8 px (4 on the paper's 32 px) on black. The class is which colour
is on the left: 0 = red_left, 1 = green_left. Classes alternate image by image, as in the paper's code. The left
box's left edge is drawn from the columns [0, (canvas - box)/2 - box), the right box's from
[left + box + 1, canvas - box) (at least one blank column between them); both rows are drawn from
[band - j, band + j), j = int((canvas - box) / 6) (the paper's shiftdiv 6). The band is the class's: row
round(7 canvas / 32) for red_left and canvas/2 rows lower for green_left (rows 7 and 23 on 32 px). So the class can
be read from the colours' order (relative position) or from the band (absolute position) alone.

The dissimilar test set is the similar one with every box moved canvas/2 rows into the other class's band (down for
red_left, up for green_left), columns and jitter unchanged, labels unchanged: a network that reads the band gets
it wrong, one that reads the colours' order gets it right (the paper's Table: valid and same-zero convolutions
fail, full and circular ones do not).

What differs from the paper's utils_red_green.py (oskyhn/CNNs-Without-Borders): there, the training, validation
and similar test sets are all drawn from numpy seed 1988, so the validation images and the 1000 similar test
images are the first images of the training set. Here the training and test sets come from separate streams of
data.seed (as for letters), so no test image is a training image by construction; the validation images are the
training set's (data.val_fraction). The geometry, the ranges and the 16 px move are the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CLASSES = ("red_left", "green_left")  # label 0: red left of green, top band; 1: green left of red, bottom band
RED, GREEN = 0, 1  # channels of the RGB image
TRAIN_STREAM, TEST_STREAM = 0, 1_000_003  # as datasets.py's letters: more training images leave the test set alone
MIN_CANVAS = 16
TEST_SETS = ("similar", "dissimilar")


@dataclass(frozen=True)
class BoxLayout:
    """The paper's geometry, scaled to the canvas (the paper's values at 32 px in brackets)."""

    canvas: int
    box: int  # box side, canvas / 8 (4)
    bands: tuple[int, int]  # top row of a box before jitter, per class (7, 23)
    jitter: int  # rows drawn from [band - jitter, band + jitter) (4: int(28 / 6))
    left_columns: int  # the left box's left edge is drawn from [0, left_columns) (10)


def layout(canvas: int) -> BoxLayout:
    """The layout on a canvas of `canvas` px: a multiple of 8, at least MIN_CANVAS (the schema checks it)."""
    if canvas % 8 or canvas < MIN_CANVAS:
        raise ValueError(f"boxes need a canvas that is a multiple of 8 px, at least {MIN_CANVAS}; got {canvas}")
    box, free = canvas // 8, canvas - canvas // 8
    top = round(7 * canvas / 32)
    return BoxLayout(canvas, box, (top, top + canvas // 2), int(free / 6), int(free / 2 - box))


@dataclass
class Boxes:
    """N images as box positions (long tensors): labels (N,), left edges x (N, 2) and top edges y (N, 2) of the
    left and the right box."""

    labels: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def sample_boxes(canvas: int, n: int, gen: torch.Generator) -> Boxes:
    """n images' box positions, classes alternating (0, 1, 0, ...), drawn from `gen` (module docstring)."""
    g = layout(canvas)
    labels = torch.arange(n) % 2
    left = torch.randint(g.left_columns, (n,), generator=gen)
    first = left + g.box + 1  # the right box starts at least one blank column after the left one ends
    right = first + (torch.rand(n, generator=gen, dtype=torch.float64) * (canvas - g.box - first)).long()
    bands = torch.tensor(g.bands)[labels]
    rows = bands[:, None] + torch.randint(-g.jitter, g.jitter, (n, 2), generator=gen)
    return Boxes(labels, torch.stack([left, right], 1), rows)


def dissimilar(boxes: Boxes, canvas: int) -> Boxes:
    """The same boxes moved canvas/2 rows into the other class's band (red_left down, green_left up)."""
    move = torch.where(boxes.labels == 0, canvas // 2, -(canvas // 2))
    return Boxes(boxes.labels.clone(), boxes.x.clone(), boxes.y + move[:, None])


def draw_boxes(boxes: Boxes, canvas: int) -> torch.Tensor:
    """(N, 3, canvas, canvas) float32 images: black, the left box in the class's left colour, the right box in the
    other, each of value 1 in its own channel."""
    g = layout(canvas)
    n = len(boxes)
    images = torch.zeros(n, 3, canvas, canvas)
    left_colour = torch.where(boxes.labels == 0, RED, GREEN)
    span = torch.arange(g.box)
    for side, colour in ((0, left_colour), (1, (RED + GREEN) - left_colour)):
        rows = (boxes.y[:, side, None] + span)[:, :, None].expand(n, g.box, g.box)
        cols = (boxes.x[:, side, None] + span)[:, None, :].expand(n, g.box, g.box)
        image = torch.arange(n)[:, None, None].expand(n, g.box, g.box)
        images[image, colour[:, None, None].expand(n, g.box, g.box), rows, cols] = 1.0
    return images


def box_set(canvas: int, n: int, seed: int, split: str, test_set: str = "similar") -> tuple[torch.Tensor, torch.Tensor]:
    """(images (n, 3, canvas, canvas), labels (n,)) of a split: 'train' or 'test' (the similar or the dissimilar
    test set: the same draws, moved). Drawn from seed + the split's stream alone."""
    stream = TRAIN_STREAM if split == "train" else TEST_STREAM
    boxes = sample_boxes(canvas, n, torch.Generator().manual_seed(seed + stream))
    if split == "test" and test_set == "dissimilar":
        boxes = dissimilar(boxes, canvas)
    return draw_boxes(boxes, canvas), boxes.labels
