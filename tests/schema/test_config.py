import ast
import inspect
import math
import re
import tracemalloc

import pytest
import yaml
from conftest import ROOT

from invariance_lab.schema import config as config_module
from invariance_lab.schema.config import Config
from invariance_lab.schema.data import DataConfig
from invariance_lab.schema.fields import check_range, parse_range
from invariance_lab.schema.model import ModelSpec
from invariance_lab.schema.sweep import SweepConfig
from invariance_lab.schema.train import TrainConfig
from invariance_lab.core.errors import ConfigError
from invariance_lab.config.load import load_config, parse_config, to_yaml
from invariance_lab.config.limits import letter_size
from invariance_lab.config.memory import MEMORY_CAP, check_resources, check_sweep_fits, memory_estimate, memory_limit
from invariance_lab.config.models import resolved_models


def write(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_are_valid():
    cfg = parse_config({})
    assert cfg.data.letters == ["A", "B"]
    assert cfg.sweep.dx == [-8.0, 8.0, 1.0]  # ranges are normalised to [start, stop, step]


def test_shipped_configs_load(quick_config_path):
    paths = sorted(quick_config_path.parent.glob("*.yaml"))
    assert len(paths) >= 5
    for path in paths:
        cfg = load_config(path)
        assert cfg.models and cfg.name == path.stem


def test_preset_with_overrides_resolves():
    cfg = parse_config({"models": {"m": {"arch": "conv_maxpool", "padding": "circular", "channels": [4]}}})
    f = resolved_models(cfg)["m"]
    assert (f["downsample"], f["head"], f["padding"], f["channels"]) == ("max", "flatten", "circular", [4])


def test_resolved_yaml_round_trips(tmp_path):
    cfg = parse_config({"models": {"m": {"arch": "strided_conv"}}})
    again = load_config(write(tmp_path, to_yaml(cfg)))
    assert resolved_models(again) == resolved_models(cfg)


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    p = write(tmp_path, "name: x\ndata:\n  canvas: [32\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and "line" in msg and "column" in msg


def test_unknown_key_gives_path_and_closest_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "data:\n  canvsa: 32\n"))
    msg = str(e.value)
    assert "[data.canvsa]" in msg and "did you mean 'canvas'" in msg


def test_unknown_key_inside_a_model(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "models:\n  m: {arch: conv_gap, downsampl: max}\n"))
    assert "[models.m.downsampl]" in str(e.value) and "'downsample'" in str(e.value)


@pytest.mark.parametrize("text, needles", [
    ("train:\n  epochs: -1\n", ["[train.epochs]", "-1"]),
    ("sweep:\n  mode: wrap\n", ["[sweep.mode]", "canvas", "circular"]),
    ("sweep:\n  dx: [4, 2]\n", ["[sweep.dx]", "stop"]),
    ("sweep:\n  dx: [0, 4, 0]\n", ["[sweep.dx]", "step"]),
    ("sweep:\n  mode: circular\n  dx: [0, 2, 0.5]\n", ["whole pixels"]),
    ("data:\n  letters: [A, b]\n", ["[data.letters]", "A-Z"]),
    ("data:\n  fonts: [comic]\n", ["[data.fonts]", "futural"]),
    ("models:\n  m: {arch: resnet}\n", ["[models.m]", "resnet", "conv_maxpool"]),
    ("models:\n  m: {downsample: maxx}\n", ["[models.m]", "maxx", "blur_max"]),
    ("models:\n  m: {head: gap}\n", ["[models.m]", "global_avg"]),
    ("models:\n  m: {padding: valid, channels: [4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4], kernel: 3}\ndata: {canvas: 16, size: 8}\n",
     ["[models.m]", "valid"]),
    ("seeds: []\n", ["[seeds]"]),
    ("name: 'a/b'\n", ["[name]"]),
    # names that cannot be a folder, or one file each, on Windows and macOS
    ("name: aux\n", ["[name]", "'aux' is a device's name on Windows (AUX)"]),
    ("name: Com1.runs\n", ["[name]", "device's name on Windows (COM1)"]),
    ("name: quick.\n", ["[name]", "'quick.' ends with '.'"]),
    ("models:\n  Gap: {arch: conv_gap}\n  gap: {arch: conv_only}\n", ["[models]", "['Gap', 'gap'] differ only in"]),
    ("data:\n  test_sets: {Far: {size: 10}, far: {size: 12}}\n", ["[data.test_sets]", "differ only in letter case"]),
    ("data:\n  test_sets: {nul: {size: 10}}\n", ["[data.test_sets]", "'nul' is a device's name on Windows"]),
])
def test_bad_values_are_named(tmp_path, text, needles):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))


