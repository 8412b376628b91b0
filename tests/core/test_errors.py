"""errors.py: every 'unknown X' message lists the choices and the closest one; quoted input stays short."""

import pytest

from invariance_lab.core.errors import InvlabError, choose, clip, quote


def test_choose_returns_a_valid_value():
    assert choose("downsample", "max", ["none", "max"]) == "max"
    assert choose("model", "a", {"a": 1, "b": 2}) == "a"


def test_choose_names_the_value_the_closest_choice_and_all_choices():
    with pytest.raises(InvlabError) as e:
        choose("downsample", "maxx", ["none", "max", "avg"])
    assert str(e.value) == "unknown downsample 'maxx'; did you mean 'max'? choose one of: none, max, avg"


def test_choose_takes_unhashable_values_and_other_error_types():
    with pytest.raises(ValueError, match="unknown head \\[1, 2\\]; choose one of"):
        choose("head", [1, 2], {"flatten": 1}, error=ValueError)


def test_quote_and_clip_cut_long_input():
    assert quote("x" * 1000).endswith("(1002 chars)") and len(quote("x" * 1000)) <= 200
    assert quote(list(range(100))) == "<list of 100 items>"
    assert quote("short") == "'short'"
    assert clip("first line\nsecond") == "first line" and len(clip("y" * 500, 50)) == 50
