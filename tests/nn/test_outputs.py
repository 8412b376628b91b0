"""invariance_lab.nn.outputs: what a model of your own must give before it is measured. A model that writes into
its input gets a copy (its numbers are those of the same function written without the write, and another model's
are untouched); a forward pass that is random in eval mode, or that gives sparse logits or logits on another
device, is refused naming the model. (A lazy layer drawn from the seed: tests/cli/test_measure.py.)"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import invariance_lab as il
from invariance_lab.core.errors import FactoryError
from invariance_lab.nn.outputs import check_output, check_repeatable

pytestmark = pytest.mark.usefixtures("one_thread")
SIDE = 12


class Net(nn.Module):
    """A small flatten network; `inplace` normalises its input in place (x -= 0.5), else into a new tensor;
    `how` makes its output random ('dropout', 'counter'), sparse or on the meta device."""

    def __init__(self, inplace: bool = False, how: str = ""):
        super().__init__()
        torch.manual_seed(0)
        self.inplace, self.how = inplace, how
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * SIDE * SIDE, 3))
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        if self.inplace:
            x -= 0.5
            x /= 0.25
        else:
            x = (x - 0.5) / 0.25
        out = self.body(x)
        if self.how == "dropout":
            return F.dropout(out, 0.5, training=True)
        if self.how == "counter":
            self.calls += 1
            return out + 0.01 * self.calls
        if self.how == "sparse":
            return out.to_sparse()
        if self.how == "meta":
            return out.to("meta")
        if self.how == "exit":  # sys.exit() in the model's forward pass: it ended invlab with exit code 0
            raise SystemExit(0)
        return out


def images(n=6):
    return torch.rand(n, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(1))


def test_a_model_that_writes_into_its_input_measures_as_the_same_function_written_without_the_write():
    """Canvas shifts hand every model the same reference batch at (0, 0): a model that wrote into it changed what
    every later shift and model read (a flip rate of another function, silently). Now each gets a copy, and the
    caller's tensor is left as it was."""
    x = images()
    kept = x.clone()
    both = il.measure({"copy": Net(), "inplace": Net(inplace=True), "other": Net()}, x, dx=[-2, -1, 0, 1, 2])
    assert torch.equal(x, kept)
    columns = ["dx", "dy", "flip_rate", "prob_change", "max_prob_change"]
    copy, inplace, other = (both[both.model == m][columns].reset_index(drop=True) for m in ("copy", "inplace", "other"))
    assert copy.equals(inplace) and copy.equals(other)
    assert copy.prob_change.abs().sum() > 0  # the shifts change something: the comparison can fail


@pytest.mark.parametrize("how", ["dropout", "counter"])
def test_a_forward_pass_that_differs_for_the_same_images_is_refused_naming_the_model(how):
    with pytest.raises(FactoryError, match=r"model mine gives different outputs for the same images twice in a row "
                                           r"\(logits up to [0-9.e-]+ apart\).*dropout forced on"):
        check_output(Net(how=how), images(2), 3, "model mine")
    with pytest.raises(FactoryError, match="gives different outputs for the same images twice"):
        il.measure(Net(how=how), images(), dx=[0, 1])
    assert check_output(Net(), images(2), 3, "model mine") == 3  # the same network without the randomness


@pytest.mark.parametrize("how, words", [("sparse", "returned sparse_coo logits on device cpu for a batch on cpu"),
                                        ("meta", "returned dense logits on device meta for a batch on cpu")])
def test_sparse_logits_or_logits_on_another_device_are_refused_naming_the_model(how, words):
    with pytest.raises(FactoryError, match=f"model mine {words}; it must return dense logits"):
        check_output(Net(how=how), images(2), 3, "model mine")


def test_half_precision_logits_that_differ_by_their_rounding_are_the_same_logits():
    """A GPU may sum in another order on the second pass: in float16 that is ~1e-3 of the value, not randomness."""
    out = torch.tensor([[100.0, -3.0]], dtype=torch.float16)
    check_repeatable(out, out + torch.tensor([[0.0625, 0.0]], dtype=torch.float16), "model half")  # one unit
    with pytest.raises(FactoryError, match="model half gives different outputs"):
        check_repeatable(out, out + torch.tensor([[2.0, 0.0]], dtype=torch.float16), "model half")


