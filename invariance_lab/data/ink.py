"""Ink controls: matching total ink (`data.ink: matched`) or every invariant statistic (`data.ink: invariant`)
across classes, and the ink-only baseline every run reports (its battery: ink_stats.py).

An image's total ink is the sum of its pixel intensities. Letters differ in it (W has more than I), so a network
could tell some classes apart by ink alone, a cue that no translation changes. So could it by the ink's spread,
its peak, the mean intensity of inked pixels or the inked area (ink_stats.py). The tools:

ink: matched   each letter gets a gain (an intensity scale, <= 1) so that its total ink is a target from one
               range shared by every class, [0.8, 1] x 0.95 x the least ink any glyph of the config has (smallest
               size, thinnest stroke, drawn centred), stratified: every class gets the same quantiles of it. The
               gain is fixed per letter (computed where it is first drawn, centred), so a shifted copy is the same
               letter with the same gain; its ink then varies only by the renderer's sub-pixel aliasing. It leaves
               the other statistics readable, and adds one: the inkier letter is drawn dimmer (peak, mean_inked).
ink: invariant each letter is drawn from a pool of POOL x as many, every pool letter with a random gain
               (data.gain, else INVARIANT_GAIN), height scale (SCALE), width scale (STRETCH) and slant (SLANT),
               drawn whatever its class (as font, size and stroke width already are); then matched tuples are
               kept, one letter of each class, near one another in all seven statistics (total, spread x3, peak,
               mean_inked, area; invariant_selection). Class by class the kept letters' statistics then agree up
               to the tuples' distances, so no classifier of them beats chance by more than those allow; the
               battery measures it (docs: ink battery). A shifted copy keeps its letter's gain, scale and slant.
ink baseline   `invlab run` fits a classifier that sees only each training image's total ink (multinomial
               logistic regression on z and z**2, z the standardised ink, so a class can own a middle band) and
               scores it on the test set; meta.json keeps it as ink_baseline.accuracy, beside the battery.
"""

from __future__ import annotations

import torch

from ..core.errors import DataError
from ..schema.data import DataConfig
from .glyphs import GlyphTable
from .ink_stats import STATISTICS, battery, fit_and_score, ink_statistics, total_ink
from .letters import render

TARGET_RANGE = (0.8, 1.0)  # targets as fractions of the reference ink: some spread, never above the least ink
MARGIN = 0.95  # the reference is 0.95 x the least glyph ink, so gains stay <= 1 despite the anti-aliasing ramp
INVARIANT_GAIN = (0.5, 1.0)  # ink: invariant's gain range when data.gain is not set: peak and mean intensity vary
STRETCH = (0.75, 1.0)  # ink: invariant's width scales: the spread's x against y varies, and the letter still fits
SCALE = (0.75, 1.0)  # ink: invariant's height scales (x the drawn size): the spread varies; letters only shrink
SLANT = 0.15  # ink: invariant's slant, x += U(-s, s) x y: the spread's covariance varies (fonts slant their letters)
CANDIDATES = 64  # nearest letters of each other class listed per anchor before a full search
POOL = 8  # ink: invariant draws this many candidate letters per letter kept, then keeps matched tuples of them


