"""schema/safeyaml.py: what the YAML reader refuses before any config is built."""

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError
from invariance_lab.schema.safeyaml import load_yaml


@pytest.mark.parametrize("text, line", [
    ("name: a\nname: b\n", 2),  # the top level
    ("train:\n  epochs: 5\n  lr: 0.1\n  epochs: 50\n", 4),  # a section
    ("models:\n  m: {arch: conv_gap, arch: conv_maxpool}\n", 2),  # a flow mapping
    ("seeds: [0, 1]\n1: x\n1: y\n", 3),  # any hashable key
])
def test_a_key_given_twice_is_refused_naming_its_line(text, line):
    with pytest.raises(ConfigError, match=rf"x\.yaml: .* line {line}, .*a second time; give each key once"):
        load_yaml(text, "x.yaml")


def test_merged_keys_may_still_be_overridden():
    """`<<: *base` then a key of its own is YAML's way to override: not a duplicate."""
    data = load_yaml("base: &b {epochs: 1, lr: 0.1}\ntrain:\n  <<: *b\n  epochs: 2\n", "x.yaml")
    assert data["train"] == {"epochs": 2, "lr": 0.1}


def test_the_same_key_in_two_mappings_is_fine():
    assert load_yaml("a: {k: 1}\nb: {k: 2}\n", "x.yaml") == {"a": {"k": 1}, "b": {"k": 2}}


@pytest.mark.parametrize("text, value", [
    ("1:30", "1:30"), ("-4:4", "-4:4"), ("190:20:30.15", "190:20:30.15"),  # YAML 1.1's base 60: text here
    ("017", 17), ("0o17", 15), ("0x1f", 31), ("-0x10", -16), ("0b101", 5), ("1_000", 1000), ("+7", 7),
    ("1.5", 1.5), (".5", 0.5), ("1.", 1.0), ("-2.5e-2", -0.025), ("1e-3", 0.001), ("3.14_15", 3.1415),
    (".inf", float("inf")), ("-.inf", float("-inf")), ("0x_", "0x_"),
])
def test_numbers_read_as_yaml_1_2_reads_them(text, value):
    got = load_yaml(f"a: {text}\n", "cfg.yaml")["a"]
    assert got == value and type(got) is type(value)


def test_a_range_written_with_colons_in_set_is_refused_as_written(tmp_path):
    res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--set", "train.batch_size=1:30", "--results-dir",
                                   str(tmp_path / "r")])
    assert res.exit_code == 2 and "[train.batch_size] must be an integer (got '1:30')" in res.output, res.output
    assert not (tmp_path / "r").exists()
