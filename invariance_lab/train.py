"""Train one model for one seed: seeded, deterministic on CPU, a progress bar, per-epoch history.

    model, history = train_model(factors, train_x, train_y, test_x, test_y, cfg.train, noise=0.0, seed=0,
                                 num_classes=2, canvas=32, device=torch.device("cpu"))

The seed sets the weight initialisation, the batch order and the training noise; the images themselves come
from `data.seed` (see data.py), so seeds measure the spread due to training, on fixed data.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import TrainConfig
from .models import InvNet, build_model, count_parameters


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.inference_mode()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, batch_size: int = 1000) -> float:
    model.eval()
    hits = 0
    for i in range(0, len(y), batch_size):
        hits += int((model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return hits / len(y)


def train_model(factors: dict, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                test_y: torch.Tensor, cfg: TrainConfig, *, noise: float, seed: int, num_classes: int, canvas: int,
                device: torch.device, progress: bool = False, label: str = "") -> tuple[InvNet, pd.DataFrame]:
    torch.manual_seed(seed)  # weight initialisation
    model = build_model(factors, num_classes=num_classes, canvas=canvas).to(device)
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
            x, y = train_x[idx], train_y[idx]
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
        history.append(dict(epoch=epoch, train_loss=total_loss / n, train_accuracy=hits / n,
                            test_accuracy=evaluate_accuracy(model, test_x, test_y, device),
                            seconds=time.perf_counter() - t0))
        bar.set_postfix(loss=f"{total_loss / n:.3f}", acc=f"{hits / n:.3f}")
    bar.close()
    if not history:  # epochs: 0 -> record the untrained network's clean accuracy
        history.append(dict(epoch=0, train_loss=float("nan"), train_accuracy=evaluate_accuracy(model, train_x, train_y, device),
                            test_accuracy=evaluate_accuracy(model, test_x, test_y, device), seconds=0.0))
    model.eval()
    return model, pd.DataFrame(history)


def fingerprint(factors: dict, data: dict, train: dict, seed: int) -> str:
    """Identifies a trained model: same factors, data, training settings and seed -> same weights."""
    blob = json.dumps(dict(factors=factors, data=data, train=train, seed=seed), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(path: Path, model: InvNet, *, name: str, seed: int, data: dict, train: dict,
                    classes: list[str], history: pd.DataFrame) -> None:
    blob = dict(state_dict=model.state_dict(), name=name, seed=seed, factors=model.factors, data=data, train=train,
                classes=classes, n_params=count_parameters(model),
                fingerprint=fingerprint(model.factors, data, train, seed), history=history.to_dict("list"))
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)  # atomic: a checkpoint file is either complete or absent


def load_checkpoint(path: Path, device: torch.device) -> tuple[InvNet, dict]:
    blob = torch.load(path, map_location=device, weights_only=False)
    model = build_model(blob["factors"], num_classes=len(blob["classes"]), canvas=blob["data"]["canvas"])
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), blob
