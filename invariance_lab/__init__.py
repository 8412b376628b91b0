"""invariance_lab: how does a CNN become invariant to translation? Measured, not argued.

The Python API, for notebooks and scripts (api.py; torch is imported on first use, not by `import`):

    import invariance_lab as il
    df = il.measure(model, images, labels=None, dx=range(-8, 9), dy=[0], mode="canvas")  # per shift
    il.summarize(df)                                    # per model: clean accuracy, mean and worst over shifts
    il.layer_profile(model, images, shifts=range(-8, 9))   # per layer tap
"""

import importlib

from .core.versions import __version__

# name -> the module that defines it
_API = {"measure": "run.api", "summarize": "run.api", "layer_profile": "run.api", "create_model": "nn.models",
        "list_models": "nn.models", "open_folder": "data.images", "write_folder": "data.images"}
__all__ = list(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value
