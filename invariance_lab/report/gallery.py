"""Pictures of what the networks saw: a few test images at the reference and at several shifts, with each model's
probability of the true class under each, and per image an animated GIF of the image sliding across the canvas
beside every model's probability trace. html_gallery.py puts them on the page.

The run's own trained checkpoints are loaded (checkpoints.load_run_models: every file checked against the run
folder) and its own test inputs made (shifts.sweep_inputs), with the protocol of the folder reported: the same
mode (canvas or circular), the same shifts along one axis (dx, or dy where only dy varies). One network per model,
its first seed. Nothing is imported: a model built by a factory of your own is left out, as `invlab report`
never runs code from a folder.

    g = make_gallery(load_result("results/quick/20261127-160351"), n_images=4)
    g.letters[0].prob["conv_gap"]   # p(true class) at every shift of g.shifts
    g.letters[0].gif                # GIF bytes: the letter sliding, the traces with a cursor
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config.load import load_config
from ..core.errors import ConfigError, InvlabError, RunFolderError, clip
from ..data.datasets import class_names
from ..data.shifts import axis_values, sweep_inputs
from ..nn.factory import is_custom
from ..schema.config import SweepConfig
from ..store.checkpoints import load_run_models
from ..store.find import require_finished_run
from ..store.layout import CONFIG_FILE, SWEEP_DIR, checkpoint_path
from ..store.results import Result
from ..config.models import resolved_models
from .figure import plain_text

STILLS = 9  # pictures per image in the gallery table (pick_stills): -8 -4 -2 -1 0 1 2 4 8 for a ±8 sweep
MAX_FRAMES = 41  # animation frames at most: longer sweeps (every roll of a big canvas) are subsampled evenly
FRAME_MS, END_MS = 350, 1000  # per frame; the two ends linger so the eye can catch where the loop restarts
GIF_DPI = 80
GIF_FONT_PT = 10  # every text of the animation: 10 pt at GIF_DPI is 11 px, readable at its own size on a phone
POOL = 64  # the image is picked among the first POOL test images (each class in turn), drawn once per shift


@dataclass
class Letter:
    """One test image seen at every shift of the gallery's axis."""

    index: int  # its position in the run's test set
    label: str  # its true class
    pixels: np.ndarray  # (shifts, H, W) or (shifts, H, W, 3), floats in [0, 1]: what the networks saw
    prob: dict[str, np.ndarray]  # model -> p(true class) at each shift
    correct: dict[str, np.ndarray]  # model -> whether its prediction (argmax) is the true class, at each shift
    gif: bytes = b""  # the animation (make_gif)


@dataclass
class Gallery:
    label: str  # the result's label (Result.label)
    axis: str  # "dx" or "dy": the axis the images slide along (the other one stays 0)
    mode: str  # canvas | circular | parts (the protocol's)
    shifts: list[float]  # every shift of the animation, in order
    stills: list[int]  # indices into `shifts` shown as pictures in the gallery table (0 among them)
    seed: int  # the one seed of each model shown
    models: list[str]
    classes: list[str]
    n_swept: int  # the values swept along `axis`: `shifts` are all of them, or MAX_FRAMES of them evenly spaced
    letters: list[Letter] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was left out, and why


def run_folder(result: Result) -> Path:
    """The run folder holding the checkpoints of a run or of one of its sweeps."""
    if result.meta.get("kind") == "measure":
        raise InvlabError(f"{result.label} is an `invlab measure` folder: the pictures would need its model rebuilt "
                          "(your factory, or the one a checkpoint names), and `invlab report` imports no code")
    resolved = Path(result.path).resolve()
    return resolved.parent.parent if resolved.parent.name == SWEEP_DIR else resolved


def _sweep_of(protocol: dict, where: str):
    """The SweepConfig and kind of a folder's protocol (meta.json), so the gallery shows what was measured: its
    shifts as the sweep made them (subpixel fft: band-limited; rotate, scale: turned or scaled)."""
    kind = protocol.get("kind", "translation")
    mode = "canvas" if kind == "parts" else protocol["mode"]
    kept = {k: protocol[k] for k in ("transform", "angles", "scales", "subpixel") if protocol.get(k) is not None}
    try:
        return SweepConfig(mode=mode, dx=protocol["dx"], dy=protocol["dy"], grid=protocol.get("grid", "product"),
                           **kept), kind
    except ConfigError as e:  # a protocol edited into a sweep invlab would not make
        raise RunFolderError(f"{where}: its protocol is not a sweep invlab makes "
                             f"({clip(str(e).splitlines()[1].strip(), 200)}); the folder was edited") from None


