"""weights.py: a weights file that cannot be used is a CheckpointError naming it, never an OSError or a pickle."""

import pytest
import torch
from torch import nn

from invariance_lab.core.errors import CheckpointError
from invariance_lab.store.weights import load_weights, read_safetensors, read_weights


def test_a_state_dict_round_trips(tmp_path):
    model = nn.Linear(3, 2)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    state, checkpoint = read_weights(tmp_path / "w.pt")
    assert checkpoint is None
    other = load_weights(nn.Linear(3, 2), state, tmp_path / "w.pt")
    assert torch.equal(other.weight, model.weight)


def test_unusable_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        read_weights(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="not a file"):
        read_weights(tmp_path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        read_safetensors(tmp_path)  # a folder: the OSError is named, not raised
    (tmp_path / "w.safetensors").write_bytes(b"\x01")
    with pytest.raises(CheckpointError, match="not a valid .safetensors file"):
        read_weights(tmp_path / "w.safetensors")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_weights(tmp_path / "list.pt")


def test_weights_of_another_shape_say_what_differs(tmp_path):
    torch.save(nn.Linear(4, 2).state_dict(), tmp_path / "w.pt")
    state, _ = read_weights(tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=r"does not fit the model: .*weight"):
        load_weights(nn.Linear(3, 2), state, tmp_path / "w.pt")
