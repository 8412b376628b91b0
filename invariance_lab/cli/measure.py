"""`invlab measure`: parse the options (ranges, JSON, sizes, numbers), call run.measure.measure_to_folder, print
the tables.

    invlab measure --images photos/ --model mypkg.nets:resnet --weights net.pt --dx -8:8 --mode circular
    invlab measure --images photos/ --model mypkg.nets:resnet --weights net.pt --angles -40:40:10   # rotations
    invlab measure --images photos/ --model mypkg.nets:resnet --weights net.pt --all-shifts        # every roll
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..core.columns import TRANSFORMS
from ..core.errors import ConfigError, quote
from ..data.images import COLOURS, image_size
from ..data.transforms import FILLS, SUBPIXEL
from ..eval.engine import ENGINE_CHOICES
from ..eval.lie import SWEEP_METRICS
from ..eval.sweep import DEFAULT_LAYER_IMAGES
from ..eval.stream import GRIDS, MODES
from ..run.measure import measure_to_folder
from ..run.measure_run import measure_run_to_folder
from ..core.runtime import set_threads
from ..run.writable import writable
from ..schema.config import parse_range
from ..schema.model import MAX_KWARG_DEPTH
from ..store.layout import LIE_CSV
from ..store.results import load_result
from .options import QUIET, THREADS, choice, line, names, nonempty, only_with, say
from .show import show_result


def measure_cli(images: Path = typer.Option(..., "--images", parser=nonempty("--images", "my_images/"), metavar="<path>", help="A folder of PNG/JPEG images: class subfolders (DIR/<class>/<image>) give labels, a flat folder none. Or a run folder: its own test images."),
                model: Optional[str] = typer.Option(None, "--model", help="package.module:function that returns your nn.Module (imported: its code runs). Optional when --weights is an invlab checkpoint of a preset."),
                model_kwargs: Optional[str] = typer.Option(None, "--model-kwargs", help="JSON object of keyword arguments for --model, e.g. '{\"width\": 16}'."),
                weights: Optional[Path] = typer.Option(None, "--weights", parser=nonempty("--weights", "model.pt"), metavar="<path>", help="A state dict (.pt, read with weights_only=True), a .safetensors file, or an invlab checkpoint. Without it the model is measured as --model returns it."),
                dx: Optional[str] = typer.Option(None, "--dx", help="Horizontal shifts START:STOP[:STEP], px, inclusive. Default: -8:8."),
                dy: Optional[str] = typer.Option(None, "--dy", help="Vertical shifts START:STOP[:STEP], px, inclusive; every (dx, dy) pair is measured (--grid axes: each axis alone). Default: 0."),
                transform: Optional[str] = choice(None, "--transform", TRANSFORMS, "translate (--dx, --dy), rotate (--angles) or scale (--scales): rotate and scale turn or scale each image about its centre (bilinear, --fill entering where the source is outside it). Default: translate; --angles alone means rotate, --scales scale."),
                angles: Optional[str] = typer.Option(None, "--angles", help="Rotation angles START:STOP[:STEP], degrees counterclockwise, inclusive (--transform rotate). Default: -40:40:10."),
                scales: Optional[str] = typer.Option(None, "--scales", help="Scale factors START:STOP[:STEP], 1 = as the image is, inclusive (--transform scale). Default: 0.8:1.2:0.1."),
                mode: Optional[str] = choice(None, "--mode", MODES, "canvas (the image moves inside its frame; sub-pixel shifts bilinear; the default) or circular (rolled, whole pixels; the default with --all-shifts)."),
                grid: Optional[str] = choice(None, "--grid", GRIDS, "product (every dx, dy pair; the default) or axes (each axis alone, the other at 0: fewer shifts)."),
                all_shifts: bool = typer.Option(False, "--all-shifts", help="Every circular shift of the images (the whole translation group, --mode circular; in place of --dx, --dy): prints each model's exact worst case, a certificate of invariance or the shift that breaks it."),
                fill: str = choice("zeros", "--fill", FILLS, "canvas mode: what enters the frame: zeros, edge (nearest border pixel) or reflect."),
                class_index: Optional[str] = typer.Option(None, "--class-index", help="NAME=INDEX,...: the model's output index of each class folder, for a model with more outputs than the folder has classes (e.g. --class-index cat=281,dog=207 for two classes of an ImageNet model)."),
                colour: str = choice("grey", "--colour", COLOURS, "grey (1 channel) or rgb (3).", "--color"),
                size: Optional[str] = typer.Option(None, "--size", help="Resize every image to N or HxW px (bilinear), e.g. the model's input size. Default: as they are (all the same size)."),
                mean: Optional[str] = typer.Option(None, "--mean", help="Normalisation after the shift: one value, or one per channel (0.485,0.456,0.406)."),
                std: Optional[str] = typer.Option(None, "--std", help="Normalisation: one value, or one per channel."),
                layers: bool = typer.Option(False, "--layers", help="Also write the layer profile (forward hooks): layers.csv, layers_summary.csv."),
                taps: Optional[str] = typer.Option(None, "--taps", help="Comma-separated module names (model.named_modules(), and 'output') to tap with --layers; default every convolution, pooling and normalisation module."),
                layer_images: Optional[int] = typer.Option(None, "--layer-images", help="Images for --layers (it runs the model at every shift and keeps every tap) and --metric lie (default 200; only with them)."),
                metric: Optional[str] = choice(None, "--metric", SWEEP_METRICS, "lie: also the Lie derivative (lie.csv): how fast the softmax output moves under an infinitesimal translation (x, y), rotation and scaling of the first --layer-images images; with --layers, per layer too."),
                batch_size: int = typer.Option(256, "--batch-size", help="Images per forward pass (memory stays flat in the number of images and shifts)."),
                name: Optional[str] = typer.Option(None, "--name", help="The model's name in the tables (default: the checkpoint's model, else the function's name)."),
                device: str = choice("cpu", "--device", ("cpu", "cuda", "auto"), "cpu, cuda or auto."),
                subpixel: str = choice("bilinear", "--subpixel", SUBPIXEL, "--mode circular: fft lets shifts be fractions (band-limited, the Fourier shift theorem); bilinear refuses them (rolls are whole pixels)."),
                engine: str = choice("auto", "--engine", ENGINE_CHOICES, "auto: the exact all-shift engine where it applies (--mode circular, square images, layers of known kinds: the same numbers, much faster), brute force otherwise; brute: one forward pass per shift (the check); allshift: refuse where the engine does not apply."),
                trust_factory: bool = typer.Option(False, "--trust-factory", help="Use the factory and kwargs a --weights checkpoint (or a --run's config) names (imported and called: code from whoever sent the file runs); without it invlab refuses and shows them."),
                run: Optional[Path] = typer.Option(None, "--run", parser=nonempty("--run", "results/quick/<run id>"), metavar="<path>", help="A finished run folder: measure every checkpoint of it (each model, each seed) on --images, read as the run's images (its colour and canvas); the tables are mean ± 95% CI over its seeds, as the run's own."),
                threads: Optional[int] = THREADS, quiet: bool = QUIET,
                results_dir: Path = typer.Option(Path("results"), "--results-dir", parser=nonempty("--results-dir", "results"), metavar="<path>", help="Where the measure folder is created: <results-dir>/measure/<name>-<time>/.")):
    """Measure a model of your own (trained anywhere) on a folder of images, without training: writes
    results/measure/<name>-<time>/ with the files `invlab report` reads."""
    set_threads(threads)  # the command's process: measure_to_folder runs here
    layer_images = only_with(layer_images, "--layer-images", layers or metric is not None, "--layers or --metric lie",
                             DEFAULT_LAYER_IMAGES)
    if run is not None:
        _measure_run(run, images, dx=_range(dx, "--dx"), dy=_range(dy, "--dy"), grid=grid, all_shifts=all_shifts,
                     transform=transform,
                     angles=_range(angles, "--angles"), scales=_range(scales, "--scales"), mode=mode, fill=fill,
                     subpixel=subpixel, engine=engine, metric=metric, layer_images=layer_images,
                     batch_size=batch_size, device=device, trust_factory=trust_factory, quiet=quiet,
                     results_dir=results_dir, others=dict(model=model, model_kwargs=model_kwargs, weights=weights, class_index=class_index,
                     size=size, mean=mean, std=std, taps=taps, name=name, layers=layers or None,
                     colour=None if colour == "grey" else colour))
        return
    folder = measure_to_folder(
        images=images, model=model, model_kwargs=_json_object(model_kwargs, "--model-kwargs"), weights=weights,
        class_index=_class_index(class_index),
        dx=_range(dx, "--dx"), dy=_range(dy, "--dy"), grid=grid, all_shifts=all_shifts, transform=transform,
        angles=_range(angles, "--angles"),
        scales=_range(scales, "--scales"), mode=mode, fill=fill, colour=colour,
        size=_size(size), mean=_numbers(mean, "--mean"), std=_numbers(std, "--std"), layers=layers,
        taps=names(taps, "--taps"), layer_images=layer_images,
        batch_size=batch_size, name=name, results_dir=writable(results_dir, "--results-dir", create=False),
        device=device,
        progress=not quiet, on_event=say(quiet), engine=engine, trust_factory=trust_factory, subpixel=subpixel,
        metric=metric)
    _print(folder, "measure: per model (one network)")


def _measure_run(run: Path, images: Path, *, quiet: bool, results_dir: Path, others: dict, **options) -> None:
    """invlab measure --run: every checkpoint of a run on an image folder (run/measure_run.py)."""
    given = [f"--{k.replace('_', '-')}" for k, v in others.items() if v is not None]
    if given:
        raise ConfigError(f"--run measures the run's own networks on images read as the run's (its colour and "
                          f"canvas); {', '.join(given)} do{'es' if len(given) == 1 else ''} not apply with it: leave "
                          f"{'it' if len(given) == 1 else 'them'} out")
    folder = measure_run_to_folder(run=run, images=images,
                                   results_dir=writable(results_dir, "--results-dir", create=False),
                                   progress=not quiet,
                                   on_event=say(quiet), **options)
    _print(folder, f"measure: every checkpoint of {run}, mean ± 95% CI over seeds")


def _print(folder: Path, title: str) -> None:
    result = load_result(folder)
    show_result(result, title)
    if result.lie is not None:  # --metric lie: a table per model x transform in the report
        line(f"Lie derivative: {folder / LIE_CSV}; its table: invlab report {folder}")
    line(f"measure folder: {folder}")


def _range(text: str | None, option: str) -> list[float] | None:
    return None if text is None else parse_range(text, option)


class _Repeated(ValueError):
    """A key a JSON object gives twice (its message: the key)."""


def _once(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are all different: {"n": 2, "n": 3} is refused, as YAML refuses it in a config,
    rather than keeping the last value unsaid."""
    keys = [k for k, _ in pairs]
    twice = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if twice is not None:
        raise _Repeated(repr(twice))
    return dict(pairs)


