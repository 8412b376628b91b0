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

import numpy as np
import pandas as pd
import torch

from ..config.load import load_config
from ..core.errors import ConfigError, RunFolderError, clip, quote
from ..core.runtime import resolve_device, set_threads
from ..data.datasets import draw, glyph_table, reference_letters
from ..data.parts import candidates, strokes, with_part, without_part
from ..store.atomic import read_json, refuse_link, write_csv, write_json
from ..store.checkpoints import load_run_models
from ..store.find import require_finished_run
from ..store.layout import CONFIG_FILE, META_FILE as META, PART_FOCUS_DIR as FOLDER, PART_IMAGES_CSV as IMAGES_CSV, \
    PART_PARTS_CSV as PARTS_CSV
from .rules import PART_SPAN

PART_MODELS = ("conv_only", "conv_maxpool", "strided_conv", "gap_circular", "maxpool_gap_circular")
DISTANCES = tuple(range(1, PART_SPAN + 1))  # max(|dx|, |dy|) of the displacement, px: 1 within a 2x2 pool
REMOVED = 0  # the distance column of the removal control's rows
VERSION = 3  # of the files' layout and the choice rule: a folder of another version is made again


@dataclass
class PartFocus:
    folder: Path
    images: pd.DataFrame  # model, seed, image, glyph, distance (REMOVED: the part removed), prob_change, flip
    parts: pd.DataFrame  # glyph, letter, font, strokes, n_strokes, n_images, removal_flip, removal_tv, ink_share
    meta: dict


IMAGE_COLUMNS = ["model", "seed", "image", "glyph", "distance", "prob_change", "flip"]
PART_COLUMNS = ["glyph", "letter", "font", "strokes", "n_strokes", "n_images", "removal_flip", "removal_tv",
                "ink_share"]
_TEXT = ("model", "letter", "font", "strokes")  # read as strings: a stroke "3" or a letter "1" stays text
_FRACTIONS = ("prob_change", "flip", "removal_flip", "removal_tv", "ink_share")
_ROUND_OFF = 1e-5  # a sum of float32 probabilities may pass 1 by this much


def _again(folder: Path) -> str:
    return (f"Claim 2's part experiment cannot be read from it; delete the folder {folder} and run `invlab claims` "
            f"again to measure it again (the run and its sweeps are reused).")


def _damaged(path: Path, what: str) -> RunFolderError:
    return RunFolderError(f"{path} is damaged: {what}. {_again(path.parent)}")


