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


def _safetensors(path, header: dict | bytes, body: bytes = b"", size: int | None = None, pad: bool = True):
    """A .safetensors file from the format's definition: 8-byte little-endian header length, JSON header (padded
    with spaces to 8 bytes unless pad=False), body; `size` makes it sparse (truncated up to that many bytes)."""
    import json
    import struct

    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    text += b" " * (-len(text) % 8 if pad else 0)  # the safetensors library pads its header to 8 bytes
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)
    if size is not None:
        with open(path, "r+b") as f:
            f.truncate(size)
    return path


def test_safetensors_are_mapped_not_read_whole(tmp_path):
    """A 1 GiB (sparse) file whose header claims one big tensor: reading it maps the file, so memory does not
    grow by its size (before: the whole file was read, then copied, 2 GiB more)."""
    import resource

    n = 2**28  # float32 values: 1 GiB
    header = {"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}
    path = _safetensors(tmp_path / "big.safetensors", header)
    _safetensors(path, header, size=path.stat().st_size + 4 * n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    w = read_safetensors(path)["w"]
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert w.shape == (n,) and float(w[n // 2]) == 0.0  # one page touched, read as the file holds it
    assert grew < 200 * 1024, f"reading grew the process by {grew // 1024} MiB"


def test_safetensors_tensors_at_any_alignment_read_exactly(tmp_path):
    for pad in range(4):  # the header's length moves the body to every alignment
        values = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7
        header = {"__metadata__": {"format": "pt", "pad": "x" * pad},
                  "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                  "e": {"dtype": "I64", "shape": [0, 5], "data_offsets": [24, 24]}}
        out = read_safetensors(_safetensors(tmp_path / f"{pad}.safetensors", header, values.numpy().tobytes(),
                                            pad=False))
        assert torch.equal(out["w"], values) and out["e"].shape == (0, 5)


@pytest.mark.parametrize("header, needle", [
    (b'{"w": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 4]}}', r"tensor 'w' is not .*whole numbers"),
    (b"[" * 100_000 + b"]" * 100_000, "nests far deeper"),
    (b'{"w": {"dtype": "F32", "shape": [[[1]]], "data_offsets": [0, 4]}}', r"tensor 'w' is not"),
    (b'{"w": {"dtype": "F8", "shape": [1], "data_offsets": [0, 4]}}', r"tensor 'w' is not \{\"dtype\": one of F64"),
    (b'{"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}', r"tensor 'w' is not"),
    (b'{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', r"whole numbers >= 0"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', r"offsets 4\.\.0 do not hold"),
    (b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', r"within the 4 bytes after the header"),
    (b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}', r"\[2\] F32 values \(8 bytes\)"),
    (b'{"__metadata__": {"a": {"b": 1}}}', "__metadata__ is not an object of strings"),
])
def test_bad_safetensors_headers_are_refused_by_name(tmp_path, header, needle):
    path = _safetensors(tmp_path / "w.safetensors", header, b"\0" * 4)
    with pytest.raises(CheckpointError, match=needle) as e:
        read_weights(path)
    assert str(path) in str(e.value) and "not a valid .safetensors file" in str(e.value)


def test_a_header_length_past_the_file_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match=r"header length \(4611686018427387904 bytes\) runs past the end"):
        read_weights(path)
