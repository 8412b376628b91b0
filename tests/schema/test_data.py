"""schema/data.py: data.ink's choices and data.gain, the contrast-only control (data/ink.py)."""

import pytest

from invariance_lab.config.load import parse_config
from invariance_lab.core.errors import ConfigError
from invariance_lab.store.checkpoints import unit_fingerprints


def test_the_new_ink_controls_are_written_only_when_set_and_change_the_fingerprint():
    plain = parse_config({})
    assert not {"gain", "ink"} & set(plain.data.model_dump())  # earlier runs keep their fingerprints
    for data in ({"ink": "invariant"}, {"gain": [0.3, 0.6]}, {"ink": "invariant", "gain": [0.5, 0.9]}):
        cfg = parse_config({"data": data})
        assert {k: cfg.data.model_dump()[k] for k in data} == data
        assert unit_fingerprints(cfg) != unit_fingerprints(plain)  # other images: other checkpoints


@pytest.mark.parametrize("data, words", [
    ({"gain": [0.9, 0.5]}, "gain must be [lo, hi] with 0 < lo <= hi <= 1"),
    ({"gain": [0.2, 1.5]}, "ink stays within [0, 1]"),
    ({"gain": [0.5]}, "got [0.5]"),
    ({"ink": "matched", "gain": [0.3, 0.6]}, "gain does not apply to ink: matched"),
    ({"source": "boxes", "gain": [0.3, 0.6]}, "gain does not apply to source: boxes"),
])
def test_a_bad_gain_is_refused_naming_its_key(data, words):
    with pytest.raises(ConfigError) as e:
        parse_config({"data": data})
    assert "[data.gain]" in str(e.value) and words in str(e.value), str(e.value)


@pytest.mark.parametrize("key, fine, beyond", [("test_images", 1, 0), ("train_shift", 0, -0.5),
                                               ("test_fraction", None, 0.0), ("train_images", 2, 1)])
def test_data_bounds_accept_the_edge_and_refuse_past_it(key, fine, beyond):
    """Catches an off-by-one bound: one test image is a test set, a negative offset or an empty test share is not."""
    from pydantic import ValidationError

    from invariance_lab.schema.data import DataConfig
    extra = {"source": "folder", "path": "imgs"} if key == "test_fraction" else {}
    if fine is not None:  # a folder's config is completed only by parse_config: its refusal alone is checked here
        assert getattr(DataConfig.model_validate({**extra, key: fine}), key) == fine
    with pytest.raises(ValidationError) as e:
        DataConfig.model_validate({**extra, key: beyond})
    assert e.value.errors()[0]["loc"] == (key,)
