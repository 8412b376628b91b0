"""`invlab sweep`: parse the shift ranges, call run.sweep_settings.sweep_target, print the sweep's tables.

    invlab sweep results/quick/<run id> --mode circular --dx -4:4
    invlab sweep configs/quick.yaml --all-shifts
    invlab sweep results/quick/<run id> --mode circular --dx -1:1:0.25 --subpixel fft
    invlab sweep results/quick/<run id> --metric lie --layers      # + lie.csv: the Lie derivative (eval/lie.py)
    invlab sweep results/quick/<run id> --transform rotate --angles -40:40:20   # or --transform scale --scales 0.8:1.2:0.1
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..core.columns import TRANSFORMS
from ..data.shifts import SWEEP_KINDS
from ..data.transforms import SUBPIXEL
from ..eval.engine import ENGINE_CHOICES
from ..eval.lie import SWEEP_METRICS
from ..eval.sweep import DEFAULT_LAYER_IMAGES
from ..eval.stream import GRIDS, MODES
from ..run.sweep_settings import sweep_target
from ..schema.config import parse_range
from ..store.layout import LIE_CSV
from ..store.results import load_result
from .options import QUIET, THREADS, choice, line, names, nonempty, only_with, say
from .show import show_result


def sweep_cli(target: Path = typer.Argument(..., parser=nonempty("target", "results/quick/<run id>"), help="A run folder (results/<name>/<run id>) or a YAML config."),
              dx: Optional[str] = typer.Option(None, "--dx", help="Horizontal shifts START:STOP[:STEP], px, inclusive."),
              dy: Optional[str] = typer.Option(None, "--dy", help="Vertical shifts START:STOP[:STEP], px, inclusive."),
              transform: Optional[str] = choice(None, "--transform", TRANSFORMS, "translate (--dx, --dy), rotate (--angles) or scale (--scales): drawn letters are drawn turned or scaled about their centre (exact); image folders, boxes and --mode circular turn or scale the reference image (bilinear, zeros entering). Default: the run's; --angles alone means rotate, --scales scale."),
              angles: Optional[str] = typer.Option(None, "--angles", help="Rotation angles START:STOP[:STEP], degrees counterclockwise, inclusive (--transform rotate)."),
              scales: Optional[str] = typer.Option(None, "--scales", help="Scale factors START:STOP[:STEP], 1 = as drawn, inclusive (--transform scale)."),
              mode: Optional[str] = choice(None, "--mode", MODES, "canvas (redrawn; sub-pixel allowed) or circular (rolled). Default: the run's."),
              grid: Optional[str] = choice(None, "--grid", GRIDS, "product (every dx, dy pair) or axes (each axis alone). Default: the run's; product when --dx or --dy is given (the axis not given is then 0)."),
              models_: Optional[str] = typer.Option(None, "--models", help="Comma-separated model names (default: all)."),
              kind: str = choice("translation", "--kind", SWEEP_KINDS, "translation (move the letter) or parts (move only its part by dx, dy: a stroke letter's right-most stroke, an outline letter's right-most counter)."),
              layers: bool = typer.Option(False, "--layers", help="Also write the per-layer profile: layers.csv, layers_summary.csv."),
              layer_images: Optional[int] = typer.Option(None, "--layer-images", help="Test images for --layers (it runs every layer at every shift) and --metric lie (default 200; only with them)."),
              all_shifts: bool = typer.Option(False, "--all-shifts", help="Every circular shift of the canvas (the whole translation group, --mode circular): prints each model's exact worst case, a certificate of invariance or the shift that breaks it."),
              engine: str = choice("auto", "--engine", ENGINE_CHOICES, "auto: the exact all-shift engine for every model it applies to (circular sweeps of circular-padding networks; the same numbers, much faster), brute force for the rest; brute: one forward pass per shift (the check); allshift: refuse where the engine does not apply."),
              subpixel: Optional[str] = choice(None, "--subpixel", SUBPIXEL, "Fractional shifts in --mode circular: fft (band-limited, the Fourier shift theorem) or bilinear (refuses them: rolls are whole pixels). Default: the run's."),
              metric: Optional[str] = choice(None, "--metric", SWEEP_METRICS, "lie: also the Lie derivative (lie.csv): how fast the softmax output moves under an infinitesimal translation (x, y), rotation and scaling of the first --layer-images test images; with --layers, per layer too."),
              set_: List[str] = typer.Option([], "--set", help="Config override when TARGET is a config file."),
              jobs: int = typer.Option(1, "--jobs", "-j", help="Sweep the models in N shares at once, in worker processes with cores/N torch threads each unless --threads says; the same numbers as --jobs 1."),
              trust_factory: bool = typer.Option(False, "--trust-factory", help="Import the Python modules that build a run folder's own models (factory: in its config.yaml, also when TARGET is that config.yaml); without it invlab refuses and names the file that would run."),
              device: Optional[str] = choice(None, "--device", ("cpu", "cuda", "auto"), "Where the sweep computes: cpu, cuda or auto (cuda when torch finds one). Default: the run's own device setting, so a run trained on a GPU is swept on a machine without one with --device cpu."),
              threads: Optional[int] = THREADS,
              results_dir: Optional[Path] = typer.Option(None, "--results-dir", parser=nonempty("--results-dir", "results"), metavar="<path>", help="When TARGET is a config: where its run is found or made (default results). A run folder's sweeps are written inside it."),
              quiet: bool = QUIET):
    """Evaluate trained models over new shifts without retraining; writes <run>/sweeps/<id>/.

    A run's data.test_sets are measured on the same shifts too (not with --kind parts), in the sweep folder's
    test_sets/<name>/."""
    layer_images = only_with(layer_images, "--layer-images", layers or metric is not None, "--layers or --metric lie",
                             DEFAULT_LAYER_IMAGES)
    folder = sweep_target(
        target, overrides=set_, dx=parse_range(dx, "--dx") if dx is not None else None,
        dy=parse_range(dy, "--dy") if dy is not None else None, mode=mode, grid=grid,
        models=names(models_, "--models"), kind=kind, layers=layers,
        layer_images=layer_images, all_shifts=all_shifts, engine=engine, subpixel=subpixel, metric=metric, jobs=jobs,
        transform=transform, angles=parse_range(angles, "--angles") if angles is not None else None,
        scales=parse_range(scales, "--scales") if scales is not None else None,
        trust_factory=trust_factory, device=device,
        threads=threads, results_dir=results_dir, progress=not quiet, on_event=say(quiet))
    result = load_result(folder)
    show_result(result, "sweep: mean ± 95% CI over seeds")
    if result.lie is not None:  # --metric lie: a table per model x transform in the report
        line(f"Lie derivative: {folder / LIE_CSV}; its table: invlab report {folder}")
    line(f"sweep folder: {folder}")