def pool_chunk(canvas: int) -> int:
    """Pool letters drawn at a time (only their statistics are kept): 4096 up to a 32 px canvas, fewer on larger
    ones, so a chunk's images and the statistics' float64 copies stay near 16 MiB (4096 on a 256 px canvas took
    7 GB). A letter's statistics do not depend on the chunk it is drawn in."""
    return max(1, min(4096, 4096 * 32 * 32 // (canvas * canvas)))


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
                 num_classes: int) -> float:
    """Test accuracy of a classifier that sees only total ink, fitted on the training set (module docstring): the
    battery's Newton fit (ink_stats.fit_and_score) on the one statistic. No torch.optim: an optimizer's first
    call imports torch's compiler stack (torch._dynamo, about 70 MB), which a run's data step does not need."""
    return fit_and_score(total_ink(train_x)[:, None], train_y, total_ink(test_x)[:, None], test_y, num_classes)


def matching_features(images: torch.Tensor) -> torch.Tensor:
    """(N, 7) float64: the battery's statistics side by side (ink_stats.STATISTICS; spread is three columns)."""
    stats = ink_statistics(images)
    return torch.cat([stats[k] for k in STATISTICS], 1)


def invariant_selection(features: torch.Tensor, labels: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Indices of n pool letters, classes balanced as sample_letters balances them (class c gets the c-th of every
    K), chosen as matched tuples: one letter of each class, near one another in every statistic (module docstring).

    Each statistic is standardised over the whole pool. Every letter of class 0 is an anchor; anchors are taken
    best first (by the distance to the nearest letter of each other class), and each takes, from every other
    class, the nearest letter not yet taken. The first ceil(n / K) tuples are kept: the classes then differ in
    each statistic by no more than their tuples' distances."""
    k = int(labels.max()) + 1
    if k == 1:  # one class (task: position on one letter): nothing to match
        return torch.randperm(len(labels), generator=gen)[:n]
    q = -(-n // k)
    z = (features - features.mean(0)) / features.std(0).clamp_min(1e-12)
    members = [torch.nonzero(labels == c).flatten() for c in range(k)]
    members = [m[torch.randperm(len(m), generator=gen)] for m in members]  # ties broken by the data seed
    anchors = members[0]
    # each anchor's CANDIDATES nearest letters of each other class, nearest first; the anchors are taken in the
    # order of the largest distance to their nearest ones, best matched first
    near = [_nearest(z[anchors], z[m], min(CANDIDATES, len(m))) for m in members[1:]]
    order = torch.argsort(torch.stack([d[:, 0] for d, _ in near], 1).amax(1), stable=True).tolist()
    lists = [j.tolist() for _, j in near]
    taken = [set() for _ in members[1:]]
    tuples = []
    for i in order:
        row = [int(anchors[i])]
        for c in range(k - 1):
            j = next((j for j in lists[c][i] if j not in taken[c]), None)
            if j is None:  # every candidate taken: the nearest free letter of the class, if any is left
                free = [j for j in range(len(members[c + 1])) if j not in taken[c]]
                j = free[int(torch.cdist(z[row[:1]], z[members[c + 1][free]])[0].argmin())] if free else None
            if j is None:
                return _balanced(tuples, n, k, gen)
            taken[c].add(j)
            row.append(int(members[c + 1][j]))
        tuples.append(row)
        if len(tuples) == q:
            break
    return _balanced(tuples, n, k, gen)


def _nearest(a: torch.Tensor, b: torch.Tensor, m: int, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances from each row of a to its m nearest rows of b, nearest first, and which: (len(a), m) each,
    chunked so memory stays chunk x len(b)."""
    out = [torch.cdist(a[i:i + chunk], b).topk(m, 1, largest=False) for i in range(0, len(a), chunk)]
    return torch.cat([d for d, _ in out]), torch.cat([j for _, j in out])


def _balanced(tuples: list[list[int]], n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """The first n letters of the tuples, tuple by tuple (class c of tuple t is letter t * k + c), shuffled."""
    if len(tuples) * k < n:
        raise DataError(f"data.ink: invariant found {len(tuples)} matched tuples of letters, {-(-n // k)} needed: "
                        f"a class has fewer letters in the pool ({POOL} x the images asked for) than that")
    flat = torch.tensor(tuples).flatten()[:n]
    return flat[torch.randperm(n, generator=gen)]


def ink_baselines(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                  num_classes: int) -> dict:
    """meta.json's ink_baseline: accuracy (total ink alone, the number every run has reported), chance, the number
    of test images, and the battery (ink_stats.battery: each invariant statistic alone, and all of them); scores to
    4 digits."""
    return dict(accuracy=round(ink_baseline(train_x, train_y, test_x, test_y, num_classes), 4),
                chance=round(1 / num_classes, 4),
                test_images=len(test_y),
                battery={k: round(v, 4) for k, v in battery(train_x, train_y, test_x, test_y, num_classes).items()})
