"""`invlab measure`: any PyTorch model measured on a folder of images, written as a result folder.

    folder = measure_to_folder(images="data/test", model="my_models:small_cnn", weights="mine.pt")

The model is your factory (`--model pkg.mod:fn`, weights from a state dict, a .safetensors file or an invlab
checkpoint) or the preset an invlab checkpoint describes; the measurement is eval/measurement.py's, the one
il.measure runs, and the tables have the columns of a run's invariance.csv and summary.csv, so `invlab report`
and its plots read a measure folder like a run. The same measurement from Python: run/api.py (`il.measure`).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import yaml

from ..core.environment import environment
from ..core.errors import DataError, InvlabError, choose, quote
from ..core.runtime import resolve_device
from ..data.images import Images, open_folder, relabel
from ..store.run_images import is_run_folder, run_images
from ..data.shifts import (FFT_ON_ROLLS, axis_values, every_roll, grid_points, roll_protocol, value_lines,
    whole_pixels)
from ..data.transforms import FILLS, INTERPOLATION, SUBPIXEL
from ..eval.class_order import class_order_note
from ..eval.lie import SWEEP_METRICS, lie_protocol, lie_table
from ..eval.measurement import Measurement
from ..eval.stream import GRIDS, MODES, check_channels, check_grid, preparer
from ..eval.tables import summarize
from ..nn.factory import is_custom, locate
from ..nn.finite import check_weights
from ..nn.models import count_parameters, place
from ..core.columns import TRANSFORMS
from ..schema.fields import check_range
from ..schema.sweep import MAX_SHIFTS, SWEEP_DEFAULTS
from ..store.atomic import write_csv, write_text
from ..store.layout import (INVARIANCE_CSV, LAYERS_CSV, LAYERS_SUMMARY_CSV, LIE_CSV, MEASURE_FILE, SUMMARY_CSV,
    new_measure_folder)
from ..store.meta import Meta
from ..store.weights import load_weights, read_weights
from .measure_model import measured_model
from .sweep_settings import pick_transform

DEFAULT_DX, DEFAULT_DY = [-8.0, 8.0, 1.0], [0.0, 0.0, 1.0]  # --dx -8:8, --dy 0
# the options of each --transform of invlab measure
OPTIONS = {"rotate": "--angles", "scale": "--scales", "translate": "--dx/--dy/--grid/--all-shifts"}


def _match_classes(src: Images, classes: list[str] | None, weights: Path | None = None) -> None:
    """Label a folder's images by a checkpoint's class names when its class folders are named after them (in any
    order). A folder named like a class but for letter case is refused: matched by position it would be read in
    the folder's sorted order, silently, and invlab does not guess which spelling is meant."""
    if classes and src.classes:
        spelt = {c.casefold(): c for c in classes}
        near = [(c, spelt[c.casefold()]) for c in src.classes if c not in classes and c.casefold() in spelt]
        if near:
            pairs = ", ".join(f"{quote(f'{c}/')} (the checkpoint's {quote(want)})" for c, want in near)
            raise DataError(f"--images {src.describe}: class folder(s) {pairs} differ from the classes recorded in "
                            f"{weights} ({quote(list(classes))}) only in letter case; folders are matched "
                            "to the model's outputs by exact name, so rename them to the checkpoint's spelling")
        named, other = [c for c in src.classes if c in classes], [c for c in src.classes if c not in classes]
        if named and other:  # matched by position, a folder named after one class would be scored as another
            raise DataError(f"--images {src.describe}: class folder(s) {quote(named)} are named after classes of "
                            f"{weights} ({quote(list(classes))}) but {quote(other)} are not, so the folders cannot "
                            "be matched to the model's outputs by name, and matched by position a folder would be "
                            "scored as another class; name every folder after its class, or give --class-index")
    if classes and src.classes and set(src.classes) <= set(classes) and src.classes != classes:
        lookup = torch.tensor([classes.index(c) for c in src.classes])
        src.labels, src.classes = lookup[src.labels], list(classes)


