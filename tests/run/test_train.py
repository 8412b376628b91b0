"""train.py: seeded training is deterministic, learns an easy task, and a diverging loss is an error; a validation
set gives select: best_val its kept epoch and patience its early stop."""

import math

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.schema.config import TrainConfig
from invariance_lab.core.columns import EPOCH_KEPT, TRAIN_COLUMNS, VAL_COLUMNS
from invariance_lab.core.errors import InvlabError
from invariance_lab.nn.models import resolve_spec
from invariance_lab.run.train import kept_row, train_model
from invariance_lab.store.layout import SUMMARY_CSV, TRAIN_CSV, checkpoint_path

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


def test_training_leaves_the_callers_random_numbers_alone(one_thread):
    # the weights come from torch's global RNG seeded with the unit's seed; the caller's stream goes on unmoved
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, _ = _train(TrainConfig(epochs=1, batch_size=16, lr=0.01))
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.rand(5)  # whatever the caller drew before: the unit's weights do not depend on it
    b, _ = _train(TrainConfig(epochs=1, batch_size=16, lr=0.01))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


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


# --------------------------------------------------------------------------- validation: select: best_val, patience
def _with_val(cfg, flipped=True, seed=0):
    """Training on _task with a validation set whose labels are flipped: the better the network learns, the
    higher its validation loss, so the lowest one comes early and patience has something to stop."""
    x, y = _task()
    vy = 1 - y[:32] if flipped else y[:32]
    return train_model(FACTORS, x, y, x, y, cfg, noise=0.0, seed=seed, num_classes=2, canvas=8,
                       device=torch.device("cpu"), val=(x[:32], vy))


def test_best_val_keeps_the_weights_of_the_lowest_validation_loss(one_thread):
    cfg = dict(epochs=4, batch_size=16, lr=0.02)
    model, hist = _with_val(TrainConfig(**cfg, select="best_val", test_every=0))
    kept = hist.attrs[EPOCH_KEPT]
    assert kept == hist.epoch[hist.val_loss.idxmin()] and kept < 4 and len(hist) == 4
    # the kept weights are those a run stopped at that epoch ends with (the same seed: the same batches)
    at_kept, _ = _train(TrainConfig(**{**cfg, "epochs": kept}))
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), at_kept.state_dict().values()))
    # the kept epoch's test accuracy is measured (test_every: 0 skipped it) and is what the run reports
    assert kept_row(hist).epoch == kept and not math.isnan(kept_row(hist).test_accuracy)
    # select: last keeps the last epoch's weights, as without a validation set, bit for bit
    last, hl = _with_val(TrainConfig(**cfg))
    plain, hp = _train(TrainConfig(**cfg))
    assert all(torch.equal(p, q) for p, q in zip(last.state_dict().values(), plain.state_dict().values()))
    assert EPOCH_KEPT not in hl.attrs and kept_row(hl).epoch == 4
    assert list(hp.columns) == TRAIN_COLUMNS  # no validation set: train.csv's columns as they always were
    assert list(hl.columns) == TRAIN_COLUMNS[:3] + VAL_COLUMNS + TRAIN_COLUMNS[3:]


def test_patience_stops_after_that_many_epochs_without_a_lower_validation_loss(one_thread):
    _, hist = _with_val(TrainConfig(epochs=12, batch_size=16, lr=0.02, patience=2, test_every=0))
    best = int(hist.epoch[hist.val_loss.idxmin()])
    assert len(hist) == best + 2 < 12  # stopped two epochs after the best one
    assert not math.isnan(hist.test_accuracy.iloc[-1])  # the last epoch trained is tested, as ever
    _, full = _with_val(TrainConfig(epochs=6, batch_size=16, lr=0.02), flipped=False)
    assert len(full) == 6  # no patience: every epoch


def test_best_val_without_a_validation_set_is_an_error():
    with pytest.raises(InvlabError, match="need a validation set"):
        _train(TrainConfig(epochs=1, select="best_val"))


def test_a_best_val_run_records_the_kept_epoch_in_its_checkpoint(tmp_path, quick_config_path):
    res = CliRunner().invoke(app, ["run", str(quick_config_path), "--results-dir", str(tmp_path), "--quiet",
                                   "--threads", "1", "--set", "seeds=[0]", "--set", "models={g: {arch: conv_only, "
                                   "channels: [4]}}", "--set", "data.train_images=60", "--set", "data.test_images=10",
                                   "--set", "data.val_fraction=0.25", "--set", "train.epochs=3", "--set",
                                   "train.select=best_val", "--set", "train.lr=0.05", "--set", "train.batch_size=8"])
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "quick").iterdir()
    csv = pd.read_csv(run_dir / TRAIN_CSV)
    assert list(csv.columns) == ["model", "seed", *TRAIN_COLUMNS[:3], *VAL_COLUMNS, *TRAIN_COLUMNS[3:]]
    blob = torch.load(checkpoint_path(run_dir, "g", 0), weights_only=True)
    assert blob[EPOCH_KEPT] == csv.epoch[csv.val_loss.idxmin()]
    # the sweep measured the kept weights: its clean accuracy is the kept epoch's test accuracy
    summary = pd.read_csv(run_dir / SUMMARY_CSV)
    assert summary.clean_accuracy.iloc[0] == csv.test_accuracy[csv.val_loss.idxmin()]


