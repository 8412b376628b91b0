"""One measurement of given models on an image source, from the checks to the tables: the single pipeline that
il.measure / il.layer_profile (run/api.py) and `invlab measure` (run/measure.py) share.

    with Measurement(models, src, prepare, lines, mode="circular", device=device) as m:   # everything checked
        table = m.shifts()                          # invariance.csv's table; m.engines: what meta.json records
        per_shift, per_layer = m.layers(n_images=200)

Inside the block the models are in eval mode on `device`; on leaving, each model is given back in its own mode
and on its own device, and torch's threads, TF32 flags and RNG are as they were (core/runtime.process_state).
"""

from __future__ import annotations

from contextlib import ExitStack
from itertools import chain

import pandas as pd
import torch
from torch import nn

from ..core.errors import InvlabError, choose, quote
from ..core.runtime import process_state, resolve_device, without_autocast
from ..data.images import Images, from_tensor
from ..nn.outputs import check_materialized, check_output
from ..schema.fields import SEED_MAX
from ..nn.forward import call
from ..nn.logits import class_count
from ..nn.maps import feature_map_bytes
from ..nn.models import InvNet
from .accumulate import ORIGIN, Grid
from .engine import ENGINE_CHOICES, allshift_sweep, choose_engines, engine_protocol, roll_mode, sweep_by_engine
from .layerwise import profile_layers
from .measure_memory import check_measure_memory
from .stream import Prepare, stream_sweep
from .tables import ModelKey, SweepResult, add_factors
from .taps import taps_for


def measure_engines(models: dict[ModelKey, nn.Module], shape: tuple[int, int, int], mode: str,
                    engine: str = "auto", transform: str = "translate") -> tuple[dict, dict]:
    """({model key: engine.Plan, or None for brute force}, the engine protocol for meta.json) for images of
    `shape` (C, H, W). engine: auto takes the exact all-shift engine (engine.py) for every model it applies to
    (circular mode, square images, layers of known kinds), brute force for the rest; allshift refuses
    (InvlabError, with the reason) where it does not apply; brute never takes it. A rotate or scale measurement
    is brute force: a turned image is no roll."""
    _, h, w = shape
    if transform == "translate" and h == w:
        plans = choose_engines(models, h, mode, engine)
        return plans, engine_protocol(plans, models, h, mode)
    choose("engine", engine, ENGINE_CHOICES)
    if transform != "translate":
        why, refusal = (f"a {transform} is not a roll", f"--engine allshift rolls the input inside the network; "
                        f"--transform {transform} turns or scales it, which no roll does: use --engine auto or brute")
    else:  # the engine rolls a C x C map: not these images
        why, refusal = (f"the images are not square ({h} x {w} px)", f"--engine allshift needs square images (it "
                        f"rolls a C x C map); these are {h} x {w} px: use --engine auto or brute, or --size to make "
                        "them square")
    if engine == "allshift":
        raise InvlabError(refusal)
    names = sorted({k[0] for k in models})
    return dict.fromkeys(models), dict(engine="brute", engines=dict.fromkeys(names, "brute"),
                                       engine_notes=dict.fromkeys(names, why))


def measure_shifts(models: dict[ModelKey, nn.Module], images: Images, lines: list[list[tuple[float, float]]],
                   prepare: Prepare, plans: dict, batch_size: int, device: torch.device,
                   progress: bool = False, outputs: dict[str, int] | None = None,
                   transform: str = "translate") -> SweepResult:
    """stream_sweep's result, with the models that have a plan (measure_engines) evaluated by the all-shift
    engine: it reads every image once, unshifted, and rolls inside the network (a --mean/--std normalisation is
    per channel, so it commutes with the roll and the inputs are the same). A rotate or scale measurement
    (transform) has no plans: stream_sweep alone."""
    return sweep_by_engine(
        models, plans, lambda ms: stream_sweep(ms, images, lines, prepare, batch_size, device, progress, outputs,
                                               transform),
        lambda ps: allshift_sweep(ps, lambda ch, dx, dy: prepare(images(ch), dx, dy), images.labels, lines,
                                  batch_size, device, progress, n=len(images)))


