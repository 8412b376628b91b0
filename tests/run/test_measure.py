"""run/measure.py, run/api.py and eval/stream.py: `invlab measure` and the Python API. Exact where theory says exact (a circular, stride-1, global-
pooling model of your own), the streaming evaluation against run_sweep value by value, a run's own checkpoint
reproducing its invariance.csv, and every bad input refused (exit 2) before anything is written."""

import io
import json
import pickle
import re
import struct
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
import yaml
from conftest import ROOT, RunsCode
from custom_models import circular_gap, flatten_head, strided
from typer.testing import CliRunner

import invariance_lab as il
from invariance_lab.cli.main import app
from invariance_lab.core.errors import InvlabError
from invariance_lab.data.images import from_tensor, open_folder
from invariance_lab.data.write import write_folder
from invariance_lab.eval.stream import preparer, stream_sweep
from invariance_lab.nn.models import create_model
from invariance_lab.data.shifts import value_lines
from invariance_lab.data.transforms import turn_image
from invariance_lab.eval.sweep import run_sweep
from invariance_lab.store.results import load_result
from invariance_lab.store.weights import read_safetensors, read_weights

runner = CliRunner()
SIDE = 12
EVERY_ROLL = list(range(-(SIDE // 2) + 1, SIDE // 2 + 1))  # every circular shift of a 12 px image, per axis


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def images(n=8, side=SIDE, seed=0):
    """Blobs on a dark background, pixels multiples of 1/255 (8-bit PNGs keep them exactly)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, side, side, generator=g) ** 4 * 255).round() / 255


def saved(tmp_path, model, name="w.pt"):
    torch.save(model.state_dict(), tmp_path / name)
    return tmp_path / name


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """8 labelled PNG images in class subfolders a/ and b/."""
    path = tmp_path_factory.mktemp("imgs") / "imgs"
    write_folder(images(), path, torch.tensor([0, 1] * 4), ["a", "b"])
    return path


# ------------------------------------------------------------------------------------------ theory: exact or not


def test_api_circular_model_is_exactly_invariant_to_every_roll_and_a_flatten_head_is_not(one_thread):
    torch.manual_seed(0)
    x, y = images(), torch.tensor([0, 1] * 4)
    df = il.measure(circular_gap(), x, y, dx=EVERY_ROLL, dy=EVERY_ROLL, mode="circular")
    assert len(df) == SIDE * SIDE and list(df.columns[:9]) == ["model", "seed", "downsample", "head", "padding",
                                                                 "mode", "dx", "dy", "n_images"]
    assert df.prob_change.max() <= 1e-5 and df.flip_rate.max() == 0 and (df["head"] == "custom").all()
    flat = il.measure(flatten_head(side=SIDE), x, dx=EVERY_ROLL, dy=[0], mode="circular")
    assert flat.prob_change.max() > 1e-3 and flat.accuracy.isna().all()  # no labels: accuracy not measured
    summary = il.summarize(df)
    assert summary.clean_accuracy.iloc[0] == df[(df.dx == 0) & (df.dy == 0)].accuracy.iloc[0]
    assert summary.worst_prob_change.iloc[0] <= 1e-5 and summary.n_shifts.iloc[0] == SIDE * SIDE - 1
    # invariant over every roll: no image's prediction ever changes, so robust accuracy is the clean accuracy
    assert summary.consistent_fraction.iloc[0] == 1
    assert summary.robust_accuracy.iloc[0] == summary.clean_accuracy.iloc[0]
    flat_summary = il.summarize(flat)
    assert flat_summary.consistent_fraction.iloc[0] < 1 and flat_summary.robust_accuracy.isna().all()


def test_cli_circular_model_is_exactly_invariant_and_a_flatten_head_is_not(tmp_path, folder, one_thread):
    torch.manual_seed(0)
    roll = f"{EVERY_ROLL[0]}:{EVERY_ROLL[-1]}"
    res = invoke("measure", "--model", "custom_models:circular_gap", "--weights", saved(tmp_path, circular_gap()),
                 "--images", folder, "--mode", "circular", "--dx", roll, "--dy", roll, "--results-dir",
                 tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "r" / "measure").iterdir()
    inv = pd.read_csv(out / "invariance.csv")
    assert len(inv) == SIDE * SIDE and inv.prob_change.max() <= 1e-5 and inv.accuracy.notna().all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[-2:]) == ["robust_accuracy", "consistent_fraction"]
    assert summary.consistent_fraction.iloc[0] == 1
    assert summary.robust_accuracy.iloc[0] == summary.clean_accuracy.iloc[0]
    assert out.name.startswith("circular_gap-") and (out / "summary.csv").is_file() and (out / "measure.yaml").is_file()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "measure" and meta["status"] == "complete" and meta["protocol"]["labels"] is True
    res = invoke("measure", "--model", "custom_models:flatten_head", "--model-kwargs", json.dumps({"side": SIDE}),
                 "--images", folder, "--mode", "circular", "--dx", "-3:3", "--name", "flat", "--results-dir",
                 tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    (flat,) = (tmp_path / "r" / "measure").glob("flat-*")
    assert pd.read_csv(flat / "invariance.csv").prob_change.max() > 1e-3
    res = invoke("report", out, flat, "--by", "shift", "--format", "csv")  # report reads measure folders
    assert res.exit_code == 0 and "flat" in res.output and "circular_gap" in res.output



def test_a_factory_measured_without_weights_is_the_same_network_every_time(tmp_path, folder, one_thread):
    """Without --weights the factory's initial weights are measured: drawn from torch's generator seeded with the
    seed the folder records (0), whatever the random state before, so two measurements give the same tables."""
    tables = []
    for before in (1, 2):
        torch.manual_seed(before)
        res = invoke("measure", "--model", "custom_models:flatten_head", "--model-kwargs", json.dumps({"side": SIDE}),
                     "--images", folder, "--dx", "-2:2", "--name", f"m{before}", "--results-dir", tmp_path, "--quiet")
        assert res.exit_code == 0, res.output
        (out,) = (tmp_path / "measure").glob(f"m{before}-*")
        tables.append(pd.read_csv(out / "invariance.csv").drop(columns="model"))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert tables[0].prob_change.max() > 1e-3  # a network whose outputs move: equal tables are not trivially equal

# ------------------------------------------------------------------------------------------ fast path vs brute force


@pytest.mark.parametrize("mode, grid", [("circular", "axes"), ("canvas", "product")])
def test_streaming_equals_run_sweep_value_by_value(mode, grid, one_thread):
    torch.manual_seed(1)
    models = {("preset", 0): create_model({"arch": "conv_maxpool", "channels": [3, 4], "padding": "circular"},
                                          num_classes=2, canvas=SIDE).eval(),
              ("flat", 0): flatten_head(side=SIDE).eval()}
    x, y = images(10), torch.tensor([0, 1] * 5)
    dx, dy = ([-2.0, -1.0, 0.0, 1.0, 2.0], [-1.0, 0.0, 1.0]) if mode == "circular" else ([-1.5, -0.5, 0.5, 1.5], [0.0, 1.0])
    lines = value_lines(dx, dy, grid)
    prepare = preparer(mode, "edge" if mode == "canvas" else "zeros", mean=[0.5], std=[0.25])
    ours = stream_sweep(models, from_tensor(x, y), lines, prepare, batch_size=4, device=torch.device("cpu"))
    brute = run_sweep(models, lambda c, a, b: prepare(x[c], a, b), y, lines, batch_size=4, device=torch.device("cpu"))
    pd.testing.assert_frame_equal(ours.table, brute.table, rtol=0, atol=1e-12)
    assert ours.clean_accuracy == brute.clean_accuracy


def test_a_runs_checkpoint_reproduces_its_own_invariance_csv(tmp_path, quick_config_path, one_thread):
    res = invoke("run", quick_config_path, "--results-dir", tmp_path, "--quiet", "--set", "seeds=[0]", "--set",
                 "sweep.mode=circular", "--set", "sweep.grid=product", "--set", "sweep.dx=[-3, 3]",
                 "--set", "sweep.dy=[-1, 1]", "--set", "data.train_images=64", "--set", "data.test_images=20")
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "quick").iterdir()
    run_inv = pd.read_csv(run_dir / "invariance.csv")
    for model in ("conv_only", "conv_gap"):
        res = invoke("measure", "--weights", run_dir / "checkpoints" / f"{model}-seed0.pt", "--images", run_dir,
                     "--mode", "circular", "--dx", "-3:3", "--dy", "-1:1", "--results-dir", tmp_path / "m", "--quiet")
        assert res.exit_code == 0, res.output
        (out,) = (tmp_path / "m" / "measure").glob(f"{model}-*")
        ours = pd.read_csv(out / "invariance.csv")
        theirs = run_inv[run_inv.model == model].reset_index(drop=True)
        assert list(ours.columns) == list(theirs.columns)
        pd.testing.assert_frame_equal(ours, theirs, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------ layers through hooks


class Unused(nn.Module):
    """circular_gap beside a module it defines and never calls."""

    def __init__(self):
        super().__init__()
        self.net, self.spare = circular_gap(), nn.Conv2d(1, 1, 3)

    def forward(self, x):
        return self.net(x)


def test_layer_profile_taps_any_model_and_infers_strides(one_thread):
    torch.manual_seed(0)
    x = images(4, side=16)
    prof = il.layer_profile(strided(), x, shifts=[0, 2, 4, (4, 4)], mode="circular")
    assert list(prof.layer_name) == ["conv", "pool", "output"] and list(prof.stride) == [2, 4, 1]
    exact = il.layer_profile(circular_gap(), x, shifts=range(-3, 4), mode="circular")
    assert list(exact.layer_name) == ["0", "1", "3", "5", "output"]  # conv, norm, conv, pool (named_modules)
    maps = exact[exact.layer_name.isin(["0", "1", "3"])]
    assert maps.mean_equivariance_error.max() < 1e-5 and exact.mean_pooled_invariance_error.max() < 1e-5
    chosen = il.layer_profile(circular_gap(), x, shifts=[1], mode="circular", taps=["3", "output"], by="shift")
    assert set(chosen.layer_name) == {"3", "output"} and set(chosen.dx) == {0.0, 1.0}
    with pytest.raises(InvlabError, match="unknown tap 'conv9'"):
        il.layer_profile(circular_gap(), x, taps=["conv9"])
    with pytest.raises(InvlabError, match=r"the modules named by --taps \(spare\) are not called in Unused's"):
        il.layer_profile(Unused(), x, taps=["spare"])  # it had been told to "name some with --taps"


def test_cli_layers_and_taps(tmp_path, folder, one_thread):
    torch.manual_seed(0)
    args = ["measure", "--model", "custom_models:strided", "--images", folder, "--dx", "-2:2", "--layers",
            "--results-dir", tmp_path / "r", "--quiet"]
    res = invoke(*args, "--taps", "conv,output")
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "r" / "measure").iterdir()
    assert set(pd.read_csv(out / "layers_summary.csv").layer_name) == {"conv", "output"}
    res = invoke(*args, "--taps", "conv,nope")
    assert res.exit_code == 2 and "unknown tap 'nope'" in res.output and "conv, pool, fc, output" in res.output
    # an nn.Sequential's taps are named 0, 1, ...: layers_summary.csv read them back as numbers (a traceback)
    seq = ["measure", "--model", "custom_models:circular_gap", "--images", folder, "--dx", "-1:1", "--layers",
           "--taps", "0,1", "--results-dir", tmp_path / "s", "--quiet"]
    assert invoke(*seq).exit_code == 0
    (out,) = (tmp_path / "s" / "measure").iterdir()
    res = invoke("report", out, "--by", "layer", "--format", "csv")
    assert res.exit_code == 0 and {"0", "1"} <= set(pd.read_csv(io.StringIO(res.stdout)).columns), res.output


# ------------------------------------------------------------------------------------------ weights files


def write_safetensors(path, tensors):
    """A .safetensors file written from the format's definition (8-byte header size, JSON header, raw bytes)."""
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


def test_weights_files_never_run_code(tmp_path, monkeypatch, recwarn):
    monkeypatch.chdir(tmp_path)
    model = circular_gap()
    state = model.state_dict()
    st = write_safetensors(tmp_path / "w.safetensors", state)
    back = read_safetensors(st)
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "trainer.pt")
    assert read_weights(tmp_path / "trainer.pt")[0].keys() == state.keys()
    torch.save(model, tmp_path / "pickled.pt")  # a whole pickled model: loading it could run code
    with pytest.raises(InvlabError, match="holds objects other than tensors"):
        read_weights(tmp_path / "pickled.pt")
    (tmp_path / "bare.pt").write_bytes(pickle.dumps(RunsCode()))  # a bare pickle (protocol 4) that runs code
    with pytest.raises(InvlabError, match=r"a pickle of protocol 4 .* invlab reads no pickle otherwise"):
        read_weights(tmp_path / "bare.pt")
    assert not (tmp_path / "PWNED").exists() and not recwarn.list  # no warning from torch before the error
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(InvlabError, match="runs past the end"):
        read_weights(tmp_path / "bad.safetensors")
    for name, data in (("image.png", b"\x89PNG\r\n\x1a\n" + bytes(40)), ("meta.json", b'{"name": "quick"}'),
                       ("text.pt", pickle.dumps(RunsCode(), protocol=0))):  # not "a whole pickled model?"
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InvlabError, match=f"{name} is not a torch file: .* begins with"):
            read_weights(tmp_path / name)
    assert not (tmp_path / "PWNED").exists()


def test_a_torchscript_module_is_measured_from_python_and_its_archive_refused_as_weights(tmp_path, folder, recwarn,
                                                                                          one_thread):
    """TorchScript: il.measure takes the scripted module (the memory estimate hooked its modules, which a
    ScriptModule refuses: a RuntimeError), the layer profile refuses it (its modules take no hooks), and a
    torch.jit.save archive given as --weights is named for what it is (it was 'truncated or not a torch file')."""
    torch.manual_seed(0)
    net = circular_gap().eval()
    scripted = torch.jit.script(net)
    x = images()
    ours, theirs = (il.measure(m, x, dx=range(-2, 3), mode="circular") for m in (net, scripted))
    assert np.array_equal(ours.flip_rate, theirs.flip_rate) and np.allclose(ours.prob_change, theirs.prob_change,
                                                                             atol=1e-7)
    with pytest.raises(InvlabError, match="TorchScript module does not take"):
        il.layer_profile(scripted, x, shifts=[1], mode="circular")
    torch.jit.save(scripted, tmp_path / "scripted.pt")
    res = invoke("measure", "--model", "custom_models:circular_gap", "--weights", tmp_path / "scripted.pt",
                 "--images", folder, "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 2 and "is a TorchScript archive (torch.jit.save)" in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "r").exists()
    assert not [w for w in recwarn.list if "TorchScript" in str(w.message)]


def test_measure_reads_safetensors(tmp_path, folder, one_thread):
    torch.manual_seed(0)
    st = write_safetensors(tmp_path / "w.safetensors", circular_gap().state_dict())
    res = invoke("measure", "--model", "custom_models:circular_gap", "--weights", st, "--images", folder,
                 "--mode", "circular", "--dx", "-2:2", "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("make", [circular_gap, lambda: create_model(
    {"arch": "conv_maxpool", "channels": [3, 4], "padding": "circular"}, num_classes=2, canvas=SIDE)])
