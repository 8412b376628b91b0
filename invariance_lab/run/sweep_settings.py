"""`invlab sweep` as one library call: a run folder (or the run of a config, trained first when there is none),
the command line's sweep options laid over the run's own sweep settings, then experiment.sweep_experiment.

    folder = sweep_target(Path("results/quick/20261127-160351"), dx=[-4.0, 4.0, 1.0], mode="circular")
    settings = sweep_settings(run_dir, dx=None, dy=None, mode=None, grid=None, kind="translation", all_shifts=True)

Shift ranges arrive parsed ([start, stop, step]: the command line parses START:STOP:STEP text).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from ..config.load import load_config
from ..config.sweep_memory import check_sweep_jobs
from ..config.models import chosen_models
from ..core.errors import ConfigError
from ..core.runtime import resolve_device
from ..data.shifts import FFT_ON_ROLLS, every_roll, whole_pixels
from ..eval.sweep import DEFAULT_LAYER_IMAGES, check_sweep_options
from ..schema.config import SweepConfig
from ..store.find import require_finished_run, run_factory_dirs
from ..store.layout import CONFIG_FILE, SWEEP_DIR
from .experiment import run_for_config, sweep_experiment
from .test_sets import check_sweep_data
from .trust import check_config_trust
from .writable import writable

Say = Callable[[str], None]
Range = list[float]  # [start, stop, step], px, inclusive
# the options of each sweep.transform (the mode, --mode, applies to every one)
OPTIONS = {"rotate": "--angles", "scale": "--scales", "translate": "--dx/--dy/--grid/--subpixel/--all-shifts"}


def pick_transform(transform: str | None, given: dict[str, bool], options: dict[str, str], verb: str) -> str | None:
    """--transform, or the one transform whose options were given (given: {transform: any of its options given});
    None when neither says. Options of two transforms, or of another than --transform names, are refused
    (options: {transform: its options, as the message names them}; verb: the command, "sweep" or "measure")."""
    implied = [t for t, g in given.items() if g]
    transform = transform or (implied[0] if len(implied) == 1 else None)
    clash = [t for t in implied if t != transform]
    if clash:
        raise ConfigError(f"{' and '.join(options[t] for t in implied)} belong to two transforms "
                          f"({', '.join(implied)}); {verb} one at a time" if transform is None else
                          f"--transform {transform} does not take "
                          + "; ".join(f"{options[t]} (the options of --transform {t})" for t in clash))
    return transform


def sweep_settings(run_dir: Path, *, dx: Range | None, dy: Range | None, mode: str | None, grid: str | None,
                   kind: str, all_shifts: bool = False, subpixel: str | None = None, transform: str | None = None,
                   angles: Range | None = None, scales: Range | None = None) -> SweepConfig:
    """The run's own sweep settings with the command line's --dx/--dy/--mode/--grid/--subpixel laid over them.

    Ranges not given: with neither, the run's; with one, the other axis is fixed at 0. all_shifts: every roll of
    the canvas (circular mode, both axes, product grid), centred on 0. transform (translate, rotate, scale) with
    angles or scales (degrees, factors); without it, --angles means rotate, --scales scale, --dx/--dy translate."""
    require_finished_run(run_dir)
    return settings_for(load_config(Path(run_dir) / CONFIG_FILE), dx=dx, dy=dy, mode=mode, grid=grid, kind=kind,
                        all_shifts=all_shifts, subpixel=subpixel, transform=transform, angles=angles, scales=scales)


def settings_for(cfg, *, dx: Range | None, dy: Range | None, mode: str | None, grid: str | None, kind: str,
                 all_shifts: bool = False, subpixel: str | None = None, transform: str | None = None,
                 angles: Range | None = None, scales: Range | None = None) -> SweepConfig:
    """sweep_settings on a config (the run's config.yaml, or the one a run is about to be made from)."""
    settings = cfg.sweep.model_dump()
    transform = pick_transform(transform, {"rotate": angles is not None, "scale": scales is not None, "translate":
                               all_shifts or any(v is not None for v in (dx, dy, grid, subpixel))}, OPTIONS, "sweep")
    settings.update({k: v for k, v in dict(transform=transform, angles=angles, scales=scales).items()
                     if v is not None})
    if all_shifts:
        given = [o for o, v in (("--dx", dx), ("--dy", dy), ("--grid", grid)) if v is not None]
        given += ["--subpixel fft"] * (subpixel == "fft")  # every roll is a whole pixel: fractions would be ignored
        if given:
            raise ConfigError(f"--all-shifts sweeps every roll of the canvas by itself; leave out {', '.join(given)}")
        if mode not in (None, "circular") or kind != "translation":
            raise ConfigError("--all-shifts rolls the whole input (--mode circular, --kind translation); leave out "
                              f"{'--mode ' + mode if mode not in (None, 'circular') else '--kind ' + kind}")
        settings.update(mode="circular", dx=every_roll(cfg.data.canvas), dy=every_roll(cfg.data.canvas),
                        grid="product")
    if dx is not None or dy is not None:
        settings["dx"] = list(dx) if dx is not None else [0.0, 0.0, 1.0]
        settings["dy"] = list(dy) if dy is not None else [0.0, 0.0, 1.0]
        settings["grid"] = "product"
    settings.update({k: v for k, v in dict(mode=mode, grid=grid, subpixel=subpixel).items() if v is not None})
    if kind == "parts" and mode in (None, "canvas"):
        settings["mode"] = "canvas"  # displacements are drawn (sub-pixel allowed), whatever the run's sweep mode
    turned = (settings.get("transform") or "translate") != "translate"  # rotate, scale (None: translate)
    if subpixel is None and (settings["mode"] != "circular" or turned):
        settings["subpixel"] = "bilinear"  # a run's own circular fft does not apply to a drawn or turned sweep
    if turned:  # a turned or scaled sweep moves nothing: the run's shifts go
        settings.update(dx=[0.0, 0.0, 1.0], dy=[0.0, 0.0, 1.0])
    try:
        sweep = SweepConfig.model_validate(settings)
    except ValidationError as e:
        raise ConfigError("invalid sweep options: " + "; ".join(
            f"{'.'.join(map(str, x['loc'])) or 'sweep'}: {x['msg'].removeprefix('Value error, ')}" for x in e.errors())) from None
    if sweep.subpixel == "fft" and whole_pixels(sweep.dx, sweep.dy):
        if subpixel == "fft":
            raise ConfigError(FFT_ON_ROLLS)
        sweep = sweep.model_copy(update={"subpixel": "bilinear"})  # the run's own fft, on rolls alone
    return sweep


def sweep_target(target: Path, *, overrides: list[str] | None = None, dx: Range | None = None,
                 dy: Range | None = None, mode: str | None = None, grid: str | None = None,
                 models: list[str] | None = None, kind: str = "translation", layers: bool = False,
                 layer_images: int = DEFAULT_LAYER_IMAGES, all_shifts: bool = False, engine: str = "auto",
                 subpixel: str | None = None, metric: str | None = None, transform: str | None = None,
                 angles: Range | None = None, scales: Range | None = None, jobs: int = 1, trust_factory: bool = False,
                 threads: int | None = None, results_dir: Path | None = None, progress: bool = False,
                 on_event: Say | None = None, device: str | None = None) -> Path:
    """Sweep `target` (a run folder, or a YAML config: its newest finished run with the same settings, else a new
    run) over the given settings; returns the sweep folder. Your config's own factories are trusted (importing
    them is what naming the config asks for); a run folder's, or its config.yaml's, only with trust_factory.
    results_dir: where a config's run is found or made (default results/); a run folder's sweeps go inside it.
    device: where the sweep computes (default the run's own `device`; a config's run is trained on the config's)."""
    check_sweep_options(kind, layers, metric, layer_images)  # before a config's run is trained for the sweep
    if target.is_file() or target.suffix in (".yaml", ".yml"):
        cfg = load_config(target, overrides or [])
        check_config_trust(cfg, target, trusted=trust_factory)  # before anything is imported, called or trained
        # the config's own sweep, checked before a run is trained for it: a finished run that is reused may have
        # been made with another sweep (runs are matched on their training), which must not replace this one
        settings = settings_for(cfg, dx=dx, dy=dy, mode=mode, grid=grid, kind=kind, all_shifts=all_shifts,
                                subpixel=subpixel, transform=transform, angles=angles, scales=scales)
        # the sweep against the data (a shift that blanks every image), the models named and --jobs' workers, checked
        # before a run is trained for the sweep (sweep_experiment checks them again on the run it finds or makes);
        # the data first, so that a shift that cannot work is named rather than the workers' memory it would need
        check_sweep_data(cfg, settings, kind, f"invlab sweep {target}")
        check_sweep_jobs(cfg, settings, kind, chosen_models(cfg, models, target), jobs,
                         resolve_device(cfg.device if device is None else device).type == "cpu",
                         f"invlab sweep {target}")
        run_dir = run_for_config(cfg, results_dir=writable(results_dir or Path("results"), "--results-dir",
                                                           create=False),
                                 progress=progress,
                                 threads=threads, on_event=on_event, factory_dirs=[target.parent])
        trust_factory = True  # your config, or one you trusted: importing its factories is what you asked for
    elif overrides:
        raise ConfigError("--set applies to a config file; a run folder's settings are fixed")
    else:
        run_dir = target
        settings = sweep_settings(run_dir, dx=dx, dy=dy, mode=mode, grid=grid, kind=kind, all_shifts=all_shifts,
                                  subpixel=subpixel, transform=transform, angles=angles, scales=scales)
        if results_dir is not None:  # (a run folder: sweep_settings read it) it would be ignored
            raise ConfigError(f"--results-dir applies to a config file (where its run is found or made); a run "
                              f"folder's sweeps are written inside it ({target / SWEEP_DIR}/<sweep id>). Leave "
                              "--results-dir out")
    # a run folder: its own folder, then where its factories came from (imported only if trusted)
    dirs = [target.parent] if run_dir != target else run_factory_dirs(run_dir, require_finished_run(run_dir))
    return sweep_experiment(run_dir, settings, models=models, progress=progress, kind=kind, layers=layers,
                            layer_images=layer_images, threads=threads, on_event=on_event, engine=engine,
                            trust_factory=trust_factory, factory_dirs=dirs, jobs=jobs, metric=metric, device=device)
