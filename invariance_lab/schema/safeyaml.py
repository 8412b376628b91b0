"""YAML read safely: one document, refused before any Python object is built when it expands to more than
MAX_NODES values (an alias bomb: nine levels of nine aliases are 9**9 values), nests deeper than MAX_DEPTH levels
or refers to itself; every failure is a ConfigError naming what was read and where.

    raw = load_yaml(text, "configs/quick.yaml")
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable

import yaml

from ..core.errors import ConfigError

MAX_NODES = 10_000  # values in one YAML document or --set value, aliases counted each time they are used
MAX_DEPTH = 50  # nesting levels of a YAML document (a config has 4)


class TooBig(Exception):
    """A structure over MAX_NODES values or MAX_DEPTH levels, or one that contains itself; says which."""


# YAML 1.1 (PyYAML) reads 1e-3 as a string; YAML 1.2 and every user read it as a number. This resolver adds
# exponents without a dot or sign, so strict float fields accept what people write.
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)
                    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?)$""", re.X)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses, before building any Python object, documents nested deeper than MAX_DEPTH
    (PyYAML composes recursively) and documents whose alias expansion exceeds MAX_NODES (counted on the node
    graph with memoisation, so at its own cost)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise TooBig(f"nests more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        """A key given twice in one mapping is an error naming its line (PyYAML would keep the last silently, so
        `epochs: 5` lower down would quietly win over the one the reader sees first). Keys merged in with `<<`
        may still be overridden, as YAML intends."""
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    again = key in seen
                except TypeError:  # an unhashable key: the base constructor refuses it with its own message
                    continue
                if again:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"found the key {cut(repr(key), 60)} a second time; give each key once", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)

    def compose_document(self):
        node = super().compose_document()
        count_values(node, lambda n: [x for kv in n.value for x in kv] if isinstance(n, yaml.MappingNode)
                     else n.value if isinstance(n, yaml.SequenceNode) else ())
        return node


# YAML 1.1 also reads 1:30 as 90 and -4:4 as -244 (base 60), and 017 as 15 (octal): `--set train.batch_size=1:30`
# or `--set sweep.dx=-4:4` (the command line's range syntax) would become a number nobody wrote. As in YAML 1.2,
# a number here is decimal, 0x hexadecimal, 0o octal or 0b binary, and anything with a colon is text (which the
# schema then refuses, quoting it).
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_INT = re.compile(r"^[-+]?(?:0b[01][01_]*|0o[0-7][0-7_]*|0x[0-9a-fA-F][0-9a-fA-F_]*|[0-9][0-9_]*)$")
_DECIMAL = re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?$")  # 1.5, .5, 1.
_SPECIAL_FLOAT = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))  # before floats: 1 is an int
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver(_FLOAT_TAG, _DECIMAL, list("-+0123456789."))
_Loader.add_implicit_resolver(_FLOAT_TAG, _SPECIAL_FLOAT, list("-+."))


def _construct_int(loader, node) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    sign, digits = (-1, text[1:]) if text[0] == "-" else (1, text.lstrip("+"))
    base = {"0b": 2, "0o": 8, "0x": 16}.get(digits[:2].lower(), 10)
    return sign * int(digits[2:] if base != 10 else digits, base)


_Loader.add_constructor(_INT_TAG, _construct_int)


def python_children(obj: Any):
    """The keys and values of a dict, the items of a list, tuple or set; nothing for anything else."""
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return obj
    return ()


def count_values(root: Any, children: Callable[[Any], Any] = python_children) -> int:
    """Values in the tree under `root`, a shared child counted each time it is used; raises TooBig past
    MAX_NODES values or MAX_DEPTH levels, or for a structure that contains itself. Iterative and memoised per
    object, so it costs the distinct objects, never the expansion."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        obj, done = stack.pop()
        key = id(obj)
        if done:
            on_path.discard(key)
            kids = list(children(obj))
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_NODES:
                raise TooBig(f"expands to more than {MAX_NODES} values (aliases counted each time they are used; "
                             "a config has a few dozen)")
            if depth[key] > MAX_DEPTH:
                raise TooBig(f"nests more than {MAX_DEPTH} levels deep once aliases are expanded")
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((obj, True))
        for k in children(obj):
            if id(k) in on_path:
                raise TooBig("contains itself (a recursive alias)")
            if id(k) not in size:
                stack.append((k, False))
    return size[id(root)]


def cut(text: str, limit: int = 200) -> str:
    """Plain text cut to `limit` characters (quote() without the repr)."""
    return text if len(text) <= limit else text[: limit - 15] + f"... ({len(text)} chars)"


# Documents parsed before, by their text: a command reads a run folder's config.yaml two or three times (the
# pure-Python parser takes ~10 ms for a config); callers get a deep copy, so they may change what they get.
_PARSED: dict[str, Any] = {}
_PARSED_MAX = 16  # documents kept (of at most _PARSED_CHARS characters each)
_PARSED_CHARS = 65_536


def load_yaml(text: str, what: str) -> Any:
    """Parse one YAML document with _Loader; every failure is a ConfigError naming `what` and the position."""
    if text in _PARSED:
        return copy.deepcopy(_PARSED[text])
    data = _parse(text, what)
    if len(text) <= _PARSED_CHARS:
        if len(_PARSED) >= _PARSED_MAX:
            del _PARSED[next(iter(_PARSED))]  # the oldest
        _PARSED[text] = copy.deepcopy(data)
    return data


def _parse(text: str, what: str) -> Any:
    try:
        loader = _Loader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except TooBig as e:
        raise ConfigError(f"{what}: the YAML {e}; refusing it") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise ConfigError(f"{what}: YAML syntax error at {where}: {cut(problem)}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as e:
        # ValueError: what the YAML constructors raise for a 5000-digit int, a date such as 2024-13-45, ...
        if isinstance(e, ValueError) and "integer string conversion" in str(e):  # ints of over 4300 digits
            raise ConfigError(f"{what}: not readable as YAML: a number has more than 4300 digits") from None
        raise ConfigError(f"{what}: not readable as YAML: {cut(' '.join(str(e).split()))}") from None