def test_missing_file_is_said_plainly(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="not found") as e:
        load_config(tmp_path / "nope.yaml")
    assert "checkout" not in str(e.value)
    # the README's configs/... run outside the checkout (an installed wheel has no configs/): the message says
    # where they are and gives a config of one line, which loads
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="configs/ comes with invlab's checkout") as e:
        load_config("configs/quick.yaml")
    one_line = str(e.value).split("can be one line: ")[1][:-1]
    (tmp_path / "mine.yaml").write_text(one_line)
    assert list(load_config(tmp_path / "mine.yaml").models) == ["conv_gap"]
    monkeypatch.chdir(ROOT)  # in the checkout, a misspelt name: the close ones, not the checkout's whereabouts
    with pytest.raises(ConfigError, match=r"configs/quikc.yaml; did you mean configs/quick.yaml") as e:
        load_config("configs/quikc.yaml")
    assert "checkout" not in str(e.value)


@pytest.mark.parametrize("kind, needle", [("directory", "is not a file"), ("2-MiB", "too large for a config"),
                                          ("latin-1", "not UTF-8"), ("missing", "not found")],
                         ids=["directory", "2-MiB", "latin-1", "missing"])
def test_unreadable_files(tmp_path, kind, needle):
    path = tmp_path / "cfg.yaml"
    if kind == "directory":
        path.mkdir()
    elif kind == "2-MiB":
        path.write_text("name: x\n" + "# padding\n" * 200_000)
    elif kind == "latin-1":
        path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=needle):
        load_config(path)


def test_dotted_overrides(quick_config_path):
    cfg = load_config(quick_config_path, overrides=["train.epochs=3", "seeds=[5, 6]", "models.extra.arch=conv_gap",
                                                     "sweep.dx=[-1, 1, 0.5]"])
    assert cfg.train.epochs == 3 and cfg.seeds == [5, 6] and "extra" in cfg.models and cfg.sweep.dx == [-1, 1, 0.5]
    with pytest.raises(ConfigError, match=r"\[train.epoch\]"):
        load_config(quick_config_path, overrides=["train.epoch=3"])
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        load_config(quick_config_path, overrides=["train.epochs"])


# --------------------------------------------------------------------------------------------- bad inputs
# Every row: (id, config text, --set overrides, strings the message must contain). docs/bad_inputs.md lists the
# message each one gets. Each must be refused with a ConfigError (nothing else), naming the key and the reason.

