"""Checkpoints: round trip, and every damaged, crafted, edited or swapped file refused with a message naming it."""

import json
import os
import pickle
import shutil

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from conftest import RunsCode, untrained_quick_run
from invariance_lab.store.checkpoints import fingerprint, load_checkpoint, save_checkpoint
from invariance_lab.cli.main import app
from invariance_lab.core.errors import CheckpointError, InvlabError, RunFolderError
from invariance_lab.nn.models import build_model, place, resolve_spec

runner = CliRunner()
CPU = torch.device("cpu")
DATA = dict(canvas=16, letters=["A", "B"])
TRAIN = dict(epochs=1)


def _save(path, seed=0):
    torch.manual_seed(seed)
    # placed as training places it (channels_last weights on a CPU)
    model = place(build_model(resolve_spec({"arch": "conv_gap", "channels": [4]}), num_classes=2, canvas=16), CPU)
    save_checkpoint(path, model, name="m", seed=seed, data=DATA, train=TRAIN, classes=["A", "B"],
                    history=pd.DataFrame(dict(epoch=[1], test_accuracy=[0.5])))
    return model


def test_round_trip_is_exact_and_plain(tmp_path):
    path = tmp_path / "m.pt"
    model = _save(path)
    loaded, blob = load_checkpoint(path, CPU, expect=dict(factors=model.factors, data=DATA, train=TRAIN, seed=0))
    x = torch.rand(3, 1, 16, 16)
    assert torch.equal(model(x), loaded(x))
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert all(t.is_contiguous() for t in saved.values())  # the file does not depend on the layout the model ran in
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert loaded.blocks[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert blob["fingerprint"] == fingerprint(model.factors, DATA, TRAIN, 0)
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed


def test_a_device_is_taken_by_name_and_one_this_machine_lacks_is_named_not_blamed_on_the_file(tmp_path):
    path = tmp_path / "m.pt"
    model = _save(path)
    loaded, _ = load_checkpoint(path, "cpu")  # a name, as il.measure takes it (had been an AttributeError)
    x = torch.rand(2, 1, 16, 16)
    assert torch.equal(model(x), loaded(x))
    if not torch.cuda.is_available():  # had been "truncated or not a checkpoint"
        with pytest.raises(InvlabError, match="device cuda was asked for .* torch finds no CUDA device here"):
            load_checkpoint(path, torch.device("cuda"))


@pytest.mark.parametrize("planted", [".m.pt.tmp", "m.pt"])  # the old temporary name; the checkpoint's own name
def test_a_checkpoint_is_never_written_through_a_link(tmp_path, planted):
    victim = tmp_path / "home" / "notes.txt"
    victim.parent.mkdir()
    victim.write_text("precious\n")
    (tmp_path / planted).symlink_to(victim)
    if planted == "m.pt":
        with pytest.raises(RunFolderError, match="is a symbolic link") as e:
            _save(tmp_path / "m.pt")
        assert str(tmp_path / "m.pt") in str(e.value)
    else:
        _save(tmp_path / "m.pt")
        assert torch.load(tmp_path / "m.pt", weights_only=True)["name"] == "m"
    assert victim.read_text() == "precious\n" and (tmp_path / planted).is_symlink()


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, monkeypatch, recwarn):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": RunsCode()}, path)
    with pytest.raises(InvlabError, match="never runs code") as e:
        load_checkpoint(path, CPU)
    assert str(path) in str(e.value)
    assert not (tmp_path / "PWNED").exists()
    path.write_bytes(pickle.dumps(RunsCode()))  # a bare pickle, not a torch zip file
    with pytest.raises(InvlabError):
        load_checkpoint(path, CPU)
    assert not (tmp_path / "PWNED").exists()
    assert not recwarn.list  # the error alone: not torch's warning about the pickle protocol before it


