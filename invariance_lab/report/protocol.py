"""The sentence under every table that says how it was measured (a folder's meta.json protocol): the shift and
its grid, the images, the seeds, the engine, the ink baseline, and where the frame cut letters. The terminal,
markdown, the HTML page and the claims' answers all print it.

    for line in protocol_lines(results):
        print(line)
"""

from __future__ import annotations

from ..data.ink_stats import battery_words
from ..data.shifts import axis_values
from ..eval.engine import ENGINES
from .tables import Result

MODE_WORDS = {
    "canvas": "canvas shift (letter re-rendered at the shifted position on a blank canvas)",
    "circular": "circular shift (image rolled with wrap-around, torch.roll)",
    "parts": "part displacement (right-most stroke moved by (dx, dy) px, rest of the letter fixed, on the canvas)",
}
PART_COUNTER_WORDS = ("part displacement (the right-most counter, a hole of the filled letter, moved by (dx, dy) px, "
                      "rest of the letter fixed, on the canvas)")
# invlab measure (protocol key "images"): the image itself is moved, not a letter redrawn
RASTER_WORDS = {
    "canvas": "canvas shift of the image inside its frame ({fill} fill; sub-pixel shifts {interpolation})",
    "circular": "circular shift (image rolled with wrap-around, torch.roll)",
}
GRID_WORDS = {"product": "every (dx, dy) combination", "axes": "along each axis"}


def _fractional(spec) -> bool:
    """Whether a [start, stop(, step)] range of a protocol holds a shift that is not a whole pixel."""
    if not isinstance(spec, (list, tuple)) or not spec:
        return False
    start, _, step = (float(v) for v in [*spec, 1.0][:3])
    return start != int(start) or (step != int(step) and float(spec[0]) != float(spec[1]))


def protocol_lines(results: list[Result]) -> list[str]:
    """One sentence per result stating the shift protocol, so every printed table says how it was measured."""
    def span(name: str, spec) -> str:
        start, stop, step = (float(v) for v in [*spec, 1.0][:3])  # [start, stop] or [start, stop, step]
        return f"{name} {start:g}" if start == stop else f"{name} {start:g}..{stop:g} step {step:g}"

    lines = []
    for r in results:
        p = r.meta.get("protocol", {})
        mode = p.get("mode", "?")
        parts = [MODE_WORDS.get(mode, f"{mode} shift")]
        if p.get("part") == "counter":
            parts = [PART_COUNTER_WORDS]
        if "images" in p:  # invlab measure: raster images, translated as pixels (stream.py)
            parts = [(RASTER_WORDS[mode].format(fill=p.get("fill"), interpolation=p.get("interpolation"))
                     if mode in RASTER_WORDS else f"{mode} shift"), f"images: {p['images']}"]
            if not p.get("labels", True):
                parts.append("no labels (accuracy not measured)")
        if p.get("transform") in ("rotate", "scale"):  # sweep.transform: angles or scales in place of dx, dy
            unit = "angle (degrees, counterclockwise)" if p["transform"] == "rotate" else "scale (factor)"
            kept = parts[1:] if "images" in p else []  # invlab measure: the images, and whether they are labelled
            parts = [f"{p['transform']} about the centre, {p.get('drawing')}", span(unit, p[f"{unit[:5]}s"]), *kept]
        elif "dx" in p and "dy" in p:
            parts.append(f"{span('dx', p['dx'])}, {span('dy', p['dy'])} "
                         f"({GRID_WORDS.get(p.get('grid'), str(p.get('grid')))})")
            parts += frame_cut_words(p)
        if p.get("subpixel") == "fft":
            parts.append("fractional shifts band-limited (the image's DFT times the shift's phase: Fourier shift)")
        elif mode == "canvas" and "images" not in p and any(_fractional(p.get(k)) for k in ("dx", "dy")):
            parts.append("fractional shifts redrawn at a new sampling phase, which also changes each letter's ink by "
                         "up to a few percent (docs/metrics.md; --mode circular --subpixel fft keeps it)")
        if p.get("task") == "position":
            parts.append("task position (label = top/bottom half; paired test images, bottom = top rolled by half "
                         "the canvas, so an invariant model scores exactly 0.5)")
        if p.get("all_shifts"):
            rolls = (f" over the {p['rolls']} rolls of the whole translation group: a shift and that shift plus or "
                     "minus the side are one roll, and the means count such a roll twice" if p.get("rolls") else
                     ": the whole translation group")
            parts.append(f"every circular shift of the {'images' if 'images' in p else 'canvas'} "
                         f"({p.get('n_shifts')} shifts{rolls})")
        elif p.get("rolls"):
            parts.append(f"{p.get('n_shifts')} shifts over {p['rolls']} distinct rolls: a shift and that shift plus "
                         "or minus the side are one roll, and the means count such a roll twice")
        if "test_images" in p:
            parts.append(f"{p['test_images']} {'' if 'images' in p and 'test' not in p['images'] else 'test '}images")
        if p.get("layers"):
            parts.append(f"layer profile on the first {p['layers'].get('n_images')} of them")
        if "seeds" in p:
            parts.append("seeds " + ",".join(str(s) for s in p["seeds"]))
        if p.get("engine"):
            parts.append(engine_words(p))
        ink = r.meta.get("ink_baseline")  # runs: what total ink alone scores (ink.py); absent in older runs
        if isinstance(ink, dict) and {"accuracy", "chance"} <= set(ink):
            parts.append(f"ink baseline: test accuracy {ink['accuracy']:.3f} from each image's total ink alone "
                         f"(chance {ink['chance']:.3f})")
            if isinstance(ink.get("battery"), dict):  # runs since the ink battery (data/ink_stats.py)
                parts.append(battery_words(ink))
        lines.append(f"{r.meta.get('kind', 'run')} {r.label}: " + ", ".join(parts))
    return lines


def frame_cut_words(p: dict) -> list[str]:
    """Where a canvas sweep's grid goes past the shifts that keep every test letter whole (protocol "whole",
    data/shifts.whole_shifts): there the frame cuts some letters, so the images are cropped as well as moved. `whole`
    is measured at whole pixels; a fractional shift past it (a letter redrawn at another phase) may be cut, which
    the words say as such."""
    whole, cut, maybe = p.get("whole") or {}, [], []
    for key in ("dx", "dy"):
        past = [v for v in axis_values(p[key]) if not whole[key][0] <= v <= whole[key][1]] if key in whole else []
        if past:
            (cut if any(v == int(v) for v in past) else maybe).append(f"{key} {whole[key][0]:g}..{whole[key][1]:g}")
    words = [f"the frame cuts some test letters at whole-pixel shifts past {' and '.join(cut)} px (those images "
             "are cropped as well as moved; within that range every letter stays whole)"] if cut else []
    return words + [f"the grid's fractional shifts go past {' and '.join(maybe)} px, the whole-pixel shifts within "
                    "which every test letter stays whole: past them the frame may cut some letters"] * bool(maybe)


def engine_words(p: dict) -> str:
    """The engine of a protocol (meta.json): "engine: all-shift (...)", or which models used which."""
    if p["engine"] in ENGINES:
        return f"engine: {ENGINES[p['engine']].words}"
    used = p.get("engines", {})
    return "engine: " + "; ".join(f"{'all-shift' if e == 'allshift' else 'brute force'} for "
                                  f"{', '.join(m for m in used if used[m] == e)}" for e in dict.fromkeys(used.values()))
