"""`invlab measure --run RUN --images DIR`: every checkpoint of a finished run measured on a folder of images, the
same table over seeds as the run's own (mean ± 95% CI in `invlab report`), written as a measure folder.

    folder = measure_run_to_folder(run="results/kayhan2020_red_green/<run id>", images="my_test_images/")

The images are read as the run's (its colour, resized to its canvas) and labelled by class folders named like the
run's classes; the shifts, mode and fill are the command's (default: dx -8..8 on the canvas, zeros entering).
Models of your own (factory:) are imported only with trust_factory, as for `invlab sweep`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import yaml

from ..config.load import load_config
from ..config.models import resolved_models
from ..core.environment import environment
from ..core.errors import DataError, InvlabError
from ..core.runtime import resolve_device
from ..data.datasets import class_names
from ..data.images import open_folder
from ..data.shifts import grid_points
from ..data.transforms import INTERPOLATION
from ..eval.lie import lie_protocol, lie_table
from ..eval.measurement import Measurement
from ..eval.stream import check_grid, preparer
from ..eval.tables import summarize
from ..nn.factory import is_custom, require_trust
from ..store.atomic import write_csv, write_text
from ..store.checkpoints import load_run_models
from ..store.find import require_finished_run, run_factory_dirs
from ..store.layout import CONFIG_FILE, INVARIANCE_CSV, LIE_CSV, MEASURE_FILE, SUMMARY_CSV, new_measure_folder
from ..store.run_images import is_run_folder
from ..store.meta import Meta
from .measure import _match_classes, check_shift_options


def measure_run_to_folder(*, run: str | Path, images: str | Path, dx: list[float] | None = None,
                          dy: list[float] | None = None, transform: str | None = None,
                          angles: list[float] | None = None, scales: list[float] | None = None,
                          mode: str | None = None, fill: str = "zeros", all_shifts: bool = False,
                          grid: str | None = None,
                          subpixel: str = "bilinear", batch_size: int = 256, results_dir: Path = Path("results"),
                          device: str = "cpu", progress: bool = False, on_event=None, engine: str = "auto",
                          trust_factory: bool = False, metric: str | None = None, layer_images: int = 200) -> Path:
    """Measure each (model, seed) checkpoint of `run` on the image folder `images`; writes
    results/measure/<run name>-<time>/ (meta.json of kind measure with every seed, measure.yaml, invariance.csv,
    summary.csv). Everything is checked, on the first seed's networks, before the folder is made. The shifts (or
    angles, or scales, or all_shifts: every roll of the canvas) as measure.measure_to_folder takes them; metric
    "lie" adds lie.csv, the Lie derivative of every checkpoint on the first layer_images images (eval/lie.py)."""
    say = on_event or (lambda msg: None)
    shifts = check_shift_options(mode, fill, subpixel, dx, dy, batch_size, transform, angles, scales, metric,
                                 all_shifts, grid)
    mode = shifts.mode
    if layer_images < 1:
        raise InvlabError(f"--layer-images must be at least 1; got {layer_images}")
    run = Path(run)
    meta_run = require_finished_run(run)
    cfg = load_config(run / CONFIG_FILE)
    factors = resolved_models(cfg)
    for name, f in factors.items():  # a run folder can come from anyone: its factories run only when trusted
        if is_custom(f):  # the run folder, then where the run found it, as invlab sweep RUN
            require_trust(f, trusted=trust_factory, where=f"{run}: model {name!r}",
                          dirs=run_factory_dirs(run, meta_run))
    if is_run_folder(images):  # it was read as image files: "holds both files (config.yaml, ...) and subfolders"
        raise InvlabError(f"--images {images} is a run folder; with --run, --images is a folder of image files (class "
                          f"folders named like the run's classes). The run's networks on their own test images: "
                          f"invlab sweep {run}")
    src = open_folder(images, colour=cfg.data.colour, size=(cfg.data.canvas, cfg.data.canvas))
    classes = class_names(cfg.data)
    if src.classes and not set(src.classes) <= set(classes):
        raise DataError(f"--images {src.describe}: class folder(s) {', '.join(sorted(set(src.classes) - set(classes)))} "
                        f"are not classes of run {run} ({', '.join(classes)}); name each class folder after the "
                        "run's class it holds, so that its images are labelled as the networks' outputs")
    _match_classes(src, classes, run / CONFIG_FILE)
    shifts = shifts.for_images(src.shape)  # --all-shifts: every roll of the run's canvas
    lines = shifts.lines
    points = grid_points(lines)
    check_grid(points, src.shape, mode, subpixel, shifts.transform)
    prepare = preparer(mode, fill, None, None, subpixel, shifts.transform)
    dev = resolve_device(device)
    loaded = load_run_models(run, cfg, meta_run, list(factors), dev, trust=trust_factory,
                             dirs=run_factory_dirs(run, meta_run))

    def measurement(seed: int) -> Measurement:
        return Measurement({m: loaded[(m, seed)] for m in factors}, src, prepare, lines, mode=mode, device=dev,
                           seed=seed, factors=factors, batch_size=batch_size, engine=engine, progress=progress,
                           transform=shifts.transform)

    with measurement(cfg.seeds[0]) as first:  # outputs, labels, the engine: refused here, before the folder
        engines = first.engines
    n_lie = min(layer_images, len(src))  # the Lie derivative's images as they are (angle 0, scale 1, no shift)
    lie_images = prepare(src(slice(0, n_lie)), *first.origin) if metric == "lie" else None
    folder = new_measure_folder(results_dir, cfg.name)
    say(f"measure folder: {folder}")
    asked = dict(run=str(run), images=str(images), mode=mode, fill=fill, **shifts.settings(), subpixel=subpixel)
    if metric:
        asked.update(metric=metric, layer_images=layer_images)
    write_text(folder / MEASURE_FILE, yaml.safe_dump(asked, sort_keys=False))
    proto = dict(kind="translation", mode=mode, **shifts.protocol(fill, src.shape), test_images=len(src),
                 seeds=cfg.seeds,
                 models=list(factors), n_shifts=len(points), images=src.describe, labels=src.labels is not None,
                 n_classes=len(classes), run=str(run), **engines)
    if metric == "lie":
        proto["lie"] = lie_protocol(n_lie, False)
    if mode == "canvas":
        proto.update(fill=fill, interpolation=INTERPOLATION)
    meta = Meta(folder, kind="measure", name="measure", run_id=folder.name, device=str(dev), seeds=cfg.seeds,
                protocol=proto, models={m: dict(f) for m, f in factors.items()}, environment=environment(device=dev),
                timings={}, run=str(run), fingerprints=meta_run.get("fingerprints", {}))
    with meta.recording():
        t0, tables, summaries, lies = time.perf_counter(), [], [], []
        for seed in cfg.seeds:
            with measurement(seed) as m:
                inv = m.shifts()
                tables.append(inv)
                summaries.append(summarize(inv, m.clean_accuracy, n_classes=m.n_classes, worst_case=m.worst_case))
                if lie_images is not None:  # every seed's networks on the same images, read once
                    lies.append(lie_table({(name, seed): loaded[(name, seed)] for name in factors}, lie_images,
                                          batch_size=batch_size))
        meta.data["timings"]["measure_s"] = round(time.perf_counter() - t0, 2)
        write_csv(folder / INVARIANCE_CSV, _by_model(pd.concat(tables, ignore_index=True)))
        write_csv(folder / SUMMARY_CSV, _by_model(pd.concat(summaries, ignore_index=True)))
        if lies:
            write_csv(folder / LIE_CSV, _by_model(pd.concat(lies, ignore_index=True)))
    return folder


def _by_model(table: pd.DataFrame) -> pd.DataFrame:
    """Rows model by model (in the run's order), seeds within: as a run's own tables."""
    order = {m: i for i, m in enumerate(dict.fromkeys(table["model"]))}
    return table.sort_values(["model", "seed"], key=lambda s: s.map(order) if s.name == "model" else s,
                             kind="stable").reset_index(drop=True)