@pytest.mark.parametrize("damage", ["truncate", "empty", "random", "json"])
def test_damaged_checkpoints_are_refused(tmp_path, damage):
    path = tmp_path / "m.pt"
    _save(path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "random": os.urandom(4096),
                      "json": b'{"state_dict": {}}'}[damage])
    with pytest.raises(InvlabError, match="cannot be loaded as an invlab checkpoint") as e:
        load_checkpoint(path, CPU)
    assert str(path) in str(e.value) and len(str(e.value)) < 700


@pytest.mark.parametrize("blob, needle", [
    ([1, 2, 3], "not an invlab checkpoint"),
    ({"state_dict": {}}, "name, seed, factors"),
])
def test_wrong_shapes_are_refused(tmp_path, blob, needle):
    path = tmp_path / "m.pt"
    torch.save(blob, path)
    with pytest.raises(InvlabError, match=needle):
        load_checkpoint(path, CPU)


def test_edited_settings_and_foreign_weights_are_refused(tmp_path):
    path = tmp_path / "m.pt"
    model = _save(path)
    blob = torch.load(path, weights_only=True)
    blob["data"] = dict(DATA, canvas=24)  # settings edited, fingerprint left alone
    torch.save(blob, path)
    with pytest.raises(InvlabError, match="edited"):
        load_checkpoint(path, CPU)
    blob["fingerprint"] = fingerprint(blob["factors"], blob["data"], blob["train"], blob["seed"])
    torch.save(blob, path)  # consistent again, but the weights are for a 16 px canvas model: still fine (gap)
    load_checkpoint(path, CPU)
    with pytest.raises(InvlabError, match=r"data\.canvas: 16 expected, 24 in the checkpoint"):
        load_checkpoint(path, CPU, expect=dict(factors=model.factors, data=DATA, train=TRAIN, seed=0))
    blob["state_dict"] = {k: v[..., :1] for k, v in blob["state_dict"].items()}
    torch.save(blob, path)
    with pytest.raises(InvlabError, match="weights do not fit"):
        load_checkpoint(path, CPU)


@pytest.mark.parametrize("classes", [[1, 2], [], ["A", "A"], ["A", ""]])
def test_class_names_that_are_not_distinct_strings_are_a_checkpoint_error(tmp_path, classes):
    path = tmp_path / "m.pt"
    _save(path)
    blob = torch.load(path, weights_only=True)
    blob["classes"] = classes  # not covered by the fingerprint: checked on their own
    torch.save(blob, path)
    with pytest.raises(InvlabError, match=r"\[classes\] .* is not a list of distinct class names"):
        load_checkpoint(path, CPU)


@pytest.mark.parametrize("edit", [
    dict(factors={"arch": torch.zeros(2)}),  # a tensor where plain values belong: not JSON
    dict(data={1: "a", "b": 2}),  # mixed key types: the fingerprint cannot sort them
])
def test_settings_that_are_not_plain_values_are_a_checkpoint_error(tmp_path, edit):
    path = tmp_path / "m.pt"
    _save(path)
    torch.save(dict(torch.load(path, weights_only=True), **edit), path)
    with pytest.raises(CheckpointError, match="settings are not plain values") as e:
        load_checkpoint(path, CPU)
    assert str(path) in str(e.value)


