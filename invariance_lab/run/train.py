"""Train one model for one seed: seeded, deterministic on CPU, a progress bar, per-epoch history.

    model, history = train_model(factors, train_x, train_y, test_x, test_y, cfg.train, noise=0.0, seed=0,
                                 num_classes=2, canvas=32, device=torch.device("cpu"))

The seed sets the weight initialisation, the batch order and the training noise; the images themselves come
from `data.seed` (see data/datasets.py), so seeds measure the spread due to training, on fixed data. Saving and loading
the trained model is checkpoints.py's job.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..schema.config import TrainConfig
from ..core.errors import InvlabError
from ..data.folder import to_float
from ..nn.models import InvNet, build_model, place


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.inference_mode()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, batch_size: int = 128) -> float:
    # 128 images at a time: the activations of 1000 at once were most of a run's peak memory
    model.eval()
    hits = 0
    for i in range(0, len(y), batch_size):
        hits += int((model(to_float(x[i:i + batch_size]).to(device)).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return hits / len(y)


def train_model(factors: dict, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                test_y: torch.Tensor, cfg: TrainConfig, *, noise: float, seed: int, num_classes: int, canvas: int,
                device: torch.device, progress: bool = False, label: str = "") -> tuple[InvNet, pd.DataFrame]:
    torch.manual_seed(seed)  # weight initialisation
    # images: float, or uint8 pixels of an image folder (data/folder.py), made floats a batch at a time
    model = place(build_model(factors, num_classes=num_classes, canvas=canvas, in_channels=train_x.shape[1]), device)
    gen = torch.Generator().manual_seed(seed)  # batch order and training noise
    opt = make_optimizer(model.parameters(), cfg)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    n = len(train_y)
    steps = (n + cfg.batch_size - 1) // cfg.batch_size
    bar = tqdm(total=cfg.epochs * steps, desc=label or "train", unit="step", disable=not progress, leave=False)
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
            logits = model(x)
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
        # train.test_every: the test pass costs ~10% of an epoch; it uses no random numbers, so skipping it
        # changes no weight (tested)
        tested = epoch == cfg.epochs or (cfg.test_every > 0 and epoch % cfg.test_every == 0)
        history.append(dict(epoch=epoch, train_loss=total_loss / n, train_accuracy=hits / n,
                            test_accuracy=evaluate_accuracy(model, test_x, test_y, device) if tested else math.nan,
                            seconds=time.perf_counter() - t0))
        bar.set_postfix(loss=f"{total_loss / n:.3f}", acc=f"{hits / n:.3f}")
    bar.close()
    if not history:  # epochs: 0 -> record the untrained network's clean accuracy
        history.append(dict(epoch=0, train_loss=float("nan"), train_accuracy=evaluate_accuracy(model, train_x, train_y, device),
                            test_accuracy=evaluate_accuracy(model, test_x, test_y, device), seconds=0.0))
    model.eval()
    return model, pd.DataFrame(history)
