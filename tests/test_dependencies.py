"""Every library the package imports is one pyproject.toml installs: a module-level import names a dependency of
`pip install -e .`, an import inside a function (an optional heavy library) a dependency or an extra. A library
that only arrives with another one (click came with older typer versions, and here only with the test extra's
import-linter) would pass the suite and fail a user's first command."""

import ast
import importlib.metadata
import pathlib
import re
import sys

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _dist(requirement: str) -> str:
    """'torch>=2.1' -> 'torch'; names compared as PEP 503 normalises them."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()


def _project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = {_dist(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    return {_dist(r) for r in project["dependencies"]}, extras


def _imports(path: pathlib.Path):
    """(line, top-level module, at module level?) of each absolute import of a library outside the stdlib."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for node in tree.body for n in ast.walk(node) if not isinstance(node, (ast.FunctionDef,
                                                                                           ast.ClassDef))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module]
        else:
            continue
        for name in names:
            module = name.split(".")[0]
            if module not in sys.stdlib_module_names and module != "invariance_lab" and module != "__future__":
                yield node.lineno, module, id(node) in top


def test_every_imported_library_is_installed_by_pyproject():
    required, extras = _project()
    owners = importlib.metadata.packages_distributions()
    wrong = []
    for path in sorted((ROOT / "invariance_lab").rglob("*.py")) + sorted((ROOT / "examples").rglob("*.py")):
        for line, module, at_top in _imports(path):
            dists = {_dist(d) for d in owners.get(module, [])}
            allowed = required if at_top else required | extras
            if not dists & allowed:
                where = "at module level" if at_top else "in a function"
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module} {where} (from {sorted(dists) or '?'}), "
                             "which pyproject.toml does not install")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_an_undeclared_library(tmp_path):
    """The check itself: an import of click (installed here, declared nowhere) is found."""
    module = tmp_path / "m.py"
    module.write_text("import click\nimport torch\n\ndef f():\n    import submitit\n", encoding="utf-8")
    found = list(_imports(module))
    assert found == [(1, "click", True), (2, "torch", True), (5, "submitit", False)]
    required, extras = _project()
    assert "click" not in required | extras and "torch" in required and "submitit" in extras
