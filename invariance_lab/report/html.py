"""The report as one self-contained HTML page: the question, the protocol, the model table, the plots, the layer
profile (sweeps made with --layers), and pictures of what the networks saw (gallery.py). CSS is inline and every
image is a data: URI, so the file opens anywhere, offline, and can be mailed as it is; no script runs in it.
It reads on a phone (one column, tables that scroll sideways with the model name kept in view), shows a run's
model table whole in a desktop window (1280 px), and prints.

The numbers are tables.py's and the cell texts display.py's, so the page says what `invlab report` prints. This
module holds the page itself (its words, CSS, plots and study figures); html_tables.py writes the tables,
html_gallery.py the pictures, html_elements.py the escaped text and embedded images they share.

    page = html_report(["results/quick/20261127-160351"])          # str
    invlab report results/quick/20261127-160351 --html report.html
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..core.errors import whole
from ..core.versions import __version__
from ..store.layout import is_study
from .answer import RULE, answer
from .certificate import certificates
from .protocol import protocol_lines
from .html_elements import e, image, pixel_size, text_html
from .html_gallery import gallery_html
from .html_tables import at_chance_rows, notes_html, table_html
from .papers import PAPER_KEY, paper_views, per_test_set_views
from .plots import figures, png_bytes
from .study import compare_folders, study_figure, varied
from .tables import Report, build_report, folder_list

GENERATOR = '<meta name="generator" content="invlab">'  # the page's mark: --html replaces only invlab's pages
PAGE_HEAD = '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' + GENERATOR  # how every page begins
N_IMAGES = 4  # test images in each gallery: enough to see both classes, few enough to keep the page light
QUESTION = (
    "How does a convolutional network become invariant to translation, and what do max pooling, strided "
    "convolution, global pooling and padding each contribute? invlab answers by experiment: it trains small CNNs "
    "to tell {what} apart, then moves the {moved} and measures how often (flip rate) and how much "
    "(probability change) each network changes its mind. Theory says a stride-1 convolution commutes with "
    "translation (it is equivariant), and a symmetric function over positions (global average or max pooling) "
    "then makes the output invariant; a stride-2 layer is equivariant only to shifts that are multiples of its "
    "stride, zero padding lets the border leak absolute position, and a flatten + dense head gives every position "
    "its own weights. This page shows how far each network here follows that.")
# a page of `invlab measure` folders: the user's model on the user's images, not letters
MEASURE_QUESTION = (
    "How much does this model change its mind when its input moves? `invlab measure` shifted each of the measured "
    "images (How it was measured names them) by every shift of the grid and compared the model's prediction on the shifted image with its "
    "prediction on the unshifted one: how often it changes (flip rate) and how much its probabilities move "
    "(probability change).")
# under a canvas-mode layer profile: why a stride-1 convolution's equivariance error is not 0 there
CANVAS_LAYERS = (
    "Canvas mode: the reference map is moved with zeros entering, while the network's own map holds its background "
    "value there (a bias through ReLU) and meets zero padding at the frame, so even a stride-1 convolution's "
    "equivariance error is not 0 here; the pooled error (channel means) is the one to read, and a circular sweep "
    "shows the exact equivariance (docs/metrics.md). A blockN.down tap of a network that does not downsample "
    "repeats its block's map.")
MIN_LABEL_PX = 11  # the smallest text of a plot on screen, px: a plot is never shown smaller than this allows
# the words for a move, a moved image, the reference and an image not moved, per transform (None: folders of
# several transforms compared)
MOVES = {"translate": ("shift", "shifted", "(0, 0)", "unshifted"),
         "rotate": ("angle", "turned", "angle 0", "not turned"),
         "scale": ("scale", "scaled", "scale 1", "not scaled"),
         None: ("move", "moved", "the reference", "not moved")}
# model-table columns defined on the page only when the table shows them (folders written before them lack them)
LATER_MEASURES = {
    "mean_flip_rate_correct": ("flip mean, correct", "the flip rate over the images classified correctly at {ref} "
                               "only: a network cannot look consistent by being consistently wrong."),
    "robust_accuracy": ("robust acc", "the fraction of images classified correctly at every {move} of the grid and "
                        "at {ref} (Michaeli et al., CVPR 2023)."),
    "consistent_fraction": ("consistent", "the fraction of images whose prediction is the same at every {move} of "
                            "the grid."),
}


def measures(transform: str | None, shown: list[str]) -> list[tuple[str, str]]:
    """The page's definitions (term, text), worded for the folders' transform; LATER_MEASURES for the columns in
    `shown`."""
    move, moved, ref, still = MOVES.get(transform, MOVES[None])
    terms = [
        ("accuracy", f"the fraction of {moved} images classified correctly (clean: {still})."),
        ("flip rate", (f"the fraction of images whose prediction at a {move} differs from the prediction at {ref}; "
                       "consistency = 1 − flip rate. A network that answers one class always never flips: read it "
                       "beside accuracy.")),
        ("probability change (Δp)", f"the total variation ½Σ|Δp| between the softmax at a {move} and at {ref}."),
        ("step flip", f"the fraction of predictions that change between neighbouring {move}s on the grid."),
        ("at chance", "how many of a model's seeds answer no better than a guess on clean images (accuracy at most "
                      "1 / classes + 0.05): their consistency says nothing about invariance (†)."),
    ]
    return terms + [(term, text.format(move=move, ref=ref)) for column, (term, text) in LATER_MEASURES.items()
                    if column in shown]


CSS = """
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d9dce1; --band: #f4f5f7; --accent: #1a5fb4; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 76rem; padding: 1rem 1.25rem 3rem; color: var(--ink); background: #fff;
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       overflow-wrap: break-word; }
h1 { font-size: 1.7rem; line-height: 1.25; margin: 0.5rem 0 0.25rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 0.6rem; padding-bottom: 0.2rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 0.4rem; }
h4 { font-size: 0.98rem; margin: 1.2rem 0 0.3rem; }
p, li, dd { max-width: 48rem; }
.sub, .note, .foot { color: var(--muted); font-size: 0.9rem; }
.note { border-left: 3px solid var(--line); padding-left: 0.6rem; }
code { font-size: 0.9em; background: var(--band); padding: 0 0.2em; border-radius: 3px; overflow-wrap: anywhere; }
dl { margin: 0.4rem 0; } dt { font-weight: 600; } dd { margin: 0 0 0.4rem 1rem; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 0.6rem 0; border: 1px solid var(--line);
          border-radius: 6px; }
table { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: var(--band); text-align: left; font-weight: 600; vertical-align: bottom; }
th.group { text-align: center; border-left: 1px solid var(--line); white-space: normal; }  /* wraps, never widens */
td.num, th.num { text-align: right; }
td.num, td.wrap, th.wrap { white-space: normal; } td.num span, td.wrap span { white-space: nowrap; }
td.num span + span { font-size: 0.92em; }  /* an interval, 12.5 px: a model table fits a 1280 px window */
th.wrap { min-width: 3.5rem; }
/* a wide table may reach into the window's margins (--m: body is 76rem at most, centred). It fills the room right
   of the text's left edge first; if it does not fit there even wrapped, it pushes the spacer aside; wider still,
   its .scroll box scrolls, never the page. cqw: .bleed's own width (100vw counts a scrollbar); 2px: the borders */
.bleed { --m: max(0px, (100vw - 76rem) / 2); display: flex; container-type: inline-size;
         margin: 0.6rem calc(-1 * var(--m)); }
.bleed::before { content: ""; flex: 0 1 var(--m); }
.bleed > .scroll { flex: 0 0 auto; max-width: 100%; margin: 0; }
.bleed table { max-width: calc(100cqw - var(--m) - 2px); }
tbody th { vertical-align: middle; }
tr.chance td { background: #fff7e0; }
.sticky { position: sticky; left: 0; background: #fff; z-index: 1; border-right: 1px solid var(--line);
  white-space: normal; overflow-wrap: break-word; min-width: 6em; max-width: 14em; }  /* a long name wraps */
th.sticky { background: var(--band); }
figure { margin: 1rem 0 1.6rem; }
figure img { display: block; max-width: 100%; height: auto; }
/* a plot is shown no smaller than its smallest text allows (img min-width, set per plot); on a phone its box
   scrolls sideways rather than the text shrinking to ~5 px */
.plotbox { overflow-x: auto; -webkit-overflow-scrolling: touch; }
.answer { font-size: 1.1rem; line-height: 1.45; margin: 0.8rem 0 0.4rem; padding: 0.5rem 0.8rem;
          border-left: 4px solid var(--accent); background: var(--band); max-width: 52rem; }
figcaption { color: var(--muted); font-size: 0.85rem; margin-top: 0.3rem; max-width: 48rem; }
.letter { margin: 1rem 0 2rem; }
.letter th, .letter td { padding: 0.25rem 0.3rem; }  /* nine stills and the animation side by side */
.pair { display: flex; flex-wrap: wrap; gap: 0 1.5rem; align-items: flex-start; }
.pair > .scroll { flex: 0 1 auto; min-width: 0; max-width: 100%; }
.pair > figure { flex: 0 1 auto; margin-top: 0.6rem; }
img.px { image-rendering: pixelated; height: auto; display: block; margin: 0 auto; }
td.p { text-align: center; }
td.wrong { color: #a00; font-weight: 600; }
@media (max-width: 40rem) {
  body { font-size: 15px; padding: 0.6rem 0.7rem 2rem; }
  h1 { font-size: 1.35rem; } h2 { font-size: 1.15rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .scroll { overflow: visible; border: none; } .bleed { display: block; margin: 0.6rem 0; }
  .bleed table { max-width: none; }
  table { font-size: 7.5pt; } th, td { white-space: normal; padding: 0.15rem 0.3rem; }
  .sticky { position: static; }
  .plotbox { overflow: visible; } figure img { min-width: 0 !important; }
  h2, h3, h4 { break-after: avoid; } figure, .letter, tr { break-inside: avoid; }
}
"""


def _caption(name: str) -> str:
    """What a plots.py file name shows, in words (alt text and caption)."""
    words = {"flip_rate": "flip rate", "prob_change": "probability change", "accuracy": "accuracy",
             "neighbor_flip_rate": "neighbour flip rate"}
    stem = name.removesuffix(".png")
    if stem == "consistency_vs_accuracy":
        return ("Accuracy against consistency: one small point per model and seed, a large one for the mean. A "
                "network at chance is perfectly consistent, so the two are read together.")
    if stem == "layers_vs_depth":
        return "Where invariance comes from: each layer's error against depth, mean over seeds and shifts."
    m = re.fullmatch(r"(.+)_vs_(dx|dy|angle|scale)", stem)
    if m and m[2] in ("dx", "dy"):
        return f"{words.get(m[1], m[1])} against {m[2]} (the other shift 0), mean over seeds with its 95% band."
    if m:  # a rotate or scale sweep's one axis
        axis = "the angle turned (degrees)" if m[2] == "angle" else "the scale factor"
        return f"{words.get(m[1], m[1])} against {axis}, mean over seeds with its 95% band."
    m = re.fullmatch(r"(.+)_heatmap(_.*)?", stem)
    if m:
        run = f": {m[2][1:]}" if m[2] else ""  # one heatmap per run when several are compared
        return f"{words.get(m[1], m[1])} over every (dx, dy) of the grid, mean over seeds{run}."
    return stem


def smallest_text_px(fig) -> float:
    """The smallest text drawn in a matplotlib figure, in px of its PNG (points x dpi / 72). Found by duck typing,
    so matplotlib need not be imported here."""
    texts = fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
    sizes = [t.get_fontsize() for t in texts if t.get_visible() and str(t.get_text()).strip()]
    return min(sizes) * fig.dpi / 72


def plot_html(data: bytes, words: str, label_px: float) -> str:
    """A PNG plot with its caption, never shown narrower than keeps its smallest text (`label_px` px in the PNG)
    at MIN_LABEL_PX: a narrower window scrolls its box sideways. Drawing the fonts larger instead would change
    the PNGs `invlab report --plot` writes and crowd them on a desktop; this keeps one set of figures. The
    data-label-px attribute lets bench/html_screenshot.py check the size on screen."""
    w, h = pixel_size(data)
    least = min(w, math.ceil(w * MIN_LABEL_PX / label_px))
    attrs = {"style": f"min-width:{least}px", "data-label-px": f"{label_px:.2f}"}
    return (f'<figure><div class="plotbox">{image(data, "image/png", words, size=(w, h), attrs=attrs)}</div>'
            f"<figcaption>{e(words)}</figcaption></figure>")


def figures_html(named: list[tuple[str, object]]) -> str:
    """plots.py's figures as PNG pictures inside the page, each with its caption."""
    parts = []
    for name, fig in named:
        data = png_bytes(fig)  # first: drawing settles the layout
        parts.append(plot_html(data, _caption(name), smallest_text_px(fig)))
    return "\n".join(parts)


def study_html(rep: Report, folder: Path, metric: str) -> str:
    """A study folder (run/study.py makes it, study.py compares its runs): the model table's mean `metric`
    against each varied key, the figure that `invlab report STUDY --plot` writes."""
    parts = ["<h2>Across the study</h2>"]
    for key in varied(rep, folder):
        fig = study_figure(rep, folder, key, f"mean_{metric}")[1]
        data = png_bytes(fig)  # first: drawing settles the layout
        words = f"mean {metric} against {key}, the study's varied key: one line per model, ± 95% CI over seeds."
        parts.append(plot_html(data, words, smallest_text_px(fig)))
    return "\n".join(parts)


def _question(results) -> str:
    """QUESTION, worded for what the runs trained on: drawn letters, or images (an image folder, the boxes)."""
    if all("images" not in r.meta.get("protocol", {}) for r in results):
        return QUESTION.format(what="synthetic letters", moved="letters")
    return QUESTION.format(what="the classes of images (How it was measured names them)", moved="images")


def _measured(results) -> dict | None:
    """What answer.answer needs to word a page of `invlab measure` folders (meta.json kind "measure"): the one
    protocol they share (its images and shifts), {} for mixed or differing folders ("the images"), None for
    letters."""
    protocols = [r.meta.get("protocol", {}) for r in results if r.meta.get("kind") == "measure"]
    if not protocols:
        return None
    if len(protocols) < len(results):
        return {}
    keys = ("images", "test_images", "dx", "dy", "mode", "transform", "angles", "scales", "all_shifts")
    same = all({k: p.get(k) for k in keys} == {k: protocols[0].get(k) for k in keys} for p in protocols)
    unlabelled = {"labels": False} if all(p.get("labels") is False for p in protocols) else {}  # the caveat stays
    return protocols[0] if same else unlabelled


TITLES = {"translate": "Translation invariance", "rotate": "Rotation invariance", "scale": "Scale invariance"}


def html_report(paths: str | Path | list[str | Path], *, metric: str = "flip_rate", drop_chance: bool = False,
                n_images: int = N_IMAGES) -> str:
    """The whole page for these run, sweep or measure folders, or one study folder (as `invlab report PATH…
    --html FILE` writes it).
    Parts that do not apply (no layer profile, no checkpoints to draw pictures from) are left out with a note."""
    whole("n_images (the gallery's images)", n_images)
    paths = folder_list(paths)
    rep = compare_folders(paths, by="model", drop_chance=drop_chance)
    results = rep.results
    study = len(paths) == 1 and is_study(paths[0])
    # a study's runs are named by their varied values (study.build_study_report); the page by the study's folder
    labels = [f"study {Path(paths[0]).resolve().parent.name}/{Path(paths[0]).resolve().name}"] if study else \
        [r.label for r in results]
    several = len(results) > 1
    named = figures(results, metrics=tuple(dict.fromkeys([metric, "flip_rate", "prob_change"])))
    layer_fig = [(n, f) for n, f in named if n == "layers_vs_depth.png"]
    named = [(n, f) for n, f in named if n != "layers_vs_depth.png"]
    model_view = rep.views[0]
    measured = _measured(results)
    # the answer in words first, then the table (within the first screen), then the plots; the question and the
    # protocol after them, for a reader who wants to know how the numbers were made
    transforms = {r.meta.get("protocol", {}).get("transform") or "translate" for r in results}
    transform = transforms.pop() if len(transforms) == 1 else None  # rotate, scale: sweep.transform
    body = [f"<h1>{TITLES.get(transform, 'Invariance')}: {e(', '.join(labels))}</h1>",
            (f'<p class="sub">invlab report, {len(results)} folder{"s" if several else ""}; made '
             f"{datetime.now():%Y-%m-%d %H:%M} by invariance_lab {e(__version__)}.</p>"),
            f'<p class="answer" id="answer">{text_html(answer(model_view.table, measured, transform or "translate"))}</p>',
            f"<h2>Models{', compared across ' + str(len(results)) + ' folders' if several else ''}</h2>",
            (f'<p class="sub">{e(model_view.title)}. Accuracy beside the change under shift: a network can be '
             "consistent because it is right everywhere, or because it gives one answer to everything.</p>"),
            table_html(model_view, at_chance_rows(model_view)), notes_html([model_view], rep),
            f'<p class="note">{e(RULE)}</p>']
    for view in rep.views[1:]:  # a sweep made with --metric lie: its Lie derivative, model x transform
        body += ["<h2>Lie derivative</h2>", f'<p class="sub">{e(view.title)}</p>', table_html(view)]
    for text in certificates(results):  # every circular shift: per model, invariant or the shift that breaks it
        if not text.startswith("  "):  # a head, then its models as one list
            body += [f"<p>{e(text)}</p>", "<ul></ul>"]
        else:
            body[-1] = body[-1].removesuffix("</ul>") + f"<li>{e(text.strip())}</li></ul>"
    # data.test_sets and a config's paper: block, as `invlab report` prints them (report/papers.py)
    for view in per_test_set_views(results) + paper_views(results):
        heading = "Beside the paper" if view.key == PAPER_KEY else "Other test sets"
        body += [f"<h2>{heading}</h2>", f'<p class="sub">{e(view.title)}</p>', table_html(view)]
    if study:
        body.append(study_html(rep, Path(paths[0]), metric))
    body += ["<h2>Plots</h2>", figures_html(named),
             *(("<h2>What was measured</h2>", f"<p>{text_html(MEASURE_QUESTION)}</p>") if measured else
               ("<h2>The question</h2>", f"<p>{e(_question(results))}</p>")),
             "<h2>How it was measured</h2>",
             "<ul>" + "".join(f"<li>{e(line)}</li>" for line in protocol_lines(results)) + "</ul>",
             "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in measures(transform, model_view.values))
             + "</dl>"]
    with_layers = [r for r in results if r.layers is not None]
    body.append("<h2>Layer by layer</h2>")
    if with_layers:
        layer_rep = build_report([r.path for r in with_layers], by="layer", drop_chance=drop_chance)
        for view in layer_rep.views:
            body += [f"<h3>{e(view.title)}</h3>", table_html(view, at_chance_rows(view))]
        body += [notes_html(layer_rep.views, layer_rep), figures_html(layer_fig)]
        if any(r.meta.get("protocol", {}).get("mode") == "canvas" for r in with_layers):
            body.append(f'<p class="note">{e(CANVAS_LAYERS)}</p>')
    else:
        body.append('<p class="note">No layer profile in these folders: make one with '
                    "<code>invlab sweep RUN --layers</code> (or <code>invlab measure ... --layers</code>) and "
                    "report that folder.</p>")
    body += ["<h2>What the networks saw</h2>",
             *(gallery_html(r, n_images, pd.concat([rep.flags, rep.dropped])) for r in results)]
    body.append(f'<p class="foot">Made with <code>invlab report {e(" ".join(str(p) for p in paths))} --html FILE'
                "</code>. Every number is a mean over seeds, with its 95% t interval where there are several; "
                "pictures, where there are any, show one network per model (the first seed).</p>")
    title = f"invlab report: {', '.join(labels)}"
    return (PAGE_HEAD + "\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body)
            + "\n</body>\n</html>\n")