def test_measure_engine_equals_brute_force_and_says_which_ran(make, one_thread):
    torch.manual_seed(2)
    model = make().eval()
    x, y = images(10), torch.tensor([0, 1] * 5)
    kw = dict(dx=EVERY_ROLL, dy=[-1, 0, 2], mode="circular", mean=[0.5], std=[0.25], batch_size=4)
    fast, brute = il.measure(model, x, y, **kw), il.measure(model, x, y, engine="brute", **kw)
    assert fast.attrs["engine"]["engine"] == "allshift" and brute.attrs["engine"]["engine"] == "brute"
    pd.testing.assert_frame_equal(fast, brute, rtol=0, atol=1e-6)
    assert (fast.flip_rate == brute.flip_rate).all()
    canvas = il.measure(model, x, y, dx=[-1, 1], mode="canvas")  # canvas shifts are not rolls: brute force
    (note,) = canvas.attrs["engine"]["engine_notes"].values()
    assert canvas.attrs["engine"]["engine"] == "brute" and "canvas" in note
    with pytest.raises(InvlabError, match="--engine allshift"):
        il.measure(model, x, y, dx=[-1, 1], mode="canvas", engine="allshift")
    with pytest.raises(InvlabError, match="engine"):
        il.measure(model, x, y, engine="fast")