def _bomb(levels=9):
    """The billion laughs: nine levels of nine aliases, used as a value."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]")
    return "\n".join(lines) + f"\nname: *{chr(96 + levels)}\n"


LETTER = "sweep: {mode: circular, dx: [0, 0]}\n"  # the position task needs a circular sweep
BAD_INPUTS = [
    # strict types
    ("bool-for-int", "train:\n  epochs: true\n", [], ["[train.epochs]", "not a boolean", "True"]),
    ("quoted-int", "train:\n  epochs: '5'\n", [], ["[train.epochs]", "without quotes", "'5'"]),
    ("float-for-int", "train:\n  epochs: 2.5\n", [], ["[train.epochs]", "whole number", "2.5"]),
    ("inf-lr", "train:\n  lr: .inf\n", [], ["[train.lr]", "finite", "inf"]),
    ("nan-lr", "train:\n  lr: .nan\n", [], ["[train.lr]", "finite", "nan"]),
    ("minus-inf-noise", "data:\n  noise: -.inf\n", [], ["[data.noise]", "finite"]),
    ("quoted-float", "train:\n  lr: '1e-3'\n", [], ["[train.lr]", "without quotes"]),
    ("huge-float-int", "data:\n  canvas: 1e400\n", [], ["[data.canvas]", "whole number", "inf"]),
    ("bool-in-list", "data:\n  thickness: [1, true]\n", [], ["[data.thickness.1]", "not a boolean"]),
    ("number-for-name", "name: 2024\n", [], ["[name]", "must be a string", "2024"]),
    ("section-is-a-number", "data: 5\n", [], ["[data]", "section of keys", "5"]),
    ("list-is-a-number", "seeds: 5\n", [], ["[seeds]", "must be a list"]),
    # seeds
    ("seed-too-big", "seeds: [99999999999999999999]\n", [], ["[seeds.0]", "0 .. 4294967295", "99999999999999999999"]),
    ("seed-negative", "seeds: [-1]\n", [], ["[seeds.0]", "0 .. 4294967295", "-1"]),
    ("data-seed-2**32", "data:\n  seed: 4294967296\n", [], ["[data.seed]", "0 .. 4294967295", "4294967296"]),
    ("seeds-empty", "seeds: []\n", [], ["[seeds]", "non-empty"]),
    ("seeds-repeated", "seeds: [1, 1]\n", [], ["[seeds]", "distinct"]),
    # ranges and names
    ("epochs-negative", "train:\n  epochs: -1\n", [], ["[train.epochs]", "-1"]),
    ("canvas-small", "data:\n  canvas: 4\n", [], ["[data.canvas]", "greater than or equal to 8"]),
    ("canvas-large", "data:\n  canvas: 300\n", [], ["[data.canvas]", "less than or equal to 256", "300"]),
    ("int-past-64-bit", "train:\n  epochs: 9223372036854775808\n", [], ["[train.epochs]", "9223372036854775807"]),
    ("jitter-1", "data:\n  size_jitter: 1\n", [], ["[data.size_jitter]", "less than 1"]),
    ("noise-huge", "data:\n  noise: 1.0e+6\n", [], ["[data.noise]", "less than or equal to 10"]),
    ("lr-zero", "train:\n  lr: 0\n", [], ["[train.lr]", "greater than 0"]),
    ("one-train-image", "data:\n  train_images: 1\n", [], ["[data.train_images]", "greater than or equal to 2"]),
    ("name-slash", "name: 'a/b'\n", [], ["[name]", "names a folder", "'a/b'"]),
    ("name-long", f"name: {'x' * 300}\n", [], ["[name]", "at most 100 characters", "... (302 chars)"]),
    ("mode-unknown", "sweep:\n  mode: wrap\n", [], ["[sweep.mode]", "canvas", "circular", "'wrap'"]),
    ("optimizer-unknown", "train:\n  optimizer: adamm\n", [], ["[train.optimizer]", "adamw", "'adamm'"]),
    ("device-unknown", "device: gpu\n", [], ["[device]", "cuda", "'gpu'"]),
    ("letters-lowercase", "data:\n  letters: [A, b]\n", [], ["[data.letters]", "A-Z", "'b'"]),
    ("font-unknown", "data:\n  fonts: [comic]\n", [], ["[data.fonts]", "futural", "'comic'"]),
    ("font-typo", "data:\n  fonts: [timesrr]\n", [], ["[data.fonts]", "did you mean 'timesr'"]),
    ("unknown-key", "data:\n  canvsa: 32\n", [], ["[data.canvsa]", "did you mean 'canvas'"]),
    ("unknown-model-key", "models:\n  m: {arch: conv_gap, downsampl: max}\n", [], ["[models.m.downsampl]", "'downsample'"]),
    ("arch-unknown", "models:\n  m: {arch: resnet}\n", [], ["[models.m]", "resnet", "conv_maxpool"]),
    ("downsample-unknown", "models:\n  m: {downsample: maxx}\n", [], ["[models.m]", "maxx", "blur_max"]),
    ("head-unknown", "models:\n  m: {head: gap}\n", [], ["[models.m]", "global_avg"]),
    ("arch-huge-string", f"models:\n  m: {{arch: {'x' * 5000}}}\n", [], ["[models.m.arch]", "at most 64", "(5002 chars)"]),
    ("no-models", "models: {}\n", [], ["[models]", "at least one"]),
    ("model-name", "models:\n  'a b': {arch: conv_gap}\n", [], ["[models]", "model names", "'a b'"]),
    ("model-name-dots", "models:\n  '..': {arch: conv_gap}\n", [], ["[models]", "begin with a letter", "'..'"]),
    ("channels-zero", "models:\n  m: {channels: [0]}\n", [], ["[models.m.channels]", "positive"]),
    ("channels-too-many", "models:\n  m: {channels: [" + ", ".join(["1"] * 40) + "]}\n", [],
     ["[models.m.channels]", "at most 32 items"]),
    ("valid-padding-too-deep", "models:\n  m: {padding: valid, channels: [4,4,4,4,4,4,4,4,4], kernel: 3}\n"
     "data: {canvas: 16, size: 8}\n", [], ["[models.m]", "valid"]),
    # classes and geometry
    ("one-class", "data:\n  letters: [A]\n", [], ["[data.letters]", "at least two letters", "['A']"]),
    ("repeated-letters", "data:\n  letters: [A, A]\n", [], ["[data.letters]", "distinct"]),
    ("letter-too-tall", "data:\n  size: 40\n", [], ["[data.size]", "do not fit the 32 px canvas", "46 px", "40.0"]),
    ("letter-too-wide", "data:\n  size: 24\n  letters: [M, W]\n  fonts: [scripts]\n", [],
     ["[data.size]", "widest glyph", "in scripts"]),
    ("position-letter-too-tall", "data:\n  task: position\n  size: 16\n" + LETTER, [],
     ["[data.size]", "canvas/2 = 16 px"]),
    ("position-odd-canvas", "data:\n  task: position\n  canvas: 33\n  size: 10\n" + LETTER, [],
     ["[data.canvas]", "even canvas", "33"]),
    ("position-canvas-sweep", "data:\n  task: position\n  size: 10\n", [], ["[sweep.mode]", "circular", "'canvas'"]),
    ("train-shift-out-of-frame", "data:\n  train_shift: 16\n", [], ["[data.train_shift]", "outside the 32 px frame", "16.0"]),
    ("circular-train-shift-too-far", "data:\n  train_mode: circular\n  train_shift: 17\n", [],
     ["[data.train_shift]", "every position", "17.0"]),
    ("circular-train-shift-fraction", "data:\n  train_mode: circular\n  train_shift: 1.5\n", [],
     ["[data.train_shift]", "whole", "1.5"]),
    ("position-train-shift", "data:\n  task: position\n  size: 10\n  train_shift: 8\n" + LETTER, [],
     ["[data.train_shift]", "other half", "8.0"]),
    ("thickness-reversed", "data:\n  thickness: [2, 1]\n", [], ["[data.thickness]", "min <= max"]),
    # sweeps
    ("dx-reversed", "sweep:\n  dx: [4, 2]\n", [], ["[sweep.dx]", "stop"]),
    ("dx-step-zero", "sweep:\n  dx: [0, 4, 0]\n", [], ["[sweep.dx]", "step"]),
    ("dx-four-values", "sweep:\n  dx: [0, 1, 2, 3]\n", [], ["[sweep.dx]", "[start, stop, step]"]),
    ("circular-subpixel", "sweep:\n  mode: circular\n  dx: [0, 2, 0.5]\n", [], ["[sweep.dx]", "whole pixels"]),
    ("dx-off-canvas", "sweep:\n  dx: [-40, 40]\n", [], ["[sweep.dx]", "shift of -40 px", "blank", "24.54"]),
    ("dy-off-canvas", "sweep:\n  dy: [30, 30]\n", [], ["[sweep.dy]", "shift of 30 px", "half-height"]),
    ("circular-roll-past-canvas", "sweep:\n  mode: circular\n  dx: [-32, 32]\n", [], ["[sweep.dx]", "|dx| < 32"]),
    ("grid-too-big", "sweep:\n  dx: [-5, 5, 0.001]\n  dy: [-5, 5, 0.001]\n", [], ["[sweep.dx]", "100020001 shifts"]),
    ("dx-too-many-steps", "sweep:\n  dx: [-1000000, 1000000]\n", [], ["[sweep.dx]", "more than 10000 steps"]),
    # resources
    ("test-images-1e9", "data:\n  test_images: 1000000000\n", [], ["too big to run", "[data.test_images]", "1000000000"]),
    ("train-images-1e8", "data:\n  train_images: 100000000\n", [], ["[data.train_images]", "training images"]),
    ("channels-huge", "models:\n  m: {channels: [100000, 100000]}\n", [], ["[models.m.channels]", "networks"]),
    # YAML
    ("alias-bomb", _bomb(), [], ["more than 10000 values"]),
    ("recursive-alias", "a: &a [*a]\nname: x\n", [], ["contains itself"]),
    ("deep-nesting", "name: " + "[" * 200 + "]" * 200 + "\n", [], ["more than 50 levels"]),
    ("yaml-syntax", "name: x\ndata:\n  canvas: [32\n", [], ["YAML syntax error", "line", "column"]),
    ("empty-file", "", [], ["empty", "name: my_experiment", "conv_gap: {arch: conv_gap}"]),
    ("comments-only", "# nothing here\n", [], ["empty", "name: my_experiment"]),
    ("top-level-list", "- a\n- b\n", [], ["top level must be a mapping", "list"]),
    ("two-documents", "name: a\n---\nname: b\n", [], ["single document"]),
    ("bad-date", "name: 2001-13-45\n", [], ["not readable as YAML", "month"]),
    ("5000-digit-int", "seeds: [" + "9" * 5000 + "]\n", [], ["not readable as YAML", "more than 4300 digits"]),
    # --set
    ("set-no-equals", "name: x\n", ["abc"], ["--set 'abc'", "KEY.PATH=VALUE"]),
    ("set-only-equals", "name: x\n", ["="], ["--set '='", "empty part"]),
    ("set-empty-part", "name: x\n", ["a..b=1"], ["--set 'a..b=1'", "empty part"]),
    ("set-into-a-value", "name: x\n", ["data=5", "data.x=1"], ["--set 'data.x=1'", "data holds a value (5)"]),
    ("set-into-a-list", "name: x\n", ["seeds.0=1"], ["--set 'seeds.0=1'", "seeds is a single setting"]),
    ("set-into-a-list-in-file", "seeds: [0]\n", ["seeds.0=1"], ["--set 'seeds.0=1'", "seeds holds a value ([0])"]),
    ("set-huge-value", "name: x\n", ["data.test_images=" + "9" * 30], ["[data.test_images]", "from --set data.test_images=9"]),
    ("set-bad-yaml", "name: x\n", ["seeds=[0, 1"], ["--set 'seeds=[0, 1'", "YAML syntax error"]),
    ("set-unknown-key", "name: x\n", ["nope.key=3"], ["[nope]", "unknown key", "from --set nope.key=3"]),
    ("set-bool", "name: x\n", ["train.epochs=true"], ["[train.epochs]", "not a boolean", "from --set train.epochs=true"]),
    ("set-undefined-alias", "name: x\n", ["name=*x"], ["--set 'name=*x'", "undefined alias"]),
    ("set-typo", "name: x\n", ["train.epoch=3"], ["[train.epoch]", "did you mean 'epochs'", "from --set"]),
]


@pytest.mark.parametrize("text, overrides, needles", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs(tmp_path, text, overrides, needles):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text), overrides=overrides)
    msg = str(e.value)
    assert type(e.value) is ConfigError
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert len(msg) < 2000 and "Traceback" not in msg


def test_huge_test_set_is_refused_before_any_allocation(tmp_path):
    """10**9 test images was an 8 GB allocation and a traceback; now an estimate, the rule and the key.
    (How long the refusal takes: bench/config_refusals.py.)"""
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as e:
            load_config(write(tmp_path, "data:\n  test_images: 1000000000\n"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert "[data.test_images]" in msg and "1000000000" in msg and "TiB" in msg
    assert "half the physical memory" in msg and "lower it" in msg
    assert peak < 16 * 2**20  # refused from the estimate: no image array was made (about 1 MiB when written)


def test_memory_rule_and_estimate_of_the_shipped_configs(quick_config_path):
    limit, rule = memory_limit()
    assert 0 < limit <= MEMORY_CAP == 4 * 2**30 and "4 GiB" in rule
    for path in quick_config_path.parent.glob("*.yaml"):
        cfg = load_config(path)
        check_resources(cfg)
        assert sum(b for b, _ in memory_estimate(cfg).values()) < 2**30  # the shipped runs need well under 1 GiB
    cfg = parse_config({"data": {"test_images": 100}})
    more = parse_config({"data": {"test_images": 200}})
    assert memory_estimate(more)["test images"][0] == 2 * memory_estimate(cfg)["test images"][0]


def test_seeds_are_32_bit(tmp_path):
    """a seed of 99999999999999999999 gave a traceback."""
    assert parse_config({"seeds": [0, 2**32 - 1], "data": {"seed": 2**32 - 1}}).seeds == [0, 2**32 - 1]
    for raw, key in [({"seeds": [99999999999999999999]}, "[seeds.0]"), ({"data": {"seed": 2**32}}, "[data.seed]"),
                     ({"data": {"seed": -1}}, "[data.seed]")]:
        with pytest.raises(ConfigError, match=re.escape(key) + r" seeds are 32-bit: 0 \.\. 4294967295"):
            parse_config(raw)


def test_alias_bomb_is_refused_at_once(tmp_path):
    """nine levels of nine aliases hung, growing past 1.8 GB, in the error formatter's repr(). Refused
    before anything grows: at most a few MiB in Python objects (tens of KiB when written; how long it takes:
    bench/config_refusals.py)."""
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="more than 10000 values") as e:
            load_config(write(tmp_path, _bomb()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20 and len(str(e.value)) < 400
    with pytest.raises(ConfigError, match="more than 10000 values"):  # the same bomb in a --set value
        load_config(write(tmp_path, "name: x\n"), overrides=["data.letters=" + _flow_bomb()])
    lols = ["lol"] * 9
    for _ in range(8):
        lols = [lols] * 9
    with pytest.raises(ConfigError, match="more than 10000 values"):  # a Python structure with shared parts
        parse_config({"name": lols})
    # a small alias is fine
    cfg = load_config(write(tmp_path, "name: x\nmodels:\n  a: &m {arch: conv_gap, channels: [4]}\n  b: *m\n"))
    assert cfg.models["a"] == cfg.models["b"]


def _flow_bomb():
    """A bomb in one line of YAML flow style: anchors inside a flow sequence."""
    items = '&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    parts = [items]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        parts.append(f"&{cur} [{', '.join(['*' + prev] * 9)}]")
    return "[" + ", ".join(parts) + "]"


def test_messages_quote_at_most_a_few_hundred_characters_of_input(tmp_path):
    long = "z" * 100_000
    for text in [f"name: {long}\n", f"data:\n  fonts: [{long}]\n", f"{long}: 1\n", f"models:\n  m: {{arch: {long}}}\n",
                 f"seeds: [{', '.join(['true'] * 5000)}]\n"]:
        with pytest.raises(ConfigError) as e:
            load_config(write(tmp_path, text))
        assert len(str(e.value)) < 2500, len(str(e.value))


STRICT = [  # (id, config text, key, a string the message must contain)
    ("bool-epochs", "train:\n  epochs: true\n", "[train.epochs]", "not a boolean"),
    ("bool-batch-size", "train:\n  batch_size: false\n", "[train.batch_size]", "not a boolean"),
    ("bool-size", "data:\n  size: true\n", "[data.size]", "not a boolean"),
    ("inf-lr", "train:\n  lr: .inf\n", "[train.lr]", "finite"),
    ("nan-size", "data:\n  size: .nan\n", "[data.size]", "finite"),
    ("inf-in-range", "sweep:\n  dx: [-.inf, 0]\n", "[sweep.dx.0]", "finite"),
    ("quoted-epochs", "train:\n  epochs: '5'\n", "[train.epochs]", "without quotes"),
    ("quoted-size", "data:\n  size: '12'\n", "[data.size]", "without quotes"),
    ("null-letter", "data:\n  letters: [A, ~]\n", "[data.letters.1]", "must be a string"),
    ("yes-as-name", "name: yes\n", "[name]", "must be a string"),
]


@pytest.mark.parametrize("text, key, needle", [c[1:] for c in STRICT], ids=[c[0] for c in STRICT])
def test_strict_types(tmp_path, text, key, needle):
    """no booleans or strings for numbers, finite floats only."""
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert key in str(e.value) and needle in str(e.value)


def test_numbers_people_write_are_accepted(tmp_path):
    cfg = load_config(write(tmp_path, "train:\n  lr: 1e-3\n  weight_decay: 1\ndata:\n  size: 12\n  noise: 5E-2\n"))
    assert cfg.train.lr == 1e-3 and cfg.train.weight_decay == 1.0 and isinstance(cfg.data.size, float)
    assert cfg.data.noise == 0.05
    assert load_config(write(tmp_path, "name: x\n"), overrides=["train.lr=3e-4"]).train.lr == 3e-4


def test_empty_file_is_refused_with_an_example(tmp_path):
    """an empty file ran a default experiment."""
    for text in ["", "\n\n", "# comment only\n", "---\n", "~\n"]:
        with pytest.raises(ConfigError) as e:
            load_config(write(tmp_path, text))
        example = str(e.value).split("e.g.\n", 1)[1].split("(every")[0]
        assert parse_config(yaml.safe_load(example)).models  # the example in the message is itself a valid config
    assert parse_config({}).name == "experiment"  # an explicit empty mapping still means "all defaults"


def test_one_class_is_refused_but_fine_for_the_position_task():
    """one letter is one class; the position task's classes are the two halves."""
    with pytest.raises(ConfigError, match=r"\[data.letters\] task: letter needs at least two letters"):
        parse_config({"data": {"letters": ["A"]}})
    cfg = parse_config({"data": {"letters": ["A"], "task": "position", "size": 10}, "sweep": {"mode": "circular"}})
    assert cfg.data.letters == ["A"]


