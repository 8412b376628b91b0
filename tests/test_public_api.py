"""The package root's public API: every name in __all__ imports from `invariance_lab`, dir() lists it, the
package ships py.typed (PEP 561) and `import invariance_lab` alone stays light (no torch)."""

import pathlib
import subprocess
import sys

import pytest

import invariance_lab

REQUIRED = {"load_config", "run_experiment", "sweep_experiment", "measure", "summarize", "layer_profile",
            "load_result", "build_report", "html_report", "InvlabError", "ConfigError", "DataError", "FactoryError",
            "RunFolderError", "CheckpointError", "create_model", "list_models", "open_folder", "write_folder",
            "lie_derivative"}


def test_all_holds_the_public_names():
    assert REQUIRED <= set(invariance_lab.__all__)
    assert len(set(invariance_lab.__all__)) == len(invariance_lab.__all__)


@pytest.mark.parametrize("name", invariance_lab.__all__)
def test_every_public_name_imports_and_is_listed(name):
    namespace = {}
    exec(f"from invariance_lab import {name}", namespace)
    assert namespace[name] is getattr(invariance_lab, name)
    assert name in dir(invariance_lab)


def test_errors_are_one_hierarchy():
    for name in ("ConfigError", "DataError", "FactoryError", "RunFolderError", "CheckpointError"):
        assert issubclass(getattr(invariance_lab, name), invariance_lab.InvlabError)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        invariance_lab.nonesuch  # noqa: B018


def test_py_typed_ships_with_the_package():
    root = pathlib.Path(invariance_lab.__file__).parent
    assert (root / "py.typed").is_file()
    pyproject = (root.parent / "pyproject.toml").read_text()
    assert "[tool.setuptools.package-data]" in pyproject and '"py.typed"' in pyproject


def test_import_stays_light():
    code = "import sys, invariance_lab; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_examples_import_public_names_only():
    examples = pathlib.Path(invariance_lab.__file__).parents[1] / "examples"
    for path in examples.glob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("from invariance_lab", "import invariance_lab")):
                assert line.strip() in ("import invariance_lab", "import invariance_lab as il") or \
                    line.startswith("from invariance_lab import "), f"{path.name}: {line}"
