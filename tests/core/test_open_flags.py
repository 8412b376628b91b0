"""core/open_flags.py: the os.open flags some systems lack are read in that one module, as 0 where missing.
`invlab measure --images` failed on every image on Windows, which has no os.O_NONBLOCK (an unguarded use in
data/images.py), with a message telling the user to remove each good file."""

import ast

from conftest import ROOT

# the flags every system's os module has (Windows included)
PORTABLE = {"O_RDONLY", "O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_APPEND", "O_TRUNC"}


def test_no_module_but_open_flags_reads_a_flag_some_systems_lack():
    found = []
    for path in sorted((ROOT / "invariance_lab").rglob("*.py")):
        if path.name == "open_flags.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("O_") and node.attr not in PORTABLE
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} os.{node.attr}")
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("O_")
                    and node.value not in PORTABLE):  # getattr(os, "O_NONBLOCK", 0): belongs in open_flags too
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, found

