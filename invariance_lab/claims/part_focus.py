"""Claim 2's experiment: displace the part of each letter the networks use, within and beyond the pooling window,
and keep every image's change so that max pooling and no pooling can be compared image by image (part_tests.py).

The part is chosen by what the networks read, not by shape: for each glyph (letter x font), every stroke and pair
of strokes of at most half its drawn length (data/parts.candidates) is removed in turn (data/parts.without_part),
and the one whose removal changes the most predictions of the claim's networks (all seeds together; ties by
probability change) becomes the glyph's part. That removal is the control reported beside the displacement: a
part whose removal changes nothing cannot show whether its displacement is undone. The chosen part is then moved by every (dx, dy) of -3..3 px, the rest in place; an
image's change at distance d (max(|dx|, |dy|)) is its mean over the 8 d displacements at that distance. Distance
1 lies within a 2x2 max-pooling window; 2 and 3 lie beyond it.

    folder = part_focus(run_dir, threads=1)    # <run>/part_focus/: images.csv, parts.csv, meta.json (reused)
    found = load_part_focus(folder)            # found.images: model, seed, image, glyph, distance, prob_change, flip
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from ..config.load import load_config
from ..core.errors import RunFolderError
from ..core.runtime import resolve_device, set_threads
from ..data.datasets import draw, glyph_table, reference_letters
from ..data.parts import candidates, strokes, with_part, without_part
from ..store.atomic import read_json, refuse_link, write_csv, write_json
from ..store.checkpoints import load_run_models
from ..store.find import require_finished_run
from ..store.layout import CONFIG_FILE
from .rules import PART_SPAN

PART_MODELS = ("conv_only", "conv_maxpool", "strided_conv", "gap_circular", "maxpool_gap_circular")
DISTANCES = tuple(range(1, PART_SPAN + 1))  # max(|dx|, |dy|) of the displacement, px: 1 within a 2x2 pool
REMOVED = 0  # the distance column of the removal control's rows
FOLDER, IMAGES_CSV, PARTS_CSV, META = "part_focus", "images.csv", "parts.csv", "meta.json"
VERSION = 3  # of the files' layout and the choice rule: a folder of another version is made again


@dataclass
class PartFocus:
    folder: Path
    images: pd.DataFrame  # model, seed, image, glyph, distance (REMOVED: the part removed), prob_change, flip
    parts: pd.DataFrame  # glyph, letter, font, strokes, n_strokes, n_images, removal_flip, removal_tv, ink_share
    meta: dict


def load_part_focus(folder: Path) -> PartFocus:
    folder = Path(folder)
    return PartFocus(folder, pd.read_csv(folder / IMAGES_CSV), pd.read_csv(folder / PARTS_CSV),
                     read_json(folder / META))


def _settings() -> dict:
    return {"version": VERSION, "models": list(PART_MODELS), "distances": list(DISTANCES)}


def _changes(probs: dict, ref: dict) -> dict:
    """{key: (tv (n,), flip (n,))} of every model against its reference probabilities."""
    return {k: (0.5 * (p - ref[k]).abs().sum(1), (p.argmax(1) != ref[k].argmax(1)).float()) for k, p in probs.items()}


def choose_parts(table, test, canvas: int, predict, ref: dict) -> tuple[list[tuple], list[dict]]:
    """Per glyph, the candidate part (data/parts.candidates: one or two strokes) whose removal changes the most
    predictions over every model and seed (ties: the larger probability change), with what its removal did."""
    n_glyphs = table.part.shape[0]
    cands = [candidates(table, g) for g in range(n_glyphs)]
    scores = {}
    for j in range(max(len(c) for c in cands)):  # the j-th candidate of every glyph removed at once: one drawing
        pick = [c[j] if j < len(c) else c[0] for c in cands]
        changed = _changes(predict(draw(without_part(with_part(table, pick)), test, canvas)), ref)
        flip = torch.stack([f for _, f in changed.values()]).mean(0)
        tv = torch.stack([t for t, _ in changed.values()]).mean(0)
        for g in range(n_glyphs):
            mine = test.glyph == g
            if j < len(cands[g]) and mine.any():
                scores[(g, pick[g])] = (float(flip[mine].mean()), float(tv[mine].mean()))
    chosen = [max(c, key=lambda k: scores.get((g, k), (-1.0, -1.0))) for g, c in enumerate(cands)]
    return chosen, [{"glyph": g, "strokes": list(k), "n_strokes": len(strokes(table, g)),
                     "scores": {" ".join(map(str, c)): scores.get((g, c)) for c in cands[g]}}  # (flip, tv)
                    for g, k in enumerate(chosen)]


def current(folder: Path) -> bool:
    """The folder holds a complete experiment of these settings (meta.json is written last)."""
    if not (Path(folder) / META).is_file():
        return False
    try:
        return read_json(Path(folder) / META).get("settings") == _settings()
    except RunFolderError:  # an unreadable meta.json: made again
        return False


@torch.inference_mode()
def part_focus(run_dir: Path, *, threads: int | None = None) -> Path:
    """Make (or reuse) <run>/part_focus/ for a finished run of the claims config; returns the folder."""
    folder = Path(run_dir) / FOLDER
    if current(folder):
        return folder
    t0 = time.perf_counter()
    set_threads(threads)
    meta_run = require_finished_run(run_dir)
    cfg = load_config(Path(run_dir) / CONFIG_FILE)
    device = resolve_device(cfg.device)
    models = load_run_models(Path(run_dir), cfg, meta_run, list(PART_MODELS), device)
    for m in models.values():
        m.eval()
    table, test, canvas = glyph_table(cfg.data), reference_letters(cfg.data), cfg.data.canvas

    def predict(images: torch.Tensor) -> dict:
        x = images.to(device)
        return {k: torch.softmax(m(x).float(), dim=1).cpu() for k, m in models.items()}

    full = draw(table, test, canvas)
    ref = predict(full)
    chosen, choice = choose_parts(table, test, canvas, predict, ref)
    table = with_part(table, chosen)
    gone = draw(without_part(table), test, canvas)
    rows = {REMOVED: _changes(predict(gone), ref)}
    for d in DISTANCES:
        offsets = [(dx, dy) for dx in range(-d, d + 1) for dy in range(-d, d + 1) if max(abs(dx), abs(dy)) == d]
        total = {k: [torch.zeros(len(test)), torch.zeros(len(test))] for k in models}
        for dx, dy in offsets:
            moved = draw(table, test, canvas, part_offset=torch.tensor([float(dx), float(dy)]).expand(len(test), 2))
            for k, (tv, flip) in _changes(predict(moved), ref).items():
                total[k][0] += tv / len(offsets)
                total[k][1] += flip / len(offsets)
        rows[d] = {k: tuple(v) for k, v in total.items()}
    images = pd.concat([pd.DataFrame({"model": k[0], "seed": k[1], "image": range(len(test)),
                                      "glyph": test.glyph.numpy(), "distance": d, "prob_change": tv.numpy(),
                                      "flip": flip.numpy()})
                        for d, per in rows.items() for k, (tv, flip) in per.items()], ignore_index=True)
    ink = 1 - gone.sum((1, 2, 3)) / full.sum((1, 2, 3)).clamp_min(1e-12)
    removal = images[images.distance == REMOVED]
    parts = pd.DataFrame([{"glyph": c["glyph"], "letter": table.letters[c["glyph"] // len(table.fonts)],
                           "font": table.fonts[c["glyph"] % len(table.fonts)],
                           "strokes": " ".join(map(str, c["strokes"])),
                           "n_strokes": c["n_strokes"], "n_images": int((test.glyph == c["glyph"]).sum()),
                           "removal_flip": removal[removal.glyph == c["glyph"]].flip.mean(),
                           "removal_tv": removal[removal.glyph == c["glyph"]].prob_change.mean(),
                           "ink_share": float(ink[test.glyph == c["glyph"]].mean())} for c in choice])
    refuse_link(folder)  # a part_focus -> elsewhere link in the run folder is never written through
    folder.mkdir(exist_ok=True)
    write_csv(folder / IMAGES_CSV, images)
    write_csv(folder / PARTS_CSV, parts)
    write_json(folder / META, {"settings": _settings(), "choice": choice, "n_images": len(test),
                               "seeds": list(cfg.seeds), "timings": {"total_s": round(time.perf_counter() - t0, 2)}})
    return folder
