"""config/load.py: reading a config leaves torch's RNG alone, and only the entry points validate fully."""

import pathlib

import pytest
import torch
from pydantic import ValidationError

from invariance_lab.config.checks import CHECKS
from invariance_lab.config.load import load_config, parse_config
from invariance_lab.core.errors import ConfigError
from invariance_lab.nn.models import check_model, create_model, resolve_spec
from invariance_lab.schema.config import Config

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = ("seed_question.yaml", "factorial.yaml", "antialiasing.yaml")


@pytest.mark.parametrize("name", CONFIGS)
def test_loading_a_config_leaves_torch_rng_alone(name):
    """Loading builds no network: the canvas checks are arithmetic. Twice: with the caches cold, then warm."""
    for _ in range(2):
        before = torch.get_rng_state()
        load_config(ROOT / "configs" / name)
        assert torch.equal(before, torch.get_rng_state())


def test_seeded_weights_do_not_depend_on_configs_read_before():
    """A model's initial weights depend on its seed alone (the throw-away blocks InvNet draws keep old weights)."""
    torch.manual_seed(0)
    want = create_model("conv_maxpool", num_classes=2, canvas=32).state_dict()
    load_config(ROOT / "configs" / "factorial.yaml")
    torch.manual_seed(0)
    got = create_model("conv_maxpool", num_classes=2, canvas=32).state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_a_model_too_deep_for_its_canvas_is_a_config_error():
    factors = resolve_spec({"arch": "conv_maxpool", "channels": [4] * 6})
    with pytest.raises(ConfigError, match="leave no feature map|does not fit"):
        check_model(factors, 16)
    with pytest.raises(ValueError):  # still a ValueError for callers that catch one
        check_model(factors, 16)


def test_without_the_checks_what_they_fill_in_is_refused_not_skipped(tmp_path):
    """Config(...) alone cannot expand a factorial or read an image folder: it says so instead of leaving the
    models or the counts out; the same input validates through parse_config (or with the checks as context)."""
    raw = {"factorial": {"downsample": ["none", "max"]}}
    with pytest.raises(ValidationError, match="parse_config"):
        Config.model_validate(raw)
    assert list(Config.model_validate(raw, context=CHECKS).models) == list(parse_config(raw).models) == ["none", "max"]
    with pytest.raises(ValidationError, match="parse_config"):
        Config.model_validate({"data": {"source": "folder", "path": str(tmp_path)}})