def pick_stills(shifts: list[float], k: int = STILLS) -> list[int]:
    """Indices of at most k shifts: 0 (or the value nearest it), both ends, then the values nearest to ±half the
    largest shift, ±a quarter, ... (-8 -4 -2 -1 0 1 2 4 8): fine steps near the reference, where networks
    trained on centred letters start to fail, and the powers of two where strided networks repeat."""
    xs = np.asarray(shifts, dtype=float)
    order = [int(np.argmin(np.abs(xs))), 0, len(xs) - 1]
    steps = np.diff(xs)
    finest = float(np.min(np.abs(steps))) if len(steps) else 1.0
    target = float(np.max(np.abs(xs))) / 2
    while target >= finest / 2:
        order += [int(np.argmin(np.abs(xs - sign * target))) for sign in (-1, 1)]
        target /= 2
    return sorted(list(dict.fromkeys(order))[:k])


def _pick_images(labels: torch.Tensor, n: int) -> list[int]:
    """n test items, the classes taken in turn (A, B, A, B, ...), each the earliest not yet taken: both letters
    are shown, and the choice does not depend on what the networks answer."""
    by_class = [torch.nonzero(labels == c).flatten().tolist() for c in sorted(set(labels.tolist()))]
    out = []
    for rank in range(max(map(len, by_class), default=0)):
        out += [items[rank] for items in by_class if rank < len(items)]
    return out[:n]


