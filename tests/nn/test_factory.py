"""factory.py: models of your own (`factory: "package.module:function"`) trained, swept and reported like presets;
every bad factory refused before anything is written; a run folder's factory imported only when trusted."""

import importlib
import importlib.util
import json
import os
import sys
import uuid

import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.nn import factory
from invariance_lab.nn.outputs import check_output
from invariance_lab.store.checkpoints import fingerprint
from invariance_lab.cli.main import app
from invariance_lab.config.load import parse_config
from invariance_lab.core.errors import InvlabError
from invariance_lab.config.models import resolved_models

runner = CliRunner()
BASE = {
    "name": "fac", "seeds": [0], "device": "cpu",
    "data": {"letters": ["A", "B"], "fonts": ["futural"], "canvas": 16, "size": 8, "train_images": 64,
             "test_images": 12},
    "train": {"epochs": 1, "batch_size": 32},
    "sweep": {"mode": "circular", "dx": [-2, 2]},
}
MINE = {"factory": "custom_models:circular_gap", "kwargs": {"channels": 4}}


def write_config(folder, models, **extra):
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "models": models, **extra}))
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def factory_run(tmp_path_factory, one_thread):
    """A run of a factory model and a preset side by side (seconds)."""
    folder = tmp_path_factory.mktemp("factory")
    cfg = write_config(folder, {"mine": MINE, "conv_gap": {"arch": "conv_gap", "channels": [4]}})
    res = invoke("run", cfg, "--results-dir", folder / "results", "--quiet")
    assert res.exit_code == 0, res.output
    (run_dir,) = (folder / "results" / "fac").iterdir()
    return run_dir


def test_schema_checks_the_spec_without_importing_anything():
    def problem(spec):
        with pytest.raises(InvlabError) as e:
            parse_config({**BASE, "models": {"m": spec}})
        return str(e.value)

    assert "[models.m.factory]" in problem({"factory": "custom_models"}) and "package.module:function" in \
        problem({"factory": "a.b:"})
    assert "[models.m.arch]" in problem({"factory": "a:b", "arch": "conv_gap"})
    assert "kwargs are the arguments of a factory" in problem({"kwargs": {"w": 1}})
    assert "finite" in problem({"factory": "a:b", "kwargs": {"w": float("nan")}})
    cfg = parse_config({**BASE, "models": {"m": {"factory": "not_imported_while_reading:f"}}},
                       overrides=["models.m.kwargs.width=8"])
    assert resolved_models(cfg) == {"m": {"factory": "not_imported_while_reading:f", "kwargs": {"width": 8}}}
    assert "not_imported_while_reading" not in sys.modules


def test_factory_and_preset_train_sweep_and_report_alike(factory_run):
    inv = pd.read_csv(factory_run / "invariance.csv")
    assert set(inv.model) == {"mine", "conv_gap"}
    mine = inv[inv.model == "mine"]
    assert (mine[["downsample", "head", "padding"]] == "custom").all().all()
    assert mine.prob_change.max() <= 1e-5  # circular padding, stride 1, global pooling: exactly invariant
    meta = json.loads((factory_run / "meta.json").read_text())
    assert meta["models"]["mine"]["factory_file"].endswith("custom_models.py")
    blob = torch.load(factory_run / "checkpoints" / "mine-seed0.pt", weights_only=True)  # plain values only
    assert blob["factors"] == MINE
    assert blob["fingerprint"] == meta["fingerprints"]["mine-seed0"] == fingerprint(
        MINE, blob["data"], blob["train"], 0)
    other = {**MINE, "kwargs": {"channels": 5}}
    assert fingerprint(other, blob["data"], blob["train"], 0) != blob["fingerprint"]  # kwargs are in it
    res = invoke("report", factory_run, "--format", "csv")
    assert res.exit_code == 0 and "custom" in res.output


def test_a_run_folder_factory_is_imported_only_when_trusted(factory_run):
    res = invoke("sweep", factory_run, "--dx", "-1:1", "--quiet")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "custom_models.py" in res.output and "--trust-factory" in res.output and "runs that file's code" in res.output
    assert not (factory_run / "sweeps").exists()
    res = invoke("sweep", factory_run, "--dx", "-1:1", "--layers", "--layer-images", "4", "--trust-factory",
                 "--quiet")
    assert res.exit_code == 0, res.output
    (sweep,) = (factory_run / "sweeps").iterdir()
    layers = pd.read_csv(sweep / "layers_summary.csv")
    mine = layers[layers.model == "mine"]
    assert mine.layer_name.iloc[-1] == "output" and "0" in set(mine.layer_name)  # hooked: named_modules() names
    assert mine.mean_equivariance_error.max() < 1e-5


