"""factorial: models from the product of factor lists, named by their factors, merged with the hand-written ones."""

import json

import pytest
import yaml
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError
from invariance_lab.config.load import load_config, parse_config, to_yaml
from invariance_lab.config.factorial import expand, left_out, left_out_note, value_name
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
    cfg = parse_config(quick(factorial={"arch": "blurpool", "kernel": [3, 5], "blur_size": [2, 3]}))
    assert list(cfg.models) == ["k3-blur2", "k3-blur3", "k5-blur2", "k5-blur3"]
    assert all(f["downsample"] == "blur_max" and f["arch"] == "blurpool" for f in resolved_models(cfg).values())


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


def test_a_name_clash_with_a_duplicate_left_out_is_refused_too():
    # max-blur_reflect is left out as max-blur_zeros's network; a hand-written model of that name with other factors
    # would stand in the report under a factorial's name for a network the factorial does not make
    raw = quick(models={"max-blur_reflect": {"downsample": "avg"}},
                factorial={"downsample": ["max"], "blur_padding": ["zeros", "reflect"]})
    with pytest.raises(ConfigError, match=r"\[models\.max-blur_reflect\].*both written under models: and made by"):
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


SAME = "the same network as"


@pytest.mark.parametrize("factorial, kept, skipped", [
    ({"downsample": ["max", "blur_max"], "blur_padding": ["zeros", "reflect"]},
     ["max-blur_zeros", "blur_max-blur_zeros", "blur_max-blur_reflect"],
     {"max-blur_reflect": f"{SAME} max-blur_zeros: max does not blur, so blur_padding changes nothing"}),
    ({"downsample": ["stride", "aps_stride"], "blur_size": [1, 3], "blur_padding": ["zeros", "reflect"]},
     ["stride-blur1-blur_zeros", "aps_stride-blur1-blur_zeros", "aps_stride-blur3-blur_zeros",
      "aps_stride-blur3-blur_reflect"],
     {"stride-blur1-blur_reflect": f"{SAME} stride-blur1-blur_zeros: stride does not blur, so blur_padding changes "
                                   "nothing",
      "stride-blur3-blur_zeros": f"{SAME} stride-blur1-blur_zeros: stride does not blur, so blur_size changes nothing",
      "stride-blur3-blur_reflect": f"{SAME} stride-blur1-blur_zeros: stride does not blur, so blur_size and "
                                   "blur_padding change nothing",
      "aps_stride-blur1-blur_reflect": f"{SAME} aps_stride-blur1-blur_zeros: a blur of size 1 pads nothing, so "
                                       "blur_padding changes nothing"}),
    ({"kernel": [1, 3], "padding": ["zeros", "circular"]}, ["k1-zeros", "k3-zeros", "k3-circular"],
     {"k1-circular": f"{SAME} k1-zeros: a 1x1 conv pads nothing, so padding changes nothing"}),
    ({"downsample": ["blur_stride", "blur_avg"]}, ["blur_stride"],
     {"blur_avg": f"{SAME} blur_stride: blur_avg builds the same blocks as blur_stride, so downsample changes "
                  "nothing"}),
    ({"arch": ["conv_only", "conv_gap"], "head": ["global_avg"]}, ["conv_only-global_avg"],
     {"conv_gap-global_avg": f"{SAME} conv_only-global_avg: what conv_gap sets otherwise than conv_only is set by "
                             "the factorial or unused, so arch changes nothing"}),
    # 24 px halved three times is 3x3, a fourth time 1x1: flatten, global_avg and global_max then agree
    ({"downsample": ["max"], "channels": [[4, 4, 4], [4, 4, 4, 4]], "head": ["flatten", "global_max"]},
     ["max-c4x4x4-flatten", "max-c4x4x4-global_max", "max-c4x4x4x4-flatten"],
     {"max-c4x4x4x4-global_max": f"{SAME} max-c4x4x4x4-flatten: the last feature map is 1x1, where global_max "
                                 "returns what flatten does, so head changes nothing"}),
])
def test_a_combination_building_the_network_of_an_earlier_one_is_left_out_naming_it(factorial, kept, skipped):
    cfg = parse_config(quick(factorial=factorial))
    assert list(cfg.models) == kept
    assert left_out(cfg) == skipped


def test_hand_written_models_are_kept_even_as_a_factorials_network():
    # 'mine' builds max-blur_zeros's network and 'max-blur_reflect' is a name the factorial leaves out: both stay,
    # and the name under models: is not reported as left out
    raw = quick(models={"mine": {"downsample": "max", "blur_padding": "reflect"},
                        "max-blur_reflect": {"downsample": "max", "blur_padding": "reflect"}},
                factorial={"downsample": ["max"], "blur_padding": ["zeros", "reflect", "circular"]})
    cfg = parse_config(raw)
    assert list(cfg.models) == ["mine", "max-blur_reflect", "max-blur_zeros"]
    assert left_out(cfg) == {"max-blur_circular": f"{SAME} max-blur_zeros: max does not blur, so blur_padding "
                                                  "changes nothing"}
    again = parse_config(yaml.safe_load(to_yaml(cfg)))  # a run folder's config.yaml reads back the same models
    assert list(again.models) == list(cfg.models) and left_out(again) == left_out(cfg)


