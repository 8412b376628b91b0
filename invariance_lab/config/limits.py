"""What fits the canvas and the machine: the size of the largest letter, the rules that keep letters in the frame
and a sweep grid within bounds, and the memory estimate that refuses a run too big to hold.

    check_resources(cfg)                                # the whole run (parse_config calls it)
    check_sweep_fits(data, sweep, "invlab sweep --dx")  # sweep options given after the config

The schema (config.py) calls canvas_problem, grid_problem and shift_problem from its validators: each returns a
_Problem naming the key, which configfile turns into a message. The memory estimate counts the big allocations,
in bytes, from the settings alone: nothing is drawn or built (a glyph table is loaded once per letters and fonts).
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Any, Callable

from pydantic import BaseModel

from ..schema.config import Config, DataConfig, SweepConfig, _Problem
from ..core.errors import ConfigError
from ..core.errors import InvlabError, quote

MAX_SHIFTS = 100_000  # shifts in one sweep grid: each is a forward pass over the whole test set
MEMORY_CAP = 4 * 2**30  # run memory limit: the smaller of this and half the physical memory (memory_limit)
RENDER_CHUNK = 256  # images letters.render draws at once (its `chunk`): sets the renderer's scratch memory


# ------------------------------------------------------------------------------------------------- canvas


@lru_cache(maxsize=64)
def _glyph_stats(letters: tuple[str, ...], fonts: tuple[str, ...], glyphs: str = "stroke") -> tuple[float, str, int]:
    """(widest normalised glyph width (height = 1), which glyph that is, most segments of one glyph)."""
    import torch

    from ..data.letters import load_glyphs

    table = load_glyphs(letters, fonts, glyphs)
    xs, real = table.segments[..., 0::2], table.mask[..., None]
    widths = xs.masked_fill(~real, -math.inf).amax((1, 2)) - xs.masked_fill(~real, math.inf).amin((1, 2))
    g = int(torch.argmax(widths))
    return float(widths[g]), f"{letters[g // len(fonts)]} in {fonts[g % len(fonts)]}", int(table.mask.sum(1).max())


def pen_width(data: DataConfig) -> float:
    """How much wider than the glyph its ink is, px: the thickest stroke, or for filled outlines the anti-aliasing
    ramp (0.5 px beyond the outline on each side; thickness does not apply to them)."""
    return 1.0 if data.glyphs == "outline" else data.thickness[1]


def letter_size(data: DataConfig) -> tuple[float, float, str]:
    """(height, width, which glyph is widest) in px of the largest letter drawn: at size*(1+size_jitter) with the
    thickest stroke, pen included (ink goes half the stroke width beyond the glyph's outline on every side)."""
    width, widest, _ = _glyph_stats(tuple(data.letters), tuple(data.fonts), data.glyphs)
    h, pen = data.size * (1 + data.size_jitter), pen_width(data)
    return h + pen, width * h + pen, widest


def canvas_problem(data: DataConfig) -> _Problem | None:
    """The first reason the letters do not fit the canvas, or a training offset moves them out of the frame (or,
    for the position task, into the other half), or a roll is not by whole pixels; None when they fit."""
    c, s = data.canvas, data.train_shift
    if data.task == "position" and c % 2:
        # the paired test set rolls the top image by canvas/2 rows; 1/4 maps onto 3/4 only for an even side
        return _Problem("canvas", "task: position needs an even canvas (the bottom test image is the top one "
                        "rolled by canvas/2)", c)
    if data.train_mode == "circular" and s != int(s):
        return _Problem("train_shift", "train_mode: circular rolls by whole pixels; train_shift must be a whole "
                        "number", s)
    try:
        height, width, widest = letter_size(data)
    except InvlabError as e:  # a glyph the renderer cannot use (letters.load_glyphs says which)
        return _Problem("fonts", str(e), data.fonts)
    room = c / 2 if data.task == "position" else c
    if data.task == "position" and height - pen_width(data) > room:
        # The label is the half the letter's centre is in; its pen may overrun the middle by half its width.
        return _Problem("size", f"task: position draws each letter in one half of the canvas: its height "
                        f"size*(1+size_jitter) = {height - pen_width(data):.4g} px must fit in canvas/2 = "
                        f"{room:g} px; lower data.size or enlarge data.canvas", data.size)
    if data.task == "letter" and height > room:
        return _Problem("size", f"the letters do not fit the {c} px canvas: the tallest is size*(1+size_jitter) "
                        f"+ the thickest stroke = {height:.4g} px; lower data.size (at most "
                        f"{(c - pen_width(data)) / (1 + data.size_jitter):.4g} px here) or enlarge data.canvas",
                        data.size)
    if width > c:
        return _Problem("size", f"the letters do not fit the {c} px canvas: the widest glyph ({widest}) is "
                        f"{width:.4g} px wide at the largest size and stroke; lower data.size or enlarge "
                        "data.canvas", data.size)
    if data.task == "position" and s >= c / 4:
        return _Problem("train_shift", f"task: position labels a letter by the half its centre is in, drawn at "
                        f"canvas/4 from the middle; an offset of canvas/4 = {c / 4:g} px or more moves it into the "
                        f"other half under the wrong label; use train_shift < {c / 4:g}", s)
    if data.task == "letter" and data.train_mode == "canvas" and s >= c / 2:
        return _Problem("train_shift", f"an offset of canvas/2 = {c / 2:g} px or more puts a training letter's "
                        f"centre outside the {c} px frame (less than half of it visible, none at all beyond "
                        f"{c / 2 + width / 2:.4g} px): labelled images without their letter; use "
                        f"train_shift < {c / 2:g}", s)
    if data.task == "letter" and data.train_mode == "circular" and s > c / 2:
        return _Problem("train_shift", f"train_mode: circular rolls the letter around the {c} px canvas: a roll "
                        f"by canvas/2 = {c / 2:g} px already reaches every position, and a larger one repeats a "
                        f"smaller one (r and r - {c}), so positions would not be uniform; use train_shift <= "
                        f"{c // 2}", s)
    return None


def folder_problem(data: DataConfig) -> _Problem | None:
    """source: folder: the first problem with the folder (a bad file, named), counts or a digest that disagree
    with the folder, or a training offset out of bounds; None when fine. Fills in train_images, test_images and
    folder_digest from the folder (folder_data.py)."""
    from ..data.folder import folder_split

    try:
        split = folder_split(data)
    except InvlabError as e:
        return _Problem("path", str(e), data.path)
    except OSError as e:  # a folder or file that cannot be listed or opened (permissions, a vanished disk)
        return _Problem("path", f"{e.filename or data.path} cannot be read ({e.strerror or type(e).__name__}); give "
                        "a folder invlab may read", data.path)
    if data.folder_digest is not None and data.folder_digest != split.digest:
        return _Problem("folder_digest", f"the files of {data.path} changed since this config was written (names, "
                        "sizes or classes differ from the run's record), so its models were trained on other images; "
                        "restore the folder, or start a new run (remove folder_digest)", data.folder_digest)
    for key, n in (("train_images", split.train.n), ("test_images", split.test.n)):
        if key in data.model_fields_set and getattr(data, key) != n:
            return _Problem(key, f"{data.path} holds {n} {key.split('_')[0]}ing images (the split of folder_data.py); "
                            f"leave {key} out: the folder decides", getattr(data, key))
        setattr(data, key, n)
    data.folder_digest = split.digest
    c, s = data.canvas, data.train_shift
    if data.train_mode == "circular" and (s != int(s) or s > c / 2):
        return _Problem("train_shift", f"train_mode: circular rolls by whole pixels, at most canvas/2 = {c // 2} "
                        "(a larger roll repeats a smaller one)", s)
    if data.train_mode == "canvas" and s >= c / 2:
        return _Problem("train_shift", f"an offset of canvas/2 = {c / 2:g} px or more moves more than half of a "
                        f"training image out of its frame; use train_shift < {c / 2:g}", s)
    return None


def _axis(r: list[float]) -> list[float]:
    """The values of an inclusive [start, stop, step] range (as shifts.axis_values)."""
    start, stop, step = r
    return [start + i * step for i in range(int((stop - start) / step + 1e-9) + 1)]


def grid_problem(sweep: SweepConfig) -> _Problem | None:
    """Circular shifts that are not whole pixels, or a grid of more than MAX_SHIFTS shifts; None when fine."""
    if sweep.mode == "circular":
        for key in ("dx", "dy"):
            if any(float(x) != int(x) for x in getattr(sweep, key)):
                return _Problem(key, f"mode: circular rolls by whole pixels; {key} must be integers",
                                getattr(sweep, key))
    nx, ny = len(_axis(sweep.dx)), len(_axis(sweep.dy))
    n = nx * ny if sweep.grid == "product" else nx + ny - 1
    if n > MAX_SHIFTS:
        return _Problem("dx", f"the {sweep.grid} grid of {nx} dx x {ny} dy values has {n} shifts, each a pass over "
                        f"the whole test set; at most {MAX_SHIFTS}: use larger steps or grid: axes", sweep.dx)
    return None


def shift_problem(data: DataConfig, sweep: SweepConfig) -> _Problem | None:
    """A sweep shift that can only give useless inputs, or None.

    canvas mode: a letter moved by |d| >= canvas/2 + its half-extent (pen included) has no pixel left in the
    frame, so a shift that does this to the largest letter blanks every image. circular mode: a roll by r equals
    a roll by r - canvas, so |shift| >= canvas only repeats a smaller shift."""
    c = data.canvas
    # a folder's image fills its frame; translate_image needs |shift| < side - 1 to interpolate
    height, width = (c - 2, c - 2) if data.source == "folder" else letter_size(data)[:2]
    for key, extent in (("dx", width), ("dy", height)):
        values = _axis(getattr(sweep, key))
        worst = max(values, key=abs)
        if sweep.mode == "circular" and abs(worst) >= c:
            same = worst - c * round(worst / c) + 0.0
            return _Problem(key, f"mode: circular rolls around the {c} px canvas, so a roll by {worst:g} px equals one "
                            f"by {same:g} px; keep |{key}| < {c}", getattr(sweep, key))
        limit = c / 2 + extent / 2
        if sweep.mode == "canvas" and abs(worst) >= limit:
            half = "half-width" if key == "dx" else "half-height"
            return _Problem(key, f"a shift of {worst:g} px moves every letter wholly out of the {c} px frame, leaving "
                            f"a blank image (canvas/2 + the largest letter's {half} = {limit:.4g} px or more); the "
                            f"useful shifts are below {limit:.4g} px", getattr(sweep, key))
    return None


# ------------------------------------------------------------------------------------------------- memory


def memory_limit() -> tuple[int, str]:
    """(bytes, the rule in words). The limit is the smaller of MEMORY_CAP (4 GiB) and half the physical memory:
    the data, the sweep's inputs and the networks all live in RAM at once, and the lab is meant for a laptop; the
    other half is left to the system, torch's workspace and what this estimate leaves out."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not Linux: the fixed cap alone
        ram = 0
    limit = min(MEMORY_CAP, ram // 2) if ram > 0 else MEMORY_CAP
    here = f"; this machine has {_size(ram)}" if ram > 0 else ""
    return limit, f"the smaller of {_size(MEMORY_CAP)} and half the physical memory{here}"


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
    if data.source == "folder":  # 8-bit pixels kept (folder_data.py); floats a sweep batch at a time
        from ..data.folder import DECODE_BATCH, image_channels

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
        fx, fy = ({round(v - math.floor(v), 6) for v in _axis(r)} for r in (sweep.dx, sweep.dy))
        n_phases = len(fx) * len(fy) if sweep.grid == "product" else len(fx) + len(fy)
        kept = min(n_phases, max(1, 256 * 2**20 // phase))
        sweep_bytes = phase * (kept + (1 if n_phases > kept else 0))
    parts["sweep inputs"] = (sweep_bytes, "data.test_images")
    # letters.render works RENDER_CHUNK images at a time on a P x P patch around each letter, with two
    # (chunk, P, P, segments) float32 intermediates alive at once: large letters make this the biggest part.
    height, width, _ = letter_size(data)
    patch = min(side, math.ceil(max(height, width) + 2 * (reach if kind == "parts" else 0)) + 3)
    segments = _glyph_stats(tuple(data.letters), tuple(data.fonts), data.glyphs)[2]
    n = min(RENDER_CHUNK, max(data.train_images, data.test_images))
    # Filled outlines (glyphs: outline) use the same two; their even-odd test adds only (chunk, P, segments) ones.
    parts["letter drawing"] = (2 * 4 * n * patch * patch * segments, "data.size")
    return parts


@lru_cache(maxsize=4096)
def _block_out(kernel: int, padding: str, downsample: str, blur_size: int, side: int) -> int:
    from ..nn.layers import ConvBlock

    return ConvBlock(1, 1, kernel, padding, downsample, blur_size).out_size(side)


def _network_memory(cfg: Config) -> tuple[int, str]:
    """Bytes of the networks and their activations, and the keys that scale the larger of the two. Every model x
    seed is held for the sweep, and one trains at a time (its gradients and two Adam moments: 3 more copies of its
    weights). Training keeps three maps per block (conv, ReLU, downsampling) for the backward pass, and as much
    again for their gradients; evaluation (inference mode) needs about two maps at a time, a block's input and
    output."""
    if cfg.data.source == "folder":
        from ..data.folder import folder_split

        classes = len(folder_split(cfg.data).classes)
    else:
        classes = 2 if cfg.data.task == "position" else len(cfg.data.letters)
    n_test = cfg.data.test_images * (2 if cfg.data.task == "position" else 1)
    total, largest, train_map, eval_map = 0, (0, ""), (0, ""), (0, "")
    for name, f in cfg.resolved_models().items():
        if "factory" in f:
            continue  # your own model (factory.py): its size is unknown until your code builds it
        side, cin, params, saved, widest = cfg.data.canvas, 3 if cfg.data.colour == "rgb" else 1, 0, 0, 0
        for cout in f["channels"]:
            params += f["kernel"] ** 2 * cin * cout + cout
            saved, widest = saved + 3 * cout * side * side, max(widest, cout * side * side)
            side, cin = _block_out(f["kernel"], f["padding"], f["downsample"], f["blur_size"], side), cout
        params += (cin * side * side if f["head"] == "flatten" else cin) * classes + classes
        total += params * len(cfg.seeds)
        largest = max(largest, (params, name))
        train_map, eval_map = max(train_map, (2 * saved, name)), max(eval_map, (2 * widest, name))
    uses = {"train.batch_size": (train_map[0] * min(cfg.train.batch_size, cfg.data.train_images), train_map[1]),
            "sweep.batch_size": (eval_map[0] * min(cfg.sweep.batch_size, n_test), eval_map[1]),
            "data.test_images": (eval_map[0] * min(1000, n_test), eval_map[1])}  # evaluate_accuracy: batches of 1000
    batch_key = max(uses, key=lambda k: uses[k][0])
    weights, activations = 4 * (total + 3 * largest[0]), 4 * uses[batch_key][0]
    if weights >= activations:
        return weights + activations, f"models.{largest[1]}.channels" + (" and seeds" if len(cfg.seeds) > 1 else "")
    return weights + activations, f"models.{uses[batch_key][1]}.channels and {batch_key}"


def memory_estimate(cfg: Config) -> dict[str, tuple[int, str]]:
    """Estimated bytes of a run's big allocations, by part, each with the key that scales it."""
    parts = _data_memory(cfg.data, cfg.sweep)
    parts["networks"] = _network_memory(cfg)
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
    raise ConfigError(f"{source}: too big to run. [{keys[0]}] the run would need about {_size(total)} of memory "
                      f"({listing}), over the limit of {_size(limit)} ({rule}); the largest part, {biggest}, grows "
                      f"with {values}: lower {'it' if len(keys) == 1 else 'them'}.")


def _lookup(obj: Any, key: str) -> Any:
    for part in key.split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, BaseModel) and part in obj.model_fields_set | set(type(obj).model_fields):
            obj = getattr(obj, part)
        else:
            return None
    return obj


def check_resources(cfg: Config, source: str = "<config>", _note: Callable[[str], str] = lambda key: "") -> None:
    """Refuse (ConfigError) a run whose estimated memory (memory_estimate) is over memory_limit()."""
    _refuse_if_over(memory_estimate(cfg), source, lambda key: _lookup(cfg, key), _note)


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