# --------------------------------------------------------------------------- mutation audit: seeds, ties, noise, losses
def test_the_seed_sets_the_initial_weights(one_thread):
    """Catches the weights' initialisation seeded with a constant instead of the unit's seed (seeds would then
    differ only by batch order, and their spread would not measure the initialisation)."""
    cfg = TrainConfig(epochs=0)
    (a, _), (b, _), (c, _) = _train(cfg, seed=0), _train(cfg, seed=0), _train(cfg, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.fc.weight, c.fc.weight)
    assert not torch.equal(a.blocks[0].conv.weight, c.blocks[0].conv.weight)


def test_the_seed_sets_the_batch_order_apart_from_the_initial_weights(one_thread):
    """Catches the batch order drawn from a constant seed, or not shuffled at all: from the same initial weights
    (the global RNG seeded alike, around _own_rng), two seeds must train on different batches."""
    x, y = _task()
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.02)

    def trained(seed):
        torch.manual_seed(7)  # the same initial weights for every seed: only the batch order can differ
        model, _ = train_model.__wrapped__(FACTORS, x, y, x, y, cfg, noise=0.0, seed=seed, num_classes=2,
                                           canvas=8, device=torch.device("cpu"))
        return model.fc.weight.detach().clone()

    with torch.random.fork_rng(devices=[]):
        a, again, b = trained(0), trained(0), trained(1)
    assert torch.equal(a, again) and not torch.equal(a, b)


def test_a_tie_in_validation_loss_keeps_the_first_epoch_and_patience_counts_from_it(one_thread):
    """Catches '<=' for '<' in the best-epoch rule: on a tie the first epoch is kept (train_model's docstring),
    and patience stops that many epochs after it. lr 1e-30 leaves every weight as it was: every epoch ties."""
    _, hist = _with_val(TrainConfig(epochs=4, batch_size=16, lr=1e-30, select="best_val"))
    assert hist.val_loss.nunique() == 1 and len(hist) == 4  # the premise: four equal validation losses
    assert hist.attrs[EPOCH_KEPT] == 1
    _, stopped = _with_val(TrainConfig(epochs=6, batch_size=16, lr=1e-30, patience=2))
    assert list(stopped.epoch) == [1, 2, 3]


def test_training_noise_is_drawn_from_the_seed_and_changes_the_weights(one_thread):
    """Catches data.noise ignored in training (x unchanged) and noise that does not follow the seed."""
    x, y = _task()
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.02)

    def trained(noise):
        model, _ = train_model(FACTORS, x, y, x, y, cfg, noise=noise, seed=0, num_classes=2, canvas=8,
                               device=torch.device("cpu"))
        return model.fc.weight.detach().clone()

    clean, noisy, again = trained(0.0), trained(0.5), trained(0.5)
    assert torch.equal(noisy, again) and not torch.equal(clean, noisy)


def test_validation_loss_and_accuracy_are_the_mean_cross_entropy_and_hit_rate_of_the_final_weights(one_thread):
    """Catches a validation loss summed or averaged wrongly (train.csv's val_loss is the mean cross-entropy per
    image) and train_loss not a per-image mean; lr 1e-30 keeps the weights, so the epoch's losses are the model's."""
    x, y = _task()
    vx, vy = x[:40], 1 - y[:40]
    model, hist = train_model(FACTORS, x, y, x, y, TrainConfig(epochs=1, batch_size=16, lr=1e-30), noise=0.0,
                              seed=0, num_classes=2, canvas=8, device=torch.device("cpu"), val=(vx, vy))
    with torch.no_grad():
        val_logits, train_logits = model(vx), model(x)
    expect = torch.nn.functional.cross_entropy(val_logits, vy).item()
    assert hist.val_loss.iloc[-1] == pytest.approx(expect, rel=1e-5)
    assert hist.val_accuracy.iloc[-1] == pytest.approx(float((val_logits.argmax(1) == vy).float().mean()))
    assert hist.train_loss.iloc[-1] == pytest.approx(torch.nn.functional.cross_entropy(train_logits, y).item(),
                                                     rel=1e-5)