@pytest.mark.parametrize("skipped, words", [
    ({"a": "block 1 ..."}, "factorial: 1 combination cannot be built and was left out: a (block 1 ...)"),
    ({"a": f"{SAME} b: x"},
     f"factorial: 1 combination builds the same network as another and was left out: a ({SAME} b: x)"),
    ({"a": f"{SAME} b: x", "c": f"{SAME} b: y"},
     "factorial: 2 combinations build the same network as another and were left out: a ("),
    ({"a": "block 1 ...", "c": f"{SAME} b: y"},
     ("factorial: 2 combinations cannot be built or build the same network as another and were left out: "
      "a (block 1 ...); c (")),
])
def test_the_note_says_why_combinations_were_left_out(skipped, words):
    assert left_out_note(skipped).startswith(words)


def test_expand_is_empty_without_a_factorial():
    assert not expand(None, 32).models and not expand(None, 32).left_out


def test_invlab_run_records_and_prints_what_was_left_out(tmp_path, one_thread):
    config = tmp_path / "fact.yaml"
    config.write_text(yaml.safe_dump(quick(
        seeds=[0], data=dict(QUICK["data"], canvas=22, train_images=20, test_images=8), train={"epochs": 0},
        factorial={"downsample": ["none", "aps_max"], "head": ["global_avg"], "channels": [[4, 8]],
                   "blur_padding": ["zeros", "reflect"]}), sort_keys=False))
    res = CliRunner().invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "r"), "--quiet",
                                   "--threads", "1"])
    assert res.exit_code == 0, res.output
    shown = " ".join(res.output.split())
    assert ("factorial: 3 combinations cannot be built or build the same network as another and were left out: "
            "none-global_avg-c4x8-blur_reflect (the same network as none-global_avg-c4x8-blur_zeros: none does not "
            "blur, so blur_padding changes nothing); aps_max-global_avg-c4x8-blur_zeros (block 2 of 2") in shown, \
        shown[-900:]
    (run_dir,) = (tmp_path / "r" / "quick").iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert list(meta["factorial_left_out"]) == ["none-global_avg-c4x8-blur_reflect",
                                                "aps_max-global_avg-c4x8-blur_zeros",
                                                "aps_max-global_avg-c4x8-blur_reflect"]
    assert meta["factorial_left_out"]["none-global_avg-c4x8-blur_reflect"].startswith(
        "the same network as none-global_avg-c4x8-blur_zeros")
    assert list(meta["models"]) == ["none-global_avg-c4x8-blur_zeros"]


def test_a_blur_padding_left_out_is_named_as_the_networks_padding():
    skipped = expand({"downsample": ["blur_max"], "padding": ["circular"], "blur_padding": [None, "circular"]},
                     32).left_out
    assert skipped == {"blur_max-circular-blur_circular": "the same network as blur_max-circular-blur_None: a "
                       "blur_padding left out pads the blur with the network's padding, circular, so blur_padding "
                       "changes nothing"}


def test_a_factorial_of_exactly_the_most_combinations_is_accepted():
    """Catches an off-by-one in MAX_COMBINATIONS: 1000 models is allowed, 1100 not."""
    from invariance_lab.config.factorial import MAX_COMBINATIONS, check_factorial
    from invariance_lab.schema.fields import _Problem
    most = {"channels": [[k] for k in range(1, 21)], "kernel": list(range(1, 11)), "blur_size": list(range(1, 6))}
    assert MAX_COMBINATIONS == 1000 and check_factorial(most) == most  # 20 x 10 x 5
    with pytest.raises(_Problem, match="factorial makes 1050 models"):
        check_factorial({**most, "channels": [[k] for k in range(1, 22)]})


def test_the_left_out_note_lists_up_to_the_limit_without_a_count_of_none_more():
    """Catches "and 0 more" when exactly `limit` combinations were left out."""
    eight = {f"m{i}": "too deep" for i in range(8)}
    assert "more" not in left_out_note(eight) and "m7 (too deep)" in left_out_note(eight)
    nine = {**eight, "m8": "too deep"}
    assert left_out_note(nine).endswith("; and 1 more (meta.json lists them)") and "m8" not in left_out_note(nine)


def test_an_empty_factorial_is_refused():
    """Catches `factorial: {}` accepted as a factorial that makes nothing."""
    from invariance_lab.config.factorial import check_factorial
    from invariance_lab.schema.fields import _Problem
    with pytest.raises(_Problem, match="factorial must be a mapping of factor -> list of values"):
        check_factorial({})
