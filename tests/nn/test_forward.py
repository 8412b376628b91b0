"""forward.py: a model that passed the first check and then fails, or returns something else, on a later batch is
a FactoryError naming it and the batch; its own exception stays chained (what --debug shows). NaN outputs are
found by the accumulator (tests/eval/test_accumulate.py, tests/cli/test_measure.py)."""

import pytest
import torch
from custom_models import later

from invariance_lab.core.errors import FactoryError
from invariance_lab.nn.forward import forward, probabilities

X = torch.rand(4, 1, 8, 8)


@pytest.mark.parametrize("how, needle", [("oom", "failed on a batch of shape (4, 1, 8, 8) (OutOfMemoryError"),
                                         ("batch2", "returned a tensor of shape (2, 4)"),
                                         ("tuple", "returned tuple"),
                                         ("exit", "failed on a batch of shape (4, 1, 8, 8) (SystemExit: 0)"),
                                         ("one_class", "returned a tensor of shape (4, 1)")])
def test_a_later_batch_that_fails_is_a_factory_error_naming_the_model(how, needle):
    model = later(how)
    assert probabilities(model, X[:2], "model mine", classes=2).shape == (2, 2)  # the first check's batch
    with pytest.raises(FactoryError, match="model mine") as e:
        probabilities(model, X, "model mine", classes=2)
    assert needle in str(e.value)
    if how == "oom":
        assert isinstance(e.value.__cause__, torch.cuda.OutOfMemoryError)  # kept for --debug


def test_logits_pass_through_unchanged():
    model = later("oom")
    with torch.no_grad():
        assert torch.equal(forward(model, X[:2], "m"), model(X[:2]))
        assert torch.equal(probabilities(model, X[:2], "m"), torch.softmax(model(X[:2]).float(), dim=1))


def test_sparse_logits_are_refused():
    """Catches forward() without check_dense: a model returning sparse logits must be a FactoryError."""
    class Sparse(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :2].to_sparse()

    with pytest.raises(FactoryError, match="dense"):
        forward(Sparse(), X, "model sparse")
