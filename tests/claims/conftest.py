import pytest


@pytest.fixture(autouse=True)
def _frozen_heap(frozen_heap):
    """Every test here: full garbage collections walk only what the test made (conftest.frozen_heap)."""