def test_module_beside_the_config_and_a_factory_gone_later(tmp_path, one_thread):
    name = f"beside_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("from custom_models import circular_gap as make\n")
    cfg = write_config(tmp_path, {"own": {"factory": f"{name}:make", "kwargs": {"channels": 3}}},
                       train={"epochs": 0})
    res = invoke("run", cfg, "--results-dir", tmp_path / "results", "--quiet")
    assert res.exit_code == 0, res.output  # found in the config's folder, though not on sys.path
    (run_dir,) = (tmp_path / "results" / "fac").iterdir()
    (tmp_path / f"{name}.py").unlink()
    sys.modules.pop(name, None)
    for key in [k for k in factory._LOADED if k[0] == f"{name}:make"]:
        factory._LOADED.pop(key)
    importlib.invalidate_caches()
    res = invoke("sweep", run_dir, "--trust-factory", "--quiet")
    assert res.exit_code == 2 and "cannot be imported here" in res.output and f"'{name}'" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("spec, needle", [
    ({"factory": "custom_models:wrong_shape"}, "gave an output of shape (2, 3, 1, 1)"),
    ({"factory": "custom_models:raises"}, "raised RuntimeError when called with kwargs {}: this factory always fails"),
    ({"factory": "no_such_module_here:make"}, "no module named 'no_such_module_here' was found; searched"),
    # it said "Put custom_models/py.py in one of these folders"
    ({"factory": "custom_models.py:circular_gap"}, "names a module, as Python imports it, not its file: "
                                                   "'custom_models:circular_gap'"),
    ({"factory": "custom_models:nope"}, "has no 'nope'"),
    ({"factory": "custom_models:not_a_module"}, "returned str 'a string', not a torch.nn.Module"),
    ({"factory": "custom_models:frozen"}, "has nothing to train: all its"),
    ({"factory": "custom_models:detached"}, "does not depend on any trainable parameter"),
    ({"factory": "custom_models:circular_gap", "kwargs": {"classes": 3}}, "needs (2, 2): one logit per class"),
    ({"factory": "custom_models:circular_gap", "kwargs": {"width": 3}}, "unexpected keyword argument 'width'"),
    # a config's keys, not invlab measure's options (it said "see --colour, colour= in Python")
    ({"factory": "custom_models:circular_gap", "kwargs": {"in_channels": 3}},
     "than these images' 1: data.colour: rgb reads an image folder in colour"),
    ({"factory": "custom_models:flatten_head", "kwargs": {"side": 24}}, "than these 16 x 16 px: data.canvas sets it"),
    # its checks pass, the forward pass that measures its memory (inference mode) does not
    ({"factory": "custom_models:no_inference"}, "model bad failed when the memory its forward pass needs was measured "
                                                "(in inference mode, on a batch of shape (2, 1, 16, 16)) (RuntimeError: "
                                                "needs autograd)"),
])
def test_bad_factories_exit_2_before_anything_is_written(tmp_path, spec, needle):
    res = invoke("run", write_config(tmp_path, {"bad": spec}), "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 2 and needle in res.output and "[models.bad]" in res.output, res.output
    assert "Traceback" not in res.output
    assert not list((tmp_path / "r").rglob("meta.json"))


def test_locate_finds_the_file_without_running_it(tmp_path, monkeypatch):
    name = f"noisy_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("raise SystemExit('ran')\n")
    assert factory.locate(f"{name}:f", [tmp_path]) == str(tmp_path / f"{name}.py")
    assert name not in sys.modules
    with pytest.raises(InvlabError, match="raised SystemExit: ran"):
        factory.load(f"{name}:f", [tmp_path])
    assert factory.locate("no_such_module_here:f") is None


def test_loading_a_factory_leaves_sys_path_as_it_was(tmp_path):
    """The config's folder is on sys.path for the import and the call only, even when the user's module changes
    sys.path itself or fails to import."""
    name = f"pathy_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("import sys\nimport torch\nsys.path.append('/nowhere')\n"
                                         "def make():\n    sys.path.insert(0, '/also/nowhere')\n"
                                         "    return torch.nn.Linear(1, 2)\n")
    (tmp_path / f"{name}_bad.py").write_text("raise RuntimeError('broken')\n")
    before = list(sys.path)
    factory.call(f"{name}:make", {}, [tmp_path])
    assert sys.path == before
    with pytest.raises(InvlabError, match="broken"):
        factory.load(f"{name}_bad:make", [tmp_path])
    assert sys.path == before and str(tmp_path) not in sys.path