def test_the_all_shift_engine_gives_a_model_a_copy_too():
    """The engine runs a certified model's layers on the batch itself: a first layer that works in place
    (nn.SiLU(inplace=True) on pixels below 0) changed what the next model read."""
    def first():
        torch.manual_seed(0)
        return nn.Sequential(nn.SiLU(inplace=True), nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

    def other():
        torch.manual_seed(1)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(4 * (SIDE // 2) ** 2, 2))

    x = images() - 0.5
    alone = il.measure({"other": other()}, x, dx=[-2, -1, 0, 1, 2], mode="circular")
    both = il.measure({"first": first(), "other": other()}, x, dx=[-2, -1, 0, 1, 2], mode="circular")
    columns = ["dx", "flip_rate", "prob_change"]
    assert both[both.model == "other"][columns].reset_index(drop=True).equals(alone[columns].reset_index(drop=True))
    assert alone.prob_change.sum() > 0


def test_a_model_that_calls_sys_exit_is_a_factory_error_naming_it():
    with pytest.raises(FactoryError, match=r"model mine failed on a batch of shape \(2, 1, 12, 12\) \(SystemExit: 0\)"):
        check_output(Net(how="exit"), images(2), 3, "model mine")


def test_a_model_on_the_meta_device_is_refused_naming_the_tensor_and_left_as_it_was():
    with torch.device("meta"):
        net = Net()
    for model in (net, {"a": Net(), "b": net}):
        with pytest.raises(FactoryError, match=r"model (Net|b) holds 'body.0.weight' on torch's meta device"):
            il.measure(model, images(), dx=[0, 1])
    assert net.body[0].weight.is_meta and not Net().body[0].weight.is_meta
    with pytest.raises(il.InvlabError, match=r"got dict \(an empty dict\)"):
        il.measure({}, images(), dx=[0, 1])


class Normed(nn.Module):
    """conv, BatchNorm, global mean, linear; `how`: 'batch' normalises by the batch's statistics in eval mode too
    (track_running_stats=False), 'sticky' keeps its BatchNorm training through eval() (a train() override),
    'squeeze' drops the batch dimension of a batch of one (x.squeeze()), '' is an ordinary network."""

    def __init__(self, how: str = ""):
        super().__init__()
        torch.manual_seed(0)
        self.how, self.conv, self.fc = how, nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4, 3)
        self.norm = nn.BatchNorm2d(4, track_running_stats=how != "batch")

    def train(self, mode: bool = True):
        super().train(mode)
        if self.how == "sticky":
            self.norm.training = True
        return self

    def forward(self, x):
        features = torch.relu(self.norm(self.conv(x))).mean((2, 3))
        return self.fc(features.squeeze() if self.how == "squeeze" else features)


@pytest.mark.parametrize("how", ["batch", "sticky"])
def test_a_model_whose_logits_depend_on_the_rest_of_the_batch_is_refused_and_its_statistics_left_alone(how):
    """Its numbers moved with --batch-size (mean probability change 0.004, 0.003, 0.002 for batches of 256, 4, 1)."""
    net = Normed(how)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(FactoryError, match=r"model mine gives an image other logits by itself than in a batch with "
                                           r"another image \(logits up to [0-9.e-]+ apart\).*BatchNorm"):
        check_output(net, images(2), 3, "model mine")
    with pytest.raises(FactoryError, match="gives an image other logits by itself"):
        il.measure(net, images(), dx=[0, 1])
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics and their count as they were


@pytest.mark.parametrize("how", ["", "squeeze"])
def test_a_model_that_computes_each_image_alone_passes_even_if_it_cannot_take_a_batch_of_one(how):
    assert check_output(Normed(how).eval(), images(2), 3, "model mine") == 3


class Shaped(nn.Module):
    """Logits (N, 3) given back as (N, 1, 3) ('middle'), or twice over, (2N, 3) ('twice': two views per image)."""

    def __init__(self, how: str):
        super().__init__()
        self.how, self.net = how, Net()

    def forward(self, x):
        out = self.net(x)
        return out[:, None, :] if self.how == "middle" else torch.cat([out, out])


@pytest.mark.parametrize("how, words", [("middle", "output.flatten(1) gives (N, classes)"),
                                        ("twice", "It gave 4 rows for 2 images: one row per image")])
def test_an_output_of_another_shape_is_told_the_fix_that_fits_it(how, words):
    """Both were told to set their number of outputs, which they had right."""
    with pytest.raises(FactoryError, match=re.escape(words)):
        check_output(Shaped(how), images(2), 3, "model mine")


def test_a_model_that_ends_in_a_softmax_is_refused_and_log_probabilities_are_not():
    """Its probabilities went through invlab's softmax again: mean probability change 0.0092 against 0.0221."""
    with pytest.raises(FactoryError, match=r"model mine gives probabilities, not logits: every row .* sums to 1"):
        check_output(nn.Sequential(Net(), nn.Softmax(dim=1)), images(2), 3, "model mine")
    assert check_output(nn.Sequential(Net(), nn.LogSoftmax(dim=1)), images(2), 3, "model mine") == 3


class _OneLogit(nn.Module):
    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = value

    def forward(self, x):
        return x.flatten(1)[:, :1] * 0 + self.value


def test_one_logit_stands_for_two_classes_only():
    """Catches one_logit accepted for any num_classes: one logit means a binary classifier, not three classes."""
    x = torch.rand(2, 1, SIDE, SIDE)
    assert check_output(_OneLogit(), x, 2, "model m", one_logit=True) == 1
    with pytest.raises(FactoryError, match=re.escape("(2, 3)")):
        check_output(_OneLogit(), x, 3, "model m", one_logit=True)


def test_a_minus_infinite_single_logit_is_a_finite_probability():
    """Catches the finite check run on the raw single logit: -inf is class 0 with probability 1, not NaN."""
    x = torch.rand(2, 1, SIDE, SIDE)
    assert check_output(_OneLogit(float("-inf")), x, 2, "model m", finite=True, one_logit=True) == 1


def test_repeatability_tolerance_scales_with_the_largest_logit():
    """Catches the tolerance scaled by the sum of the logits: a gap of 0.01 at logits of 100 is randomness."""
    out = torch.full((4, 50), 100.0)
    with pytest.raises(FactoryError, match="different outputs"):
        check_repeatable(out, out + 0.01, "model m")
    check_repeatable(out, out + 1e-4, "model m")  # within 1e-5 of the scale: a sum in another order