def _class_index(text: str | None) -> dict[str, int] | None:
    """--class-index cat=281,dog=207 as {"cat": 281, "dog": 207}."""
    if text is None:
        return None
    pairs = [p.partition("=") for p in text.split(",")]
    if not all(sep and name.strip() and index.strip().isascii() and index.strip().isdigit() for name, sep, index in pairs):
        negative = any(sep and index.strip().startswith("-") for _, sep, index in pairs)
        raise ConfigError(f"--class-index {quote(text)}: expected NAME=INDEX[,NAME=INDEX...] (a class folder and "
                          "the model's output index for it, a whole number from 0), e.g. --class-index cat=281,dog=207"
                          + ("; a model's outputs are numbered from 0, so an index is never negative" if negative
                             else ""))
    names = [name.strip() for name, _, _ in pairs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--class-index {quote(text)}: a class folder is named twice")
    if any(len(index.strip()) > 12 for _, _, index in pairs):  # int() refuses past 4300 digits: a traceback
        raise ConfigError(f"--class-index {quote(text)}: an output index has more than 12 digits; a model's outputs "
                          "are numbered from 0")
    return {name.strip(): int(index) for name, _, index in pairs}


def _json_object(text: str | None, option: str):
    if text is None:
        return None
    try:
        value = json.loads(text, object_pairs_hook=_once)
    except _Repeated as e:
        raise ConfigError(f"{option} {quote(text, 120)} gives the key {e} twice; give each keyword argument once") \
            from None
    except ValueError as e:
        raise ConfigError(f"{option} {quote(text)} is not JSON ({e}); write an object, e.g. {option} "
                          f"'{{\"width\": 16}}'") from None
    except RecursionError:  # Python's JSON parser recurses once per [ or {: a thousand of them exhaust the stack
        raise ConfigError(f"{option} {quote(text, 60)} is nested too deep to read (about 1000 levels); keyword "
                          f"arguments are plain values nested at most {MAX_KWARG_DEPTH} levels, e.g. {option} "
                          f"'{{\"width\": 16}}'") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option} must be a JSON object of keyword arguments; got {quote(text)}")
    return value


def _numbers(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        if "_" in text:  # float() reads 0_5 as 5: digits grouped by _ are nobody's normalisation value
            raise ValueError(text)
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected numbers separated by commas, e.g. {option} 0.5 or "
                          f"{option} 0.485,0.456,0.406") from None


def _size(text: str | None) -> tuple[int, int] | None:
    return image_size(text, "--size")