def test_same_module_name_in_two_folders_gives_two_modules(tmp_path):
    """Two configs in different folders, each naming `<name>:net`, get their own module's function: the cache is
    keyed on the file the module came from, not on the factory path alone."""
    name = f"twin_{uuid.uuid4().hex[:8]}"
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, width in ((one, 3), (two, 5)):
        folder.mkdir()
        (folder / f"{name}.py").write_text(f"import torch\ndef net():\n    return torch.nn.Linear(1, {width})\n")
    assert factory.call(f"{name}:net", {}, [one]).out_features == 3
    assert factory.call(f"{name}:net", {}, [two]).out_features == 5
    assert factory.call(f"{name}:net", {}, [one]).out_features == 3  # each folder keeps its own
    assert factory.locate(f"{name}:net", [two]) == str(two / f"{name}.py")


# ------------------------------------------------------------------------------ a config that came with a run folder


def folder_from_elsewhere(tmp_path, models, command="run"):
    """What someone else's run folder can hold: meta.json (any content: the folder is not checked before trust)
    and a config.yaml naming factories of its choice (for `invlab claims`: beside the claims' own models)."""
    run = tmp_path / "their_run"
    run.mkdir()
    (run / "meta.json").write_text("{}")
    if command != "claims":
        return run, write_config(run, models)
    claims = yaml.safe_load((ROOT / "configs" / "question_claims.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**claims, "models": {**claims["models"], **models}}))
    return run, run / "config.yaml"


def unwrapped(text):
    """The CLI's paragraph without the line breaks (and spaces) rich adds to fit the terminal."""
    return "".join(text.split())


def trust_args(command, config, tmp_path):
    extra = ["--out", tmp_path / "answers.md"] if command == "claims" else []
    return [command, config, "--results-dir", tmp_path / "r", "--quiet", *extra]


@pytest.mark.parametrize("command", ["run", "sweep", "claims"])
def test_a_run_folders_config_calls_no_factory_untrusted(tmp_path, command):
    """`factory: "os:system"` with `kwargs: {command: ...}` in a run folder's config: invlab run / sweep / claims on
    that config refuse (exit 2) naming os's file and the command, and nothing is called."""
    marker = tmp_path / "MARKER"
    _, config = folder_from_elsewhere(tmp_path, {"evil": {"factory": "os:system",
                                                          "kwargs": {"command": f"touch {marker}"}}}, command)
    res = invoke(*trust_args(command, config, tmp_path))
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert not marker.exists()
    text = unwrapped(res.output)
    assert "--trust-factory" in text and "[models.evil]" not in text
    assert unwrapped(os.__file__) in text  # the file that would run, found unrun
    assert unwrapped(f"command='touch {marker}'") in text  # and what it would be called with
    assert not (tmp_path / "r").exists() and not (tmp_path / "answers.md").exists()


@pytest.mark.parametrize("command", ["run", "sweep", "claims"])
def test_a_run_folders_factory_module_is_not_imported_untrusted(tmp_path, command):
    """A module beside a run folder's config that acts when imported: refused naming that file, never imported
    until --trust-factory says so."""
    name = f"sender_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "IMPORTED"
    run, config = folder_from_elsewhere(tmp_path, {"theirs": {"factory": f"{name}:make"}}, command)
    (run / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                    "from custom_models import circular_gap as make\n")
    res = invoke(*trust_args(command, config, tmp_path))
    assert res.exit_code == 2 and not marker.exists() and name not in sys.modules, res.output
    assert unwrapped(str(run / f"{name}.py")) in unwrapped(res.output)
    if command == "run":  # the user's word: imported from the run's folder, then trained
        res = invoke(*trust_args(command, config, tmp_path), "--trust-factory", "--set", "train.epochs=0")
        assert res.exit_code == 0, res.output
        assert marker.exists()


def test_your_own_config_needs_no_trust_and_config_loading_imports_nothing(tmp_path):
    """A config outside any run folder is yours: naming it is the word (unchanged). Reading any config never
    imports its factory's module."""
    from invariance_lab.config.load import load_config

    name = f"loud_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "IMPORTED"
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                         "from custom_models import circular_gap as make\n")
    config = write_config(tmp_path, {"own": {"factory": f"{name}:make", "kwargs": {"channels": 3}}},
                          train={"epochs": 0})
    load_config(config)
    assert not marker.exists() and name not in sys.modules
    res = invoke("run", config, "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 0 and marker.exists(), res.output


def test_the_trust_message_names_the_file_and_the_call():
    """require_trust says which file importing would run (os -> its stdlib path, found without importing) and the
    whole call, kwargs unclipped: what the user is asked to trust."""
    long = "x" * 300
    with pytest.raises(InvlabError) as e:
        factory.require_trust({"factory": "os:system", "kwargs": {"command": long}}, trusted=False, where="somewhere")
    text = str(e.value)
    assert os.__file__ in text and long in text and "--trust-factory" in text
    factory.require_trust({"factory": "os:system", "kwargs": {}}, trusted=True, where="somewhere")  # no call either


@pytest.mark.parametrize("model, needle", [
    (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)).double(),
     "its weights are float64, the images float32: give invlab the model in float32, model.float()"),
    (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 2)),
     "may expect images of another size than these 8 x 8 px: see --size"),
    (torch.nn.Conv2d(3, 2, 3), "expects another number of input channels than these images' 1: see --colour"),
    (torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(1)),
     "gave an output of shape (2, 2, 1, 1) for a batch of shape (2, 1, 8, 8); invlab needs (2, 2): one logit per "
     "class (2 classes). Flatten its output"),
    (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1), torch.nn.Flatten(0)),
     "gave an output of shape (2,)"),
])
def test_a_model_that_does_not_fit_the_images_is_told_what_to_change(model, needle):
    with pytest.raises(InvlabError) as e:
        check_output(model, torch.zeros(2, 1, 8, 8), 2, "model mine", one_logit=True)
    assert needle in str(e.value)
    if "(2,)" in needle:
        assert "Return (N, 1) for one logit per image" in str(e.value)


