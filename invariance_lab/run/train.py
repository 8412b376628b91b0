"""Train one model for one seed: seeded, deterministic on CPU, a progress bar, per-epoch history.

    model, history = train_model(factors, train_x, train_y, test_x, test_y, cfg.train, noise=0.0, seed=0,
                                 num_classes=2, canvas=32, device=torch.device("cpu"))

The seed sets the weight initialisation, the batch order and the training noise; the images themselves come
from `data.seed` (see data/datasets.py), so seeds measure the spread due to training, on fixed data. Saving and loading
the trained model is checkpoints.py's job.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..schema.config import TrainConfig
from ..schema.train import EVAL_BATCH
from ..core.progress import progress_bar
from ..core.columns import EPOCH_KEPT, TRAIN_COLUMNS, VAL_COLUMNS
from ..core.errors import InvlabError
from ..data.folder import to_float
from ..nn.forward import forward
from ..nn.models import InvNet, build_model, place
from .optimizer import training_optimizer


@torch.inference_mode()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, batch_size: int = EVAL_BATCH,
                      what: str = "the model") -> float:
    # EVAL_BATCH images at a time (schema/train.py): the activations of 1000 at once were most of a run's peak memory
    model.eval()
    hits = 0
    for i in range(0, len(y), batch_size):
        logits = forward(model, to_float(x[i:i + batch_size]).to(device), what)
        hits += int((logits.argmax(1).cpu() == y[i:i + batch_size]).sum())
    return hits / len(y)


@torch.inference_mode()
def evaluate_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, batch_size: int = EVAL_BATCH,
                  what: str = "the model"):
    """(mean cross-entropy loss, accuracy) on the images: a validation pass (no random numbers)."""
    model.eval()
    loss, hits = 0.0, 0
    for i in range(0, len(y), batch_size):
        logits, yy = forward(model, to_float(x[i:i + batch_size]).to(device), what), y[i:i + batch_size].to(device)
        loss += nn.functional.cross_entropy(logits, yy, reduction="sum").item()
        hits += int((logits.argmax(1) == yy).sum())
    return loss / len(y), hits / len(y)


def kept_row(history: pd.DataFrame) -> pd.Series:
    """The history row of the weights kept: epoch_kept's (train.select: best_val) or the last epoch's."""
    kept = history.attrs.get(EPOCH_KEPT)
    return history.iloc[-1] if kept is None else history[history.epoch == kept].iloc[0]


def _own_rng(train):
    """Run `train` with torch's global RNG seeded with its `seed` (and the GPU's, on CUDA: dropout and noise inside
    a model draw there) for the weights' initialisation, both given back as they were after: a library call leaves
    the caller's random numbers alone, and a unit's numbers do not depend on what ran before it."""
    @functools.wraps(train)
    def seeded(*args, seed: int, device: torch.device, **kwargs):
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.random.default_generator.manual_seed(seed)
            if device.type == "cuda":
                with torch.cuda.device(device):  # manual_seed seeds the current device, which cuda:1 need not be
                    torch.cuda.manual_seed(seed)
            return train(*args, seed=seed, device=device, **kwargs)
    return seeded


@_own_rng
def train_model(factors: dict, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                test_y: torch.Tensor, cfg: TrainConfig, *, noise: float, seed: int, num_classes: int, canvas: int,
                device: torch.device, progress: bool = False, label: str = "",
                val: tuple[torch.Tensor, torch.Tensor] | None = None,
                factory_dirs: Iterable[str | Path] = ()) -> tuple[InvNet, pd.DataFrame]:
    """(the trained network, its history: one row per epoch), from torch's RNG seeded with `seed` (_own_rng). `val`:
    the validation images and labels (data.val_fraction or a val/ folder): their loss and accuracy are
    recorded each epoch (val_loss, val_accuracy), and train.select: best_val keeps the weights of the epoch of
    the lowest val_loss (the first, on a tie; history.attrs[EPOCH_KEPT] names it), train.patience stops after
    that many epochs without a lower one. Neither uses a random number: the weights of the epochs trained are
    those of a run without them. A factory's module is searched first in `factory_dirs` (the config's folder)."""
    if cfg.validates and val is None:
        raise InvlabError("train.select: best_val and train.patience need a validation set: set "
                          "data.val_fraction (e.g. 0.2), or give an image folder a val/ folder beside train/")
    # images: float, or uint8 pixels of an image folder (data/folder.py), made floats a batch at a time
    model = place(build_model(factors, num_classes=num_classes, canvas=canvas, in_channels=train_x.shape[1],
                              dirs=factory_dirs), device)
    gen = torch.Generator().manual_seed(seed)  # batch order and training noise
    opt = training_optimizer(model.parameters(), cfg, device)
    loss_fn = nn.CrossEntropyLoss()
    what = f"model {label}" if label else "the model"  # in messages: a model of your own may fail on a later batch
    history = []
    best = None  # (val_loss, epoch, weights if select: best_val) of the lowest validation loss so far
    n = len(train_y)
    steps = (n + cfg.batch_size - 1) // cfg.batch_size
    bar = progress_bar(cfg.epochs * steps, label or "train", "step", progress)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0, total_loss, hits = time.perf_counter(), 0.0, 0
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            x, y = to_float(train_x[idx]), train_y[idx]
            if noise > 0:
                x = x + noise * torch.randn(x.shape, generator=gen)
            x, y = x.to(device), y.to(device)
            logits = forward(model, x, what)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(y)
            hits += int((logits.argmax(1) == y).sum())
            bar.update(1)
        if not math.isfinite(total_loss):
            raise InvlabError(f"training {label or 'a model'} diverged: the loss became {total_loss} in epoch {epoch} "
                              f"(train.lr {cfg.lr:g} with {cfg.optimizer}); lower train.lr")
        row, stop = dict(epoch=epoch, train_loss=total_loss / n, train_accuracy=hits / n), False
        if val is not None:
            row["val_loss"], row["val_accuracy"] = evaluate_loss(model, *val, device, what=what)
            if best is None or row["val_loss"] < best[0]:
                best = (row["val_loss"], epoch, _weights(model) if cfg.select == "best_val" else None)
            stop = cfg.patience is not None and epoch - best[1] >= cfg.patience
        # train.test_every: the test pass costs ~10% of an epoch; it uses no random numbers, so skipping it
        # changes no weight (tested)
        tested = stop or epoch == cfg.epochs or (cfg.test_every > 0 and epoch % cfg.test_every == 0)
        accuracy = evaluate_accuracy(model, test_x, test_y, device, what=what) if tested else math.nan
        history.append(dict(row, test_accuracy=accuracy, seconds=time.perf_counter() - t0))
        bar.set_postfix(loss=f"{total_loss / n:.3f}", acc=f"{hits / n:.3f}")
        if stop:
            break
    bar.close()
    if not history:  # epochs: 0 -> record the untrained network's clean accuracy
        row = dict(epoch=0, train_loss=float("nan"),
                   train_accuracy=evaluate_accuracy(model, train_x, train_y, device, what=what))
        if val is not None:
            row["val_loss"], row["val_accuracy"] = evaluate_loss(model, *val, device, what=what)
        history.append(dict(row, test_accuracy=evaluate_accuracy(model, test_x, test_y, device, what=what),
                            seconds=0.0))
    # train.csv's columns (core/columns.py); the validation ones only with a validation set
    columns = TRAIN_COLUMNS[:3] + (VAL_COLUMNS if val is not None else []) + TRAIN_COLUMNS[3:]
    frame = pd.DataFrame(history, columns=columns)
    if cfg.select == "best_val":
        kept = 0 if best is None else best[1]
        if best is not None:
            model.load_state_dict(best[2])
        frame.attrs[EPOCH_KEPT] = kept
        at = frame.index[frame.epoch == kept][0]
        if math.isnan(frame.at[at, "test_accuracy"]):  # test_every skipped it: the kept weights are tested
            frame.at[at, "test_accuracy"] = evaluate_accuracy(model, test_x, test_y, device, what=what)
    model.eval()
    return model, frame


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights as they are now (select: best_val restores them)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
