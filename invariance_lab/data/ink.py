"""Total ink: matching it across classes (`data.ink: matched`) and the ink-only baseline every run reports.

An image's total ink is the sum of its pixel intensities. Letters differ in it (W has more than I), so a network
could tell some classes apart by ink alone, a cue that no translation changes. Two tools:

ink: matched   each letter gets a gain (an intensity scale, <= 1) so that its total ink is a target from one
               range shared by every class, [0.8, 1] x 0.95 x the least ink any glyph of the config has (smallest
               size, thinnest stroke, drawn centred), stratified: every class gets the same quantiles of it. The
               gain is fixed per letter (computed where it is first drawn, centred), so a shifted copy is the same
               letter with the same gain; its ink then varies only by the renderer's sub-pixel aliasing.
ink baseline   `invlab run` fits a classifier that sees only each training image's total ink (multinomial
               logistic regression on z and z**2, z the standardised ink, so a class can own a middle band) and
               scores it on the test set; meta.json keeps it as ink_baseline. With ink: matched it is at chance.
"""

from __future__ import annotations

import torch

from ..schema.data import DataConfig
from .glyphs import GlyphTable
from .letters import render

TARGET_RANGE = (0.8, 1.0)  # targets as fractions of the reference ink: some spread, never above the least ink
MARGIN = 0.95  # the reference is 0.95 x the least glyph ink, so gains stay <= 1 despite the anti-aliasing ramp


def total_ink(images: torch.Tensor) -> torch.Tensor:
    """(N,) float64 sum of each image's pixels (uint8 pixels of an image folder count as value / 255)."""
    total = images.double().flatten(1).sum(1)
    return total / 255 if images.dtype == torch.uint8 else total


def least_ink(data: DataConfig, table: GlyphTable) -> float:
    """The least total ink of any glyph of the table at the smallest size and thinnest stroke, drawn centred."""
    g = torch.arange(table.segments.shape[0])
    n = len(g)
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    c = data.canvas / 2
    images = render(table, g, full(c), full(c), full(data.size * (1 - data.size_jitter)), full(data.thickness[0]),
                    data.canvas)
    return float(total_ink(images).min())


def matched_gain(data: DataConfig, table: GlyphTable, images: torch.Tensor, labels: torch.Tensor,
                 gen: torch.Generator) -> torch.Tensor:
    """(N,) float32 gains making each image's total ink a target from the shared range (module docstring).

    Targets are stratified per class: the n images of a class, in random order, get the quantiles (k + 0.5) / n
    of the range, so every class has the same spread and the same mean target, not merely in expectation."""
    lo, hi = TARGET_RANGE
    reference = MARGIN * least_ink(data, table)
    u = torch.empty(images.shape[0], dtype=torch.float64)
    perm = torch.randperm(images.shape[0], generator=gen)
    for c in labels.unique():
        idx = perm[labels[perm] == c]
        u[idx] = (torch.arange(len(idx), dtype=torch.float64) + 0.5) / len(idx)
    target = reference * (lo + (hi - lo) * u)
    return (target / total_ink(images).clamp_min(1e-12)).clamp_(max=1.0).float()


def ink_baseline(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 num_classes: int, steps: int = 200) -> float:
    """Test accuracy of a classifier that sees only total ink, fitted on the training set (module docstring)."""
    ink = total_ink(train_x)
    mean, std = ink.mean(), ink.std().clamp_min(1e-12)

    def features(x):
        z = (total_ink(x) - mean) / std
        return torch.stack([z, z * z], 1)

    f, y = features(train_x), train_y.long()
    w = torch.zeros(2, num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(f @ w + b, y) + 1e-4 * (w * w).sum()  # L2: finite when separable
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        pred = (features(test_x) @ w + b).argmax(1)
    return float((pred == test_y.long()).double().mean())
