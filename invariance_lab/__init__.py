"""invariance_lab: how does a CNN become invariant to translation? Measured, not argued.

The public API, by name (everything else is internal and may move):

    import invariance_lab as il
    df = il.measure(model, images, labels=None, dx=range(-8, 9), dy=[0], mode="canvas")  # per shift
    il.summarize(df)                                    # per model: clean accuracy, mean and worst over shifts
    il.layer_profile(model, images, shifts=range(-8, 9))   # per layer tap
    il.lie_derivative(model, images, transform="rotate")   # per image: ||d/dt softmax f(T_t x) at t=0||^2
    run_dir = il.run_experiment(il.load_config("configs/seed_question.yaml"), results_dir=Path("results"))
    il.sweep_experiment(run_dir, il.SweepConfig(mode="circular", dx=[-4, 4]))   # new shifts, no retraining
    il.build_report([run_dir])                          # tables over seeds; il.html_report: the HTML page

Names load on first use (`import invariance_lab` stays light; torch comes with the first of them); the
TYPE_CHECKING block shows type checkers what each is. docs/metrics.md defines every metric.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .core.versions import __version__

if TYPE_CHECKING:
    from .config.load import load_config, parse_config
    from .core.errors import CheckpointError, ConfigError, DataError, FactoryError, InvlabError, RunFolderError
    from .data.images import open_folder
    from .data.write import write_folder
    from .eval.lie import lie_derivative
    from .nn.models import create_model, list_models
    from .report.html import html_report
    from .report.tables import build_report
    from .run.api import layer_profile, measure, summarize
    from .run.experiment import run_experiment, sweep_experiment
    from .schema.sweep import SweepConfig
    from .store.checkpoints import load_checkpoint
    from .store.layout import checkpoint_path
    from .store.results import load_result
    from .store.run_images import run_images

# name -> the module that defines it (keep in step with the TYPE_CHECKING block above)
_API = {
    "measure": "run.api", "summarize": "run.api", "layer_profile": "run.api", "lie_derivative": "eval.lie",
    "load_config": "config.load", "parse_config": "config.load",
    "run_experiment": "run.experiment", "sweep_experiment": "run.experiment", "SweepConfig": "schema.sweep",
    "load_result": "store.results", "load_checkpoint": "store.checkpoints", "checkpoint_path": "store.layout",
    "run_images": "store.run_images",
    "build_report": "report.tables", "html_report": "report.html",
    "create_model": "nn.models", "list_models": "nn.models",
    "open_folder": "data.images", "write_folder": "data.write",
    "InvlabError": "core.errors", "ConfigError": "core.errors", "DataError": "core.errors",
    "FactoryError": "core.errors", "RunFolderError": "core.errors", "CheckpointError": "core.errors",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