def _read_table(path: Path, columns: list[str], numeric: list[str], whole: tuple[str, ...] = (),
                may_be_empty: tuple[str, ...] = ()) -> pd.DataFrame:
    """One of part_focus's CSVs, read defensively (the run folder may have been edited or damaged): its columns,
    finite numbers in `numeric` (whole numbers in `whole`; an empty cell only in `may_be_empty`), fractions in
    [0, 1]. store/results._read_csv is not used: it refuses two rows of one model and seed (images.csv holds one
    per image and distance) and words a missing file as a run or sweep folder's."""
    if not path.is_file():  # missing, or a FIFO or folder at the name (reading a FIFO would hang)
        raise RunFolderError(f"{path} is missing or not a regular file, though {path.parent / META} says the part "
                             f"experiment is complete. {_again(path.parent)}")
    try:
        df = pd.read_csv(path, dtype=dict.fromkeys([c for c in _TEXT if c in columns], str))
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # ParserError and EmptyDataError are ValueErrors
        raise _damaged(path, f"it could not be read as CSV ({clip(exc, 160)})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise _damaged(path, f"it lacks the column(s) {', '.join(missing)}; invlab writes {', '.join(columns)}")
    if df.empty:
        raise _damaged(path, "it has no rows")
    for c in numeric:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            raise _damaged(path, f"column {c} holds values that are not numbers")
        values = df[c].to_numpy(dtype=float)
        bad = np.isinf(values) if c in may_be_empty else ~np.isfinite(values)
        if c in whole:
            bad |= np.isfinite(values) & (values != np.round(values))
        if c in _FRACTIONS:
            with np.errstate(invalid="ignore"):
                bad |= (values < 0) | (values > 1 + _ROUND_OFF)
        if bad.any():
            row = int(bad.argmax())  # row + 2: the file's line, the header is line 1
            allowed = ("a whole number" if c in whole else "a number") + (" from 0 to 1" if c in _FRACTIONS else "")
            allowed += " (or empty)" if c in may_be_empty else ""
            raise _damaged(path, f"{c} is {quote(df[c].iloc[row])} in line {row + 2}; it is {allowed}")
    for c in columns:
        if c in _TEXT and df[c].isna().any():
            raise _damaged(path, f"{c} is empty in line {int(df[c].isna().to_numpy().argmax()) + 2}")
    return df


def _outside(path: Path, df: pd.DataFrame, column: str, allowed, words: str) -> None:
    bad = ~df[column].isin(list(allowed)).to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise _damaged(path, f"{column} is {quote(df[column].iloc[row])} in line {row + 2}; this run's are {words}")


def load_part_focus(folder: Path, cfg=None) -> PartFocus:
    """The tables of a complete part_focus folder, checked against the run they belong to (cfg: the run's config;
    read from <run>/config.yaml when not given): every (model, seed, image, distance) of images.csv exactly once
    and every glyph of parts.csv exactly once. A damaged, edited or cut-off table is a RunFolderError naming the
    file, what is wrong and how to measure it again; it is never rewritten here (nor read in part)."""
    folder = Path(folder)
    meta = read_json(folder / META)
    if cfg is None:
        cfg = load_config(folder.parent / CONFIG_FILE)
    seeds, n = [int(s) for s in cfg.seeds], int(cfg.data.test_images)
    n_glyphs = len(cfg.data.letters) * len(cfg.data.fonts)
    if not isinstance(meta, dict) or meta.get("settings") != _settings() or meta.get("n_images") != n \
            or meta.get("seeds") != seeds or not isinstance(meta.get("choice"), list):
        raise RunFolderError(f"{folder / META} does not describe this run's part experiment (settings "
                             f"{quote(_settings())}, {n} test images, seeds {seeds}, the part chosen per glyph): "
                             f"it was edited or comes from elsewhere. {_again(folder)}")

    path = folder / IMAGES_CSV
    images = _read_table(path, IMAGE_COLUMNS, IMAGE_COLUMNS[1:], ("seed", "image", "glyph", "distance"))
    _outside(path, images, "model", PART_MODELS, ", ".join(PART_MODELS))
    _outside(path, images, "seed", seeds, ", ".join(map(str, seeds)))
    _outside(path, images, "image", range(n), f"0 to {n - 1}")
    _outside(path, images, "distance", (REMOVED, *DISTANCES), f"{REMOVED} (the part removed) and "
             f"{', '.join(map(str, DISTANCES))} px")
    _outside(path, images, "glyph", range(n_glyphs), f"0 to {n_glyphs - 1}")
    keys = ["model", "seed", "image", "distance"]
    twice = images.duplicated(subset=keys)
    if twice.any():
        row = images[twice].iloc[0]
        raise _damaged(path, f"it has two rows for {', '.join(f'{k} {row[k]}' for k in keys)}; invlab writes one")
    expected = len(PART_MODELS) * len(seeds) * n * (len(DISTANCES) + 1)
    if len(images) != expected:  # every key is one of the run's and none is there twice: rows are missing
        raise _damaged(path, f"it has {len(images)} rows of the {expected} invlab writes ({len(PART_MODELS)} "
                             f"networks x {len(seeds)} seed(s) x {n} test images x {len(DISTANCES) + 1} "
                             f"displacements, the part's removal included); it was cut off or edited")
    if (images.groupby("image")["glyph"].nunique() > 1).any():
        raise _damaged(path, "one test image has two glyphs in different rows")

    path = folder / PARTS_CSV
    measured = ("removal_flip", "removal_tv", "ink_share")  # empty for a glyph no test image shows (a mean of none)
    parts = _read_table(path, PART_COLUMNS, PART_COLUMNS[4:] + ["glyph"], ("glyph", "n_strokes", "n_images"),
                        measured)
    _outside(path, parts, "glyph", range(n_glyphs), f"0 to {n_glyphs - 1} ({len(cfg.data.letters)} letters x "
             f"{len(cfg.data.fonts)} fonts)")
    if parts["glyph"].duplicated().any():
        raise _damaged(path, f"it has two rows for glyph {parts['glyph'][parts['glyph'].duplicated()].iloc[0]}; "
                             f"invlab writes one per glyph")
    if len(parts) != n_glyphs:
        raise _damaged(path, f"it has {len(parts)} rows of the {n_glyphs} invlab writes (one per glyph: "
                             f"{len(cfg.data.letters)} letters x {len(cfg.data.fonts)} fonts); it was cut off or "
                             f"edited")
    unmeasured = (parts["n_images"] > 0).to_numpy() & parts[list(measured)].isna().any(axis=1).to_numpy()
    if unmeasured.any():
        raise _damaged(path, f"line {int(unmeasured.argmax()) + 2} is a glyph of test images with an empty "
                             f"{' or '.join(measured)}")
    if int(parts["n_images"].sum()) != n:
        raise _damaged(path, f"its n_images add up to {int(parts['n_images'].sum())}, not the run's {n} test images")
    return PartFocus(folder, images, parts, meta)


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


def check_parts(data) -> None:
    """Claim 2 moves a part of each drawn letter: stroke letters, each glyph with a candidate part (data/parts:
    a stroke or two that are not the whole glyph). An InvlabError naming the first glyph without one; checked
    before any training."""
    if data.source != "letters" or data.glyphs != "stroke":
        raise ConfigError(f"claim 2 moves one stroke of each letter: the claims need stroke letters (data.source: "
                          f"letters, data.glyphs: stroke); the config gives source {data.source}, glyphs "
                          f"{data.glyphs}. Start from configs/question_claims.yaml")
    table = glyph_table(data)
    for g in range(table.part.shape[0]):
        if candidates(table, g) == [()]:
            letter, font = table.letters[g // len(table.fonts)], table.fonts[g % len(table.fonts)]
            raise ConfigError(f"claim 2 moves one part of each letter, and {letter!r} in font {font} has none: it "
                              f"is drawn with {len(strokes(table, g))} stroke(s), and a part must be a stroke or two "
                              f"that leave the rest of the letter in place. Leave {letter} out of data.letters, or "
                              f"{font} out of data.fonts")


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
