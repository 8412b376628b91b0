"""schema/safeyaml.py: what the YAML reader refuses before any config is built."""

import pytest

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
