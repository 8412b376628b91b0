"""The memory estimate that refuses a run too big to hold: the big allocations of a run, in bytes, counted from
the settings alone (nothing is drawn or built; a glyph table is loaded once per letters and fonts).

    check_resources(cfg)                                # the whole run (parse_config calls it)
    check_sweep_fits(data, sweep, "invlab sweep --dx")  # sweep options given after the config
    memory_estimate(cfg)                                # part -> (bytes, the key that scales it)
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, NamedTuple

from pydantic import BaseModel

from ..core.errors import ConfigError, quote
from ..data.folder import DECODE_BATCH, folder_split, image_channels
from ..data.ink import POOL, pool_chunk
from ..data.letters import RENDER_CHUNK
from ..nn.downsample import get_downsample
from ..nn.models import block_downsamples
from ..schema.config import Config
from ..schema.data import DataConfig
from ..schema.sweep import SweepConfig, axis
from ..schema.train import EVAL_BATCH
from .limits import _glyph_stats, letter_size, shift_problem
from .models import resolved_models

MEMORY_CAP = 4 * 2**30  # run memory limit: the smaller of this and half the physical memory (memory_limit)
LIMIT_VARIABLE = "INVLAB_MEMORY_LIMIT"  # GiB: the limit on a machine where the rule's default is too small
MIN_GIB = 0.001  # the least INVLAB_MEMORY_LIMIT: 1e-10 (0 B) was taken, then blamed on the config's settings


def memory_limit() -> tuple[int, str]:
    """(bytes, the rule in words). The limit is the smaller of MEMORY_CAP (4 GiB) and half the physical memory:
    the data, the sweep's inputs and the networks all live in RAM at once, and the lab is meant for a laptop; the
    other half is left to the system, torch's workspace and what this estimate leaves out. INVLAB_MEMORY_LIMIT
    (GiB, up to the physical memory) replaces it on a machine that has more to give."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not Linux: the fixed cap alone
        ram = 0
    here = f"; this machine has {_size(ram)}" if ram > 0 else ""
    given = os.environ.get(LIMIT_VARIABLE, "").strip()
    if given:
        try:
            gib = float(given)
        except ValueError:
            gib = math.nan
        if not (MIN_GIB <= gib < math.inf) or (ram > 0 and gib * 2**30 > ram):
            raise ConfigError(f"{LIMIT_VARIABLE}={quote(given)}: the memory limit of a run, in GiB, must be a number "
                              f"from {MIN_GIB:g} (about 1 MiB)"
                              f"{f' to the physical memory ({_size(ram)})' if ram > 0 else ''}, "
                              "e.g. 16; unset it for the default (the smaller of 4 GiB and half the physical memory)")
        return int(gib * 2**30), f"{LIMIT_VARIABLE}={given}{here}"
    limit = min(MEMORY_CAP, ram // 2) if ram > 0 else MEMORY_CAP
    return limit, (f"the smaller of {_size(MEMORY_CAP)} and half the physical memory{here}; "
                   f"set {LIMIT_VARIABLE} (GiB) for another")


def _size(n: int) -> str:
    """Bytes in words: 1.5 GiB (integer arithmetic first: an estimate can exceed the float range)."""
    n = int(n)
    for i, unit in enumerate(("B", "KiB", "MiB", "GiB")):
        if n < 1024 ** (i + 1):
            return f"{n / 1024 ** i:.3g} {unit}"
    tib = n // 1024**4
    return f"{float(tib):.3g} TiB" if tib.bit_length() < 1000 else f"about 10^{int(tib.bit_length() * 0.30103)} TiB"


def _data_memory(data: DataConfig, sweep: SweepConfig, kind: str = "translation") -> dict[str, tuple[int, str]]:
    """Bytes of the images a run holds, by part, each with the key that scales it (float32 = 4 bytes a pixel)."""
    c, pair = data.canvas, data.task == "position"
    image = 4 * c * c
    if data.source == "folder":  # 8-bit pixels kept (data/folder.py); floats a sweep batch at a time
        pixels = c * c * image_channels(data.colour)
        return {"training images": (data.train_images * pixels, "data.path"),
                "test images": (data.test_images * pixels, "data.path"),
                "sweep inputs": (4 * 4 * pixels * min(data.test_images, sweep.batch_size), "sweep.batch_size"),
                "decoding": (4 * DECODE_BATCH * pixels, "data.canvas")}
    reach = max(abs(v) for v in sweep.dx[:2] + sweep.dy[:2])  # the largest shift, px
    parts = {
        # circular train_mode rolls a copy of the rendered set; the position task builds top, bottom and both
        "training images": (data.train_images * image * (2 if data.train_mode == "circular" else 1),
                            "data.train_images"),
        "test images": (data.test_images * image * (4 if pair else 1), "data.test_images"),
    }
    if data.ink == "matched":  # ink.matched_gain measures each set's ink on a rendered copy of it
        parts["ink matching"] = (max(data.train_images, data.test_images) * image, "data.train_images")
    elif data.ink == "invariant":  # ink.invariant_selection: its pool drawn ink.pool_chunk letters at a time, 7
        # statistics each: the chunk's images, their float64 copy and the drawing's own, 3 copies of its images
        parts["ink matching"] = (3 * min(POOL * data.train_images, pool_chunk(c)) * image
                                 + POOL * data.train_images * 8 * 8, "data.train_images")
    side = c
    if kind == "parts":
        sweep_bytes = 0  # drawn a batch at a time
    elif sweep.mode == "circular" or pair:
        sweep_bytes = data.test_images * image * (4 if pair else 1)  # the reference images, rolled per shift
    else:
        # CanvasShifts: each sub-pixel phase of the test set drawn on a canvas enlarged by the largest shift on
        # every side, cached up to 256 MiB, plus the phase being drawn.
        side = c + 2 * math.ceil(reach)
        phase = 4 * data.test_images * side * side
        fx, fy = ({round(v - math.floor(v), 6) for v in axis(r)} for r in (sweep.dx, sweep.dy))
        n_phases = len(fx) * len(fy) if sweep.grid == "product" else len(fx) + len(fy)
        kept = min(n_phases, max(1, 256 * 2**20 // phase))
        sweep_bytes = phase * (kept + (1 if n_phases > kept else 0))
    parts["sweep inputs"] = (sweep_bytes, "data.test_images")
    # letters.render works RENDER_CHUNK images at a time on a P x P patch around each letter, with two
    # (chunk, P, P, segments) float32 intermediates alive at once, and about as much again in the allocator's
    # keeping (gothicger at 200 px on a 256 px canvas: 1.35 GiB, 1.68 GiB with the command's allocator settings,
    # core/speed.py, against 1.78 GiB charged): large letters make this the biggest part.
    height, width, _ = letter_size(data)
    patch = min(side, math.ceil(max(height, width) + 2 * (reach if kind == "parts" else 0)) + 3)
    segments = _glyph_stats(tuple(data.letters), tuple(data.fonts), data.glyphs)[2]
    n = min(RENDER_CHUNK, max(data.train_images, data.test_images))
    # Filled outlines (glyphs: outline) use the same two; their even-odd test adds only (chunk, P, segments) ones.
    parts["letter drawing"] = (4 * 4 * n * patch * patch * segments, "data.size")
    return parts


def _network_memory(cfg: Config, own: dict[str, tuple] | None = None,
                    at_once: Workers | None = None) -> tuple[int, str]:
    """Bytes of the networks and their activations, and the keys that scale the larger of the two. Every model x
    seed is held for the sweep, and one trains at a time (its gradients and two Adam moments: 3 more copies of its
    weights; with train.epochs: 0 nothing trains). Training keeps about three maps of a block's input size per
    block for the backward pass (the ReLU's output, written over the conv's, and the downsampling stages': a
    stride-1 max pooling and a blur keep full-size maps), and as much again for their gradients; evaluation
    (inference mode) needs about two maps at a time, a block's input and output. Each downsampling kind scales
    both by its measured factor (Downsample.memory): below 1 in training for a plain block, which keeps less than
    that; above it for the kinds that keep more (APS, LPS, TIPS, blur, afc). A model of your own (a factory) is
    counted once its code has run (`own`: name -> (peak, made, parameters), nn/maps.py's bytes per image, from
    factory.check_models): training keeps every operation's output for the backward pass and the forward pass's
    peak besides (made + peak: `python bench/measure_memory.py --runs` measures it), evaluation the peak.
    at_once: what --jobs N runs at once on this machine (workers()): each training worker is charged its training
    (and its test pass), each sweep worker its evaluation; the weights are held once."""
    at_once = at_once or Workers()
    if cfg.data.source == "folder":
        classes = len(folder_split(cfg.data).classes)
    else:
        classes = 2 if cfg.data.task == "position" else len(cfg.data.letters)
    n_test = cfg.data.test_images * (2 if cfg.data.task == "position" else 1)
    total, largest, train_map, eval_map = 0, (0, ""), (0, ""), (0, "")
    models = resolved_models(cfg)
    for name, f in models.items():
        if "factory" in f:  # your own model: its size is known once your code has built it (own)
            if own and name in own:
                peak, made, params = own[name]
                total += params * len(cfg.seeds)
                largest = max(largest, (params, name))
                train_map = max(train_map, ((made + peak) // 4, name))  # bytes -> float32 values, as below
                eval_map = max(eval_map, (peak // 4, name))
            continue
        side, cin, params, saved, widest = cfg.data.canvas, 3 if cfg.data.colour == "rgb" else 1, 0, 0, 0
        for cout, down in zip(f["channels"], block_downsamples(f)):
            params += f["kernel"] ** 2 * cin * cout + cout
            grows = get_downsample(down).memory  # what this kind keeps against the rule (nn/downsample.py)
            saved, widest = saved + 3 * grows[0] * cout * side * side, max(widest, grows[1] * cout * side * side)
            side = get_downsample(down).out_size(side, f["kernel"], f["padding"], f["blur_size"], f.get("blur_padding"))
            cin = cout
        params += (cin * side * side if f["head"] == "flatten" else cin) * classes + classes
        total += params * len(cfg.seeds)
        largest = max(largest, (params, name))
        train_map, eval_map = max(train_map, (2 * saved, name)), max(eval_map, (2 * widest, name))
    trains = cfg.train.epochs > 0  # train.epochs: 0 measures the networks as they are: no backward pass, no Adam
    # (values per worker, workers at once): the test pass runs in each training worker, even with no epochs
    uses = {"train.batch_size": (train_map[0] * min(cfg.train.batch_size, cfg.data.train_images) * trains,
                                 train_map[1], at_once.train),
            "sweep.batch_size": (eval_map[0] * min(cfg.sweep.batch_size, n_test), eval_map[1], at_once.sweep),
            "data.test_images": (eval_map[0] * min(EVAL_BATCH, n_test), eval_map[1], at_once.train)}
    batch_key = max(uses, key=lambda k: uses[k][0] * uses[k][2])
    many = uses[batch_key][2]
    weights = 4 * (total + 3 * largest[0] * trains * at_once.train)
    activations = 4 * uses[batch_key][0] * many
    jobs_key = " and --jobs" if many > 1 else ""

    def width(name: str) -> str:  # the key that sizes a model: your own model's kwargs, a preset's channels
        return f"models.{name}." + ("kwargs" if "factory" in models.get(name, {}) else "channels")

    if weights >= activations:
        return weights + activations, width(largest[1]) + (" and seeds" if len(cfg.seeds) > 1 else "") + (
            " and --jobs" if at_once.train > 1 and trains else "")
    return weights + activations, f"{width(uses[batch_key][1])} and {batch_key}{jobs_key}"


SWEPT = ("test images", "sweep inputs", "letter drawing", "decoding")  # the parts a sweep worker draws itself


class Workers(NamedTuple):
    """What a run does at once on this machine."""

    train: int = 1  # units trained (and their test pass run) at once
    sweep: int = 1  # shares of the models swept at once
    copies: int = 0  # worker processes holding a copy of the run's images to train (units/data.pt)


def workers(cfg: Config, jobs: int, units: int | None = None, executor: str = "processes",
            cpu: bool = True) -> Workers:
    """Workers of a run with --jobs N on this machine (run/experiment.py): units are trained in worker processes
    unless --jobs 1 with the processes executor (slurm's on machines of their own), at most one per unit left to
    train (`units`, default every model x seed), each with its copy of the images; the run's sweep is dealt to
    min(N, models) workers with the processes executor on the CPU when there are two models or more
    (run/sweep_jobs.py; else it runs in the command's own process)."""
    n_models = len(resolved_models(cfg))
    units = n_models * len(cfg.seeds) if units is None else units
    in_workers = (jobs, executor) != (1, "processes") and executor != "slurm"
    at_once = max(1, min(jobs, units)) if in_workers else 1
    swept = sweep_shares(jobs if executor == "processes" else 1, n_models, cpu)
    return Workers(at_once, swept, min(jobs, units) if in_workers else 0)


def sweep_shares(jobs: int, n_models: int, cpu: bool) -> int:
    """The worker processes a run's sweep is dealt to with --jobs N (run/sweep_jobs.py, a share per model): on the
    CPU with two models or more; 1 = it runs in the command's own process."""
    return min(jobs, n_models) if jobs > 1 and cpu and n_models > 1 else 1


def memory_estimate(cfg: Config, own: dict[str, tuple] | None = None,
                    jobs: Workers | None = None) -> dict[str, tuple[int, str]]:
    """Estimated bytes of a run's big allocations, by part, each with the key that scales it; `own`: the sizes
    of the models of your own (_network_memory), which are left out without it; jobs: worker processes on this
    machine (workers()), each with images of its own: a training worker the run's images (run/units.py reads
    units/data.pt), a sweep worker the test images, its sweep inputs and the drawing or decoding of them
    (sweep_jobs.py)."""
    jobs = jobs or Workers()
    parts = _data_memory(cfg.data, cfg.sweep)
    parts["networks"] = _network_memory(cfg, own, jobs)

    def copy(*names: str) -> int:  # letters are drawn; a folder's images decoded
        return sum(parts[p][0] for p in names if p in parts)

    train_copy = copy("training images", "test images") * jobs.copies
    sweep_copy = copy(*SWEPT) * jobs.sweep * (jobs.sweep > 1)
    if max(train_copy, sweep_copy):  # training and the sweep come one after the other
        parts["workers' images"] = (max(train_copy, sweep_copy), "--jobs")
    return parts


def _refuse_if_over(parts: dict[str, tuple[int, str]], source: str, get: Callable[[str], Any],
                    note: Callable[[str], str] = lambda key: "") -> None:
    """Raise ConfigError when the parts add up to more than memory_limit(), naming the keys of the largest."""
    total = sum(b for b, _ in parts.values())
    limit, rule = memory_limit()
    if total <= limit:
        return
    biggest = max(parts, key=lambda p: parts[p][0])
    keys = parts[biggest][1].split(" and ")
    listing = ", ".join(f"{p} {_size(b)}" for p, (b, _) in sorted(parts.items(), key=lambda kv: -kv[1][0]) if b)
    values = " and ".join(f"{k} = {quote(get(k))}{note(k)}" for k in keys)
    # a model of your own is made smaller through its kwargs (its width, its depth), which are no number to lower
    lower = [k for k in keys if not k.endswith(".kwargs")]
    fix = ("make your model smaller (through its kwargs)" + (f" or lower {' and '.join(lower)}" if lower else "")
           if len(lower) < len(keys) else f"lower {'it' if len(keys) == 1 else 'them'}")
    raise ConfigError(f"{source}: too big to run. [{keys[0]}] the run would need about {_size(total)} of memory "
                      f"({listing}), over the limit of {_size(limit)} ({rule}); the largest part, {biggest}, grows "
                      f"with {values}: {fix}.")


def _lookup(obj: Any, key: str) -> Any:
    for part in key.split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, BaseModel) and part in obj.model_fields_set | set(type(obj).model_fields):
            obj = getattr(obj, part)
        else:
            return None
    return obj


def check_resources(cfg: Config, source: str = "<config>", _note: Callable[[str], str] = lambda key: "",
                    own: dict[str, tuple] | None = None, jobs: int = 1, units: int | None = None,
                    executor: str = "processes", cpu: bool = True) -> None:
    """Refuse (ConfigError) a run whose estimated memory (memory_estimate) is over memory_limit(). parse_config
    calls it without `own`; run_experiment again with the sizes of the models of your own, once built, and with
    the --jobs worker processes on this machine and the number of units they have to train. A run that fits with
    one worker but not with `jobs` is told the largest --jobs that fits."""
    def at(j: int) -> Workers:
        return workers(cfg, j, units, executor, cpu)

    if jobs > 1:
        # the estimate stops growing once each unit and each model has a worker: count up to that
        top = next((j for j in range(1, jobs) if at(j) == at(jobs)), jobs)
        total = [sum(b for b, _ in memory_estimate(cfg, own, at(j)).values()) for j in range(1, top + 1)]
        if total[0] <= memory_limit()[0]:  # else the refusal below names the part to lower
            refuse_jobs(source, "run", jobs, total)
    _refuse_if_over(memory_estimate(cfg, own, at(jobs)), source,
                    lambda key: jobs if key == "--jobs" else _lookup(cfg, key), _note)


def refuse_jobs(source: str, verb: str, jobs: int, total: list[int]) -> None:
    """Raise ConfigError when --jobs `jobs` needs more than memory_limit(), naming the largest --jobs that fits
    (total[j - 1]: the estimate with --jobs j, up to where it stops growing; --jobs 1 where none fits)."""
    limit, rule = memory_limit()
    if total[-1] > limit:
        said = (f"{source}: too big to {verb} with --jobs {jobs}: its workers at once would need about "
                f"{_size(total[-1])} of memory, over the limit of {_size(limit)} ({rule}); ")
        if total[0] > limit:  # no --jobs fits: say so, not "give --jobs 1" (a sweep in one process is not refused)
            raise ConfigError(said + f"even one process needs about {_size(total[0])}: leave --jobs out, and lower "
                              "what each batch holds (sweep.batch_size) or sweep fewer test images")
        fit = max(j for j in range(1, len(total) + 1) if total[j - 1] <= limit)
        raise ConfigError(said + f"with --jobs {fit} it needs about {_size(total[fit - 1])}: give --jobs {fit}"
                          f"{' (or leave --jobs out)' if fit == 1 else ''}.")


def check_sweep_fits(data: DataConfig, sweep: SweepConfig, source: str = "sweep options",
                     kind: str = "translation") -> None:
    """Refuse (ConfigError) sweep settings that cannot give useful inputs for this data (a shift that blanks
    every image, a roll by the canvas side or more) or whose inputs would not fit in memory. Called by
    parse_config for a config's own sweep; call it for sweep options given later (invlab sweep --dx ...)."""
    problem = shift_problem(data, sweep)
    if problem:
        raise ConfigError(f"{source}: [sweep.{'.'.join(problem.key)}] {problem} (got {quote(problem.value)}).")
    _refuse_if_over(_data_memory(data, sweep, kind), source,
                    lambda key: _lookup({"data": data, "sweep": sweep}, key))