def named_models(model) -> dict[str, nn.Module]:
    """{name: module} of il.measure's `model` (a module, named by its class, or a dict name -> module), each one
    with values to compute with (nn/outputs.check_materialized)."""
    if isinstance(model, nn.Module):
        named = {type(model).__name__: model}
    elif isinstance(model, dict) and model and all(isinstance(m, nn.Module) for m in model.values()):
        named = {str(k): m for k, m in model.items()}
    else:
        empty = " (an empty dict)" if isinstance(model, dict) and not model else ""
        raise InvlabError(f"model must be a torch.nn.Module or a dict of name -> nn.Module; got "
                          f"{type(model).__name__}{empty}")
    for name, m in named.items():
        check_materialized(m, f"model {name}")
    return named


def custom_factors(model: nn.Module) -> dict:
    """A preset's factors (downsample, head, padding); {} for any other model ("custom" in the tables)."""
    return dict(model.factors) if isinstance(model, InvNet) else {}


def check_outputs(models: dict[str, nn.Module], src: Images, prepare: Prepare, device: torch.device,
                  origin: tuple[float, ...] = ORIGIN, seed: int = 0) -> dict[str, int]:
    """Check every model on the first two images at the reference `origin`; returns each one's number of logits
    (every later batch must give as many: nn/forward.py). A lazy layer draws its weights there, from `seed`."""
    x = prepare(src(slice(0, min(2, len(src)))), *origin).to(device)
    counts = {}
    for name, m in models.items():
        want = len(src.classes) if src.classes else None
        # NaN logits are refused here; one logit per image stands for two classes (nn/logits.py)
        counts[name] = check_output(m, x, want, f"model {name}", finite=True, one_logit=True, seed=seed)
        n = class_count(counts[name])
        if src.labels is not None and int(src.labels.max()) >= n:
            one = " (its one logit stands for two classes, 0 and 1)" if counts[name] == 1 else ""
            raise InvlabError(f"model {name} gives {counts[name]} logit(s){one}, but a label is "
                              f"{int(src.labels.max())}: labels must be class indices below {n} (with --class-index, "
                              f"class_index= in Python, each INDEX must be)")
    return counts


class Modes:
    """Put models in eval mode on the device for a measurement; give each back as it was: every submodule in its
    own training mode (a frozen BatchNorm inside a training model stays frozen), every parameter (and its
    gradient) and buffer on the device it was on."""

    def __init__(self, models: dict[str, nn.Module], device: torch.device):
        self.models, self.device = models, device

    def __enter__(self):
        self.was = {k: ([s.training for s in m.modules()], _devices(m)) for k, m in self.models.items()}
        for m in self.models.values():
            m.to(self.device).eval()
        return self

    def __exit__(self, *exc):
        for k, m in self.models.items():
            training, devices = self.was[k]
            for sub, flag in zip(m.modules(), training):
                sub.training = flag
            _move_back(m, devices)


def _devices(model: nn.Module) -> dict[str, torch.device]:
    return {name: t.device for name, t in chain(model.named_parameters(), model.named_buffers())}


def _move_back(model: nn.Module, devices: dict[str, torch.device]) -> None:
    """Each parameter and buffer back on its device (the model may have been spread over several)."""
    if len(set(devices.values())) == 1:
        model.to(next(iter(devices.values())))
        return
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, p in module.named_parameters(recurse=False):
            want = devices.get(prefix + name)
            if want is not None and p.device != want:
                p.data = p.data.to(want)
                if p.grad is not None:
                    p.grad = p.grad.to(want)
        for name, b in module.named_buffers(recurse=False):
            want = devices.get(prefix + name)
            if want is not None and b.device != want:
                setattr(module, name, b.to(want))


