"""The ink battery: what a network that pools globally could read instead of shape, each scored alone.

Global pooling keeps every statistic of an image that no translation changes. Five of them are cheap to read and
differ between letters unless the data controls them (data.ink: invariant, ink.py):

total        the sum of the pixels (total ink)
spread       the intensity-weighted second central moments (var x, var y, cov xy): how far the ink lies from its
             centre, px^2
peak         the brightest pixel
mean_inked   the mean intensity of the inked pixels (value > 0): total / area
area         how many pixels carry ink (value > 0)

`battery` fits, on the training images, a multinomial logistic regression on each statistic alone (the statistic
standardised, z, and z**2, so a class can own a middle band) and one on all of them with their squares (`all`),
and scores each on the test images. `ink_baseline` (total ink alone) is the number every run has printed since
the ink control was added; the battery's `total` is the same classifier.

    stats = ink_statistics(images)                       # name -> (N, k) float64
    battery(train_x, train_y, test_x, test_y, 2)         # {"total": 0.768, "spread": ..., "all": ...}
"""

from __future__ import annotations

import torch

STATISTICS = ("total", "spread", "peak", "mean_inked", "area")
MAX_FULL = 600  # parameters (features x classes) up to which Newton uses the whole Hessian
WITHIN = 0.05  # a statistic reads "at chance" when its test accuracy is within 5 points of chance


def _grey(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W) float64: the channels' mean; uint8 pixels of an image folder count as value / 255."""
    x = images.double()
    x = x / 255 if images.dtype == torch.uint8 else x
    return x.mean(1) if x.dim() == 4 else x


def total_ink(images: torch.Tensor) -> torch.Tensor:
    """(N,) float64 sum of each image's pixels (uint8 pixels of an image folder count as value / 255)."""
    total = images.double().flatten(1).sum(1)
    return total / 255 if images.dtype == torch.uint8 else total


def ink_statistics(images: torch.Tensor, chunk: int = 256) -> dict[str, torch.Tensor]:
    """Each statistic of STATISTICS for every image (module docstring): name -> (N, k) float64, k = 3 for spread.
    Computed `chunk` images at a time: the float64 copies of a large image folder stay small."""
    parts = [_statistics(images[i:i + chunk]) for i in range(0, max(len(images), 1), chunk)]
    return {k: torch.cat([p[k] for p in parts]) for k in STATISTICS}


def _statistics(images: torch.Tensor) -> dict[str, torch.Tensor]:
    x = _grey(images)
    h, w = x.shape[-2:]
    total = x.flatten(1).sum(1)
    mass = total.clamp_min(1e-12)
    rows = torch.arange(h, dtype=torch.float64)[None, :, None]
    cols = torch.arange(w, dtype=torch.float64)[None, None, :]
    my = (x * rows).flatten(1).sum(1) / mass
    mx = (x * cols).flatten(1).sum(1) / mass
    dy, dx = rows - my[:, None, None], cols - mx[:, None, None]
    spread = torch.stack([(x * dx * dx).flatten(1).sum(1), (x * dy * dy).flatten(1).sum(1),
                          (x * dx * dy).flatten(1).sum(1)], 1) / mass[:, None]
    area = (x > 0).flatten(1).sum(1).double()
    return {"total": total_ink(images)[:, None], "spread": spread, "peak": x.flatten(1).amax(1)[:, None],
            "mean_inked": (total / area.clamp_min(1))[:, None], "area": area[:, None]}