def test_every_unusable_checkpoint_is_a_checkpoint_error(tmp_path):
    """A caller (or the CLI) can tell a bad checkpoint from other bad input by its class."""
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt", CPU)
    (tmp_path / "dir.pt").mkdir()  # a folder at its name had been "not found"
    with pytest.raises(CheckpointError, match=r"dir.pt is not a file \(a folder or a device"):
        load_checkpoint(tmp_path / "dir.pt", CPU)
    (tmp_path / "m.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_checkpoint(tmp_path / "m.pt", CPU)
    torch.save([1], tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="not an invlab checkpoint"):
        load_checkpoint(tmp_path / "m.pt", CPU)


# --- the same faults inside a run folder, through the CLI ---------------------------------------------------

@pytest.fixture(scope="module")
def pristine_run(tmp_path_factory):
    return untrained_quick_run(tmp_path_factory)


@pytest.fixture
def run_copy(pristine_run, tmp_path):
    dst = tmp_path / "quick" / pristine_run.name
    shutil.copytree(pristine_run, dst)
    return dst


def _sweep(run_dir):
    res = runner.invoke(app, ["sweep", str(run_dir), "--dx", "0:1", "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert not (run_dir / "sweeps").exists() or not list((run_dir / "sweeps").iterdir())  # nothing written
    return " ".join(res.output.split())


def test_edited_config_is_refused_with_what_differs(run_copy):
    cfg = run_copy / "config.yaml"
    cfg.write_text(cfg.read_text().replace("- B", "- C"))
    out = _sweep(run_copy)
    assert "data.letters" in out and "'C'" in out and "checkpoint" in out


def test_edited_canvas_is_refused(run_copy):
    cfg = run_copy / "config.yaml"
    cfg.write_text(cfg.read_text().replace("canvas: 24", "canvas: 32"))
    assert "data.canvas: 32 expected, 24 in the checkpoint" in _sweep(run_copy)


def test_swapped_checkpoint_is_refused(run_copy):
    ckpt = run_copy / "checkpoints"
    shutil.copyfile(ckpt / "conv_gap-seed0.pt", ckpt / "conv_only-seed0.pt")
    assert "factors.head" in _sweep(run_copy)


def test_edited_meta_fingerprint_is_refused(run_copy):
    meta = json.loads((run_copy / "meta.json").read_text())
    meta["fingerprints"]["conv_gap-seed0"] = "0" * 16
    (run_copy / "meta.json").write_text(json.dumps(meta))
    assert "meta.json records fingerprint" in _sweep(run_copy)


def test_edited_meta_seeds_are_refused(run_copy):
    meta = json.loads((run_copy / "meta.json").read_text())
    meta["seeds"] = [0, 1]
    (run_copy / "meta.json").write_text(json.dumps(meta))
    assert "seeds [0, 1] in meta.json but [0] in config.yaml" in _sweep(run_copy)


@pytest.mark.parametrize("edit, needle", [
    (dict(data=dict(DATA, canvas=10**6)),
     r"\[data\.canvas\] 1000000 is out of range; .* up to 256 \(a config's range is 8 to 256\)"),
    (dict(factors={"channels": [10**6]}), r"\[factors\.channels\] \[1000000\] is out of range; .* from 1 to 36 "),
    (dict(factors={"channels": [5]}), r"weights do not fit .*'blocks\.0\.conv\.weight'"),  # in range, wrong shapes
])
def test_huge_or_mismatched_sizes_are_refused_before_anything_is_built(tmp_path, monkeypatch, edit, needle):
    import invariance_lab.store.checkpoints as checkpoints

    path = tmp_path / "m.pt"
    _save(path)
    blob = torch.load(path, weights_only=True)
    for key, value in edit.items():
        blob[key] = dict(blob[key], **value)
    blob["fingerprint"] = fingerprint(blob["factors"], blob["data"], blob["train"], blob["seed"])
    torch.save(blob, path)
    real = checkpoints.build_model

    def meta_only(*args, **kwargs):  # the real model (memory) is never built from such a file
        assert torch.empty(0).device.type == "meta", "a model was built before the sizes were checked"
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoints, "build_model", meta_only)
    with pytest.raises(CheckpointError, match=needle) as e:
        load_checkpoint(path, CPU)
    assert str(path) in str(e.value)


# --- what a mutation audit found untested ----------------------------------------------------------------------

def test_the_fingerprint_covers_every_setting_that_changes_the_weights():
    """A fingerprint blind to train or seed let a checkpoint of other epochs or another seed be reused as this one."""
    base = fingerprint({"arch": "conv_gap"}, DATA, TRAIN, 0)
    assert base == fingerprint({"arch": "conv_gap"}, dict(DATA), dict(TRAIN), 0)  # the same settings: the same
    others = [fingerprint({"arch": "conv_only"}, DATA, TRAIN, 0),
              fingerprint({"arch": "conv_gap"}, dict(DATA, canvas=24), TRAIN, 0),
              fingerprint({"arch": "conv_gap"}, DATA, dict(epochs=2), 0),
              fingerprint({"arch": "conv_gap"}, DATA, TRAIN, 1)]
    assert len({base, *others}) == 5


def test_a_loaded_checkpoint_is_in_eval_mode_and_leaves_the_callers_random_numbers_alone(tmp_path):
    """A model returned in training mode (dropout, batch statistics) or a load that drew from the caller's generator
    changes the numbers measured after it."""
    path = tmp_path / "m.pt"
    _save(path)
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    model, _ = load_checkpoint(path, CPU)
    assert torch.equal(torch.rand(3), want)
    assert not any(m.training for m in model.modules())


def test_a_factory_checkpoint_is_refused_without_trust_before_anything_is_imported(tmp_path, monkeypatch):
    """load_checkpoint without trust imported and called a checkpoint's factory: code from a file, run on its say."""
    import invariance_lab.store.checkpoints as checkpoints

    path = tmp_path / "f.pt"
    model = build_model({"factory": "custom_models:circular_gap", "kwargs": {}}, num_classes=2, canvas=16)
    save_checkpoint(path, model, name="f", seed=0, data=DATA, train=TRAIN, classes=["A", "B"],
                    history=pd.DataFrame(dict(epoch=[1])), factors={"factory": "custom_models:circular_gap"})

    def never(*args, **kwargs):
        raise AssertionError("the factory was built without trust")

    monkeypatch.setattr(checkpoints, "build_model", never)
    with pytest.raises(InvlabError, match="names factory .*pass --trust-factory") as e:
        load_checkpoint(path, CPU)
    assert str(path) in str(e.value)


def test_a_seed_out_of_range_is_refused_even_with_a_matching_fingerprint(tmp_path):
    """A checkpoint's seed is held to a config's range (0 to SEED_MAX); a crafted one above it was accepted."""
    from invariance_lab.schema.fields import SEED_MAX

    path = tmp_path / "m.pt"
    _save(path)
    blob = torch.load(path, weights_only=True)
    for seed in (SEED_MAX + 1, -1):
        blob.update(seed=seed, fingerprint=fingerprint(blob["factors"], blob["data"], blob["train"], seed))
        torch.save(blob, path)
        with pytest.raises(CheckpointError, match=rf"\[seed\] {seed} is out of range"):
            load_checkpoint(path, CPU)


def test_trained_with_records_torchs_major_and_minor_version_only():
    """Reuse compares torch's major.minor (numerics change between minor releases), not one component or the patch."""
    from conftest import ROOT
    from invariance_lab.config.load import load_config
    from invariance_lab.store.checkpoints import trained_with

    recorded = trained_with(load_config(ROOT / "configs" / "quick.yaml"))["torch"]
    assert len(recorded.split(".")) == 2 and torch.__version__.startswith(recorded + ".")


def test_a_trusted_factory_checkpoint_missing_a_weight_is_refused_not_half_loaded(tmp_path):
    """Loaded non-strictly, a factory model (whose sizes are not checked beforehand) kept a random weight silently."""
    path = tmp_path / "f.pt"
    model = build_model({"factory": "custom_models:circular_gap", "kwargs": {}}, num_classes=2, canvas=16)
    save_checkpoint(path, model, name="f", seed=0, data=DATA, train=TRAIN, classes=["A", "B"],
                    history=pd.DataFrame(dict(epoch=[1])), factors={"factory": "custom_models:circular_gap"})
    assert not load_checkpoint(path, CPU, trust=True)[0].training
    blob = torch.load(path, weights_only=True)
    blob["state_dict"].pop(next(iter(blob["state_dict"])))  # not in the fingerprint: the file stays consistent
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match="its weights do not fit the model its settings describe"):
        load_checkpoint(path, CPU, trust=True)
