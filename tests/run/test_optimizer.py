"""optimizer.py: CpuAdam's weights are torch.optim.Adam's bit for bit (so runs keep their numbers), it is chosen only
where it is that (tests/test_compiler_stack.py: training with it leaves torch's compiler stack unimported)."""

import pytest
import torch

from invariance_lab.core.errors import InvlabError
from invariance_lab.nn.models import build_model, place, resolve_spec
from invariance_lab.run.optimizer import CpuAdam, training_optimizer
from invariance_lab.schema.train import TrainConfig

CPU = torch.device("cpu")


def _steps(make, arch="conv_maxpool", steps=12, unused=False):
    """The weights after `steps` Adam steps on random batches, from the same initial weights and batches."""
    torch.manual_seed(0)
    model = place(build_model(resolve_spec({"arch": arch, "channels": [4, 8]}), num_classes=3, canvas=12), CPU)
    params = list(model.parameters())
    if unused:  # a parameter that never gets a gradient: torch.optim.Adam does not step it (nor count its steps)
        params.append(torch.nn.Parameter(torch.ones(3)))
    opt, g = make(params), torch.Generator().manual_seed(1)
    for i in range(steps):
        x, y = torch.rand(8, 1, 12, 12, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        if unused and i == steps // 2:
            params[-1].grad = torch.full((3,), 0.5)  # a gradient on some steps only
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("kwargs", [dict(lr=1e-3), dict(lr=3e-2, weight_decay=1e-2),
                                    dict(lr=1e-2, betas=(0.5, 0.9), eps=1e-4)], ids=["default", "decay", "betas-eps"])
@pytest.mark.parametrize("arch", ["conv_maxpool", "conv_gap"])
def test_cpu_adam_is_torch_adam_bit_for_bit(one_thread, kwargs, arch):
    ours = _steps(lambda p: CpuAdam(p, **kwargs), arch)
    theirs = _steps(lambda p: torch.optim.Adam(p, foreach=False, **kwargs), arch)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert not torch.equal(ours[0], _steps(lambda p: CpuAdam(p, **kwargs), arch, steps=0)[0])  # it moved


def test_a_parameter_stepped_only_when_it_has_a_gradient(one_thread):
    ours = _steps(lambda p: CpuAdam(p, lr=0.1), unused=True)
    theirs = _steps(lambda p: torch.optim.Adam(p, lr=0.1, foreach=False), unused=True)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert not torch.equal(ours[-1], torch.ones(3))


def test_a_sparse_gradient_is_refused_as_torch_adam_refuses_it():
    p = torch.nn.Parameter(torch.ones(3, 2))
    p.grad = torch.ones(3, 2).to_sparse()
    with pytest.raises(InvlabError, match="sparse gradient"):
        CpuAdam([p], lr=0.1).step()
    with pytest.raises(RuntimeError, match="sparse"):
        torch.optim.Adam([p], lr=0.1).step()


def test_zero_grad_without_set_to_none_zeroes():
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    opt = CpuAdam([p], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert torch.equal(p.grad, torch.zeros(2))
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize("train, plain", [
    (dict(), True), (dict(optimizer_kwargs={"betas": [0.5, 0.9], "eps": 1e-6}, weight_decay=0.1), True),
    (dict(optimizer_kwargs={"amsgrad": True}), False), (dict(optimizer="adamw"), False),
    (dict(optimizer="sgd"), False)])
def test_cpu_adam_only_where_it_is_torch_adam(train, plain):
    params = [torch.nn.Parameter(torch.ones(2))]
    opt = training_optimizer(params, TrainConfig(**train), CPU)
    assert isinstance(opt, CpuAdam) == plain
    if plain and "optimizer_kwargs" in train:
        assert (opt.beta1, opt.beta2, opt.eps, opt.weight_decay) == (0.5, 0.9, 1e-6, 0.1)
    if not plain:
        assert isinstance(opt, torch.optim.Optimizer)
    meta = torch.nn.Parameter(torch.ones(2, device="meta"))  # not a CPU tensor: torch.optim's class
    assert not isinstance(training_optimizer([meta], TrainConfig(**train), CPU), CpuAdam)
