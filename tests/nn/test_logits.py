"""logits.py: a model with one logit per image (a binary classifier trained with a sigmoid) is measured as the two
logits (0, z), so every evaluator sees its sigmoid: a shift that moves z moves the probabilities, and a flip is a
change of sign. Measured as one logit, its softmax would be 1 everywhere and it would look exactly invariant.
(The Lie derivative of such a model: tests/eval/test_lie.py, where torch's forward-mode AD is loaded anyway.)"""

import pytest
import torch
from torch import nn

import invariance_lab as il
from invariance_lab.core.errors import FactoryError
from invariance_lab.data.write import write_folder
from invariance_lab.nn.outputs import check_output
from invariance_lab.nn.logits import class_count, class_logits

SIDE = 8
SHIFTS = range(-3, 4)


def images(n=24):
    return torch.rand(n, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(3))


def one_logit(pool: bool) -> nn.Sequential:
    """Circular convolutions, then a flatten head (every position its own weight) or max pooling by 2 and a global
    average (a network the all-shift engine knows); one logit, its bias set so that about half the images are
    class 1 (flips are then likely under shifts)."""
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular")
    layers = [conv, nn.ReLU()]
    layers += [nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1)] if pool else \
              [nn.Flatten(), nn.Linear(4 * SIDE * SIDE, 1)]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        model[-1].bias -= model(images()).median()
    return model


class TwoLogits(nn.Module):
    """The same model written with two logits (0, z) by hand: what one logit must be measured as."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        z = self.model(x)
        return torch.cat([torch.zeros_like(z), z], dim=1)


def test_one_logit_becomes_zero_and_itself_and_others_are_untouched():
    z = torch.randn(5, 1)
    two = class_logits(z)
    assert two.shape == (5, 2) and torch.equal(two[:, 0], torch.zeros(5)) and torch.equal(two[:, 1], z[:, 0])
    assert torch.allclose(torch.softmax(two, dim=1)[:, 1], torch.sigmoid(z[:, 0]))
    three = torch.randn(5, 3)
    assert class_logits(three) is three
    assert (class_count(1), class_count(2), class_count(10)) == (2, 2, 10)


def test_brute_force_sees_the_sigmoid_at_every_shift():
    model, x = one_logit(pool=False), images()
    df = il.measure(model, x, dx=SHIFTS, mode="circular", engine="brute")
    with torch.no_grad():
        z0 = model(x)[:, 0]
        for d in SHIFTS:
            z = model(torch.roll(x, d, dims=-1))[:, 0]
            row = df[df.dx == d].iloc[0]
            assert row.flip_rate * len(x) == pytest.approx(int(((z > 0) != (z0 > 0)).sum()), abs=1e-9)
            assert row.prob_change == pytest.approx((torch.sigmoid(z) - torch.sigmoid(z0)).abs().mean().item(),
                                                    abs=1e-6)
    assert df.flip_rate.max() > 0 and df.prob_change.max() > 0.01  # a position-dependent model: not invariant


def test_the_all_shift_engine_agrees_with_brute_force_and_with_two_logits_by_hand():
    model, x = one_logit(pool=True), images()
    engine = il.measure(model, x, dx=SHIFTS, dy=[-1, 0, 1], mode="circular", engine="allshift")
    brute = il.measure(model, x, dx=SHIFTS, dy=[-1, 0, 1], mode="circular", engine="brute")
    by_hand = il.measure(TwoLogits(model), x, dx=SHIFTS, dy=[-1, 0, 1], mode="circular", engine="brute")
    assert engine.attrs["engine"]["engine"] == "allshift"
    for other in (brute, by_hand):
        assert engine.flip_rate.tolist() == other.flip_rate.tolist()
        assert (engine.prob_change - other.prob_change).abs().max() < 1e-6
    assert engine.prob_change.max() > 1e-3  # max pooling by 2: odd shifts change the output


def test_a_folder_with_two_classes_fits_one_logit_and_a_label_above_one_does_not(tmp_path):
    model, x = one_logit(pool=False), images(8)
    labels = torch.tensor([0, 1] * 4)
    df = il.measure(model, write_folder(x, tmp_path / "ab", labels, ["a", "b"]), dx=[-1, 0, 1], mode="circular")
    assert df.attrs["n_classes"] == 2 and df.accuracy.notna().all()
    with pytest.raises(il.InvlabError, match="a label is 2"):
        il.measure(model, x, labels=[0, 1, 2, 0, 1, 2, 0, 1], dx=[0, 1], mode="circular")


def test_training_still_needs_one_logit_per_class():
    with pytest.raises(FactoryError, match=r"needs \(2, 2\)"):
        check_output(one_logit(pool=False), images(2), 2, "the model")
    assert check_output(one_logit(pool=False), images(2), 2, "the model", one_logit=True) == 1
