"""Your own architecture: a model spec naming `factory: "package.module:function"` and its `kwargs`.

    models:
      mine: {factory: "my_models:small_cnn", kwargs: {width: 16, classes: 2}}

    net = build_custom({"factory": "my_models:small_cnn", "kwargs": {"width": 16, "classes": 2}},
                       num_classes=2, canvas=32, dirs=[Path("configs")])

The function is called with the kwargs alone and must return an nn.Module mapping a batch (N, C, H, W) to
logits (N, classes); check_output and check_trainable say plainly what is wrong otherwise, on a dummy batch,
before any training. The module is searched in `dirs` (the config file's folder), then the current directory,
then sys.path (PYTHONPATH and the installed packages).

Importing a module runs its code. That is the point when you name the factory yourself (in your config, or with
`invlab measure --model`), but a run folder can come from someone else: invlab imports a factory named only by a
run folder (its config.yaml or a checkpoint) when asked to with --trust-factory, and its refusal says which file
would run (`locate` finds it without running anything). Weights are never code: checkpoints stay weights_only.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import FactoryError, InvlabError, clip, quote
from .maps import feature_map_bytes
from .outputs import check_materialized, check_output
from ..schema.model import check_path

# (factory path, the file its module was found in) -> the function, once imported (this process)
_LOADED: dict[tuple[str, str | None], Callable] = {}
TRUST_LIMIT = 1000  # characters of the call a trust message shows: all of any sensible kwargs


# ----------------------------------------------------------------------------------------------- the spec


def is_custom(factors: dict) -> bool:
    """Whether a resolved model spec (models.resolve_spec) is a factory model rather than a preset's factors."""
    return isinstance(factors, dict) and "factory" in factors


def describe(factors: dict, limit: int = 160) -> str:
    """'my_models:small_cnn(width=16)': how messages name a factory model (cut to `limit` characters)."""
    args = ", ".join(f"{k}={v!r}" for k, v in (factors.get("kwargs") or {}).items())
    return clip(f"{factors['factory']}({args})", limit)


# ----------------------------------------------------------------------------------------------- importing


def search_dirs(dirs: Iterable[str | Path] = ()) -> list[str]:
    """Where a factory's module is looked for, first to last: `dirs`, the current directory, then sys.path."""
    out = []
    for d in [*dirs, os.getcwd()]:
        d = str(Path(d).resolve())
        if d not in out:
            out.append(d)
    return out + [p for p in sys.path if p not in out]


def _where_words(dirs: Iterable[str | Path]) -> str:
    named = [str(Path(d).resolve()) for d in dirs]
    parts = [f"{d} (the config's folder)" for d in named] + [f"{os.getcwd()} (the current directory)"]
    return ", ".join(dict.fromkeys(parts)) + ", then sys.path (PYTHONPATH and the installed packages)"


@contextmanager
def _on_path(dirs: Iterable[str | Path]):
    """sys.path with `dirs` and the current directory in front, for the import and the call only: sys.path is
    put back as it was afterwards, whatever the user's module did to it."""
    before = list(sys.path)
    sys.path[:] = search_dirs(dirs)
    try:
        yield
    finally:
        sys.path[:] = before


def _module_and_function(path: str) -> tuple[str, str]:
    try:
        check_path(path)
    except ValueError as e:  # the schema's check: a ValueError there, for pydantic
        raise FactoryError(str(e)) from None
    module, _, function = path.partition(":")
    return module, function


def _search(module: str, dirs: Iterable[str | Path] = ()) -> str | None:
    """The file `module` is found in, by search_dirs' order, without running anything and whether or not a module
    of that name was imported already (from another config's folder, say); None if not found."""
    parts = module.split(".")
    spec = PathFinder.find_spec(parts[0], search_dirs(dirs))  # the folders alone: sys.modules is not consulted
    if spec is None:
        with _on_path(dirs):
            try:  # installed packages' own finders (editable installs, zip imports, ...)
                spec = importlib.util.find_spec(parts[0])
            except (ImportError, ValueError):
                spec = None
    for i in range(1, len(parts)):  # submodules: through the parent's folders, without running its __init__
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = PathFinder.find_spec(".".join(parts[:i + 1]), list(spec.submodule_search_locations))
    if spec is None:
        return None
    return spec.origin if spec.origin not in (None, "namespace") else str(next(iter(spec.submodule_search_locations)))


