"""nn/finite.py: a NaN or infinite weight is found and named, and logits whose probabilities are NaN are refused
(a -inf logit is not: its probability is 0)."""

import pytest
import torch
from torch import nn

from invariance_lab.core.errors import CheckpointError, FactoryError
from invariance_lab.nn.finite import check_logits, check_weights, nonfinite


def test_the_first_nonfinite_tensor_is_named_with_its_counts():
    state = {"a.weight": torch.ones(3), "n": torch.tensor(5), "b.weight": torch.tensor([1.0, float("nan"),
                                                                                         float("inf"), float("-inf")])}
    assert nonfinite(state.items()) == "'b.weight' holds 1 NaN value and 2 infinite values (of 4)"
    assert nonfinite({"a": torch.ones(2), "count": torch.tensor(3)}.items()) is None  # integer buffers skipped


def test_weights_with_nan_are_a_checkpoint_error_naming_the_file_and_the_parameter():
    with pytest.raises(CheckpointError, match=r"--weights net\.pt: parameter '0\.weight' holds 1 NaN value"):
        check_weights({"0.weight": torch.tensor([0.0, float("nan")])}, "net.pt")
    check_weights({"0.weight": torch.zeros(2)}, "net.pt")


def test_nan_logits_are_refused_naming_the_weight_or_else_the_inputs():
    model = nn.Linear(2, 2)
    check_logits(model, torch.tensor([[0.0, float("-inf")], [1.0, 2.0]]), "model m")  # a class ruled out: fine
    with pytest.raises(FactoryError, match="its inputs overflow it"):
        check_logits(model, torch.tensor([[0.0, float("inf")]]), "model m")
    with torch.no_grad():
        model.bias[1] = float("nan")
    with pytest.raises(FactoryError, match=r"model m gives NaN or infinite logits .* its weight 'bias' holds 1 NaN"):
        check_logits(model, model(torch.zeros(1, 2)), "model m")
    x = torch.zeros(1, 2)
    x[0, 1] = float("nan")  # NaN pixels: it had blamed the forward pass ("its weights are all finite, so ...")
    with pytest.raises(FactoryError, match=r"the images it was given hold 1 NaN value \(of 2\): give images of finite"):
        check_logits(nn.Linear(2, 2), nn.Linear(2, 2)(x), "model m", x)
