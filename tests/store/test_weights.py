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
    torch.save({1: torch.zeros(2)}, tmp_path / "int_key.pt")  # it said "entry 1 holds a Tensor, not a tensor"
    with pytest.raises(CheckpointError, match="its key 1 is not a parameter name"):
        read_weights(tmp_path / "int_key.pt")


def test_weights_of_another_shape_say_what_differs(tmp_path):
    torch.save(nn.Linear(4, 2).state_dict(), tmp_path / "w.pt")
    state, _ = read_weights(tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match=r"does not fit the model: .*weight"):
        load_weights(nn.Linear(3, 2), state, tmp_path / "w.pt")


def test_a_training_checkpoint_saved_as_pytorchs_tutorial_does_gives_its_model_state_dict(tmp_path):
    """{'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}: it was refused ("entry 'epoch' holds a int")."""
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.save({"epoch": 3, "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "loss": torch.tensor(0.1)}, tmp_path / "tutorial.pt")  # the tutorial's loss is a tensor
    state, checkpoint = read_weights(tmp_path / "tutorial.pt")
    assert checkpoint is None and state.keys() == model.state_dict().keys()
    assert torch.equal(load_weights(nn.Linear(3, 2), state, tmp_path / "tutorial.pt").weight, model.weight)
    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "step": 9}, tmp_path / "two.pt")
    with pytest.raises(CheckpointError, match=r"several state dicts \('model', 'ema'\): .*checkpoint\['model'\]"):
        read_weights(tmp_path / "two.pt")


class WithExtraState(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def get_extra_state(self):
        return {"scale": torch.ones(1)}

    def set_extra_state(self, state):
        self.scale = state["scale"]


def test_a_state_dict_with_a_modules_extra_state_is_loaded_as_it_is(tmp_path):
    """Its _extra_state (a dict of tensors) is not a wrapped state dict: looking inside took {'scale': ...} for
    the weights."""
    torch.save(WithExtraState().state_dict(), tmp_path / "extra.pt")
    state, _ = read_weights(tmp_path / "extra.pt")  # it was refused: "entry '_extra_state' holds a dict"
    assert "conv.weight" in state and "_extra_state" in state
    assert torch.equal(load_weights(WithExtraState(), state, tmp_path / "extra.pt").scale, torch.ones(1))


def test_names_inside_a_wrapper_are_named_with_the_way_out(tmp_path):
    inner = nn.Sequential(nn.Linear(3, 2))
    torch.save({"state_dict": {f"model.{k}": v for k, v in inner.state_dict().items()}}, tmp_path / "lit.pt")
    state, _ = read_weights(tmp_path / "lit.pt")
    with pytest.raises(CheckpointError, match=r"every name starts with 'model\.', and without it they are the "):
        load_weights(nn.Sequential(nn.Linear(3, 2)), state, tmp_path / "lit.pt")
    with pytest.raises(CheckpointError, match=r"does not fit the model: (?!.*every name starts)"):
        load_weights(nn.Linear(3, 2), state, tmp_path / "lit.pt")  # stripped, still not the model's names
    parallel = {f"module.{k}": v for k, v in inner.state_dict().items()}
    with pytest.raises(CheckpointError, match="saved from DataParallel; save model.module.state_dict()"):
        load_weights(nn.Sequential(nn.Linear(3, 2)), parallel, "dp.pt")
    own = nn.Module()
    own.module = nn.Sequential(nn.Linear(4, 2))  # a model's own self.module, its weights of another shape
    with pytest.raises(CheckpointError, match=r"does not fit the model: (?!.*DataParallel)"):
        load_weights(own, parallel, "own.pt")
    compiled = {f"_orig_mod.{k}": v for k, v in inner.state_dict().items()}  # torch.compile's wrapper's names
    with pytest.raises(CheckpointError, match=r"saved from a torch.compile'd model; save model._orig_mod.state_dict"):
        load_weights(nn.Sequential(nn.Linear(3, 2)), compiled, "compiled.pt")


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


# ----------------------------------------------------------------- shapes torch cannot make; archives that expand


@pytest.mark.parametrize("shape", [[0, 10**20], [0, 2**31], [2**31, 0], [0, 2**30, 2**30, 2**30]])
def test_a_safetensors_shape_beyond_torchs_range_is_refused_by_name(tmp_path, shape):
    """A tensor with a 0 in its shape holds no bytes, so its bytes bound none of its other dimensions: [0, 10**20]
    was a TypeError (Overflow when unpacking long long) from torch.empty, [0, 2**30, 2**30, 2**30] a RuntimeError."""
    header = {"e": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}
    path = _safetensors(tmp_path / "z.safetensors", header)
    with pytest.raises(CheckpointError, match=r"tensor 'e': its shape .* is out of range; each dimension is at most "
                                              r"2147483647 \(2\*\*31 - 1\) and their product, a 0 counted as 1, at "
                                              r"most 2\*\*62") as e:
        read_weights(path)
    assert str(path) in str(e.value) and "not a valid .safetensors file" in str(e.value)


def test_a_safetensors_shape_at_the_limits_is_read(tmp_path):
    header = {"e": {"dtype": "F64", "shape": [0, 2**31 - 1, 2**31 - 1], "data_offsets": [0, 0]},
              "w": {"dtype": "F32", "shape": [1, 1], "data_offsets": [0, 4]}}
    out = read_safetensors(_safetensors(tmp_path / "z.safetensors", header, b"\0" * 4))
    assert out["e"].shape == (0, 2**31 - 1, 2**31 - 1) and out["w"].shape == (1, 1)


def test_invlab_measure_refuses_a_huge_dimension_in_one_paragraph(tmp_path):
    res = _measure(tmp_path, _safetensors(tmp_path / "z.safetensors",
                                          {"w": {"dtype": "F32", "shape": [0, 10**20], "data_offsets": [0, 0]}}))
    assert res.exit_code == 2 and "tensor 'w': its shape [0, 100000000000000000000] is out of range" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "r").exists()


