"""`invlab run` and `invlab sweep` as library functions: the story of a run and of a sweep.

    run_dir = run_experiment(load_config("configs/quick.yaml"), results_dir=Path("results"))
    folder = sweep_experiment(run_dir, SweepConfig(mode="circular", dx=[-4, 4]))

A run: Config -> (letters, models) -> one trained checkpoint per (model, seed) unit -> sweep -> tidy CSVs.
Units already trained with the same settings (fingerprint) are reused, not retrained: from the interrupted
run being resumed, or from any earlier run of the same name. A sweep re-evaluates a finished run's checkpoints
over new shifts (kind `translation`), part displacements (kind `parts`: only the letter's part moves: a stroke
letter's right-most stroke, data/letters.py; an outline letter's right-most counter, data/outlines.py), and with
`layers` the per-layer profile of eval/layerwise.py.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import yaml

from ..store.checkpoints import load_checkpoint, load_run_models, trained_with, unit_fingerprints, unit_settings
from ..schema.config import Config, DataConfig, SweepConfig
from ..config.load import aliased_yaml, load_config, to_yaml
from ..data.datasets import class_names, evaluation_set, glyph_table, training_set
from ..data.ink import ink_baselines
from ..data.ink_stats import battery_words
from ..data.validation import validation_split
from ..core.environment import environment
from ..core.progress import time_left
from ..core.runtime import keeps_threads, resolve_device, set_threads
from ..core.speed import release_freed_memory
from ..config.factorial import left_out
from ..core.errors import InvlabError
from ..nn.factory import check_models, is_custom, require_trust
from ..data.folder import image_channels
from ..config.memory import check_resources, sweep_shares
from ..config.sweep_memory import check_sweep_jobs
from ..nn.models import count_parameters
from ..store.layout import (CONFIG_FILE, INVARIANCE_CSV, LAYERS_CSV, LAYERS_SUMMARY_CSV, LIE_CSV, SUMMARY_CSV,
    SWEEP_DIR, SWEEP_FILE, TRAIN_CSV, checkpoint_path, new_folder, refuse_linked_folders, unit_key)
from ..store.atomic import write_csv, write_file, write_text
from ..store.claim import run_folder
from ..store.meta import Meta, run_state
from ..store.find import (config_digest, finished_runs, live_run, require_finished_run, resumable_run,
                          reusable_checkpoints, run_difference)
from ..eval.engine import engine_protocol
from ..eval.lie import evaluate_lie, lie_protocol
from ..eval.sweep import (DEFAULT_LAYER_IMAGES, ModelKey, check_sweep_options, engine_mode, evaluate_layers,
    evaluate_shifts, protocol, sweep_engines)
from .executors import Resources, check_jobs, worker_threads
from .scheduler import train_units, wait_elsewhere
from .sweep_jobs import sweep_in_workers
from .units import UnitData, train_unit, units_to_train
from .train import kept_row
from .test_sets import check_sweep_data, measure_test_sets
from ..config.models import chosen_models, resolved_models

Say = Callable[[str], None]


@keeps_threads
def run_experiment(cfg: Config, *, results_dir: Path, progress: bool = False, fresh: bool = False,
                   reuse_old: bool = False, threads: int | None = None, on_event: Say | None = None,
                   factory_dirs: list[Path] | None = None, jobs: int = 1, executor: str = "processes",
                   resources: Resources | None = None) -> Path:
    """Train (or reuse), sweep and write a run folder; returns its path. meta.json says 'complete' only at the end.

    An interrupted run of the same config (Ctrl-C, SIGTERM, SIGKILL) is resumed in its own folder; otherwise a
    new folder is made. Either way every unit whose checkpoint already exists with the same fingerprint is
    reused, unless `fresh`, which trains everything again in a new folder; one (or an interrupted run) made by
    another invlab or torch version or from other font files only with `reuse_old` (store/find.py, recorded in
    meta.json's reused_old). Models of your own (`factory:`) are
    imported (searched first in `factory_dirs`: the config file's folder) and checked before anything is written.
    With `jobs` > 1 or another `executor`, the units to train run in workers (units.py); the rest is the same.
    """
    say = on_event or (lambda msg: None)
    if not isinstance(cfg, Config):
        raise InvlabError(f"run_experiment takes a Config (il.load_config, il.parse_config); got {type(cfg).__name__}")
    check_jobs(jobs, executor)
    threads_why = set_threads(threads)
    device = resolve_device(cfg.device)
    factors = resolved_models(cfg)
    factory_files, own_sizes = check_models(factors, num_classes=len(class_names(cfg.data)), canvas=cfg.data.canvas,
                                 train=cfg.train.epochs > 0, dirs=factory_dirs or (),
                                 in_channels=image_channels(cfg.data.colour))
    if own_sizes:  # the memory check of parse_config again, with your models' feature maps now measured
        check_resources(cfg, f"config {cfg.name}", own=own_sizes)
    config_text = to_yaml(cfg)
    digest = config_digest(config_text)
    digests = tuple(dict.fromkeys((digest, config_digest(aliased_yaml(cfg)))))  # a folder made before finds it too
    made_with = trained_with(cfg)
    run_dir, old, held = run_folder(results_dir, cfg.name, digests, config_text, fresh=fresh, trained_with=made_with,
                                    reuse_old=reuse_old)  # held: no other process resumes it meanwhile
    stale = None if fresh or old else resumable_run(results_dir, cfg.name, digests)
    if stale is not None:  # made with other versions, or held by another process that resumes it now
        other = run_difference(stale[1], made_with)
        say(f"not resuming {stale[0]}: " + (f"it was made with {other}; starting a new folder (`invlab run "
            "--reuse-old` resumes it)" if other else "another invlab process resumes it; starting a new folder"))
    if old is not None:
        say(f"resuming {run_dir} ({run_state(old)}): finished units are kept")
    else:
        busy = None if fresh else live_run(results_dir, cfg.name, digests, exclude=run_dir)
        say(f"run folder: {run_dir}" + ("" if busy is None else f" ({busy[0]} is running this config now, process "
            f"{busy[1].get('pid')}: this run reuses the checkpoints it has finished and trains the others itself; "
            "stop this one and run again when that one ends to reuse them all)"))
    history = [] if old is None else old.get("attempts", []) + [dict(state=run_state(old), started=old.get("started"))]
    meta = Meta(run_dir, kind="run", name=cfg.name, run_id=run_dir.name, config_digest=digest, device=str(device),
                seeds=cfg.seeds, protocol=protocol(cfg.sweep, cfg.data, cfg.seeds, list(factors)),
                environment=environment(threads_why, device), models={}, fingerprints=unit_fingerprints(cfg), trained=[], reused={},
                trained_with=made_with, reuse_old=reuse_old, reused_old={},  # reused_old: store/find.py
                attempts=history, timings={"train_s": {}})
    if cfg.factorial is not None:  # the combinations that cannot be built (invlab run prints them)
        meta.data["factorial_left_out"] = left_out(cfg)
    with held, meta.recording():  # the folder held until the run ends
        t0 = time.perf_counter()
        table = glyph_table(cfg.data)
        # data.val_fraction holds validation images out of the training set (or a folder's val/): val is (x, y)
        train_x, train_y, val = validation_split(cfg.data, *training_set(cfg.data, table))
        test_x, test_y = evaluation_set(cfg.data, table)  # position task: the paired top/bottom images
        classes = class_names(cfg.data)
        meta.data["classes"] = classes
        # how much of the task total ink alone solves (ink.py), and each invariant statistic (ink_stats.py): the
        # accuracies a network must beat to show it reads shape
        meta.data["ink_baseline"] = ink_baselines(train_x, train_y, test_x, test_y, len(classes))
        say(battery_words(meta.data["ink_baseline"]))
        release_freed_memory()  # drawing the letters' temporaries: training does not stack on them (core/speed.py)
        meta.data["timings"]["data_s"] = round(time.perf_counter() - t0, 2)
        reusable = reusable_checkpoints(results_dir, cfg.name, made_with, exclude=run_dir, reuse_old=reuse_old,
                                        resumed=old)
        earlier = {} if fresh else reusable.found
        trained, histories = {}, []
        data, units = UnitData(train_x, train_y, test_x, test_y, classes, *(val or ())), unit_settings(cfg)
        if (jobs, executor) == (1, "processes"):
            in_workers = wait_elsewhere(run_dir, list(units), say)
        else:
            to_train = units_to_train(run_dir, units, earlier, meta.data["fingerprints"])
            if executor != "slurm":  # the workers --jobs starts here, for the units left (slurm's run elsewhere)
                check_resources(cfg, f"config {cfg.name}", own=own_sizes, jobs=jobs, units=len(to_train),
                                executor=executor, cpu=device.type == "cpu")
            in_workers = train_units(cfg, run_dir, to_train, data, jobs=jobs, executor=executor, threads=threads,
                                     resources=resources, factory_dirs=factory_dirs, say=say)
        if (jobs, executor) != (1, "processes"):  # environment.torch_threads is this process's, not its workers'
            meta.data["worker_threads"] = worker_threads(jobs, threads, executor, resources or Resources())
        started = time.perf_counter()
        for i, ((name, seed), settings) in enumerate(units.items()):
            t0, key, path = time.perf_counter(), unit_key(name, seed), checkpoint_path(run_dir, name, seed)
            fp = meta.data["fingerprints"][key]
            if fp in reusable.refused and not fresh:
                say(reusable.refusal(key, fp))
            model, hist, source = _reuse(path, earlier.get(fp), settings, device,
                                         say if key not in in_workers else lambda msg: None, factory_dirs or ())
            if model is None:
                meta.data["training"] = key  # `invlab status`: the unit this process trains now
                meta.save()
                model, hist = train_unit(cfg, name, seed, settings, data, device, run_dir, progress, factory_dirs or ())
                del meta.data["training"]
                meta.data["trained"].append(key)
                now = time.perf_counter()
                say(f"trained {name} seed {seed}: test accuracy {kept_row(hist).test_accuracy:.3f} "
                    f"({now - t0:.1f}s); units: {i + 1} of {len(units)}, {time_left(i + 1, len(units), now - started)}")
            elif key in in_workers:  # trained just now by a worker (units.py)
                meta.data["trained"].append(key)
            else:
                meta.data["reused"][key] = source
                reusable.note(meta.data["reused_old"], key, fp, source)  # --reuse-old: what it was trained with
            trained[(name, seed)] = model
            histories.append(hist.assign(model=name, seed=seed))
            meta.data["timings"]["train_s"][key] = in_workers.get(key, round(time.perf_counter() - t0, 2))
            meta.data["models"][name] = dict(settings["factors"], n_params=count_parameters(model))
            if name in factory_files:
                meta.data["models"][name]["factory_file"] = factory_files[name]  # where the module came from
            meta.save()
        train_csv = pd.concat(histories, ignore_index=True)
        write_csv(run_dir / TRAIN_CSV, train_csv[["model", "seed"] + [c for c in train_csv if c not in ("model", "seed")]])
        parallel = dict(jobs=jobs, threads=threads, factory_dirs=factory_dirs or ()) if executor == "processes" else {}
        _evaluate_and_write(run_dir, meta, trained, factors, cfg.data, cfg.sweep, device, progress, **parallel)
        measure_test_sets(run_dir, meta, trained, factors, cfg.data, cfg.sweep, device, progress)  # data.test_sets
    return run_dir


def _reuse(path: Path, earlier: Path | None, settings: dict, device: torch.device, say: Say, dirs=()):
    """(model, history, where it came from) for a unit trained before, or (None, None, None) to train it."""
    for source in (path, earlier):
        if source is None or not source.is_file():
            continue
        try:
            # trust: the unit's fingerprint is the config's, so a factory it names is the one the config names
            model, blob = load_checkpoint(source, device, expect=settings, trust=True, dirs=dirs)
        except InvlabError as e:  # a damaged or foreign file is not reused; the unit is trained again
            say(f"not reusing {source}: {e}")
            continue
        if source != path:
            with open(source, "rb") as src:  # atomic and never through a link, like every checkpoint
                write_file(path, lambda f: shutil.copyfileobj(src, f), binary=True)
        say(f"reused {path.stem} from {source}")
        return model, pd.DataFrame(blob["history"]), "this run folder (resumed)" if source == path else str(source)
    return None, None, None


def _evaluate_and_write(folder: Path, meta: Meta, models: dict[ModelKey, torch.nn.Module], factors: dict,
                        data: DataConfig, sweep: SweepConfig, device: torch.device, progress: bool,
                        kind: str = "translation", layer_images: int | None = None,
                        engine: str | dict = "auto", jobs: int = 1, threads: int | None = None,
                        factory_dirs=(), engine_name: str = "auto", run_dir: Path | None = None) -> None:
    """Sweep the models and write invariance.csv and summary.csv (and the layer profile when asked).

    engine: auto | allshift | brute, or sweep_engines()'s choice; the engine used goes into meta.json's protocol.
    jobs > 1 sweeps shares of the models in worker processes (sweep_jobs.py; the same tables) on a CPU; they
    load the checkpoints of `run_dir` (default: `folder` itself) and choose engines by `engine_name` when
    `engine` is already a choice of plans."""
    plans = engine if isinstance(engine, dict) else sweep_engines(models, data, sweep, kind, engine)
    meta.data["protocol"].update(engine_protocol(plans, models, data.canvas, engine_mode(sweep, kind)))
    if layer_images:  # the profile takes the engine where it also has the taps (InvNet models)
        tapped = {k: p for k, p in plans.items() if p is not None and p.pool is not None}
        meta.data["protocol"]["layers"]["engine"] = ("allshift" if len(tapped) == len(plans) else
                                                     "mixed" if tapped else "brute")
    meta.save()
    t0 = time.perf_counter()
    shares = sweep_shares(jobs, len({k[0] for k in models}), device.type == "cpu")  # as the memory check counts
    if shares > 1:
        run_dir = run_dir or folder
        inv, summary = sweep_in_workers((run_dir / CONFIG_FILE).read_text(), run_dir, list(models), sweep, kind,
                                        engine if isinstance(engine, str) else engine_name, jobs, threads,
                                        factory_dirs, device=str(device))
        meta.data["sweep_workers"] = shares
    else:
        inv, summary = evaluate_shifts(models, factors, data, sweep, device, progress, kind, engine=plans)
    meta.data["timings"]["sweep_s"] = round(time.perf_counter() - t0, 2)
    write_csv(folder / INVARIANCE_CSV, inv)
    write_csv(folder / SUMMARY_CSV, summary)
    if layer_images:
        t0 = time.perf_counter()
        per_shift, per_layer = evaluate_layers(models, factors, data, sweep, device, layer_images, progress,
                                               engine=plans)
        meta.data["timings"]["layers_s"] = round(time.perf_counter() - t0, 2)
        write_csv(folder / LAYERS_CSV, per_shift)
        write_csv(folder / LAYERS_SUMMARY_CSV, per_layer)


def latest_matching_run(cfg: Config, results_dir: Path) -> Path | None:
    """The newest finished run of cfg.name whose checkpoints match every model x seed of cfg exactly."""
    want = unit_fingerprints(cfg)
    matching = [folder for folder, meta in finished_runs(results_dir, cfg.name) if meta.get("fingerprints") == want]
    return matching[-1] if matching else None


def run_for_config(cfg: Config, *, results_dir: Path, progress: bool = False, threads: int | None = None,
                   on_event: Say | None = None, factory_dirs: list[Path] | None = None) -> Path:
    """The newest finished run with cfg's models, data, training and seeds, or a new one (reusing checkpoints)."""
    say = on_event or (lambda msg: None)
    run_dir = latest_matching_run(cfg, results_dir)
    if run_dir is not None:
        say(f"using run {run_dir}")
        return run_dir
    say("no finished run with these exact settings: running it first (matching checkpoints are reused)")
    return run_experiment(cfg, results_dir=results_dir, progress=progress, threads=threads, on_event=on_event,
                          factory_dirs=factory_dirs)


@keeps_threads
def sweep_experiment(run_dir: Path, sweep: SweepConfig | None = None, *, models: list[str] | None = None,
                     kind: str = "translation", layers: bool = False, layer_images: int = DEFAULT_LAYER_IMAGES,
                     progress: bool = False, threads: int | None = None, on_event: Say | None = None,
                     trust_factory: bool = False, engine: str = "auto",
                     factory_dirs: list[Path] | None = None, jobs: int = 1, metric: str | None = None,
                     device: str | None = None) -> Path:
    """Evaluate a finished run's checkpoints over `sweep` (default: the run's own); writes <run>/sweeps/<id>/.

    kind "parts" moves only each letter's part (a stroke letter's right-most stroke, an outline letter's right-most
    counter) by (dx, dy) px instead of the letter.
    layers adds layers.csv (per tap x shift) and layers_summary.csv (per tap, with the normalised variance) of
    the first `layer_images` test images (layerwise.py); translation sweeps only. Models of your own (`factory:`
    in the run's config.yaml) are imported only with `trust_factory` (factory.require_trust: a run folder can come
    from anyone); without it the refusal names the file that would be imported. engine: auto (the exact
    all-shift engine, engine.py, for each model it applies to in a circular sweep; brute force for the rest),
    allshift (refuse where it does not apply) or brute (one forward pass per shift: the check). jobs > 1 sweeps
    shares of the models in worker processes (sweep_jobs.py), with the same tables. metric "lie" adds lie.csv,
    the Lie derivative (eval/lie.py) of the first `layer_images` test images, per tap too with `layers`. device:
    where the sweep computes (cpu, cuda, auto), default the run's own `device` (a run trained on a GPU is swept on a
    machine without one with device="cpu").
    """
    say = on_event or (lambda msg: None)
    check_sweep_options(kind, layers, metric, layer_images)
    check_jobs(jobs, "processes")
    threads_why = set_threads(threads)
    meta_run = require_finished_run(run_dir)
    cfg = load_config(Path(run_dir) / CONFIG_FILE)
    if sweep is not None and not isinstance(sweep, SweepConfig):  # e.g. load_config(path).sweep
        raise InvlabError(f"sweep_experiment's sweep is an il.SweepConfig(dx=..., ...); got {type(sweep).__name__}")
    sweep = sweep or cfg.sweep
    if layers and sweep.transform != "translate":
        raise InvlabError(f"--layers profiles translations of the whole input; a {sweep.transform} sweep cannot "
                          "take it (leave out --layers, or sweep with --transform translate)")
    if kind == "parts" and cfg.data.source == "letters" and cfg.data.glyphs == "outline":
        table = glyph_table(cfg.data)  # a filled letter's part is a counter (outlines.py): some letters have none
        none = [f"{table.letters[g // len(table.fonts)]} in {table.fonts[g % len(table.fonts)]}"
                for g in range(table.part.shape[0]) if not table.part[g].any()]
        if none:
            raise InvlabError(f"--kind parts moves a filled letter's counter (the right-most hole, outlines.py); "
                              f"{', '.join(none)} ha{'s' if len(none) == 1 else 've'} none: use letters with a "
                              "counter (A, B, D, O, P, Q, R) or data.glyphs: stroke")
    if kind == "parts" and sweep.mode != "canvas":
        raise InvlabError(f"--kind parts draws the moved part on the canvas; --mode {sweep.mode} does not apply (leave it out)")
    factors = resolved_models(cfg)
    chosen = chosen_models(cfg, models, run_dir)
    others = check_sweep_data(cfg, sweep, kind, f"invlab sweep {run_dir}")
    device = resolve_device(cfg.device if device is None else device)
    check_sweep_jobs(cfg, sweep, kind, chosen, jobs, device.type == "cpu", f"invlab sweep {run_dir}")
    for m in chosen:
        if is_custom(factors[m]):  # factory_dirs: the folder of the config that names it (invlab sweep CONFIG)
            require_trust(factors[m], trusted=trust_factory, where=f"{run_dir}: model {m!r}", dirs=factory_dirs or ())
    loaded = load_run_models(Path(run_dir), cfg, meta_run, chosen, device, trust=trust_factory, dirs=factory_dirs or ())
    plans = sweep_engines(loaded, cfg.data, sweep, kind, engine)  # --engine allshift refuses here, before any folder
    for data in others:
        sweep_engines(loaded, data, sweep, kind, engine)

    refuse_linked_folders(Path(run_dir), (SWEEP_DIR,))  # sweeps/ -> elsewhere would take the new folder with it
    folder = new_folder(Path(run_dir) / SWEEP_DIR)
    write_text(folder / SWEEP_FILE, yaml.safe_dump(dict(sweep=sweep.model_dump(mode="json"), models=chosen, kind=kind,
                                                        layers=layers, **({"metric": metric} if metric else {})),
                                          sort_keys=False))
    proto = protocol(sweep, cfg.data, cfg.seeds, chosen, kind=kind)
    if layers:
        proto["layers"] = dict(n_images=min(layer_images, proto["test_images"]))
    if metric == "lie":
        proto["lie"] = lie_protocol(min(layer_images, proto["test_images"]), layers)
    meta = Meta(folder, kind="sweep", name=cfg.name, run_id=Path(run_dir).name, sweep_id=folder.name,
                run=str(run_dir), device=str(device), seeds=cfg.seeds, protocol=proto,
                fingerprints={k: v for k, v in meta_run["fingerprints"].items()},
                environment=environment(threads_why, device), timings={}, run_environment=meta_run.get("environment"))
    say(f"sweep folder: {folder}")
    with meta.recording():
        _evaluate_and_write(folder, meta, loaded, {m: factors[m] for m in chosen}, cfg.data, sweep, device, progress,
                            kind=kind, layer_images=layer_images if layers else None, engine=plans, jobs=jobs,
                            threads=threads, factory_dirs=factory_dirs or (), engine_name=engine,
                            run_dir=Path(run_dir))
        if kind == "translation":  # data.test_sets on the new grid too (a part displacement needs the own letters)
            measure_test_sets(folder, meta, loaded, {m: factors[m] for m in chosen}, cfg.data, sweep, device,
                              progress, engine=engine)
        if metric == "lie":
            t0 = time.perf_counter()
            write_csv(folder / LIE_CSV, evaluate_lie(loaded, cfg.data, sweep, device, layer_images, layers=layers,
                                                     progress=progress))
            meta.data["timings"]["lie_s"] = round(time.perf_counter() - t0, 2)
    return folder