def test_letters_must_fit_the_canvas():
    """the largest letter (size * (1 + jitter) + the thickest stroke, widest glyph) must fit."""
    assert parse_config({"data": {"size": 27.27}}).data.size == 27.27  # 27.27 * 1.1 + 2 = 31.997 <= 32
    with pytest.raises(ConfigError, match=r"\[data.size\].*at most 27.27 px"):
        parse_config({"data": {"size": 27.3}})
    height, width, widest = letter_size(parse_config({}).data)
    assert height == pytest.approx(16 * 1.1 + 2) and 2 < width < height and widest[0] in "AB"
    assert letter_size(DataConfig(letters=["A", "W"]))[1] > height  # W is wider than tall
    with pytest.raises(ConfigError, match=r"\[data.train_shift\]"):
        parse_config({"data": {"train_shift": 20}})


def test_sweep_shifts_must_keep_the_letter_in_the_frame():
    """shifts that blank every image (canvas) or repeat a smaller roll (circular) are refused."""
    data = parse_config({}).data
    _, width, _ = letter_size(data)
    edge = 16 + width / 2
    ok = SweepConfig(dx=[-math.floor(edge), math.floor(edge)])
    check_sweep_fits(data, ok, "--dx")
    with pytest.raises(ConfigError) as e:
        check_sweep_fits(data, SweepConfig(dx=[0, math.ceil(edge)]), "invlab sweep --dx")
    msg = str(e.value)
    assert msg.startswith("invlab sweep --dx: [sweep.dx]") and f"{edge:.4g}" in msg and "blank" in msg
    check_sweep_fits(data, SweepConfig(mode="circular", dx=[-31, 31]), "--dx")
    with pytest.raises(ConfigError, match=r"\|dx\| < 32"):
        check_sweep_fits(data, SweepConfig(mode="circular", dx=[0, 32]), "--dx")
    with pytest.raises(ConfigError, match="too big to run"):
        check_sweep_fits(data.model_copy(update={"test_images": 10**8}), ok, "--dx")


