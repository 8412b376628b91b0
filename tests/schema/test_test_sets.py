"""data.test_sets (schema/test_sets.py, schema/data.py): other test sets of a run, checked as whole data."""

import pytest

from invariance_lab.config.load import parse_config
from invariance_lab.core.errors import ConfigError
from invariance_lab.store.checkpoints import unit_fingerprints

BOXES = {"source": "boxes"}


def test_test_sets_change_no_checkpoint_fingerprint():
    """Test sets are measured after training: the same units are trained (and reused) with or without them."""
    with_sets = parse_config({"data": {**BOXES, "test_sets": {"dissimilar": {"test_set": "dissimilar"}}}})
    assert unit_fingerprints(with_sets) == unit_fingerprints(parse_config({"data": BOXES}))
    assert with_sets.data.test_sets == {"dissimilar": {"test_set": "dissimilar"}}


@pytest.mark.parametrize("sets, key, words", [
    ({"diss": {"test_set": "dissimlar"}}, "data.test_sets.diss.test_set", "dissimilar"),
    ({"diss": {"train_images": 10}}, "data.test_sets.diss.train_images", "changes the training images"),
    ({"diss": {"canvas": 64}}, "data.test_sets.diss.canvas", "invlab measure --run RUN --images DIR"),
    ({"diss": {}}, "data.test_sets.diss", "a mapping of data keys"),
    ({"default": {"test_set": "dissimilar"}}, "data.test_sets", "not 'default'"),
    ({"a/b": {"test_set": "dissimilar"}}, "data.test_sets", "names its folder"),
    ({"diss": {"test_images": 0}}, "data.test_sets.diss.test_images", "greater than or equal to 1"),
    # pydantic's "Extra inputs are not permitted" before: a misspelt key is named as the run's own data's are
    ({"diss": {"test_imags": 9}}, "data.test_sets.diss.test_imags", "unknown key of data; did you mean 'test_images'?"),
])
def test_a_bad_test_set_is_refused_naming_its_key(sets, key, words):
    with pytest.raises(ConfigError) as e:
        parse_config({"data": {**BOXES, "test_sets": sets}})
    assert f"[{key}]" in str(e.value) and words in str(e.value), str(e.value)


def test_letters_take_test_sets_of_their_own_keys():
    cfg = parse_config({"data": {"test_sets": {"small": {"size": 12.0, "test_images": 20}}}})
    assert cfg.data.test_sets["small"]["size"] == 12.0
