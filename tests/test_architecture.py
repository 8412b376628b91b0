"""The package's shape, checked: floors that import only downward (import-linter's contracts in pyproject.toml),
no import circle between modules, no invlab import hidden inside a function, small modules with telling names."""

import ast
import functools
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "invariance_lab"
MAX_LINES = 350
GRAB_BAGS = {"utils", "util", "helpers", "helper", "misc", "common", "tools"}


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def name_of(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=None)
def invlab_imports(path: pathlib.Path) -> tuple:
    """(line, imported module, at module level?) for every import of an invariance_lab module in `path`; parsed
    once per process, since two tests read every module's imports (the files do not change during a run)."""
    return tuple(_invlab_imports(path))


def _invlab_imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    # imports under `if TYPE_CHECKING:` at module level count as module level
    for node in tree.body:
        if isinstance(node, ast.If):
            top |= {id(n) for n in ast.walk(node)}
    package = name_of(path) if path.name == "__init__.py" else name_of(path).rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "invariance_lab":
                continue
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            for t in names:
                yield node.lineno, t, id(node) in top
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "invariance_lab":
                    yield node.lineno, a.name, id(node) in top


def test_import_contracts_hold():
    """The layers and independence contracts of pyproject.toml, as `lint-imports` checks them."""
    exe = pathlib.Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(exe), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_no_invlab_import_inside_a_function():
    """A function-level import hides a circle; only optional heavy libraries are imported late."""
    late = [f"{p.relative_to(ROOT)}:{line} imports {t}" for p in modules() for line, t, top in invlab_imports(p)
            if not top]
    assert not late, "\n".join(late)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in list(graph):
            if v not in index:
                visit(v)
    finally:  # other tests in this process count on the usual limit (a JSON nested too deep to parse)
        sys.setrecursionlimit(limit)
    return out


def test_no_import_circles_between_modules():
    names = {name_of(p) for p in modules()}
    graph = {}
    for p in modules():
        me = name_of(p)
        if p.name == "__init__.py" and me == "invariance_lab":
            continue  # the root re-exports the public API from every floor
        deps = set()
        for _, t, _ in invlab_imports(p):
            while t and t not in names:
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != me and t != "invariance_lab":
                deps.add(t)
        graph[me] = deps
    assert not _cycles(graph), _cycles(graph)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small_and_named_for_what_they_hold(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by what it holds"
    assert path.stem not in GRAB_BAGS, f"{path.relative_to(ROOT)}: name a module for what it holds"
