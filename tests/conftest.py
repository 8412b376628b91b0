import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def quick_config_path():
    return ROOT / "configs" / "quick.yaml"
