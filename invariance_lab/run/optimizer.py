"""The optimizer a training run steps: torch.optim's class of train.optimizer, except plain Adam on the CPU, which
is written out here with the same arithmetic.

    opt = training_optimizer(model.parameters(), cfg.train, device)   # then opt.zero_grad(); opt.step()

Why: torch.optim.Optimizer imports torch's compiler stack (torch._dynamo) the first time it adds parameters or
steps, to mark its methods as not to be compiled. That is 50-70 MB of code and data a training loop never runs,
and with the memory it leaves scattered, about 90 MB of `invlab run configs/seed_question.yaml`'s peak
(bench/seed_question.py prints it). invlab's default optimizer is Adam on the CPU, where torch.optim.Adam takes its
single-tensor path; CpuAdam below is that path, step for step, so its weights are bit for bit torch.optim.Adam's
(tests/run/test_optimizer.py trains with both and compares every weight), and a run's fingerprints, checkpoints
and tables do not change. Adam with any other option (amsgrad, maximize, ...), on a GPU (where torch.optim.Adam
takes its multi-tensor path), and every other optimizer are torch.optim's own classes (schema/train.py).
"""

from __future__ import annotations

import torch

from ..core.errors import InvlabError
from ..schema.train import TrainConfig, make_optimizer

# optimizer_kwargs CpuAdam takes; any other Adam option is torch.optim.Adam's
_ADAM_KEYS = {"betas", "eps"}


class CpuAdam:
    """torch.optim.Adam (Kingma & Ba 2015; L2 weight decay added to the gradient) for CPU tensors: its
    single-tensor update, without the Optimizer machinery (hooks, state_dict, compiler guards)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.beta1, self.beta2), self.eps, self.weight_decay = lr, betas, eps, weight_decay
        # per parameter, as torch.optim.Adam keeps it: a parameter without a gradient is not stepped
        self.steps = [0] * len(self.params)
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if p.grad.is_sparse:  # as torch.optim.Adam refuses it
                raise InvlabError("train.optimizer: adam cannot step a sparse gradient (a layer of the model makes "
                                  "them, e.g. nn.Embedding(sparse=True)); make the model's gradients dense")
            grad = p.grad if not self.weight_decay else p.grad.add(p, alpha=self.weight_decay)
            self.steps[i] += 1
            # float(step): torch keeps the count in a float32 tensor and reads it with .item()
            step = float(self.steps[i])
            self.exp_avg[i].lerp_(grad, 1 - self.beta1)
            self.exp_avg_sq[i].mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            step_size = self.lr / (1 - self.beta1 ** step)
            denom = (self.exp_avg_sq[i].sqrt() / (1 - self.beta2 ** step) ** 0.5).add_(self.eps)
            p.addcdiv_(self.exp_avg[i], denom, value=-step_size)


def training_optimizer(params, cfg: TrainConfig, device: torch.device):
    """CpuAdam for train.optimizer: adam on the CPU with no optimizer_kwargs but betas and eps; otherwise
    schema/train.py's make_optimizer (the torch.optim class)."""
    params = list(params)
    plain = (cfg.optimizer == "adam" and set(cfg.optimizer_kwargs) <= _ADAM_KEYS and torch.device(device).type == "cpu"
             and all(p.device.type == "cpu" and p.dtype.is_floating_point and not p.is_sparse for p in params))
    if not plain:
        return make_optimizer(params, cfg)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.optimizer_kwargs.items()}
    return CpuAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kwargs)
