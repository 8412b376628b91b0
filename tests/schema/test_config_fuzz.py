"""Fuzz the config loader: whatever the input (values at every key, --set strings, YAML text, whole structures),
the answer is a Config or a ConfigError, never another exception (how quickly the known worst inputs are refused:
bench/config_refusals.py). A config that is accepted must validate again from its own to_yaml output (what a run
folder saves and `invlab sweep` reloads).

Only parse_config / load_config run here: nothing is drawn, built or trained. Reproducible: derandomize=True.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invariance_lab.schema.config import Config, DataConfig, ModelSpec, SweepConfig, TrainConfig
from invariance_lab.core.errors import ConfigError
from invariance_lab.config.load import load_config, parse_config, to_yaml
from invariance_lab.config.models import resolved_models

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

BASE = {
    "name": "fuzz", "seeds": [0], "device": "cpu",
    "data": {"letters": ["A", "B"], "fonts": ["futural"], "canvas": 24, "size": 10, "train_images": 20,
             "test_images": 8},
    "models": {"m": {"arch": "conv_gap", "channels": [4]}},
    "train": {"epochs": 1, "batch_size": 8},
    "sweep": {"dx": [-2, 2], "dy": [0, 0], "grid": "axes"},
}
SECTIONS = {"data": DataConfig, "train": TrainConfig, "sweep": SweepConfig}
KEYS = ([("name",), ("seeds",), ("device",), ("data",), ("models",), ("train",), ("sweep",), ("models", "m"),
         ("bogus",), ("data", "bogus")]
        + [(s, f) for s, cls in SECTIONS.items() for f in cls.model_fields]
        + [("models", "m", f) for f in ModelSpec.model_fields])
FIELD_NAMES = sorted({k[-1] for k in KEYS})

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-300, 300), st.integers(), st.integers(-2**80, 2**80),
    st.sampled_from([2**32 - 1, 2**32, -1, 0, 1, 2, 10**9, 10**20, 10**400]),
    st.floats(), st.floats(-300, 300), st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e-300, -0.0]),
    st.text(max_size=20),
    st.sampled_from(["A", "B", "Z", "a", "", "canvas", "circular", "letter", "position", "product", "axes", "auto",
                     "cpu", "cuda", "conv_gap", "conv_maxpool", "aps", "max", "blur_max", "global_avg", "zeros",
                     "circular", "valid", "futural", "timesr", "scripts", "adam", "sgd", "1e-3", "5", "true",
                     "x" * 500]),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8), st.integers(-3, 3), st.booleans(), st.none())
values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=6),
                                                      st.dictionaries(keys, kids, max_size=4)), max_leaves=12)
# valid or nearly valid values per key, so that a good share of the configs is accepted and round-tripped
ranges = st.lists(st.integers(-12, 12), min_size=2, max_size=2).map(sorted)
GOOD = {
    ("name",): st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True),
    ("seeds",): st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3, unique=True),
    ("device",): st.sampled_from(["auto", "cpu"]),
    ("data", "letters"): st.lists(st.sampled_from("ABCDEFMWXYZ"), min_size=2, max_size=4, unique=True),
    ("data", "fonts"): st.lists(st.sampled_from(["futural", "futuram", "timesr", "gothicger", "scripts"]),
                                min_size=1, max_size=3, unique=True),
    ("data", "canvas"): st.integers(8, 64),
    ("data", "size"): st.one_of(st.integers(1, 30), st.floats(0.5, 30)),
    ("data", "size_jitter"): st.floats(0, 0.5),
    ("data", "thickness"): st.lists(st.floats(0.1, 3), min_size=2, max_size=2).map(sorted),
    ("data", "noise"): st.floats(0, 1),
    ("data", "train_images"): st.integers(2, 100),
    ("data", "test_images"): st.integers(1, 100),
    ("data", "train_shift"): st.one_of(st.integers(0, 10), st.floats(0, 10)),
    ("data", "train_mode"): st.sampled_from(["canvas", "circular"]),
    ("data", "task"): st.sampled_from(["letter", "position"]),
    ("data", "seed"): st.integers(0, 2**32 - 1),
    ("models", "m", "arch"): st.sampled_from(["conv_only", "conv_maxpool", "strided_conv", "conv_gap", "aps",
                                              "blurpool", "conv_maxpool_gap"]),
    ("models", "m", "downsample"): st.sampled_from(["none", "max", "avg", "stride", "blur_max", "aps_max"]),
    ("models", "m", "head"): st.sampled_from(["flatten", "global_avg", "global_max"]),
    ("models", "m", "padding"): st.sampled_from(["zeros", "circular", "reflect", "valid"]),
    ("models", "m", "channels"): st.lists(st.integers(1, 8), min_size=1, max_size=4),
    ("models", "m", "kernel"): st.integers(1, 7),
    ("models", "m", "blur_size"): st.integers(1, 5),
    ("train", "epochs"): st.integers(0, 5),
    ("train", "batch_size"): st.integers(1, 100),
    ("train", "lr"): st.one_of(st.floats(1e-5, 1), st.integers(1, 2)),
    ("train", "weight_decay"): st.floats(0, 0.1),
    ("train", "optimizer"): st.sampled_from(["adam", "adamw", "sgd"]),
    ("sweep", "mode"): st.sampled_from(["canvas", "circular"]),
    ("sweep", "dx"): st.one_of(ranges, ranges.map(lambda r: r + [1])),
    ("sweep", "dy"): st.one_of(ranges, st.just([0, 0])),
    ("sweep", "grid"): st.sampled_from(["product", "axes"]),
    ("sweep", "batch_size"): st.integers(1, 1000),
}
good_changes = st.sampled_from(sorted(GOOD)).flatmap(lambda k: st.tuples(st.just(k), GOOD[k]))
wild_changes = st.tuples(st.sampled_from(KEYS), values)
INT_KEYS = [("seeds",), ("data", "canvas"), ("data", "train_images"), ("data", "test_images"), ("data", "seed"),
            ("models", "m", "kernel"), ("train", "epochs"), ("train", "batch_size"), ("sweep", "batch_size")]
huge = st.sampled_from([10**30, 10**400, 2**63 - 1, 2**63, -(2**63) - 1, 2**32, 10**12])
huge_changes = st.one_of(st.tuples(st.sampled_from(INT_KEYS), huge),
                         st.tuples(st.sampled_from([("seeds",), ("models", "m", "channels")]), st.lists(huge, min_size=1,
                                                                                                      max_size=2)))
changes = st.one_of(good_changes, good_changes, good_changes, wild_changes, huge_changes)


def set_at(raw: dict, path: tuple, value) -> None:
    node = raw
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


def accept_or_refuse(call, *args, **kwargs) -> Config | None:
    """The Config, or None for a ConfigError; any other exception fails the test. (A hang shows as a test that
    does not end; how long the known bombs take: bench/config_refusals.py.)"""
    try:
        cfg = call(*args, **kwargs)
        assert isinstance(cfg, Config)
    except ConfigError as e:
        cfg = None
        assert len(str(e)) < 4000, str(e)[:500]
    return cfg


def round_trips(cfg: Config, folder) -> None:
    path = folder / "config.yaml"
    path.write_text(to_yaml(cfg), encoding="utf-8")
    again = load_config(path)
    assert again.model_dump(exclude={"models"}) == cfg.model_dump(exclude={"models"})
    assert resolved_models(again) == resolved_models(cfg)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def test_the_base_config_is_valid(folder):
    round_trips(parse_config(copy.deepcopy(BASE)), folder)


@settings(FUZZ, max_examples=450)
@given(changes=st.lists(changes, min_size=1, max_size=4))
def test_random_values_at_every_key(folder, changes):
    raw = copy.deepcopy(BASE)
    for path, value in changes:
        set_at(raw, path, value)
    cfg = accept_or_refuse(parse_config, raw, "fuzz.yaml")
    if cfg is not None:
        round_trips(cfg, folder)


def _flow(v) -> str:
    try:
        return yaml.safe_dump(v, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
    except yaml.YAMLError:
        return repr(v)


set_strings = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="=.abcdeinst_[]{}:,01 -*&!'\"", max_size=30),
    st.builds(lambda k, v: f"{'.'.join(map(str, k))}={v}", st.sampled_from(KEYS),
              st.one_of(st.text(max_size=20), values.map(_flow))),
    good_changes.map(lambda kv: f"{'.'.join(kv[0])}={_flow(kv[1])}"),
    good_changes.map(lambda kv: f"{'.'.join(kv[0])}={_flow(kv[1])}"),
    st.builds(lambda k, v: f"{k}={v}", st.text(max_size=12), st.text(max_size=12)),
)


@settings(FUZZ, max_examples=350)
@given(overrides=st.lists(set_strings, min_size=1, max_size=3))
def test_random_set_strings(folder, overrides):
    cfg = accept_or_refuse(parse_config, copy.deepcopy(BASE), "fuzz.yaml", overrides)
    if cfg is not None:
        round_trips(cfg, folder)


def _mutate(text: str, data) -> str:
    """Insert, delete or replace a few characters of a YAML text."""
    chars = list(text)
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(chars)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        c = data.draw(st.sampled_from(list("&*[]{}:-!|>'\"%@`#,?\n \t0a.~=<")))
        if op == "insert":
            chars.insert(i, c)
        elif chars:
            chars[min(i, len(chars) - 1)] = c if op == "replace" else ""
    return "".join(chars)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_random_yaml_text(folder, data):
    kind = data.draw(st.sampled_from(["text", "dump", "mutated"]))
    if kind == "text":
        text = data.draw(st.text(max_size=200))
    else:
        raw = copy.deepcopy(BASE)
        for path, value in data.draw(st.lists(changes, max_size=3)):
            set_at(raw, path, value)
        text = yaml.safe_dump(raw, default_flow_style=data.draw(st.booleans()), allow_unicode=True)
        if kind == "mutated":
            text = _mutate(text, data)
    path = folder / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    cfg = accept_or_refuse(load_config, path)
    if cfg is not None:
        round_trips(cfg, folder)


@settings(FUZZ, max_examples=200)
@given(raw=st.one_of(values, st.dictionaries(st.one_of(st.sampled_from(list(Config.model_fields)), keys), values,
                                             max_size=6)))
def test_random_structures(raw):
    accept_or_refuse(parse_config, raw, "fuzz.yaml")