def fit_and_score(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                  num_classes: int, steps: int = 50) -> float:
    """Test accuracy of a multinomial logistic regression (L2 1e-4 on the weights, so it stays finite when the
    classes separate) on the features (N, k) standardised (z) and squared, fitted by Newton's method with a
    backtracking line search: closed-form steps in plain torch, no optimiser. Above MAX_FULL parameters the
    Hessian is cut to its per-class blocks (a slower path to the same minimum: the loss is strictly convex)."""
    mean, std = train_f.mean(0), train_f.std(0).clamp_min(1e-12)

    def features(f):
        z = (f - mean) / std
        return torch.cat([z, z * z, torch.ones(len(z), 1, dtype=z.dtype)], 1)  # the last column: the bias

    x, y = features(train_f.double()), torch.nn.functional.one_hot(train_y.long(), num_classes).double()
    n, k = x.shape
    reg = torch.full((k, 1), 1e-4, dtype=x.dtype)
    reg[-1] = 1e-8  # the bias is not shrunk (a whisker keeps the Hessian invertible)
    w = torch.zeros(k, num_classes, dtype=x.dtype)

    def loss(w):
        return float(-(torch.log_softmax(x @ w, 1) * y).sum() / n + (reg * w * w).sum())

    current = loss(w)
    for _ in range(steps):
        p = torch.softmax(x @ w, 1)
        grad = x.T @ (p - y) / n + 2 * reg * w
        if float(grad.abs().max()) < 1e-9:
            break
        if k * num_classes <= MAX_FULL:
            h = torch.einsum("ia,ib,ic,cd->acbd", x, x, p, torch.eye(num_classes, dtype=x.dtype))
            h = (h - torch.einsum("ia,ib,ic,id->acbd", x, x, p, p)) / n
            h = h.reshape(k * num_classes, k * num_classes) + torch.diag((2 * reg).expand(k, num_classes).flatten())
            step = torch.linalg.solve(h, grad.flatten()).reshape(k, num_classes)
        else:
            blocks = torch.einsum("ia,ib,ic->cab", x, x, p * (1 - p)) / n + torch.diag_embed((2 * reg).T.expand(
                num_classes, k))
            step = torch.linalg.solve(blocks, grad.T.unsqueeze(-1)).squeeze(-1).T
        t = 1.0
        while t > 1e-6 and loss(w - t * step) > current:
            t /= 2
        w, previous, current = w - t * step, current, loss(w - t * step)
        if previous - current < 1e-12:
            break
    pred = (features(test_f.double()) @ w).argmax(1)
    return float((pred == test_y.long()).double().mean())


def battery(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
            num_classes: int) -> dict[str, float]:
    """Test accuracy of each statistic alone and of all of them together (`all`), fitted on the training set."""
    train, test = ink_statistics(train_x), ink_statistics(test_x)
    out = {k: fit_and_score(train[k], train_y, test[k], test_y, num_classes) for k in STATISTICS}
    out["all"] = fit_and_score(torch.cat([train[k] for k in STATISTICS], 1), train_y,
                               torch.cat([test[k] for k in STATISTICS], 1), test_y, num_classes)
    return out


def readable(scores: dict[str, float], chance: float, within: float = WITHIN) -> dict[str, float]:
    """The battery's entries more than `within` above chance: the statistics the data leaves readable."""
    return {k: v for k, v in scores.items() if v > chance + within}


def battery_words(baseline: dict) -> str:
    """One sentence on meta.json's ink_baseline battery: each score, and which are not within WITHIN of chance
    (with the spread of a chance-level score on that many test images, when the run recorded how many)."""
    scores, chance, n = baseline["battery"], baseline["chance"], baseline.get("test_images")
    high = readable(scores, chance)
    noise = f"; a classifier at chance scores within +-{2 * (chance * (1 - chance) / n) ** 0.5:.3f} of it on " \
            f"{n} test images (2 standard errors)" if n else ""
    verdict = (f"more than {WITHIN * 100:.0f} points above chance: {', '.join(high)} (a network that pools globally "
               "could read them; data.ink: invariant is the control that matches them)" if high else
               f"every one within {WITHIN * 100:.0f} points of chance")
    return (f"ink battery, test accuracy from each translation-invariant statistic alone and from all of them "
            f"(chance {chance:.3f}): " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()) + "; " + verdict
            + noise)
