"""The config's paper: block (schema/paper.py): published numbers checked, and absent, nothing changed."""

import pytest

from invariance_lab.config.load import parse_config, to_yaml
from invariance_lab.core.errors import ConfigError
from invariance_lab.schema.paper import published
from invariance_lab.store.checkpoints import unit_fingerprints
from invariance_lab.store.find import config_digest

BOXES = {"data": {"source": "boxes", "test_sets": {"dissimilar": {"test_set": "dissimilar"}}},
         "models": {"valid": {"arch": "strided_conv", "padding": "valid", "channels": [4]}}}


def test_a_paper_block_holds_percent_or_mean_and_std_and_changes_no_fingerprint():
    cfg = parse_config({**BOXES, "paper": {"valid": {"clean_accuracy": 100.0,
                                                     "dissimilar.clean_accuracy": [0.2, 0.1]}}})
    plain = parse_config(BOXES)
    assert unit_fingerprints(cfg) == unit_fingerprints(plain)  # the block trains and measures nothing
    assert "paper" in to_yaml(cfg) and "paper" not in to_yaml(plain)
    assert published([0.2, 0.1]) == (0.2, 0.1) and published(100) == (100.0, None)


def test_a_config_without_a_paper_block_keeps_its_digest():
    """The digest of the default config as it was before paper: and test_sets: existed."""
    assert config_digest(to_yaml(parse_config({}))) == config_digest(to_yaml(parse_config({"paper": None})))
    assert "paper" not in to_yaml(parse_config({})) and "test_sets" not in to_yaml(parse_config({}))


@pytest.mark.parametrize("paper, words", [
    ({"valid": {"clean_acc": 99}}, "unknown metric 'clean_acc'; did you mean 'clean_accuracy'?"),
    ({"valid": {"clean_accuracy": 0.998e3}}, "a percentage in [0, 100]"),
    ({"valid": {"clean_accuracy": [99.8]}}, "[mean, std]"),
    ({"valid": {"clean_accuracy": [99.8, -1]}}, "std >= 0"),
    ({"valid": {"clean_accuracy": True}}, "a percentage"),
    ({"vallid": {"clean_accuracy": 99}}, "unknown model 'vallid'; did you mean 'valid'?"),
    ({"valid": {"similar.clean_accuracy": 99}}, "unknown test set 'similar'"),
    ({"valid": []}, "each model maps metrics"),
    ({"compare": "rank", "valid": {"clean_accuracy": 99}}, "unknown comparison 'rank'"),
    ({"compare": "order", "valid": {"clean_accuracy": 99}}, "only one model has clean_accuracy"),
    ({"compare": "order"}, "names no model"),
])
def test_a_bad_paper_block_is_refused_naming_the_key(paper, words):
    with pytest.raises(ConfigError) as e:
        parse_config({**BOXES, "paper": paper})
    assert "paper" in str(e.value) and words in str(e.value)


def test_compare_order_is_a_setting_beside_the_models_not_a_model():
    two = {"valid": {"arch": "strided_conv", "padding": "valid", "channels": [4]},
           "same": {"arch": "strided_conv", "padding": "zeros", "channels": [4]}}
    cfg = parse_config({**BOXES, "models": two, "paper": {"compare": "order", "valid": {"clean_accuracy": 99},
                                                          "same": {"clean_accuracy": 98}}})
    assert cfg.paper["compare"] == "order"
    # a model may still be called compare: its entry is a mapping, the setting a word
    named = {"compare": two["valid"], "same": two["same"]}
    cfg = parse_config({**BOXES, "models": named, "paper": {"compare": {"clean_accuracy": 99}}})
    assert cfg.paper == {"compare": {"clean_accuracy": 99}}