SET_STRINGS = [  # (id, overrides on configs/quick.yaml, a string the message must contain)
    ("no-equals", ["abc"], "KEY.PATH=VALUE"), ("only-equals", ["="], "empty part"), ("double-dot", ["a..b=1"], "empty part"),
    ("dot-only", [".=1"], "empty part"), ("into-a-value", ["data=5", "data.x=1"], "holds a value"),
    ("into-a-list", ["seeds.0=1"], "holds a value ([0, 1])"), ("into-a-setting", ["train.optimizer.x=1"], "single setting"),
    ("into-a-factor", ["models.m.channels.0=1"], "single setting"),
    ("40-digit-int", ["data.test_images=" + "9" * 40], "[data.test_images] Input should be less than or equal to"),
    ("unclosed-list", ["seeds=[0, 1"], "YAML syntax error"), ("unclosed-brace", ["name={"], "YAML"),
    ("unknown-key", ["nope.key=3"], "[nope] unknown key"), ("nested-list", ["data.letters=[A, [B]]"], "[data.letters.1]"),
    ("10000-char-name", ["name=" + "x" * 10_000], "at most 100 characters"), ("nul-key", ["\x00=1"], "['\\x00'] unknown key"),
    ("inf", ["train.lr=.inf"], "finite"), ("empty-value", ["train.epochs="], "[train.epochs] Input should be a valid integer"),
    ("control-chars", ["data.fonts=[\x07]"], "not readable as YAML"),
]