def test_cli_measure_engine_is_recorded_and_allshift_refuses_before_writing(tmp_path, folder, one_thread):
    torch.manual_seed(0)
    weights = saved(tmp_path, circular_gap())
    res = invoke("measure", "--model", "custom_models:circular_gap", "--weights", weights, "--images", folder,
                 "--mode", "circular", "--dx", "-2:2", "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "r" / "measure").iterdir()
    assert json.loads((out / "meta.json").read_text())["protocol"]["engine"] == "allshift"
    res = invoke("measure", "--model", "custom_models:circular_gap", "--weights", weights, "--images", folder,
                 "--dx", "-2:2", "--engine", "allshift", "--results-dir", tmp_path / "r2", "--quiet")
    assert res.exit_code == 2 and "--engine allshift does not apply" in res.output, res.output
    assert not (tmp_path / "r2" / "measure").exists()


# ------------------------------------------------------------------------------------------ bad input: exit 2


@pytest.fixture
def bad_inputs(tmp_path, folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    odd = tmp_path / "odd"
    write_folder(images(2), odd)
    (odd / "readme.txt").write_text("not an image")
    return dict(folder=folder, empty=empty, odd=odd, unfit=saved(tmp_path, flatten_head(side=SIDE), "unfit.pt"),
                ok=saved(tmp_path, circular_gap(), "ok.pt"))


@pytest.mark.parametrize("args, needle", [
    (["--model", "custom_models:circular_gap", "--weights", "{unfit}", "--images", "{folder}"],
     "does not fit the model: Missing key(s)"),
    (["--model", "custom_models:circular_gap", "--images", "{empty}"], "empty holds no images"),
    (["--model", "custom_models:circular_gap", "--images", "{odd}"], "readme.txt is not a PNG or JPEG image"),
    (["--model", "custom_models:wrong_shape", "--images", "{folder}"], "gave an output of shape (2, 3, 1, 1)"),
    (["--model", "custom_models:raises", "--images", "{folder}"], "raised RuntimeError"),
    (["--model", "nowhere_to_be_found:make", "--images", "{folder}"], "no module named 'nowhere_to_be_found'"),
    (["--model", "custom_models:circular_gap", "--model-kwargs", "{{width: 3}}", "--images", "{folder}"], "not JSON"),
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--mode", "circular", "--dx", "0.5"],
     "rolls by whole pixels"),
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--dx", "-12:0"], "out of its frame"),
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--mode", "circular", "--subpixel", "fft",
      "--dx", "-2:2"], "every shift here is a whole pixel"),  # accepted, under a header saying band-limited
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--all-shifts", "--subpixel", "fft"],
     "which --subpixel fft would not change"),
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--colour", "rgb"], "input channels"),
    (["--weights", "{ok}", "--images", "{folder}"], "--model package.module:function is needed"),
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--name", ""], "--name '': use ASCII letters"),
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--name", ".x"], "not starting with '.'"),
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--class-index", "a=99999999999,b=1"],
     "distinct whole numbers from 0 to 9,999,999"),  # an OverflowError traceback
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--class-index", "a=" + "9" * 5000 + ",b=1"],
     "an output index has more than 12 digits"),  # int() refuses 4300 digits: a traceback
    (["--model", "custom_models:circular_gap", "--images", "{folder}", "--threads", "99999999999999999999"],
     "--threads must be from 1 to 1024"),  # an OverflowError traceback
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, bad_inputs, args, needle):
    res = invoke("measure", *[a.format(**bad_inputs) for a in args], "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "r" / "measure").exists()


def factory_checkpoint(path, factors):
    from invariance_lab.store.checkpoints import save_checkpoint

    save_checkpoint(path, circular_gap(3), name="mine", seed=4, data={"canvas": SIDE}, train={}, classes=["a", "b"],
                    history=pd.DataFrame({"epoch": [1]}), factors=factors)
    return path


def unwrapped(text):
    """The CLI's paragraph without the line breaks (and spaces) rich adds to fit the terminal."""
    return "".join(text.split())


def test_a_factory_checkpoint_runs_its_factory_and_kwargs_only_on_your_word(tmp_path, folder, one_thread):
    """A checkpoint's factory and kwargs are never used unseen: the refusal shows them and the file that would run,
    and asks for --model-kwargs or --trust-factory; it never suggests a command that runs them."""
    path = factory_checkpoint(tmp_path / "mine.pt", {"factory": "custom_models:circular_gap", "kwargs": {"channels": 3}})
    common = ["--weights", path, "--images", folder, "--dx", "-1:1", "--results-dir", tmp_path / "r", "--quiet"]
    res = invoke("measure", *common)
    text = unwrapped(res.output)
    assert res.exit_code == 2 and "channels=3" in text and "--trust-factory" in text, res.output
    assert unwrapped(str(ROOT / "tests" / "custom_models.py")) in text and "add--model" not in text
    res = invoke("measure", *common, "--model", "custom_models:circular_gap")
    text = unwrapped(res.output)
    assert res.exit_code == 2 and "channels=3" in text and "--model-kwargs" in text, res.output
    assert "--trust-factory" in text and not (tmp_path / "r" / "measure").exists()
    for extra in (["--model", "custom_models:circular_gap", "--model-kwargs", '{"channels": 3}'],
                  ["--model", "custom_models:circular_gap", "--trust-factory"], ["--trust-factory"]):
        res = invoke("measure", *common, *extra)
        assert res.exit_code == 0, (extra, res.output)
    outs = sorted((tmp_path / "r" / "measure").iterdir())
    assert len(outs) == 3 and all(o.name.startswith("mine-") for o in outs)
    summaries = [pd.read_csv(o / "summary.csv") for o in outs]
    assert all(set(s.seed) == {4} for s in summaries)
    pd.testing.assert_frame_equal(summaries[0], summaries[2])  # the same network, however it was named


def test_following_the_refusal_never_runs_the_senders_code(tmp_path, folder):
    """A checkpoint trained from `torch.hub:load` whose kwargs point at the sender's hubconf.py: no refusal leads
    there. Today's "add --model torch.hub:load (its kwargs are taken from the checkpoint)" ran that file."""
    sender, marker = tmp_path / "sender", tmp_path / "HUBCONF_RAN"
    sender.mkdir()
    (sender / "hubconf.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                       "from custom_models import circular_gap as make\n")
    kwargs = {"repo_or_dir": str(sender), "model": "make", "source": "local", "channels": 3}
    path = factory_checkpoint(tmp_path / "hub.pt", {"factory": "torch.hub:load", "kwargs": kwargs})
    common = ["--weights", path, "--images", folder, "--dx", "-1:1", "--results-dir", tmp_path / "r", "--quiet"]
    res = invoke("measure", *common)
    assert res.exit_code == 2 and unwrapped(str(sender)) in unwrapped(res.output), res.output
    assert "--model torch.hub:load" not in res.output
    res = invoke("measure", *common, "--model", "torch.hub:load")  # what today's message said to do
    assert res.exit_code == 2 and unwrapped(str(sender)) in unwrapped(res.output), res.output
    assert not marker.exists() and not (tmp_path / "r" / "measure").exists()


# ------------------------------------------------------------------------------------------ the Python API


def test_api_reads_folders_and_keeps_the_models_mode(folder, one_thread):
    model = circular_gap().train()
    df = il.measure({"mine": model}, str(folder), dx=[-1, 0, 1], dy=[0, 1], grid="axes", mode="canvas",
                    fill="reflect", mean=[0.5], std=[0.5])
    assert model.training and df.accuracy.notna().all() and set(df.model) == {"mine"}
    assert len(df) == 4 and np.isnan(df.neighbor_flip_rate.iloc[0])
    with pytest.raises(InvlabError, match="must be a torch.nn.Module"):
        il.measure("not a model", torch.zeros(2, 1, 8, 8))
    with pytest.raises(InvlabError, match="unknown mode 'roll'"):
        il.measure(model, torch.zeros(2, 1, 8, 8), mode="roll")
    # labels given beside class folders had replaced the folders' own, in an order of invlab's reading
    with pytest.raises(InvlabError, match=r"labels its images itself, by its classes \(a, b\).*leave out labels"):
        il.measure(model, str(folder), [0] * 8, dx=[0, 1])
    flat = folder.parent / "flat"  # no class folders: labels are the caller's to give
    if not flat.exists():
        write_folder(images(2), flat)
    assert il.measure(model, str(flat), [0, 1], dx=[0, 1]).accuracy.notna().all()
    for seed in (-1, 2**32, 2**70, True, 1.5):  # 2**70 was blamed on the model (an overflow in its first check)
        with pytest.raises(InvlabError, match=r"seed must be a whole number 0 \.\. 4294967295"):
            il.measure(model, torch.zeros(2, 1, 8, 8), dx=[0, 1], seed=seed)


def test_the_example_script_runs(tmp_path, capsys, monkeypatch, one_thread):
    """examples/measure_your_model.py --quick, in this process (as `python examples/...` runs it, less the start)."""
    import importlib.util

    path = ROOT / "examples" / "measure_your_model.py"
    spec = importlib.util.spec_from_file_location("measure_your_model", path)
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "measure_your_model", example)  # what its config's factory imports
    spec.loader.exec_module(example)
    example.main(["--quick", "--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "invariant by construction" in out and "small_cnn" in out and "conv_gap" in out and "layer by layer" in out
    # --quick's networks answer one class (one epoch on 64 letters): the script says their flip rate means nothing
    assert "small_cnn is at chance" in out and "says nothing about invariance" in out


def test_the_round_off_example_stays_within_the_certificates_threshold_and_the_engine_is_exact(capsys, one_thread):
    """examples/deep_round_off.py --quick (docs/metrics.md quotes the full run): a BatchNorm network of your own,
    invariant by construction, moves by round-off only by brute force and not at all through the all-shift engine."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("deep_round_off", ROOT / "examples" / "deep_round_off.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--quick"])
    out = capsys.readouterr().out
    found = re.fullmatch(r"depth  3: largest change of one image over all 64 rolls (\S+) by brute force \(largest "
                         r"flip rate 0%\), (\S+) by the all-shift engine\n", out)
    assert found, out
    assert float(found[1]) <= 1e-6 and float(found[2]) == 0.0


# ------------------------------------------------------------------------------------------ class order and names

DARK, MID, BRIGHT = 26 / 255, 102 / 255, 204 / 255  # constant images; 8-bit PNGs keep these values exactly


def by_brightness(classes=2):
    """circular_gap's network with weights that answer by mean brightness: output 0 below 0.3, output 1 above
    (with three classes: 1 up to 0.5, then 2). Every layer passes the brightness on; the head's lines decide."""
    model = circular_gap(classes=classes)
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    state["0.weight"][:, 0, 1, 1] = 1.0  # every channel copies the pixel
    state["1.weight"][:], state["1.running_var"][:] = 1.0, 1.0  # batch norm: identity
    state["3.weight"][range(4), range(4), 1, 1] = 1.0
    state["7.weight"][:, 0] = torch.tensor([0.0, 10.0, 20.0][:classes])
    state["7.bias"][:] = torch.tensor([0.0, -3.0, -8.0][:classes])
    model.load_state_dict(state)
    return model


def constant_folder(path, levels: dict[str, list[float]]):
    """path/<class>/<i>.png: one constant 12 x 12 image per level."""
    names = list(levels)
    values = [v for name in names for v in levels[name]]
    labels = torch.tensor([i for i, name in enumerate(names) for _ in levels[name]])
    write_folder(torch.tensor(values).view(-1, 1, 1, 1).expand(-1, 1, SIDE, SIDE).clone(), path, labels, names)
    return path


def test_far_below_chance_says_the_class_order_differs_not_at_chance(tmp_path, one_thread):
    """Bright images in a/ and dark in b/, for a network that calls bright 1: every answer is wrong (0.0 of two
    classes), so the class order differs; today's "† at chance: its consistency says nothing" was the wrong word."""
    folder = constant_folder(tmp_path / "imgs", {"a": [BRIGHT] * 4, "b": [DARK] * 4})
    res = invoke("measure", "--model", "custom_models:circular_gap", "--weights", saved(tmp_path, by_brightness()),
                 "--images", folder, "--dx", "0:1", "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "clean accuracy 0.000 on 8 images is far below chance (0.500)" in text, res.output
    assert "class order probably differs" in text and "at chance:" not in text
    assert "Under the reverse order (a → output 1, b → output 0) the accuracy would be 1.000" in text
    (out,) = (tmp_path / "r" / "measure").iterdir()
    meta = json.loads((out / "meta.json").read_text())
    assert "would be 1.000" in meta["class_order"]["circular_gap"]  # library users read it there


def test_three_classes_in_another_order_give_the_accuracy_under_the_likely_mapping(tmp_path, one_thread):
    from invariance_lab.run.measure import measure_to_folder
    from invariance_lab.store.results import load_result

    weights = saved(tmp_path, by_brightness(3))
    cycled = constant_folder(tmp_path / "cycled", {"a": [BRIGHT] * 4, "b": [DARK] * 4, "c": [MID] * 4})
    out = measure_to_folder(images=cycled, model="custom_models:circular_gap", model_kwargs={"classes": 3},
                            weights=weights, dx=[0, 1, 1], results_dir=tmp_path / "r")
    note = load_result(out).meta["class_order"]["circular_gap"]
    assert "(a → output 2, b → output 0, c → output 1) the accuracy would be 1.000" in note
    right = constant_folder(tmp_path / "right", {"a": [DARK] * 4, "b": [MID] * 4, "c": [BRIGHT] * 4})
    out = measure_to_folder(images=right, model="custom_models:circular_gap", model_kwargs={"classes": 3},
                            weights=weights, dx=[0, 1, 1], results_dir=tmp_path / "r", name="right")
    result = load_result(out)
    assert result.summary.clean_accuracy.iloc[0] == 1.0 and "class_order" not in result.meta


def brightness_checkpoint(path, classes):
    from invariance_lab.store.checkpoints import save_checkpoint

    save_checkpoint(path, by_brightness(), name="bright", seed=0, data={"canvas": SIDE}, train={}, classes=classes,
                    history=pd.DataFrame({"epoch": [1]}), factors={"factory": "custom_models:circular_gap"})
    return path


def test_class_folders_are_matched_to_the_checkpoints_classes_by_name(tmp_path, one_thread):
    """The checkpoint's outputs are ["b", "a"] (not sorted): a/ (bright, output 1) is labelled 1, not by position."""
    folder = constant_folder(tmp_path / "imgs", {"a": [BRIGHT] * 3, "b": [DARK] * 3})
    weights = brightness_checkpoint(tmp_path / "ba.pt", ["b", "a"])
    res = invoke("measure", "--weights", weights, "--trust-factory", "--images", folder, "--dx", "0:1",
                 "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "r" / "measure").iterdir()
    assert pd.read_csv(out / "summary.csv").clean_accuracy.tolist() == [1.0]


def _measure_ab(tmp_path, folders: dict, name: str):
    """invlab measure of an A, B checkpoint on class folders of constant images; (result, its output unwrapped)."""
    folder = constant_folder(tmp_path / name, folders)
    weights = brightness_checkpoint(tmp_path / "AB.pt", ["A", "B"])
    res = invoke("measure", "--weights", weights, "--trust-factory", "--images", folder, "--dx", "0:1",
                 "--results-dir", tmp_path / f"r-{name}", "--quiet")
    return res, unwrapped(res.output)


def test_class_folders_that_differ_only_in_case_are_refused(tmp_path):
    """Checkpoint classes A, B and folders a/, b/: matched by position they would pass or fail by how the names
    happen to sort; the refusal names the folder and both spellings."""
    res, text = _measure_ab(tmp_path, {"a": [BRIGHT] * 2, "B": [DARK] * 2}, "imgs")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert unwrapped(f"--images {tmp_path / 'imgs'}: class folder(s) 'a/' (the checkpoint's 'A')") in text
    assert "onlyinlettercase" in text and "'B/'" not in text and not (tmp_path / "r-imgs" / "measure").exists()


def test_class_folders_partly_named_after_the_checkpoints_classes_are_refused(tmp_path):
    """Checkpoint classes A, B and folders B/, C/: matched by position, B/ was scored as output 0, which is A,
    silently. Folders named after none of the classes (cat/, dog/) are still matched by position."""
    res, text = _measure_ab(tmp_path, {"B": [BRIGHT] * 2, "C": [DARK] * 2}, "imgs")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert unwrapped("class folder(s) ['B'] are named after classes of") in text
    assert unwrapped("but ['C'] are not") in text
    assert not (tmp_path / "r-imgs" / "measure").exists()
    res, _ = _measure_ab(tmp_path, {"cat": [DARK] * 2, "dog": [BRIGHT] * 2}, "pets")
    assert res.exit_code == 0, res.output


def test_subpixel_fft_shifts_leave_a_linear_circular_network_invariant_and_not_one_with_relu(tmp_path, folder,
                                                                                              one_thread):
    """A band-limited shift commutes with circular convolutions and keeps the mean (the DFT's DC term): a network
    of those alone is invariant to every fractional shift; a ReLU aliases, so circular_gap is not. Fractional
    shifts are not rolls: brute force, and the engine says why."""
    torch.manual_seed(3)
    linear = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"),
                                 torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, y = images(), torch.tensor([0, 1] * 4)
    kw = dict(dx=[-1, -0.5, 0, 0.25, 1], dy=[0, 0.5], mode="circular", subpixel="fft")
    df = il.measure(linear, x, y, **kw)
    assert df.prob_change.max() <= 1e-7 and il.summarize(df).consistent_fraction.iloc[0] == 1
    (note,) = df.attrs["engine"]["engine_notes"].values()
    assert df.attrs["engine"]["engine"] == "brute" and "sub-pixel" in note
    relu = il.measure(circular_gap(), x, y, **kw)
    assert relu.prob_change.max() > 1e-5  # aliasing in the nonlinearity (an untrained network: small)
    assert relu[relu.dx == relu.dx.round()].query("dy == 0").prob_change.max() <= 1e-6  # whole pixels: rolls
    with pytest.raises(InvlabError, match="--subpixel fft"):
        il.measure(linear, x, y, dx=[0.5], mode="circular")
    with pytest.raises(InvlabError, match="--mode circular"):
        il.measure(linear, x, y, dx=[0.5], mode="canvas", subpixel="fft")
    with pytest.raises(InvlabError, match="sub-pixel"):
        il.measure(linear, x, y, engine="allshift", **kw)
    res = invoke("measure", "--model", "custom_models:circular_gap", "--images", folder, "--mode", "circular",
                 "--dx", "-1:1:0.5", "--subpixel", "fft", "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "r" / "measure").iterdir()
    assert json.loads((out / "meta.json").read_text())["protocol"]["subpixel"] == "fft"
    assert "subpixel: fft" in (out / "measure.yaml").read_text()
    assert sorted(pd.read_csv(out / "invariance.csv").dx) == [-1.0, -0.5, 0.0, 0.5, 1.0]


# ------------------------------------------------------------------------------------ rotate and scale: --transform


def _by_hand(model, x, key, value):
    """(mean total-variation change of the softmax, flip rate): the images turned or scaled against as they are."""
    with torch.no_grad():
        p0, p = model(x).softmax(1), model(turn_image(x, **{key: value})).softmax(1)
    return float(0.5 * (p - p0).abs().sum(1).mean()), float((p.argmax(1) != p0.argmax(1)).float().mean())


@pytest.mark.parametrize("args, transform, key, values", [
    (["--angles", "-90:90:45"], "rotate", "angle", [-90.0, -45.0, 0.0, 45.0, 90.0]),
    (["--transform", "scale", "--scales", "0.5:1.5:0.25"], "scale", "scale", [0.5, 0.75, 1.0, 1.25, 1.5]),
])
def test_cli_rotate_and_scale_measure_the_turned_images(tmp_path, folder, one_thread, args, transform, key, values):
    torch.manual_seed(0)
    model = flatten_head(side=SIDE).eval()
    res = invoke("measure", "--images", folder, "--model", "custom_models:flatten_head", "--model-kwargs",
                 json.dumps({"side": SIDE}), "--weights", saved(tmp_path, model), *args, "--results-dir",
                 tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "r" / "measure").iterdir()
    inv = pd.read_csv(out / "invariance.csv")
    assert key in inv and "dx" not in inv and inv[key].tolist() == values
    for value, change, flips in zip(values, inv.prob_change, inv.flip_rate):  # the mean over images: any order
        assert (change, flips) == pytest.approx(_by_hand(model, images(), key, value), abs=1e-6)
    assert inv.prob_change.max() > 1e-3  # a flatten head is no more invariant to turning than to shifting
    protocol = json.loads((out / "meta.json").read_text())["protocol"]
    assert protocol["transform"] == transform and protocol["engine"] == "brute" and "dx" not in protocol
    assert yaml.safe_load((out / "measure.yaml").read_text())["transform"] == transform
    shown = " ".join(invoke("report", out).output.split())
    assert f"{transform} about the centre, the image" in shown and f"images: {folder}" in shown


@pytest.mark.parametrize("args, needle", [
    (["--angles", "-10:10", "--dx", "-1:1"], "--angles and --dx/--dy/--grid/--all-shifts belong to two transforms"),
    (["--transform", "rotate", "--scales", "0.5:1:0.25"], "--transform rotate does not take --scales"),
    (["--angles", "-10:10", "--layers"], "a rotate measurement cannot take it"),
    (["--angles", "-10:10", "--engine", "allshift"], "--transform rotate turns or scales it, which no roll does"),
    (["--angles", "-10:10", "--mode", "circular"], "so --mode circular does not apply"),
    (["--scales", "0:1:0.5"], "must be above 0; got 0"),
    (["--scales", "1e9:1e9"], "--scales 1e+09 of a"),
    (["--scales", "1e-9:1e-9"], "leaves one flat value"),
    (["--transform", "turn"], "unknown --transform 'turn'"),
    (["--mode", "circular", "--fill", "edge"], "--mode circular rolls the image around, and nothing enters"),
    (["--all-shifts", "--fill", "reflect"], "--all-shifts rolls the image around"),
])
def test_bad_transform_options_exit_2_and_write_nothing(tmp_path, folder, args, needle):
    res = invoke("measure", "--images", folder, "--model", "custom_models:circular_gap", *args, "--results-dir",
                 tmp_path / "r", "--quiet")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert needle in " ".join(res.output.split()), res.output
    assert not (tmp_path / "r" / "measure").exists()


def test_api_rotate_equals_the_cli_and_refuses_values_of_another_transform(folder, one_thread):
    torch.manual_seed(0)
    model = flatten_head(side=SIDE)
    table = il.measure(model, images(), transform="rotate", angles=[-30, 0, 30])
    for angle, change in zip(table.angle, table.prob_change):
        assert change == pytest.approx(_by_hand(model, images(), "angle", angle)[0], abs=1e-6)
    assert table.attrs["engine"]["engine"] == "brute"
    with pytest.raises(InvlabError, match="transform='rotate' takes angles"):
        il.measure(model, images(), transform="rotate", scales=[1.0])
    with pytest.raises(InvlabError, match="give transform too"):
        il.measure(model, images(), angles=[0, 10])


def test_metric_lie_writes_the_lie_derivative_of_the_images_as_the_model_reads_them(tmp_path, folder, one_thread):
    torch.manual_seed(0)
    model = circular_gap().eval()
    res = invoke("measure", "--images", folder, "--model", "custom_models:circular_gap", "--weights",
                 saved(tmp_path, model), "--metric", "lie", "--layer-images", 5, "--mean", 0.25, "--std", 0.5,
                 "--dx", "-1:1", "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "r" / "measure").iterdir()
    lie = load_result(out).lie  # the layer of the output row: ""
    assert list(lie["transform"]) == ["translate_x", "translate_y", "rotate", "scale"] and set(lie.layer) == {""}
    x = (open_folder(folder)(slice(0, 5)) - 0.25) / 0.5  # the folder's first 5 images, as the model reads them
    for transform, value in zip(lie["transform"], lie.value):
        assert value == pytest.approx(il.lie_derivative(model, x, transform).double().mean().item(), rel=1e-9)
    protocol = json.loads((out / "meta.json").read_text())["protocol"]
    assert protocol["lie"]["n_images"] == 5 and protocol["lie"]["layers"] is False
    assert "Lie derivative" in " ".join(invoke("report", out).output.split())


@pytest.fixture(scope="module")
def wide_folder(tmp_path_factory):
    """6 labelled images of 6 x 10 px: not square, so dx and dy have rolls of their own."""
    path = tmp_path_factory.mktemp("wide") / "imgs"
    g = torch.Generator().manual_seed(3)
    write_folder((torch.rand(6, 1, 6, 10, generator=g) * 255).round() / 255, path, torch.tensor([0, 1] * 3),
                 ["a", "b"])
    return path


@pytest.mark.parametrize("model, verdict", [("circular_gap", "circular_gap: invariant (seed 0)"),
                                            ("strided", "strided: NOT invariant: the shift that moves the "
                                                        "probabilities most on average, (dx, dy) = ")])
def test_all_shifts_measures_every_roll_of_the_images_and_certifies(tmp_path, wide_folder, model, verdict, one_thread):
    res = invoke("measure", "--images", wide_folder, "--model", f"custom_models:{model}", "--all-shifts",
                 "--results-dir", tmp_path)
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "certificate over all 60 circular shifts of the images, 6 images" in out and verdict in out
    (folder,) = (tmp_path / "measure").iterdir()
    r = load_result(folder)
    p = r.meta["protocol"]
    assert p["all_shifts"] is True and p["mode"] == "circular" and p["n_shifts"] == 60
    assert (p["dx"], p["dy"]) == ([-4.0, 5.0, 1.0], [-2.0, 3.0, 1.0])  # every roll of 10 px, of 6 px, centred on 0
    rolls = {(int(dx) % 10, int(dy) % 6) for dx, dy in zip(r.invariance.dx, r.invariance.dy)}
    assert len(r.invariance) == 60 and len(rolls) == 60
    assert yaml.safe_load((folder / "measure.yaml").read_text())["all_shifts"] is True
    assert "every circular shift of the images (60 shifts" in " ".join(invoke("report", folder).output.split())


def test_a_grid_of_every_roll_given_by_hand_is_certified_too_and_a_canvas_grid_is_not(tmp_path, wide_folder,
                                                                                       one_thread):
    ranges = ("--dx", "-4:5", "--dy", "-2:3")
    for mode, certified in (("circular", True), ("canvas", False)):
        res = invoke("measure", "--images", wide_folder, "--model", "custom_models:circular_gap", *ranges,
                     "--mode", mode, "--results-dir", tmp_path / mode, "--quiet")
        assert res.exit_code == 0, res.output
        assert ("certificate over all 60" in res.output) == certified, res.output
        (folder,) = (tmp_path / mode / "measure").iterdir()
        assert bool(load_result(folder).meta["protocol"].get("all_shifts")) == certified
    res = invoke("measure", "--images", wide_folder, "--model", "custom_models:circular_gap", "--dx", "-4:4",
                 "--dy", "-2:3", "--mode", "circular", "--results-dir", tmp_path / "short", "--quiet")
    assert res.exit_code == 0 and "certificate" not in res.output  # dx 5 (= -5) left out: not every roll
    # dx -5 and 5 are one roll of 10 px: certified, and the protocol says the means count that roll twice
    res = invoke("measure", "--images", wide_folder, "--model", "custom_models:circular_gap", "--dx", "-5:5",
                 "--dy", "-2:3", "--mode", "circular", "--results-dir", tmp_path / "twice", "--quiet")
    assert res.exit_code == 0 and "certificate over all 60 circular" in res.output, res.output
    (folder,) = (tmp_path / "twice" / "measure").iterdir()
    assert load_result(folder).meta["protocol"]["rolls"] == 60
    said = " ".join(invoke("report", folder).output.split())
    assert "(66 shifts over the 60 rolls of the whole translation group: a shift and that shift plus or minus the" in said


@pytest.mark.parametrize("args, needle", [
    (["--dx", "-2:2"], "--all-shifts measures every roll of the images by itself; leave out --dx"),
    (["--dx", "0:1", "--dy", "0:1"], "leave out --dx, --dy"),
    (["--mode", "canvas"], "--all-shifts rolls the whole image (--mode circular); leave out --mode canvas"),
    (["--angles", "-10:10:10"], "--angles and --dx/--dy/--grid/--all-shifts belong to two transforms"),
    (["--transform", "scale"], "--transform scale does not take --dx/--dy/--grid/--all-shifts"),
    (["--grid", "axes"], "--all-shifts measures every roll of the images by itself; leave out --grid"),
])
def test_all_shifts_with_options_it_replaces_is_refused(tmp_path, folder, args, needle):
    res = invoke("measure", "--images", folder, "--model", "custom_models:circular_gap", "--all-shifts", *args,
                 "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert needle in " ".join(res.output.split()), res.output
    assert not (tmp_path / "r").exists()


def test_grid_axes_measures_each_axis_alone_as_il_measure_does(tmp_path, folder, one_thread):
    torch.manual_seed(0)
    model = flatten_head(side=SIDE)
    res = invoke("measure", "--images", folder, "--model", "custom_models:flatten_head", "--model-kwargs",
                 f'{{"side": {SIDE}}}', "--weights", saved(tmp_path, model), "--dx", "-3:3", "--dy", "-2:2",
                 "--grid", "axes", "--mode", "circular", "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    (out,) = (tmp_path / "r" / "measure").iterdir()
    r = load_result(out)
    assert r.meta["protocol"]["grid"] == "axes" and r.meta["protocol"]["n_shifts"] == 11  # 7 + 5 - (0, 0) twice
    assert set(zip(r.invariance.dx, r.invariance.dy)) == {(x, 0.0) for x in range(-3, 4)} | {(0.0, y) for y in
                                                                                               range(-2, 3)}
    x, y = open_folder(folder)(slice(0, 8)), open_folder(folder).labels
    api = il.measure(model, x, y, dx=range(-3, 4), dy=range(-2, 3), grid="axes", mode="circular")
    mine = r.invariance.drop(columns="model").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, api.drop(columns="model").reset_index(drop=True), check_dtype=False,
                                  check_exact=True)  # the same shifts, order and every number, neighbours included
    assert yaml.safe_load((out / "measure.yaml").read_text())["grid"] == "axes"


def test_all_shifts_of_images_too_large_for_one_grid_names_size_not_steps(tmp_path):
    write_folder(torch.zeros(1, 1, 320, 320), tmp_path / "big")
    res = invoke("measure", "--images", tmp_path / "big", "--model", "custom_models:circular_gap", "--all-shifts",
                 "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "every roll of 320 x 320 px images is 102400 shifts" in " ".join(res.output.split())
    assert "--size" in res.output and not (tmp_path / "r").exists()


class NaNLater(nn.Module):
    """circular_gap whose output turns NaN after its first three calls (the first check's): a layer profile gave
    NaN in the output's row, with no error, where il.measure refuses the same model."""

    def __init__(self):
        super().__init__()
        self.net, self.calls = circular_gap(), 0

    def forward(self, x):
        self.calls += 1
        out = self.net(x)
        return out * float("nan") if self.calls > 3 else out


def test_a_layer_profile_that_meets_nan_is_refused_naming_the_tap(one_thread):
    with pytest.raises(InvlabError, match=r"model NaNLater \(seed 0\) gives NaN or infinite values at tap 'output'"):
        il.layer_profile(NaNLater(), images(8, side=16), shifts=range(-2, 3), batch_size=4)


# ------------------------------------------------------------ what a mutation audit found untested

def test_sizes_of_work_that_do_nothing_are_refused_before_a_folder_is_made(tmp_path, folder):
    """--layer-images 0, --batch-size 0 and --taps without --layers were taken (an empty profile, a silent no-op)."""
    from invariance_lab.run.measure import measure_to_folder

    for kwargs, needle in [(dict(layer_images=0), "--layer-images must be at least 1; got 0"),
                           (dict(batch_size=0), "--batch-size must be at least 1; got 0"),
                           (dict(taps=["conv"]), "--taps names the modules of the layer profile: give --layers too")]:
        with pytest.raises(InvlabError, match=re.escape(needle)):
            measure_to_folder(images=folder, model="custom_models:circular_gap", results_dir=tmp_path, **kwargs)
    assert not (tmp_path / "measure").exists()


def test_a_run_folder_given_as_images_refuses_colour_and_size(tmp_path, folder):
    """A run folder's letters are grey images of its canvas: --colour rgb or --size were ignored without a word."""
    from invariance_lab.run.measure import measure_to_folder

    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text("{}")
    (run / "config.yaml").write_text("")
    for kwargs in (dict(colour="rgb"), dict(size=(8, 8))):
        with pytest.raises(InvlabError, match="is a run folder: .* leave out --colour and --size"):
            measure_to_folder(images=run, model="custom_models:circular_gap", results_dir=tmp_path, **kwargs)
    assert not (tmp_path / "measure").exists()


def test_meta_json_says_whether_the_measured_images_had_labels(tmp_path, folder, one_thread):
    """An unlabelled folder was recorded as labelled, so the report read its empty accuracy as measured."""
    from invariance_lab.run.measure import measure_to_folder

    flat = tmp_path / "flat"
    write_folder(images(2), flat)
    for src, labelled in ((flat, False), (folder, True)):
        out = measure_to_folder(images=src, model="custom_models:circular_gap", dx=[0, 1, 1],
                                results_dir=tmp_path / str(labelled))
        assert load_result(out).meta["protocol"]["labels"] is labelled
