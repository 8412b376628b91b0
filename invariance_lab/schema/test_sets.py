"""data.test_sets: other test sets measured on every checkpoint of a run, after training, beside its own.

    data: {source: boxes, test_sets: {dissimilar: {test_set: dissimilar}}}   # test_sets/dissimilar/ in the run

Each entry names a test set (a folder name) and gives the data keys that replace the run's for its test images
alone; the training images, the models and the sweep stay the run's. `invlab sweep RUN` measures them again on
its own grid (translation sweeps: sweeps/<id>/test_sets/<name>/). data.py validates the data each entry makes
as a whole (the same checks as the run's own data); this module holds what an entry may say.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.errors import quote
from .fields import _Problem, not_a_folder_everywhere

NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")  # it names a folder: test_sets/<name>/
# keys that change what is trained, not what is tested: a test set cannot take them
TRAINING_KEYS = ("train_images", "noise", "train_shift", "train_mode", "val_fraction")
# keys that decide the classes or the input the networks were built for: a test set must keep the run's
SHAPE_KEYS = ("source", "letters", "task", "canvas", "colour", "path", "folder_digest")
# the name of the run's own test set in reports (test_sets/ holds the others)
OWN = "default"


def check_test_set(name: Any, spec: Any) -> dict:
    """`spec` if `name` and its data keys can make a test set; a _Problem naming the key otherwise."""
    where = ("test_sets", str(name))
    if not isinstance(name, str) or not NAME.fullmatch(name) or name == OWN:
        raise _Problem(("test_sets",), f"a test set's name names its folder (test_sets/<name>/): letters, digits, "
                       f"'_', '-', '.', at most 64, not starting with '.', and not {OWN!r} (the run's own test set)",
                       name)
    if trouble := not_a_folder_everywhere(name):
        raise _Problem(("test_sets",), f"a test set's name names its folder (test_sets/<name>/): {trouble}", name)
    if not isinstance(spec, dict) or not spec:
        raise _Problem(where, "a test set is a mapping of data keys that replace the run's for its test images, "
                       "e.g. {test_set: dissimilar} for source: boxes, or {size: 12} for letters", spec)
    for key, value in spec.items():
        if key == "test_sets":
            raise _Problem(where + (key,), "test sets do not nest: list every test set under data.test_sets", value)
        if key in TRAINING_KEYS:
            raise _Problem(where + (key,), f"{key} changes the training images, not the test images; a test set "
                           "is measured on the run's trained networks: remove it", value)
        if key in SHAPE_KEYS:
            raise _Problem(where + (key,), f"{key} decides the classes or the input the networks were built for; "
                           "a test set keeps the run's (for images of your own, `invlab measure --run RUN --images "
                           "DIR` measures every checkpoint on a folder)", value)
    return spec


def merged(data: dict, spec: dict) -> dict:
    """The data section (a dump of DataConfig) of one test set: the run's, its keys replaced, no test_sets."""
    return {**{k: v for k, v in data.items() if k != "test_sets"}, **spec}


def describe(spec: dict) -> str:
    """`test_set: dissimilar, size: 12`: a test set in a report's caption."""
    return ", ".join(f"{k}: {quote(v) if isinstance(v, str) else v}" for k, v in spec.items())