@pytest.mark.parametrize("command", ["sweep", "measure"])
def test_a_module_that_came_inside_a_run_folder_is_found_there_and_imported_only_when_trusted(tmp_path, command,
                                                                                               one_thread):
    """`invlab sweep RUN` and `invlab measure --run RUN` look for a factory's module in the run folder, as for
    RUN/config.yaml: without --trust-factory the refusal names that file (it said 'cannot be imported here', and
    never mentioned --trust-factory); with it the module is imported from there."""
    name = f"inside_{uuid.uuid4().hex[:8]}"
    made = tmp_path / "made"
    made.mkdir()
    (made / f"{name}.py").write_text("from custom_models import circular_gap as make\n")
    cfg = write_config(made, {"own": {"factory": f"{name}:make", "kwargs": {"channels": 3}}},
                       train={"epochs": 0}, seeds=[0])
    assert invoke("run", cfg, "--results-dir", tmp_path / "r", "--quiet").exit_code == 0
    (run,) = (tmp_path / "r" / "fac").iterdir()
    (made / f"{name}.py").rename(run / f"{name}.py")  # the module travels with the folder, not with the config
    sys.modules.pop(name, None)
    images = tmp_path / "imgs"
    for letter in ("A", "B"):
        (images / letter).mkdir(parents=True)
        Image.new("L", (16, 16)).save(images / letter / "x.png")
    args = (["sweep", run, "--dx", "-1:1"] if command == "sweep" else
            ["measure", "--run", run, "--images", images, "--results-dir", tmp_path / "m"])
    res = invoke(*args, "--quiet")
    assert res.exit_code == 2 and name not in sys.modules, res.output
    assert unwrapped(str(run / f"{name}.py")) in unwrapped(res.output) and "--trust-factory" in res.output
    res = invoke(*args, "--quiet", "--trust-factory")
    assert res.exit_code == 0, res.output


def test_the_file_the_run_checked_and_recorded_is_the_one_trained_swept_and_measured(tmp_path, monkeypatch,
                                                                                      one_thread):
    """A module of the factory's name in the current directory as well as beside the config: the run trains the
    config's, the file it checks and records in meta.json, and a sweep or measurement of the run from that folder
    builds the recorded file too (each built the current directory's before)."""
    name = f"twice_{uuid.uuid4().hex[:8]}"
    made, here = tmp_path / "made", tmp_path / "here"
    made.mkdir()
    here.mkdir()
    (made / f"{name}.py").write_text("from custom_models import circular_gap as make\n")
    (here / f"{name}.py").write_text("from custom_models import circular_gap\n\n\ndef make(channels):\n"
                                     "    return circular_gap(channels=channels + 2)\n")
    cfg = write_config(made, {"own": {"factory": f"{name}:make", "kwargs": {"channels": 3}}},
                       train={"epochs": 0}, seeds=[0])
    monkeypatch.chdir(here)
    assert invoke("run", cfg, "--results-dir", tmp_path / "r", "--quiet").exit_code == 0
    (run,) = (tmp_path / "r" / "fac").iterdir()
    assert json.loads((run / "meta.json").read_text())["models"]["own"]["factory_file"] == str(made / f"{name}.py")
    weights = torch.load(run / "checkpoints" / "own-seed0.pt", weights_only=True)["state_dict"]
    assert weights["0.weight"].shape[0] == 3  # the config's module: 3 channels (here's would give 5)
    images = tmp_path / "imgs"
    for letter in ("A", "B"):
        (images / letter).mkdir(parents=True)
        Image.new("L", (16, 16)).save(images / letter / "x.png")
    for args in (["sweep", run, "--dx", "-1:1"], ["measure", "--run", run, "--images", images, "--results-dir", "m"]):
        res = invoke(*args, "--quiet", "--trust-factory")  # here's module (5 channels) would not fit the weights
        assert res.exit_code == 0, res.output