def locate(path: str, dirs: Iterable[str | Path] = ()) -> str | None:
    """The file importing the factory's module would run, found without running anything; None if not found."""
    module, _ = _module_and_function(path)
    found = _search(module, dirs)
    if found is None and module in sys.modules:  # made in this process rather than read from a file
        return getattr(sys.modules[module], "__file__", None) or f"<module {module}, already imported>"
    return found


def _set_aside(module: str, file: str | None) -> None:
    """Before importing `module` from `file`: a module of that name imported from another file (the same name in
    another config's folder) leaves sys.modules, with its package's other modules, so this folder's file is the
    one imported. Functions loaded from the old one keep working (they hold their own module's globals)."""
    current = sys.modules.get(module)
    if current is None or file is None or getattr(current, "__file__", None) in (None, file):
        return
    top = module.split(".")[0]
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def load(path: str, dirs: Iterable[str | Path] = ()) -> Callable:
    """The function a factory path names, importing its module (searched as search_dirs says). Two folders that
    each hold a module of the same name give two modules: the cache is keyed on the file found."""
    module_name, function = _module_and_function(path)
    file = _search(module_name, dirs)
    if (path, file) in _LOADED:
        return _LOADED[(path, file)]
    _set_aside(module_name, file)
    with _on_path(dirs):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if module_name.endswith(".py"):  # a file name where a module name goes: models.py:net
                raise FactoryError(f"factory {quote(path)}: a factory names a module, as Python imports it, not its "
                                  f"file: {quote(module_name[:-3] + ':' + function)}") from None
            if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
                raise FactoryError(f"factory {quote(path)}: no module named {quote(e.name)} was found; searched "
                                  f"{_where_words(dirs)}. Put {e.name.replace('.', '/')}.py in one of these folders, "
                                  f"run from the folder that holds it, or add that folder to PYTHONPATH") from None
            raise FactoryError(f"factory {quote(path)}: importing module {quote(module_name)} failed: it imports "
                              f"{quote(e.name)}, which is not installed ({clip(e)})") from None
        except (Exception, SystemExit) as e:  # the user's module raised while it was imported
            raise FactoryError(f"factory {quote(path)}: importing module {quote(module_name)} "
                              f"({locate(path, dirs) or 'file unknown'}) raised {type(e).__name__}: "
                              f"{clip(e)}") from e
    target: Any = module
    for part in function.split("."):
        if not hasattr(target, part):
            names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            raise FactoryError(f"factory {quote(path)}: module {quote(module_name)} ({getattr(module, '__file__', '?')}) "
                              f"has no {quote(function)}; its functions and classes: "
                              f"{', '.join(names[:20]) or 'none'}") from None
        target = getattr(target, part)
    if not callable(target):
        raise FactoryError(f"factory {quote(path)}: {quote(function)} in module {quote(module_name)} is a "
                          f"{type(target).__name__}, not a function")
    _LOADED[(path, file)] = target
    return target


def call(path: str, kwargs: dict | None = None, dirs: Iterable[str | Path] = ()) -> nn.Module:
    """The nn.Module a factory returns when called with `kwargs` alone; InvlabError for anything else."""
    fn = load(path, dirs)
    kwargs = dict(kwargs or {})
    with _on_path(dirs):  # a factory may import more of its own modules when called
        try:
            model = fn(**kwargs)
        except (Exception, SystemExit) as e:
            raise FactoryError(f"factory {quote(path)} raised {type(e).__name__} when called with kwargs "
                              f"{quote(kwargs)}: {clip(e)}") from e  # its own error: `invlab --debug` shows it
    if not isinstance(model, nn.Module):
        raise FactoryError(f"factory {quote(path)} returned {type(model).__name__} {quote(model, 60)}, not a "
                          f"torch.nn.Module; it must return the network")
    check_materialized(model, f"the model from factory {quote(path)}")
    return model


# ----------------------------------------------------------------------------------------------- checking