@dataclass(frozen=True)
class MeasureGrid:
    """What a measurement moves the images by: a translation's dx, dy ranges (every pair), or a rotate or scale
    measurement's angles or scales; each range [start, stop, step], inclusive. `mode`: canvas or circular.
    all_shifts: every roll of the images, whose ranges for_images sets once their size is known."""

    transform: str
    ranges: dict[str, list[float]]  # {"dx": .., "dy": ..}, {"angles": ..} or {"scales": ..}
    mode: str = "canvas"
    all_shifts: bool = False
    grid: str = "product"  # a translation's (dx, dy): every pair, or each axis alone (axes)

    def for_images(self, shape: tuple[int, ...]) -> MeasureGrid:
        """The grid for images of shape (..., H, W): with all_shifts, every roll (dx over W, dy over H)."""
        if not self.all_shifts:
            return self
        h, w = shape[-2:]
        if h * w > MAX_SHIFTS:  # check_grid's limit, said for --all-shifts: no step to make larger
            raise InvlabError(f"--all-shifts: every roll of {h} x {w} px images is {h * w} shifts, each a pass over "
                              f"every image; at most {MAX_SHIFTS}: make the images smaller with --size (e.g. --size "
                              f"{math.isqrt(MAX_SHIFTS)}), or measure some shifts with --mode circular --dx, --dy")
        return replace(self, ranges=dict(dx=every_roll(w), dy=every_roll(h)))

    @property
    def lines(self) -> list[list[tuple[float, ...]]]:
        """accumulate.Grid's lines: (dx, dy) shifts, or one line of (angle,) or (scale,) points."""
        if self.transform == "translate":
            return value_lines(axis_values(self.ranges["dx"]), axis_values(self.ranges["dy"]), self.grid)
        (values,) = self.ranges.values()
        return [[(v,) for v in axis_values(values)]]

    def settings(self) -> dict:
        """measure.yaml's keys for the grid: its ranges, and transform, all_shifts and grid where not the default
        (measure.yaml files made before them stay as they were)."""
        out = dict(self.ranges)
        if self.transform != "translate":
            out["transform"] = self.transform
        if self.all_shifts:
            out["all_shifts"] = True
        if self.grid != "product":
            out["grid"] = self.grid
        return out

    def protocol(self, fill: str, shape: tuple[int, ...]) -> dict:
        """meta.json's protocol keys for the grid on images of shape (..., H, W), as a sweep writes them
        (eval/sweep.protocol): all_shifts when the rolls cover the images' whole translation group."""
        p = dict(grid=self.grid, **self.ranges)
        if self.transform != "translate":
            verb = "turned" if self.transform == "rotate" else "scaled"
            p.update(transform=self.transform, drawing=f"the image {verb} as pixels "
                                                       f"({INTERPOLATION}, {fill} where the source is outside it)")
        elif self.mode == "circular":  # every roll of the images, or one given twice
            p.update(roll_protocol(grid_points(self.lines), *shape[-2:]))
        return p


def check_shift_options(mode: str | None, fill: str, subpixel: str, dx, dy, batch_size: int,
                        transform: str | None = None, angles=None, scales=None, metric: str | None = None,
                        all_shifts: bool = False, grid: str | None = None) -> MeasureGrid:
    """The shift options `invlab measure` takes (with or without --run), checked. transform: translate (dx, dy;
    default -8:8 and 0), rotate (angles) or scale (scales; defaults as a sweep's, schema/sweep.SWEEP_DEFAULTS);
    without it, --angles means rotate, --scales scale. grid: product (every dx, dy pair; None) or axes (each axis
    alone). all_shifts: every roll of the images (mode circular, product grid, by itself: no dx, dy). mode None:
    canvas, or circular with all_shifts. metric: None or "lie" (eval/lie.SWEEP_METRICS)."""
    if metric is not None:
        choose("--metric", metric, SWEEP_METRICS)
    if mode is not None:
        choose("mode", mode, MODES)
    choose("fill", fill, FILLS)
    choose("subpixel", subpixel, SUBPIXEL)
    if transform is not None:
        choose("--transform", transform, TRANSFORMS)
    if grid is not None:
        choose("--grid", grid, GRIDS)
    if batch_size < 1:
        raise InvlabError(f"--batch-size must be at least 1; got {batch_size}")
    transform = pick_transform(transform, {"rotate": angles is not None, "scale": scales is not None,
                                           "translate": all_shifts or grid is not None or dx is not None
                                           or dy is not None},
                               OPTIONS, "measure")
    transform = transform or "translate"
    if fill != "zeros" and transform == "translate" and (mode == "circular" or all_shifts):
        raise InvlabError(f"--fill {fill} says what enters the frame when an image moves inside it (--mode canvas); "
                          f"{'--all-shifts rolls' if all_shifts else '--mode circular rolls'} the image around, and "
                          "nothing enters: leave --fill out")
    if all_shifts:
        given = [o for o, v in (("--dx", dx), ("--dy", dy), ("--grid", grid)) if v is not None]
        if given:
            raise InvlabError(f"--all-shifts measures every roll of the images by itself; leave out {', '.join(given)}")
        if mode not in (None, "circular"):
            raise InvlabError(f"--all-shifts rolls the whole image (--mode circular); leave out --mode {mode}")
        if subpixel == "fft":  # every roll is a whole pixel, which fft would not change (as invlab sweep says)
            raise InvlabError("--all-shifts rolls by whole pixels, which --subpixel fft would not change; leave it out")
        return MeasureGrid(transform, {}, "circular", all_shifts=True)
    if transform == "translate":
        given = dict(dx=DEFAULT_DX if dx is None else dx, dy=DEFAULT_DY if dy is None else dy)
    else:
        key = "angles" if transform == "rotate" else "scales"
        value = angles if transform == "rotate" else scales
        given = {key: SWEEP_DEFAULTS[key] if value is None else value}
    try:
        ranges = {k: check_range(list(v), f"--{k}") for k, v in given.items()}
    except ValueError as e:
        raise InvlabError(str(e)) from None
    if subpixel == "fft" and transform == "translate" and whole_pixels(*ranges.values()):
        raise InvlabError(FFT_ON_ROLLS)
    return MeasureGrid(transform, ranges, mode or "canvas", grid=grid or "product")


