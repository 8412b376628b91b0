"""Synthetic letter data sets, kept as drawing parameters so a test letter can be redrawn at any shift.

The training set is rendered once (it is small); the test set stays a LetterBatch of parameters, so the sweep can
draw each test letter again at a shifted, possibly sub-pixel, position: the only change is the translation.

Both sets are drawn from `data.seed` alone, so every model and every model seed sees the same images.

task: position (Kayhan & van Gemert, CVPR 2020: can a CNN read absolute position?). The label is the half of the
canvas the letter sits in: 0 = top (letter centred at 1/4 of the canvas height), 1 = bottom (at 3/4). The test
set is PAIRED: each test letter is drawn once in the top half, and its bottom image is exactly that image rolled
down by canvas/2 rows (torch.roll, bitwise the same pixels). A model whose output is exactly invariant to that
roll (circular padding, stride 1 or a total stride dividing canvas/2, global pooling) gives both images of a pair
the same prediction, so exactly one of the two is right: its accuracy is exactly 0.5, whatever it learned.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..schema.data import DataConfig
from .boxes import CLASSES as BOX_CLASSES, box_set
from .folder import folder_split, folder_test_set, read_pixels, to_bytes, to_float
from .ink import (INVARIANT_GAIN, POOL, SCALE, SLANT, STRETCH, invariant_selection, matched_gain, matching_features,
    pool_chunk)
from .glyphs import GlyphTable
from .letters import load_glyphs, render
from .transforms import translate_image

# Separate streams so that changing train_images does not change the test letters.
_TRAIN_STREAM, _TEST_STREAM = 0, 1_000_003


@dataclass
class LetterBatch:
    """Parameters of N letter images (1-D tensors of length N)."""

    labels: torch.Tensor  # class index
    glyph: torch.Tensor  # row of the GlyphTable (letter x font)
    cx: torch.Tensor  # bbox centre, px (canvas centre = canvas / 2)
    cy: torch.Tensor
    height: torch.Tensor  # letter height, px
    thickness: torch.Tensor  # stroke width, px
    gain: torch.Tensor | None = None  # intensity scale per letter (data.ink: matched | invariant, data.gain); None = 1
    linear: torch.Tensor | None = None  # (N, 2, 2) width scale and slant per letter (data.ink: invariant); None = I

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, idx) -> "LetterBatch":
        return LetterBatch(**{f.name: _apply(getattr(self, f.name), lambda t: t[idx]) for f in fields(self)})

    def to(self, device) -> "LetterBatch":
        return LetterBatch(**{f.name: _apply(getattr(self, f.name), lambda t: t.to(device)) for f in fields(self)})


def _apply(t: torch.Tensor | None, fn):
    return None if t is None else fn(t)


def class_names(data: DataConfig) -> list[str]:
    if data.source == "folder":
        return list(folder_split(data).classes)
    if data.source == "boxes":
        return list(BOX_CLASSES)
    return ["top", "bottom"] if data.task == "position" else list(data.letters)


def glyph_table(data: DataConfig) -> GlyphTable | None:
    """The letters' glyphs; None for an image folder or boxes (no letter is drawn)."""
    return None if data.source != "letters" else load_glyphs(data.letters, data.fonts, data.glyphs)


def sample_letters(data: DataConfig, n: int, gen: torch.Generator) -> LetterBatch:
    """n centred letters, classes balanced, random font, height and stroke width."""
    n_letters, n_fonts = len(data.letters), len(data.fonts)
    letter = torch.arange(n) % n_letters
    letter = letter[torch.randperm(n, generator=gen)]
    font = torch.randint(n_fonts, (n,), generator=gen)
    jitter = (torch.rand(n, generator=gen) * 2 - 1) * data.size_jitter
    lo, hi = data.thickness
    thickness = lo + (hi - lo) * torch.rand(n, generator=gen)
    centre = torch.full((n,), data.canvas / 2)
    batch = LetterBatch(labels=letter, glyph=letter * n_fonts + font, cx=centre.clone(), cy=centre.clone(),
                        height=data.size * (1 + jitter), thickness=thickness)
    if data.ink == "matched":  # drawn last from gen: the free data sets' streams are unchanged
        table = glyph_table(data)
        batch.gain = matched_gain(data, table, draw(table, batch, data.canvas), letter, gen)
    elif data.gain is not None:  # the contrast-only control: a gain drawn for every letter whatever its class
        lo, hi = data.gain
        batch.gain = lo + (hi - lo) * torch.rand(n, generator=gen)
    return batch


def invariant_letters(data: DataConfig, n: int, gen: torch.Generator) -> LetterBatch:
    """data.ink: invariant: n letters chosen from a pool of POOL x n, each drawn with a random gain (data.gain, or
    INVARIANT_GAIN), width stretch (STRETCH), slant (SLANT) and height scale (SCALE) whatever its class, as
    matched tuples of the classes (ink.py). Drawn from gen alone, so the same for every model and seed."""
    pool = sample_letters(data.model_copy(update={"ink": "free", "gain": data.gain or list(INVARIANT_GAIN)}),
                          POOL * n, gen)
    (lo, hi), (s0, s1) = STRETCH, SCALE
    u = torch.rand(POOL * n, 3, generator=gen)
    pool.linear = torch.zeros(POOL * n, 2, 2)  # x -> stretch * x + slant * y; y unchanged
    pool.linear[:, 0, 0], pool.linear[:, 0, 1] = lo + (hi - lo) * u[:, 0], SLANT * (2 * u[:, 1] - 1)
    pool.linear[:, 1, 1] = 1
    pool.height = pool.height * (s0 + (s1 - s0) * u[:, 2])
    table, chunk = glyph_table(data), pool_chunk(data.canvas)  # a chunk at a time: only its statistics are kept
    features = torch.cat([matching_features(draw(table, pool.select(slice(i, i + chunk)), data.canvas))
                          for i in range(0, len(pool), chunk)])
    return pool.select(invariant_selection(features, pool.labels, n, gen))