def check_trainable(model: nn.Module, x: torch.Tensor, what: str) -> None:
    """Refuse a model that training cannot change: no trainable parameters, or none that the output depends on."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        n = sum(p.numel() for p in model.parameters())
        why = f"all its {n} parameters have requires_grad=False" if n else "it has no parameters"
        raise FactoryError(f"{what} has nothing to train: {why}. Unfreeze them, or set train.epochs: 0 to measure "
                          f"it as it is")
    was = model.training
    model.eval()  # no running statistics are updated, no dropout
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            out = model(x)
            if not out.requires_grad:
                raise FactoryError(f"{what}: its output does not depend on any trainable parameter (no gradient "
                                  f"reaches them: is the output computed under torch.no_grad() or detached?), so "
                                  f"training would change nothing")
            grads = torch.autograd.grad(out.float().sum(), params, allow_unused=True)
    finally:
        model.train(was)
    if all(g is None for g in grads):
        raise FactoryError(f"{what}: none of its trainable parameters affects the output, so training would change "
                          f"nothing")


def build_custom(factors: dict, *, num_classes: int, canvas: int, in_channels: int = 1,
                 dirs: Iterable[str | Path] = (), check_training: bool = False) -> nn.Module:
    """The network of a factory spec, checked on a dummy batch (2, in_channels, canvas, canvas) for its logits
    (2, num_classes), and, with check_training, for parameters that training can change."""
    model = call(factors["factory"], factors.get("kwargs"), dirs)
    x = torch.zeros(2, in_channels, canvas, canvas)
    what = f"the model from factory {describe(factors)}"
    check_output(model, x, num_classes, what, fixes="config")
    if check_training:
        check_trainable(model, x, what)
    return model


def check_models(factors: dict[str, dict], *, num_classes: int, canvas: int, train: bool,
                 dirs: Iterable[str | Path] = (), in_channels: int = 1) -> tuple[dict[str, str], dict[str, tuple]]:
    """Import, build and check every factory model of a config before anything is written; returns (name -> the
    file its module came from, for meta.json; name -> (peak, made, parameters): nn/maps.feature_map_bytes's bytes
    per image on two random images, for the run's memory estimate). Torch's RNG is left as it was."""
    files, sizes = {}, {}
    with torch.random.fork_rng(devices=[]):
        for name, f in factors.items():
            if not is_custom(f):
                continue
            try:
                model = build_custom(f, num_classes=num_classes, canvas=canvas, in_channels=in_channels, dirs=dirs,
                                     check_training=train)
                model.eval()  # thrown away after: its running statistics may move
                # images like the data's (values in [0, 1], RNG restored): all zeros can skip what pixels trigger
                maps = feature_map_bytes({name: model}, torch.rand(2, in_channels, canvas, canvas))
            except InvlabError as e:  # the model's own exception, where one caused it, for --debug
                raise FactoryError(f"[models.{name}] {e}") from e.__cause__
            files[name] = locate(f["factory"], dirs) or "?"
            sizes[name] = (maps.peak, maps.made, sum(p.numel() for p in model.parameters()))
    return files, sizes


def require_trust(factors: dict, *, trusted: bool, where: str, option: str = "--trust-factory",
                  dirs: Iterable[str | Path] = ()) -> None:
    """Before a factory named only by a run folder, its config or a checkpoint is imported or called: refuse unless
    the user said to trust it, stating the file importing it would run (found by `locate`, which runs nothing) and
    the whole call, kwargs included, since those choose what even a harmless module does (os:system). Checked
    first, so nothing of the factory's runs before the user's word."""
    path = factors["factory"]
    module, _, function = path.partition(":")
    file = locate(path, dirs)
    call_words = describe(factors, TRUST_LIMIT)
    if file is None:
        raise FactoryError(f"{where} names factory {call_words}, which cannot be imported here: no module "
                          f"named {quote(module)} in {_where_words(dirs)}. Add the folder that holds "
                          f"{module.replace('.', '/')}.py to PYTHONPATH (PYTHONPATH=that/folder invlab ...)"
                          + ("" if trusted else f"; loading it then also needs {option}, since it runs that file's "
                             "code"))
    if not trusted:
        source = f"module {quote(module)} built into Python" if file in ("built-in", "frozen") else \
            f"module {quote(module)} from {file}, which runs that file's code"
        cut = " (cut here: read the whole call where it is written)" if len(describe(factors, sys.maxsize)) > \
            TRUST_LIMIT else ""
        raise FactoryError(f"{where} names factory {call_words}{cut}. Loading it imports {source}, then calls "
                          f"{quote(function)} with those kwargs, which do whatever that function does with them. A "
                          f"run folder or a checkpoint can come from anyone, so invlab imports and calls nothing on "
                          f"its say-so: if you trust that file and those kwargs, pass {option}")