def _measure(tmp_path, weights):
    """`invlab measure --model custom_models:circular_gap --weights WEIGHTS` on 4 small images."""
    from typer.testing import CliRunner

    from invariance_lab.cli.main import app
    from invariance_lab.data.write import write_folder

    write_folder(torch.rand(4, 1, 8, 8).mul(255).round() / 255, tmp_path / "imgs", torch.tensor([0, 1, 0, 1]),
                 ["a", "b"])
    return CliRunner().invoke(app, ["measure", "--model", "custom_models:circular_gap", "--weights", str(weights),
                                    "--images", str(tmp_path / "imgs"), "--results-dir", str(tmp_path / "r"),
                                    "--quiet"])


BOMB = 8 * 2**20  # bytes an entry says it expands to: beyond any small file plus the 1 MiB allowance


def _repacked(path, expand: int = 0, method=None):
    """torch.save's archive of a small state dict, its entries deflated (method) and, if `expand`, its first
    tensor's entry replaced by `expand` zero bytes: 8 MiB of zeros deflate to about 8 KB."""
    import io
    import zipfile

    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0)}, buf)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if method is None else method) as dst:
        for info in src.infolist():
            with dst.open(info.filename, "w", force_zip64=True) as out:
                if expand and info.filename.endswith("/data/0"):
                    chunk = bytes(2**20)
                    for _ in range(expand // len(chunk)):
                        out.write(chunk)
                else:
                    out.write(src.read(info))
    return path


@pytest.fixture
def no_torch_load(monkeypatch):
    """torch.load fails the test: a refusal must come before the archive is expanded."""
    def load(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", load)


def test_an_archive_that_would_expand_is_refused_unread(tmp_path, no_torch_load):
    """A torch zip whose data/0 is deflated: 8 KB saying 8 MiB (a 4 MB file expanded to 4.5 GB in torch.load,
    before anything was checked). torch.save stores its entries, so an archive it wrote never expands."""
    path = _repacked(tmp_path / "bomb.pt", expand=BOMB)
    size = path.stat().st_size
    assert size < 300_000
    with pytest.raises(CheckpointError) as e:
        read_weights(path)
    msg = str(e.value)
    assert msg.startswith(f"{path} is a zip archive whose entries would expand to 8,388,")
    assert f"from a file of {size:,} bytes" in msg and "'archive/data/0' alone: 8,388,608 bytes" in msg
    assert "torch.save stores its entries uncompressed" in msg and f"({size + 2**20:,} here) is allowed" in msg
    assert "\n" not in msg


def test_a_run_checkpoint_that_would_expand_is_refused_unread(tmp_path, no_torch_load):
    from invariance_lab.store.checkpoints import read_checkpoint

    path = _repacked(tmp_path / "conv_gap-seed0.pt", expand=BOMB)
    with pytest.raises(CheckpointError, match=r"conv_gap-seed0\.pt is a zip archive whose entries would expand to "
                                              r"8,388,\d+ bytes"):
        read_checkpoint(path, torch.device("cpu"))


def test_invlab_measure_refuses_an_expanding_archive_in_one_paragraph(tmp_path):
    res = _measure(tmp_path, _repacked(tmp_path / "bomb.pt", expand=BOMB))
    assert res.exit_code == 2 and "bomb.pt is a zip archive whose entries would expand to" in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "r").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit.save` is deprecated:DeprecationWarning")
def test_archives_that_do_not_expand_are_read_as_before(tmp_path):
    """torch.save's own archive, one repacked with its small entries deflated (within the allowance), a legacy
    (pickle) file; a TorchScript archive is still named as one, not as an archive that expands."""
    import zipfile

    want = torch.arange(4.0)
    for path in (_repacked(tmp_path / "stored.pt", method=zipfile.ZIP_STORED), _repacked(tmp_path / "deflated.pt")):
        assert torch.equal(read_weights(path)[0]["w"], want)
    torch.save({"w": want}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(read_weights(tmp_path / "legacy.pt")[0]["w"], want)
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with pytest.raises(CheckpointError, match="is a TorchScript archive"):
        read_weights(tmp_path / "scripted.pt")


def test_an_archive_whose_directory_zipfile_cannot_read_is_refused_by_name(tmp_path, no_torch_load):
    """Its sizes cannot be checked, so it is not handed to torch's reader: a name flagged UTF-8 that is not."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"x")
    data = bytearray(buf.getvalue())
    at = data.find(b"PK\x01\x02")  # the central directory's entry: its flags, then its name
    data[at + 9] |= 0x08
    data[data.find(b"archive/data.pkl", at)] = 0xFF
    (tmp_path / "odd.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"odd\.pt is a zip archive whose directory cannot be read "
                                              r"\(UnicodeDecodeError: .*not written by torch\.save"):
        read_weights(tmp_path / "odd.pt")


def test_a_complex_tensor_for_a_real_weight_is_refused_not_cut_to_its_real_part():
    """torch kept the real part with a UserWarning that reached the terminal ("Casting complex values to real")."""
    model = nn.Linear(3, 2)
    state = {**model.state_dict(), "weight": model.weight.detach().to(torch.complex64) * 1j}
    with pytest.raises(CheckpointError, match=r"c.pt: tensor 'weight' is complex, where the model's is float32"):
        load_weights(model, state, "c.pt")


@pytest.mark.parametrize("protocol", [4, 5])
def test_weights_saved_with_a_newer_pickle_protocol_are_told_so_not_called_a_pickled_model(tmp_path, protocol):
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "p.pt", pickle_protocol=protocol)
    with pytest.raises(CheckpointError, match=rf"p.pt is a pickle of protocol {protocol} \(torch.save"):
        read_weights(tmp_path / "p.pt")


def test_an_edited_invlab_checkpoint_given_as_weights_is_refused(tmp_path):
    """read_weights took an invlab checkpoint's state dict without checking it against its own fingerprint."""
    import pandas as pd

    from invariance_lab.nn.models import build_model, resolve_spec
    from invariance_lab.store.checkpoints import save_checkpoint

    model = build_model(resolve_spec({"arch": "conv_gap", "channels": [4]}), num_classes=2, canvas=16)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, name="m", seed=0, data=dict(canvas=16), train={}, classes=["A", "B"],
                    history=pd.DataFrame(dict(epoch=[1])))
    assert read_weights(path)[1]["name"] == "m"
    blob = torch.load(path, weights_only=True)
    torch.save(dict(blob, seed=3), path)  # settings edited, fingerprint left alone
    with pytest.raises(CheckpointError, match="do not match its own fingerprint; the checkpoint was edited"):
        read_weights(path)
