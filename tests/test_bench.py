"""The benchmarks under bench/ time things, so the suite does not run them (docs/speed.md quotes their output);
each must still import against the current library, where a renamed function would otherwise go unnoticed until
someone runs it."""

import importlib.util
import sys

import pytest
from conftest import ROOT

BENCHES = sorted((ROOT / "bench").glob("*.py"))


def test_there_are_benchmarks():
    assert len(BENCHES) >= 10 and all("__main__" in p.read_text(encoding="utf-8") for p in BENCHES)


@pytest.mark.parametrize("path", BENCHES, ids=lambda p: p.name)
def test_every_benchmark_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))  # a benchmark may import another beside it, as when it is run
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))  # its work runs under __main__ only
    finally:
        for name in set(sys.modules) - before:  # the sibling benchmarks it imported: not left behind
            if str(getattr(sys.modules[name], "__file__", "")).startswith(str(path.parent)):
                del sys.modules[name]