class Measurement:
    """Models measured on the images of `src` over the shifts of `lines` ((dx, dy) lists, accumulate.Grid), each
    input made by prepare(batch, dx, dy), on `device` (cpu, cuda, auto or a torch.device). Entering checks everything that can refuse (outputs, labels, the
    engine; with `layers` or `taps`, the taps) before any work. factors: {model: its factor columns} (default: a
    preset's own, else "custom"); labelled=False (a layer profile) leaves the labels unchecked. transform rotate or
    scale: `lines` hold (angle,) or (scale,) points and prepare(batch, value) turns or scales (stream.preparer);
    brute force, no layer profile."""

    def __init__(self, models: dict[str, nn.Module], src: Images, prepare: Prepare,
                 lines: list[list[tuple[float, float]]], *, mode: str, device: str | torch.device, seed: int = 0,
                 factors: dict[str, dict] | None = None, batch_size: int = 256, engine: str = "auto",
                 layers: bool = False, taps: list[str] | None = None, labelled: bool = True, progress: bool = False,
                 layer_images: int | None = None, transform: str = "translate"):
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
            raise InvlabError(f"seed must be a whole number 0 .. {SEED_MAX} (2**32 - 1), as a config's seeds are; "
                              f"got {quote(seed)}")
        if transform != "translate" and (layers or taps):
            raise InvlabError(f"--layers profiles translations of the whole input, layer by layer; a {transform} "
                              "measurement cannot take it (leave out --layers and --taps, or measure with "
                              "--transform translate)")
        self.named, self.src, self.prepare, self.lines, self.mode = models, src, prepare, lines, mode
        self.transform, self.grid = transform, Grid(lines, transform)
        self.origin = self.grid.origin  # (0, 0); angle 0 or scale 1
        self.layer_images = layer_images if layers else None  # for the memory estimate of the layer profile
        self.device_name, self.batch_size, self.taps, self.progress = device, batch_size, taps, progress
        self.models, self.seed = {(k, seed): m for k, m in models.items()}, seed
        self.factors = factors if factors is not None else {k: custom_factors(m) for k, m in models.items()}
        self.engine, self.labelled, self.check_taps = engine, labelled, layers or bool(taps)
        self._state = ExitStack()

    def __enter__(self) -> Measurement:
        with ExitStack() as stack:
            stack.enter_context(process_state())
            stack.enter_context(without_autocast())  # a caller's torch.autocast would measure in bfloat16
            self.device = resolve_device(self.device_name)  # inside process_state: cuda's TF32 switch is undone after
            stack.enter_context(Modes(self.named, self.device))
            # refused before a batch is decoded: the images' headers give their number and size
            check_measure_memory(self.src, batch_size=self.batch_size, mode=self.mode)
            # a layer profile reads no labels: its images' classes are not checked against the logits
            src = self.src if self.labelled else from_tensor(self.src(slice(0, min(2, len(self.src)))))
            self.outputs = check_outputs(self.named, src, self.prepare, self.device, self.origin, self.seed)
            self.n_classes = max(class_count(c) for c in self.outputs.values())
            if self.check_taps:
                with torch.inference_mode():
                    first = self.prepare(self.src(slice(0, min(2, len(self.src)))), *ORIGIN).to(self.device)
                    for m in self.named.values():
                        taps_for(m, self.taps)(first)  # the names exist and their outputs can be profiled
            # sub-pixel (fft) circular shifts are not rolls: brute force, with the reason (engine.roll_mode)
            self.plans, self.engines = measure_engines(
                self.models, self.src.shape, roll_mode(self.mode, self.grid.points),
                self.engine, self.transform)
            # and again with the networks' feature maps, measured on the first images, before the first batch
            first = self.prepare(self.src(slice(0, min(2, len(self.src)))), *self.origin).to(self.device)
            check_measure_memory(self.src, batch_size=self.batch_size, mode=self.mode,
                                 maps=feature_map_bytes(self.named, first, call), layer_images=self.layer_images,
                                 engine_only=all(p is not None for p in self.plans.values()))
            self._state = stack.pop_all()
        return self

    def __exit__(self, *exc) -> None:
        self._state.close()

    def shifts(self) -> pd.DataFrame:
        """invariance.csv's table: one row per model x shift, factor columns included; the clean accuracies
        (accuracy at (0, 0), on or off the grid) in self.clean_accuracy, the per-image worst cases (robust
        accuracy, consistent fraction: summarize's worst_case) in self.worst_case."""
        result = measure_shifts(self.models, self.src, self.lines, self.prepare, self.plans, self.batch_size,
                                self.device, self.progress, outputs=self.outputs, transform=self.transform)
        self.clean_accuracy, self.worst_case = result.clean_accuracy, result.worst_case
        return add_factors(result.table, self.factors, self.mode)

    def layers(self, n_images: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(layers.csv, layers_summary.csv) of the layer profile (layerwise.py) on the first n_images images:
        the engine's taps where it applies and no modules are named, else forward hooks (taps.py)."""
        per_shift, per_layer = profile_layers(
            self.models, lambda c, dx, dy: self.prepare(self.src(c), dx, dy), n_images, self.grid.points,
            self.mode, self.batch_size, self.device, progress=self.progress,
            engine="brute" if self.taps else self.plans, taps=self.taps)
        return add_factors(per_shift, self.factors, self.mode), add_factors(per_layer, self.factors, self.mode)