def draw(table: GlyphTable, batch: LetterBatch, canvas: int, dx: float = 0.0, dy: float = 0.0,
         part_offset: torch.Tensor | None = None, angle: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """Render the batch with every letter moved by (dx, dy) px on the blank canvas, turned by `angle` degrees
    (counterclockwise) and scaled by `scale` (its height and pen width) about its centre: drawn so, not resampled."""
    height, thickness = (batch.height, batch.thickness) if scale == 1 else (batch.height * scale,
                                                                           batch.thickness * scale)
    images = render(table, batch.glyph, batch.cx + dx, batch.cy + dy, height, thickness, canvas,
                    part_offset=part_offset, angle=angle, linear=batch.linear)
    return images if batch.gain is None else images * batch.gain.to(images.device)[:, None, None, None]


def uniform_offsets(n: int, max_shift: float, gen: torch.Generator, integer: bool) -> torch.Tensor:
    """(n, 2) offsets uniform in [-max_shift, max_shift]; whole pixels when `integer`."""
    if max_shift == 0:
        return torch.zeros(n, 2)
    if integer:
        m = int(max_shift)
        return torch.randint(-m, m + 1, (n, 2), generator=gen).float()
    return (torch.rand(n, 2, generator=gen) * 2 - 1) * max_shift


def roll_each(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Circularly shift image i by offsets[i] = (dx, dy) whole pixels."""
    out = torch.empty_like(images)
    for i, (dx, dy) in enumerate(offsets.long().tolist()):
        out[i] = torch.roll(images[i], shifts=(dy, dx), dims=(-2, -1))
    return out


def folder_training_set(data) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, C, canvas, canvas), labels): the training images, each translated by its own offset
    within +-data.train_shift px (drawn from data.seed; whole pixels for train_mode: circular)."""
    split = folder_split(data)
    images, labels = read_pixels(split.train), split.train.labels
    if data.train_shift > 0:
        gen = torch.Generator().manual_seed(data.seed + _TRAIN_STREAM)
        offsets = uniform_offsets(len(images), data.train_shift, gen, integer=data.train_mode == "circular")
        if data.train_mode == "circular":
            images = roll_each(images, offsets)
        else:
            for i, (dx, dy) in enumerate(offsets.tolist()):
                images[i] = to_bytes(translate_image(to_float(images[i:i + 1]), dx, dy, data.fill))[0]
    return images, labels.clone()


def training_set(data: DataConfig, table: GlyphTable) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 1, canvas, canvas), labels (N,)), placed within +-train_shift px of the centre. An image folder
    gives uint8 images (N, C, canvas, canvas) instead (folder.py; to_float turns a batch into floats)."""
    if data.source == "folder":
        return folder_training_set(data)
    if data.source == "boxes":  # RGB (N, 3, canvas, canvas) float images (boxes.py)
        return box_set(data.canvas, data.train_images, data.seed, "train")
    gen = torch.Generator().manual_seed(data.seed + _TRAIN_STREAM)
    batch = (invariant_letters if data.ink == "invariant" else sample_letters)(data, data.train_images, gen)
    labels = batch.labels
    if data.task == "position":
        # label = which half the letter sits in; letters centred at 1/4 or 3/4 of the canvas height
        labels = (torch.arange(len(batch)) % 2)[torch.randperm(len(batch), generator=gen)]  # balanced halves
        batch.cy = data.canvas / 4 + labels.float() * data.canvas / 2
    offsets = uniform_offsets(len(batch), data.train_shift, gen, integer=data.train_mode == "circular")
    if data.train_mode == "circular":
        images = roll_each(draw(table, batch, data.canvas), offsets)
    else:
        batch.cx, batch.cy = batch.cx + offsets[:, 0], batch.cy + offsets[:, 1]
        images = draw(table, batch, data.canvas)
    return images, labels


def reference_letters(data: DataConfig) -> LetterBatch:
    """The test letters at the reference position (the canvas centre): the same for every model and seed."""
    gen = torch.Generator().manual_seed(data.seed + _TEST_STREAM)
    return (invariant_letters if data.ink == "invariant" else sample_letters)(data, data.test_images, gen)


def position_test_set(data: DataConfig, table: GlyphTable) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired position test set: (images (2N, 1, canvas, canvas), labels (2N,)), N = data.test_images.

    Interleaved pairs: image 2i is test letter i centred at 1/4 of the canvas height (label 0, top), image 2i+1
    is image 2i rolled down by canvas/2 rows (label 1, bottom), so the first 2k images are k complete pairs.
    """
    test = reference_letters(data)
    test.cy = torch.full_like(test.cy, data.canvas / 4)
    top = draw(table, test, data.canvas)
    bottom = torch.roll(top, shifts=data.canvas // 2, dims=-2)
    images = torch.stack([top, bottom], dim=1).flatten(0, 1)
    labels = torch.arange(2).repeat(len(test))
    return images, labels


def evaluation_set(data: DataConfig, table: GlyphTable) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference test images and labels every model is scored on (the run's test accuracy, shift (0, 0)).
    An image folder's are uint8 (folder.py)."""
    if data.source == "folder":
        return folder_test_set(data)
    if data.source == "boxes":  # data.test_set: similar, or dissimilar (the boxes in the other class's half)
        return box_set(data.canvas, data.test_images, data.seed, "test", data.test_set)
    if data.task == "position":
        return position_test_set(data, table)
    test = reference_letters(data)
    return draw(table, test, data.canvas), test.labels