def measure_to_folder(*, images: str | Path, model: str | None = None, model_kwargs: dict | None = None,
                      weights: str | Path | None = None, dx: list[float] | None = None,
                      dy: list[float] | None = None, transform: str | None = None, angles: list[float] | None = None,
                      scales: list[float] | None = None, mode: str | None = None, fill: str = "zeros",
                      all_shifts: bool = False, grid: str | None = None,
                      colour: str = "grey", size: tuple[int, int] | None = None, mean=None, std=None,
                      layers: bool = False, taps: list[str] | None = None, layer_images: int = 200,
                      batch_size: int = 256, name: str | None = None, results_dir: Path = Path("results"),
                      device: str = "cpu", progress: bool = False, on_event=None, engine: str = "auto",
                      trust_factory: bool = False, subpixel: str = "bilinear", metric: str | None = None,
                      class_index: dict[str, int] | None = None) -> Path:
    """`invlab measure`: measure a model (your factory, --model, with --weights; or an invlab checkpoint) on a
    folder of images; writes results/measure/<name>-<time>/ with meta.json, measure.yaml, invariance.csv,
    summary.csv (and with layers, layers.csv and layers_summary.csv). dx, dy: [start, stop, step] ranges (every
    pair; default -8:8 and 0); all_shifts: every roll of the images instead (mode circular; None means canvas
    otherwise), the summary's worst case then exact over the translation group; transform rotate or scale:
    angles (degrees, counterclockwise) or scales (factors) instead, the images turned or scaled about their centre
    (check_shift_options). subpixel: fft lets circular
    mode shift by fractions (band-limited: data/transforms.fourier_shift). engine: auto | allshift | brute
    (eval/measurement.measure_shifts). Everything is checked before the folder is made. A checkpoint's own
    factory and kwargs are used only with trust_factory (measure_model.py). A clean accuracy far below chance puts
    meta.json's `class_order` = {model: note} (eval/class_order.py): the class order probably differs, and the
    tables print the note instead of "at chance". metric "lie" adds lie.csv: the Lie derivative (eval/lie.py) on
    the first layer_images images, per tap too with layers (and taps). class_index: {class folder: the model's
    output index}, for a model with more outputs than the folder has classes (data/images.relabel)."""
    say = on_event or (lambda msg: None)
    shifts = check_shift_options(mode, fill, subpixel, dx, dy, batch_size, transform, angles, scales, metric,
                                 all_shifts, grid)
    mode = shifts.mode
    if layer_images < 1:
        raise InvlabError(f"--layer-images must be at least 1; got {layer_images}")
    if taps and not layers:
        raise InvlabError("--taps names the modules of the layer profile: give --layers too")
    state, checkpoint = read_weights(weights) if weights is not None else (None, None)
    net, factors, label, seed = measured_model(model, model_kwargs, checkpoint, weights, trust_factory)
    label = label if name is None else name  # --name '' is refused below, not taken for no name
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", label) or label.startswith("."):
        if name is None and checkpoint is not None:  # the checkpoint's own name, which came with the file
            raise InvlabError(f"{weights}: its [name] {quote(label)} cannot name the measure folder (letters, digits, "
                              "'_', '-', '.', at most 100, not starting with '.'); give --name NAME")
        raise InvlabError(f"--name {quote(label)}: use ASCII letters, digits, '_', '-', '.', at most 100 of them, not "
                          "starting with '.' (it names the folder)")
    if is_run_folder(images):
        if colour != "grey" or size is not None:
            raise InvlabError(f"--images {images} is a run folder: its test letters are grey images of its canvas; "
                              "leave out --colour and --size")
        if class_index:
            raise InvlabError(f"--images {images} is a run folder: its test letters are labelled by the run's "
                              "classes; leave out --class-index")
        src = run_images(images)
    else:
        src = open_folder(images, colour=colour, size=size)
    if class_index:
        relabel(src, class_index)
    else:
        _match_classes(src, checkpoint["classes"] if checkpoint else None, weights)
    mean, std = check_channels(mean, src.shape[0], "--mean"), check_channels(std, src.shape[0], "--std")
    if state is not None:
        load_weights(net, state, weights)
        # a NaN or infinite weight: refused before anything is written. Checked in the model, which holds only the
        # weights it uses, rather than in the file's tensors: those are memory-mapped, and reading all of a file
        # that holds more than the model would bring all of it into memory
        check_weights(net.state_dict(), weights)
    shifts = shifts.for_images(src.shape)  # --all-shifts: every roll of these images
    prepare = preparer(mode, fill, mean, std, subpixel, shifts.transform)
    lines = shifts.lines
    points = grid_points(lines)
    check_grid(points, src.shape, mode, subpixel, shifts.transform)
    device = resolve_device(device)
    net = place(net, device)
    n_first = min(layer_images, len(src))  # the images of the layer profile and of the Lie derivative
    with Measurement({label: net}, src, prepare, lines, mode=mode, device=device, seed=seed, factors={label: factors},
                     batch_size=batch_size, engine=engine, layers=layers, taps=taps, progress=progress,
                     layer_images=n_first, transform=shifts.transform) as m:
        # everything is checked (outputs, labels, taps; --engine allshift refuses here): now the folder
        folder = new_measure_folder(results_dir, label)
        say(f"measure folder: {folder}")
        settings = dict(model=model, model_kwargs=factors.get("kwargs") if model else None,
                        weights=None if weights is None else str(weights), images=str(images), mode=mode, fill=fill,
                        colour=colour, size=None if size is None else list(size), mean=mean, std=std,
                        **shifts.settings(), layers=layers, taps=taps,
                        layer_images=layer_images if layers or metric else None)
        if metric:
            settings["metric"] = metric
        if class_index:  # written only when given: earlier measure.yaml files stay as they were
            settings["class_index"] = dict(class_index)
        if subpixel == "fft":  # written only when not the default: earlier measure.yaml files stay as they were
            settings["subpixel"] = subpixel
        write_text(folder / MEASURE_FILE, yaml.safe_dump(settings, sort_keys=False))
        proto = dict(kind="translation", mode=mode, **shifts.protocol(fill, src.shape), test_images=len(src),
                     seeds=[seed], models=[label], n_shifts=len(points), images=src.describe, labels=src.labels is not None,
                     n_classes=m.n_classes)
        if mode == "canvas":
            proto.update(fill=fill, interpolation=INTERPOLATION)
        if subpixel == "fft":
            proto["subpixel"] = subpixel
        if layers:
            proto["layers"] = dict(n_images=n_first)
        if metric == "lie":
            proto["lie"] = lie_protocol(n_first, layers)
        proto.update(m.engines)
        info = dict(factors, n_params=count_parameters(net), weights=settings["weights"])
        if is_custom(factors):
            info["factory_file"] = locate(factors["factory"]) or "?"
        meta = Meta(folder, kind="measure", name="measure", run_id=folder.name, device=str(device), seeds=[seed],
                    protocol=proto, models={label: info}, environment=environment(device=device), timings={})
        with meta.recording():
            t0 = time.perf_counter()
            inv = m.shifts()
            meta.data["timings"]["measure_s"] = round(time.perf_counter() - t0, 2)
            write_csv(folder / INVARIANCE_CSV, inv)
            write_csv(folder / SUMMARY_CSV, summarize(inv, m.clean_accuracy, n_classes=m.n_classes,
                                                      worst_case=m.worst_case))
            # far below chance: the class order probably differs; the tables print this note, not "at chance"
            note = class_order_note(net, src, prepare, m.clean_accuracy[(label, seed)], m.n_classes, batch_size,
                                    device, m.origin)
            if note:
                meta.data["class_order"] = {label: note}
            if layers:
                t0 = time.perf_counter()
                per_shift, per_layer = m.layers(n_first)
                meta.data["timings"]["layers_s"] = round(time.perf_counter() - t0, 2)
                write_csv(folder / LAYERS_CSV, per_shift)
                write_csv(folder / LAYERS_SUMMARY_CSV, per_layer)
            if metric == "lie":  # on the images as they are, normalised as the model reads them
                t0 = time.perf_counter()
                x = prepare(src(slice(0, n_first)), *m.origin)
                write_csv(folder / LIE_CSV, lie_table({(label, seed): net}, x, layers=layers, taps=taps,
                                                      batch_size=batch_size, progress=progress))
                meta.data["timings"]["lie_s"] = round(time.perf_counter() - t0, 2)
    return folder