def make_gallery(result: Result, n_images: int = 4, *, animate: bool = True) -> Gallery:
    """The gallery of one run or sweep folder; an InvlabError saying why where it cannot be made (a measure
    folder, checkpoints missing, every model built by a factory)."""
    run_dir = run_folder(result)
    meta_run = require_finished_run(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise InvlabError(f"{run_dir} holds no {CONFIG_FILE}, so its test images cannot be drawn again")
    cfg = load_config(run_dir / CONFIG_FILE)
    factors = resolved_models(cfg)
    protocol = result.meta["protocol"]
    notes, models = [], []
    for m in protocol["models"]:
        if m not in factors:
            raise InvlabError(f"{result.label}: model {m!r} is not in {run_dir / CONFIG_FILE}; the folder was edited")
        if is_custom(factors[m]):
            notes.append(f"{m} is left out of the gallery: it is built by your own code ({factors[m]['factory']}), "
                         "which `invlab report` never imports")
        else:
            models.append(m)
    if not models:
        raise InvlabError(f"{result.label}: every model is built by your own code, which `invlab report` never "
                          "imports, so there are no pictures")
    seed = cfg.seeds[0]
    missing = [m for m in models if not checkpoint_path(run_dir, m, seed).is_file()]
    if missing:
        raise InvlabError(f"{run_dir} holds no checkpoint for {', '.join(missing)} (seed {seed}): the folder was "
                          "copied without its checkpoints")
    nets = load_run_models(run_dir, cfg, meta_run, models, torch.device("cpu"))
    sweep, kind = _sweep_of(protocol, result.label)
    axis = "dx" if len(axis_values(sweep.dx)) > 1 or len(axis_values(sweep.dy)) == 1 else "dy"
    axis = {"rotate": "angle", "scale": "scale"}.get(sweep.transform, axis)  # a rotate or scale sweep's one axis
    shifts = axis_values(getattr(sweep, {"angle": "angles", "scale": "scales"}.get(axis, axis)))
    other = {"dx": "dy", "dy": "dx"}.get(axis)
    if other and sweep.grid == "product" and 0.0 not in axis_values(getattr(sweep, other)):  # as tables.shift_table
        raise InvlabError(f"{result.label} has no shifts with {other} = 0, so there are no pictures along {axis} (they "
                          f"would show shifts that were not swept)")
    n_swept = len(shifts)
    if len(shifts) > MAX_FRAMES:
        shifts = [shifts[i] for i in np.round(np.linspace(0, len(shifts) - 1, MAX_FRAMES)).astype(int)]
    inputs, labels = sweep_inputs(cfg.data, sweep, kind, n_images=POOL)
    chosen = _pick_images(labels, n_images)
    classes = class_names(cfg.data)
    gallery = Gallery(result.label, axis, protocol["mode"], shifts, pick_stills(shifts), seed, models, classes,
                      n_swept, notes=notes)
    pixels, prob, right = [], {m: [] for m in models}, {m: [] for m in models}
    truth = labels[chosen]
    with torch.inference_mode():
        for s in shifts:
            x = inputs(slice(0, len(labels)), *{"dx": (s, 0.0), "dy": (0.0, s)}.get(axis, (s,)))[chosen].float()
            pixels.append(x.numpy())
            for m in models:
                p = torch.softmax(nets[(m, seed)](x).float(), dim=1)
                prob[m].append(p[torch.arange(len(chosen)), truth].numpy())
                right[m].append((p.argmax(1) == truth).numpy())
    pixels = np.stack(pixels, axis=1)  # (images, shifts, C, H, W)
    for i, item in enumerate(chosen):
        img = pixels[i].transpose(0, 2, 3, 1)  # channels last, as images are shown
        img = np.clip(img[..., 0] if img.shape[-1] == 1 else img, 0.0, 1.0)
        letter = Letter(item, classes[int(truth[i])], img, {m: np.array([v[i] for v in prob[m]]) for m in models},
                        {m: np.array([v[i] for v in right[m]]) for m in models})
        if animate:
            letter.gif = make_gif(gallery, letter)
        gallery.letters.append(letter)
    return gallery


def signed(shift: float) -> str:
    """"+2", "-0.5", "0": a shift as the captions write it."""
    return f"{shift:+g}" if shift else "0"


def png(image: np.ndarray) -> bytes:
    """A (H, W) grey or (H, W, 3) image in [0, 1] as PNG bytes, one pixel per pixel (the page scales it up)."""
    buf = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _caption(g: Gallery, letter: Letter, shift: float) -> str:
    return f"test image {letter.index} ({letter.label}), {g.axis} = {signed(shift)}"


@plain_text
def make_gif(g: Gallery, letter: Letter) -> bytes:
    """An animated GIF: the image at each shift above, every model's p(true class) against the shift below, a
    cursor at the current shift; a hollow dot where the model's prediction is wrong. Stacked, so that it stays
    legible in a phone's width (about 340 px, shown at its own size). The figure is drawn once and only the
    picture, cursor and dots change from frame to frame."""
    # matplotlib is imported only when a picture is drawn: importing it takes about half a second, which every
    # command that draws nothing would pay
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.3, 5.3 + 0.18 * math.ceil(len(g.models) / 2)), dpi=GIF_DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    left, right = fig.subplots(2, 1, height_ratios=[1, 1.05])
    grey = letter.pixels.ndim == 3
    picture = left.imshow(letter.pixels[0], cmap="gray" if grey else None, vmin=0, vmax=1, interpolation="nearest")
    h, w = letter.pixels.shape[1:3]
    centre = [left.axvline((w - 1) / 2, color="tab:orange", linewidth=0.6, alpha=0.7),  # the canvas centre
              left.axhline((h - 1) / 2, color="tab:orange", linewidth=0.6, alpha=0.7)]
    left.set_xticks([])
    left.set_yticks([])
    caption = left.set_title("", fontsize=GIF_FONT_PT)
    x = np.asarray(g.shifts)
    dots = []
    for i, m in enumerate(g.models):
        right.plot(x, letter.prob[m], color=f"C{i % 10}", linewidth=1.5, marker="o" if len(x) <= 25 else None,
                   markersize=2.5, label=m)
        # a line's marker, not a scatter (the same dot, drawn a quarter faster: each frame draws every dot)
        dots.append(right.plot([x[0]], [letter.prob[m][0]], "o", markersize=45 ** 0.5, zorder=3,
                               color=f"C{i % 10}")[0])
    chance = 1.0 / len(g.classes)
    right.axhline(chance, color="0.5", linestyle=":", linewidth=1.0)
    cursor = right.axvline(x[0], color="0.2", linewidth=1.0)
    right.set_xlim(x.min() - 0.5, x.max() + 0.5)
    right.set_ylim(-0.03, 1.03)
    right.set_xlabel({"angle": "angle (degrees)", "scale": "scale"}.get(g.axis, f"{g.axis} (px), {g.mode} shift"),
                     fontsize=GIF_FONT_PT)
    right.set_ylabel(f"p({letter.label}), the true class", fontsize=GIF_FONT_PT)
    right.tick_params(labelsize=GIF_FONT_PT)
    right.grid(True, alpha=0.3)
    # below the axes: inside them it would hide the traces, which span the whole height
    fig.legend(*right.get_legend_handles_labels(), fontsize=GIF_FONT_PT, loc="outside lower center", frameon=False,
               ncols=min(len(g.models), 2), columnspacing=1.0, handlelength=1.5)
    # Blitting: everything that does not move is drawn once (layout included) and copied back before each frame;
    # only the moving artists are drawn per frame (a full redraw per frame took ~0.15 s, most of a page's time).
    caption.set_text(_caption(g, letter, g.shifts[0]))
    moving = [picture, *centre, caption, cursor, *dots]  # in drawing order: the centre lines over the picture
    for artist in moving:
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for k, s in enumerate(g.shifts):
        canvas.restore_region(background)
        picture.set_data(letter.pixels[k])
        caption.set_text(_caption(g, letter, s))
        cursor.set_xdata([s, s])
        for i, (m, dot) in enumerate(zip(g.models, dots)):
            dot.set_data([s], [letter.prob[m][k]])
            # filled when the model answers the true class, hollow when it answers another
            dot.set_markerfacecolor(f"C{i % 10}" if letter.correct[m][k] else "white")
            dot.set_markeredgecolor(f"C{i % 10}")
        for artist in moving:
            fig.draw_artist(artist)
        frames.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
    # one palette for every frame (taken from the first), so colours do not flicker between frames
    palette = frames[0].quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    # median cut averages the white background with the anti-aliased text's near-whites: a grey box on the page
    colours = np.asarray(palette.getpalette(), dtype=np.int64).reshape(-1, 3)
    colours[colours.min(axis=1) >= 245] = 255
    palette.putpalette(colours.ravel().tolist())
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    durations = [FRAME_MS] * len(frames)
    durations[0] = durations[-1] = END_MS
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=True)
    return buf.getvalue()