@pytest.mark.parametrize("overrides, needle", [c[1:] for c in SET_STRINGS], ids=[c[0] for c in SET_STRINGS])
def test_malformed_set_strings(quick_config_path, overrides, needle):
    """every malformed --set is a clean message."""
    with pytest.raises(ConfigError) as e:
        load_config(quick_config_path, overrides=overrides)
    assert needle in str(e.value) and len(str(e.value)) < 2500


def test_parse_range_and_check_range_are_public():
    """the CLI's START:STOP[:STEP] parser lives here, with the config's range rules."""
    assert parse_range("-4:4:0.5", "--dx") == [-4.0, 4.0, 0.5]
    assert parse_range("3", "--dy") == [3.0, 3.0, 1.0]
    assert check_range([0, 2], "dx") == [0.0, 2.0, 1.0]
    for text, needle in [("a:b", "START:STOP"), ("4:2", "stop"), ("0:4:0", "step"), ("nan:1", "finite"),
                         ("1:2:3:4", "[start, stop, step]"), ("0:100000:0.001", "10000 steps"), ("", "START:STOP"),
                         ("３", "START:STOP"), ("1_0:1_0", "START:STOP"),  # float() reads both as numbers
                         ("-1:1:0.3", "does not reach its stop: in steps of 0.3 from -1 the last value is 0.8"),
                         ("0.5:1", "the last value is 0.5")]:  # a typed range only: stored ones are read as swept
        with pytest.raises(ConfigError, match=re.escape(needle)):
            parse_range(text, "--dx")
    assert check_range([-2, 2, 1.5], "dx") == [-2.0, 2.0, 1.5]  # a run folder's config, as an older version wrote it


