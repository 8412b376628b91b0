"""train.py: seeded training is deterministic, learns an easy task, and a diverging loss is an error."""

import pytest
import torch

from invariance_lab.schema.config import TrainConfig
from invariance_lab.core.errors import InvlabError
from invariance_lab.nn.models import resolve_spec
from invariance_lab.run.train import train_model

FACTORS = resolve_spec({"arch": "conv_gap", "channels": [4]})


def _task(n=64):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.1
    x[y == 1, :, 2:6, 2:6] += 1.0  # class 1 has a bright square: learnable with global pooling
    return x, y


def _train(cfg, seed=0):
    x, y = _task()
    return train_model(FACTORS, x, y, x, y, cfg, noise=0.0, seed=seed, num_classes=2, canvas=8,
                       device=torch.device("cpu"))


def test_same_seed_same_weights_and_history(one_thread):
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01)
    (a, ha), (b, hb) = _train(cfg), _train(cfg)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert ha.drop(columns="seconds").equals(hb.drop(columns="seconds"))
    c, _ = _train(cfg, seed=1)
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_it_learns_and_records_each_epoch(one_thread):
    model, hist = _train(TrainConfig(epochs=15, batch_size=16, lr=0.02))
    assert list(hist.epoch) == list(range(1, 16)) and hist.test_accuracy.iloc[-1] == 1.0
    assert not model.training


def test_zero_epochs_records_the_untrained_network():
    _, hist = _train(TrainConfig(epochs=0))
    assert list(hist.epoch) == [0] and 0 <= hist.test_accuracy.iloc[0] <= 1


def test_a_diverging_loss_is_an_error_not_nan_weights(one_thread):
    # the config refuses such a rate (lr <= 10); the loop's own guard is checked by going around it
    cfg = TrainConfig.model_construct(epochs=3, batch_size=16, lr=1e30, weight_decay=0.0, optimizer="sgd")
    with pytest.raises(InvlabError, match="diverged.*lower train.lr"):
        _train(cfg)


def test_test_every_skips_test_passes_without_changing_a_weight(one_thread):
    every, last = TrainConfig(epochs=4, batch_size=16, lr=0.01), TrainConfig(epochs=4, batch_size=16, lr=0.01,
                                                                              test_every=0)
    (a, ha), (b, hb) = _train(every), _train(last)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert hb.test_accuracy.isna().tolist() == [True, True, True, False]  # the last epoch is always tested
    assert hb.test_accuracy.iloc[-1] == ha.test_accuracy.iloc[-1] and ha.test_accuracy.notna().all()
    _, h2 = _train(TrainConfig(epochs=4, batch_size=16, lr=0.01, test_every=2))
    assert h2.test_accuracy.notna().tolist() == [False, True, False, True]
    assert "test_every" not in every.model_dump() and last.model_dump()["test_every"] == 0  # fingerprints kept
