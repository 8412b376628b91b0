"""factorial: models from the product of factor lists, named by their factors, merged with the hand-written ones."""

import json

import pytest
import yaml
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError
from invariance_lab.config.load import load_config, parse_config, to_yaml
from invariance_lab.config.factorial import expand, left_out, value_name
from invariance_lab.store.find import config_digest
from invariance_lab.config.models import resolved_models

QUICK = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())


def quick(**changes) -> dict:
    raw = {k: v for k, v in QUICK.items() if k != "models"}
    raw.update(changes)
    return raw


def test_the_product_is_expanded_in_order_and_named_by_its_factors():
    cfg = parse_config(quick(factorial={"downsample": ["none", "max"], "head": ["flatten", "global_avg"],
                                        "padding": ["zeros", "circular"]}))
    assert list(cfg.models) == ["none-flatten-zeros", "none-flatten-circular", "none-global_avg-zeros",
                                "none-global_avg-circular", "max-flatten-zeros", "max-flatten-circular",
                                "max-global_avg-zeros", "max-global_avg-circular"]
    factors = resolved_models(cfg)["max-global_avg-circular"]
    assert (factors["downsample"], factors["head"], factors["padding"]) == ("max", "global_avg", "circular")
    assert factors["channels"] == [16, 32, 32]  # the defaults fill what the factorial does not list


def test_numbers_read_in_names_and_a_single_arch_is_the_base():
    assert value_name("channels", [4, 8]) == "c4x8" and value_name("kernel", 5) == "k5"
    cfg = parse_config(quick(factorial={"arch": "conv_maxpool", "kernel": [3, 5], "blur_size": [2, 3]}))
    assert list(cfg.models) == ["k3-blur2", "k3-blur3", "k5-blur2", "k5-blur3"]
    assert all(f["downsample"] == "max" and f["arch"] == "conv_maxpool" for f in resolved_models(cfg).values())


def test_combinations_that_cannot_be_built_are_left_out_and_hand_written_models_come_first():
    # 22 px, two blocks: the map is 11 px at the second block, odd, which APS cannot subsample
    raw = quick(data=dict(QUICK["data"], canvas=22), models={"mine": {"arch": "conv_gap", "channels": [4, 8]}},
                factorial={"downsample": ["max", "aps_max"], "head": ["global_avg"], "channels": [[4, 8]]})
    cfg = parse_config(raw)
    assert list(cfg.models) == ["mine", "max-global_avg-c4x8"]
    skipped = left_out(cfg)
    assert list(skipped) == ["aps_max-global_avg-c4x8"] and "even feature map" in skipped["aps_max-global_avg-c4x8"]
    # ... but a hand-written model that asks for such a combination is refused, naming it
    raw["models"]["bad"] = {"downsample": "aps_max", "channels": [4, 8]}
    with pytest.raises(ConfigError, match=r"\[models\.bad\].*even feature map"):
        parse_config(raw)


def test_nothing_buildable_is_an_error():
    raw = quick(data=dict(QUICK["data"], canvas=22), factorial={"downsample": ["aps_max"], "channels": [[4, 8]]})
    with pytest.raises(ConfigError, match=r"\[factorial\] no combination of factorial can be built on a 22px"):
        parse_config(raw)


@pytest.mark.parametrize("factorial, words", [
    ({"downsample": ["maxx"]}, r"\[factorial\.downsample\] unknown downsample 'maxx'; did you mean 'max'"),
    ({"pooling": ["max"]}, r"\[factorial\.pooling\] unknown factor 'pooling'; .*choose one of: arch, downsample"),
    ({"kernel": [3, 3]}, r"\[factorial\.kernel\] lists 3 twice"),
    ({"head": []}, r"\[factorial\.head\] must be a non-empty list"),
    ({"head": "flatten"}, r"\[factorial\.head\] must be a non-empty list"),
    ({"kernel": ["3"]}, r"\[factorial\.kernel\] value '3'"),
    ({"factory": ["m:f"]}, r"unknown factor 'factory'.*models:"),
])
def test_bad_factorials_are_refused_once_naming_the_key(factorial, words):
    with pytest.raises(ConfigError, match=words) as e:
        parse_config(quick(factorial=factorial))
    assert "[models]" not in str(e.value)  # the missing models: are not a second complaint


def test_a_name_clash_with_other_factors_is_refused():
    raw = quick(models={"max-flatten": {"arch": "conv_gap"}}, factorial={"downsample": ["max"], "head": ["flatten"]})
    with pytest.raises(ConfigError, match=r"\[models\.max-flatten\].*both written under models: and made by"):
        parse_config(raw)


def test_configs_without_factorial_keep_their_digest_and_the_resolved_config_reads_back_the_same():
    text = to_yaml(load_config(ROOT / "configs" / "quick.yaml"))
    assert "factorial" not in text  # so every earlier run's fingerprint and digest stay as they were
    cfg = load_config(ROOT / "configs" / "factorial.yaml")
    assert len(cfg.models) == 20 and not left_out(cfg)
    text = to_yaml(cfg)
    again = parse_config(yaml.safe_load(text))  # a run folder's config.yaml: factorial and every model resolved
    assert resolved_models(again) == resolved_models(cfg) and list(again.models) == list(cfg.models)
    assert config_digest(to_yaml(again)) == config_digest(to_yaml(parse_config(yaml.safe_load(to_yaml(again)))))


def test_expand_is_empty_without_a_factorial():
    assert not expand(None, 32).models and not expand(None, 32).left_out


def test_invlab_run_records_and_prints_what_was_left_out(tmp_path, one_thread):
    config = tmp_path / "fact.yaml"
    config.write_text(yaml.safe_dump(quick(
        seeds=[0], data=dict(QUICK["data"], canvas=22, train_images=20, test_images=8), train={"epochs": 0},
        factorial={"downsample": ["none", "aps_max"], "head": ["global_avg"], "channels": [[4, 8]]}), sort_keys=False))
    res = CliRunner().invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "r"), "--quiet",
                                   "--threads", "1"])
    assert res.exit_code == 0, res.output
    shown = " ".join(res.output.split())
    assert "factorial: 1 combination cannot be built and was left out: aps_max-global_avg-c4x8" in shown, shown[-600:]
    (run_dir,) = (tmp_path / "r" / "quick").iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert list(meta["factorial_left_out"]) == ["aps_max-global_avg-c4x8"]
    assert list(meta["models"]) == ["none-global_avg-c4x8"]