def test_every_field_has_a_comment():
    """every config field carries a one-line comment, as the README's configuration reference."""
    schemas = {c.__name__ for c in (Config, DataConfig, ModelSpec, TrainConfig, SweepConfig)}
    seen = set()
    for module in {inspect.getmodule(c) for c in (Config, DataConfig, ModelSpec, TrainConfig, SweepConfig)}:
        source = inspect.getsource(module)  # each section in its own module (schema/data.py, ...)
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef) and node.name in schemas:
                for field in node.body:
                    if isinstance(field, ast.AnnAssign):
                        assert "  # " in lines[field.lineno - 1], (node.name, field.target.id)
                        seen.add((node.name, field.target.id))
    assert len(seen) == sum(len(c.model_fields) for c in (Config, DataConfig, ModelSpec, TrainConfig, SweepConfig))


def test_cli_prints_the_message_and_exits_2(tmp_path):
    from typer.testing import CliRunner

    from invariance_lab.cli.main import app

    for text, extra, needle in [("", [], "empty"), (_bomb(), [], "10000 values"),
                                ("name: x\n", ["--set", "seeds=[99999999999999999999]"], "from --set")]:
        res = CliRunner().invoke(app, ["run", str(write(tmp_path, text)), "--results-dir", str(tmp_path / "r"), *extra])
        assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
        assert not (tmp_path / "r").exists()


