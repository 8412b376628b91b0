"""eval/class_order.py: the note for a clean accuracy far below chance, from a confusion of labelled classes
(rows) by predicted outputs (columns), and the confusion counted from a model."""

import torch
from torch import nn

from invariance_lab.data.images import from_tensor
from invariance_lab.eval.class_order import class_order_note, clean_confusion, order_note


def test_two_classes_reversed_give_the_accuracy_under_the_reverse_order():
    note = order_note(torch.tensor([[0, 6], [5, 1]]), ["a", "b"])  # 1 of 12 right: p = 13/4096
    assert "clean accuracy 0.083 on 12 images is far below chance (0.500)" in note
    assert "class order probably differs" in note
    assert "Under the reverse order (a → output 1, b → output 0) the accuracy would be 0.917" in note


def test_three_classes_in_a_cycle_give_the_accuracy_under_each_classs_most_common_output():
    note = order_note(torch.tensor([[0, 0, 4], [4, 0, 0], [0, 4, 0]]), ["a", "b", "c"])
    assert "(a → output 2, b → output 0, c → output 1) the accuracy would be 1.000" in note


def test_a_confusion_that_is_no_permutation_shows_each_classs_most_common_output():
    note = order_note(torch.tensor([[0, 0, 4], [0, 0, 4], [4, 0, 0]]), ["a", "b", "c"])  # a and b both -> 2
    assert "Each class's most common output: a → output 2 (4 of 4), b → output 2 (4 of 4), c → output 0" in note
    assert "would be" not in note


def test_at_chance_or_too_few_images_give_no_note():
    assert order_note(torch.tensor([[2, 2], [2, 2]]), ["a", "b"]) is None  # at chance: the usual footnote
    assert order_note(torch.tensor([[0, 2], [2, 0]]), ["a", "b"]) is None  # 0 of 4: p = 1/16, could be luck
    assert order_note(torch.tensor([[4, 0], [0, 4]]), ["a", "b"]) is None


class Brightest(nn.Module):
    """Class 1 for an image brighter than 0.5 on average, else class 0."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([0.5 - m, m - 0.5], dim=1)


def test_the_confusion_is_counted_at_the_reference_position_and_the_note_only_below_chance():
    x = torch.cat([torch.full((3, 1, 4, 4), 0.9), torch.full((5, 1, 4, 4), 0.1)])
    src = from_tensor(x, torch.tensor([0] * 3 + [1] * 5), ["a", "b"])  # bright labelled 0: every answer wrong
    prepare = lambda batch, dx, dy: batch  # noqa: E731
    counts = clean_confusion(Brightest(), src, prepare, 2, batch_size=3, device=torch.device("cpu"))
    assert counts.tolist() == [[0, 3], [5, 0]]
    note = class_order_note(Brightest(), src, prepare, 0.0, 2, 3, torch.device("cpu"))
    assert "would be 1.000" in note
    assert class_order_note(Brightest(), src, prepare, 0.5, 2, 3, torch.device("cpu")) is None
    assert class_order_note(Brightest(), from_tensor(x), prepare, float("nan"), 2, 3, torch.device("cpu")) is None


def test_a_note_lists_only_classes_with_images_and_cuts_long_lists():
    """Catches a class without images named in the note, and a cut list of classes without its ellipsis."""
    from invariance_lab.eval.class_order import SHOWN
    counts = torch.tensor([[0, 9, 0], [0, 0, 0], [9, 0, 0]])  # class b has no images
    note = order_note(counts, ["a", "b", "c"])
    assert "a → output 0" in note and "b → output" not in note
    k = SHOWN + 2
    cycle = torch.zeros(k, k, dtype=torch.long)
    for i in range(k):
        cycle[i, (i + 1) % k] = 5
    assert "…" in order_note(cycle, [f"c{i}" for i in range(k)])


def test_no_note_for_a_nan_accuracy():
    """Catches a NaN clean accuracy (NaN logits) reaching round(): no note, no pass over the images."""
    src = from_tensor(torch.rand(4, 1, 4, 4), labels=torch.tensor([0, 1, 0, 1]))
    assert class_order_note(nn.Identity(), src, lambda b, dx, dy: b, float("nan"), 2, 4, torch.device("cpu")) is None


class _Logits(nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.fc = nn.Linear(16, k)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_labels_must_be_below_the_number_of_classes_a_model_gives():
    """Catches `> n` for `>= n` and a single logit counted as one class: one logit stands for classes 0 and 1."""
    import pytest
    from invariance_lab.core.errors import InvlabError
    from invariance_lab.eval.measurement import check_outputs
    torch.manual_seed(0)
    same = lambda b, dx, dy: b  # noqa: E731
    x, cpu = torch.rand(2, 1, 4, 4), torch.device("cpu")
    assert check_outputs({"one": _Logits(1)}, from_tensor(x, labels=torch.tensor([0, 1])), same, cpu) == {"one": 1}
    with pytest.raises(InvlabError, match="labels must be class indices below 2"):
        check_outputs({"two": _Logits(2)}, from_tensor(x, labels=torch.tensor([0, 2])), same, cpu)