def test_schema_limits_and_configfile_depend_one_way():
    """schema/config.py holds the schema; config/limits.py and config/load.py build on it, and so does its YAML reader
    schema/safeyaml.py. The schema imports none of them."""
    top = [node for node in ast.parse(inspect.getsource(config_module)).body
           if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top for a in n.names] + [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.split(".")[-1] in ("limits", "safeyaml", "configfile")], names


def _documented_messages() -> dict[str, str]:
    """docs/bad_inputs.md: the message its table gives for each test_bad_inputs case (a row naming one id only)."""
    rows = {}
    for line in (ROOT / "docs" / "bad_inputs.md").read_text().splitlines():
        ids = re.findall(r"`test_bad_inputs\[([^\]]+)\]`", line)
        if len(ids) == 1 and line.startswith("| "):
            rows[ids[0]] = line.rstrip(" |").split(" | ")[-1].replace("\\|", "|")  # markdown's escaped pipe
    return rows


def test_the_docs_quote_each_bad_input_message_as_it_is(tmp_path):
    # the table's messages are copied from the command's output: a message reworded in the code must be reworded
    # there too. The memory refusals name this machine's memory, so they are compared up to it.
    cases = {c[0]: c[1:] for c in BAD_INPUTS}
    documented = _documented_messages()
    assert len(documented) > 50 and set(documented) <= set(cases)
    stale = []
    for case, doc in documented.items():
        text, overrides, _ = cases[case]
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as e:
            load_config(path, overrides=overrides)
        said = " ".join(str(e.value).replace(str(path), "cfg.yaml").split())
        machine = r"this machine has [\d.]+ \w+"
        if re.sub(machine, "", said) != re.sub(machine, "", " ".join(doc.split())):
            stale.append(f"{case}:\n  docs: {doc}\n  says: {said}")
    assert not stale, "docs/bad_inputs.md is stale:\n" + "\n".join(stale)
