"""The report as one self-contained HTML page: the question, the protocol, the model table, the plots, the layer
profile (sweeps made with --layers), and pictures of what the networks saw (gallery.py). CSS is inline and every
image is a data: URI, so the file opens anywhere, offline, and can be mailed as it is; no script runs in it.
It reads on a phone (one column, tables that scroll sideways with the model name kept in view) and prints.

The numbers are report.py's and the cell texts display.py's, so the page says what `invlab report` prints.

    page = html_report(["results/quick/20261127-160351"])          # str
    invlab report results/quick/20261127-160351 --html report.html
"""

from __future__ import annotations

import base64
import html
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from ..core.versions import __version__
from .display import SHORT_HEADERS, clip_note, protocol_lines, seed_notes, text_rows
from ..core.errors import InvlabError
from .tables import Report, View, build_report
from ..eval.sweep import FACTOR_COLUMNS

N_IMAGES = 4  # test images in each gallery: enough to see both classes, few enough to keep the page light
THUMB_PX = 60  # about how wide a still is shown (a whole multiple of its pixels): 32 px canvases at 2x
QUESTION = (
    "How does a convolutional network become invariant to translation, and what do max pooling, strided "
    "convolution, global pooling and padding each contribute? invlab answers by experiment: it trains small CNNs "
    "to tell synthetic letters apart, then moves the letters and measures how often (flip rate) and how much "
    "(probability change) each network changes its mind. Theory says a stride-1 convolution commutes with "
    "translation (it is equivariant), and a symmetric function over positions (global average or max pooling) "
    "then makes the output invariant; a stride-2 layer is equivariant only to shifts that are multiples of its "
    "stride, zero padding lets the border leak absolute position, and a flatten + dense head gives every position "
    "its own weights. This page shows how far each network here follows that.")
MEASURES = [
    ("accuracy", "the fraction of shifted images classified correctly (clean: unshifted)."),
    ("flip rate", ("the fraction of images whose prediction at a shift differs from the prediction at (0, 0); "
                   "consistency = 1 − flip rate. A network that answers one class always never flips: read it "
                   "beside accuracy.")),
    ("probability change (Δp)", "the total variation ½Σ|Δp| between the softmax at a shift and at (0, 0)."),
    ("step flip", "the fraction of predictions that change between neighbouring shifts on the grid."),
]
ACCURACY_COLUMNS = {"clean_accuracy", "mean_accuracy", "worst_accuracy"}
FACTORS = "/".join(FACTOR_COLUMNS)  # the merged factor column's name (as the terminal table calls it)
CSS = """
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d9dce1; --band: #f4f5f7; --accent: #1a5fb4; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 76rem; padding: 1rem 1.25rem 3rem; color: var(--ink); background: #fff;
       font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
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
th, td { padding: 0.3rem 0.45rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: var(--band); text-align: left; font-weight: 600; vertical-align: bottom; }
th.group { text-align: center; border-left: 1px solid var(--line); }
td.num, th.num { text-align: right; }
td.num, td.wrap, th.wrap { white-space: normal; } td.num span, td.wrap span { white-space: nowrap; }
th.wrap { min-width: 3.5rem; } td[data-col="run"] { min-width: 9rem; }
/* a wide table may reach past the text column to the window's right margin (body: max-width 76rem, centred) */
.bleed { width: max-content; max-width: min(100vw - 2.5rem, (100vw + 76rem) / 2 - 2.5rem); }
tbody th { vertical-align: middle; }
tr.chance td { background: #fff7e0; }
.sticky { position: sticky; left: 0; background: #fff; z-index: 1; border-right: 1px solid var(--line); }
th.sticky { background: var(--band); }
figure { margin: 1rem 0 1.6rem; }
figure img { display: block; max-width: 100%; height: auto; }
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
  .scroll { overflow: visible; border: none; }
  table { font-size: 7.5pt; } th, td { white-space: normal; padding: 0.15rem 0.3rem; }
  .sticky { position: static; }
  h2, h3, h4 { break-after: avoid; } figure, .letter, tr { break-inside: avoid; }
}
"""


def e(text) -> str:
    return html.escape(str(text), quote=True)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image(data: bytes, mime: str, alt: str, cls: str = "", size: tuple[int, int] | None = None) -> str:
    """An <img> whose picture is inside the page; width and height let the browser lay out before decoding."""
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    klass = f' class="{cls}"' if cls else ""
    return f'<img{klass} src="{data_uri(data, mime)}" alt="{e(alt)}"{dims}>'


def _pixel_size(data: bytes) -> tuple[int, int]:
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(data)) as im:
        return im.size


# --- tables -----------------------------------------------------------------------------------------------

def _merge_factors(heads, rows, numeric):
    """The three factor columns as one, "max / flatten / zeros", as the terminal table shows them: the model
    table then fits a desktop window."""
    if not all(f in heads for f in FACTOR_COLUMNS):
        return heads, rows, numeric
    idx = [heads.index(f) for f in FACTOR_COLUMNS]
    at = idx[0]

    def merged(seq, value):
        return seq[:at] + [value(seq)] + [x for j, x in enumerate(seq) if j >= at and j not in idx]

    return (merged(heads, lambda _: FACTORS), [merged(r, lambda r: " / ".join(r[i] for i in idx)) for r in rows],
            merged(numeric, lambda _: False))


def table_html(view: View, chance_rows: list[bool] | None = None) -> str:
    """A view as an HTML table: display.py's cell texts ("0.381 ± 0.089", "0.840 [0.322, 1]*", "model †"), each
    cell tagged with its column (data-col) so the page can be checked against report.py. Metric columns get a
    group header: accuracy (higher is better) apart from change under shift (lower is more invariant)."""
    heads, rows, numeric = _merge_factors(*text_rows(view)[:3])
    group = {h: ("accuracy: higher is better" if h in ACCURACY_COLUMNS else
                 "change under shift: lower is more invariant") for h in heads if h in view.values}
    grouped = any(h in ACCURACY_COLUMNS for h in group)  # the model table; layer and shift views stay flat
    sticky = heads.index("model") if "model" in heads else None

    def head(k: int, h: str, extra: str = "") -> str:
        cls = " ".join(c for c in ("num" if numeric[k] else "", "sticky" if k == sticky else "",
                                   "wrap" if h in group or h == FACTORS else "") if c)
        text = " / ".join(FACTOR_COLUMNS) if h == FACTORS else SHORT_HEADERS.get(h, h)  # spaces let it wrap
        return f'<th class="{cls}" data-col="{e(h)}"{extra}>{e(text)}</th>'

    out = ['<div class="scroll bleed"><table>', "<thead>"]
    if grouped:
        cells, k = [], 0
        while k < len(heads):
            h = heads[k]
            if h not in group:
                cells.append(head(k, h, ' rowspan="2"'))
                k += 1
                continue
            span = 1
            while k + span < len(heads) and group.get(heads[k + span]) == group[h]:
                span += 1
            cells.append(f'<th colspan="{span}" class="group">{e(group[h])}</th>')
            k += span
        out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("<tr>" + "".join(head(k, h, f' title="{e(h)}"') for k, h in enumerate(heads) if h in group)
                   + "</tr>")
    else:
        out.append("<tr>" + "".join(head(k, h) for k, h in enumerate(heads)) + "</tr>")
    out.append("</thead><tbody>")
    for i, row in enumerate(rows):
        cls = ' class="chance"' if chance_rows and chance_rows[i] else ""
        cells = []
        for k, (h, text, n) in enumerate(zip(heads, row, numeric)):
            klass = " ".join(c for c in ("num" if n else "", "sticky" if k == sticky else "",
                                         "wrap" if h in (FACTORS, "run") else "") if c)
            body = e(text).replace("/", "/<wbr>") if h == "run" else _cell(text, n or h == FACTORS)
            cells.append(f'<td class="{klass}" data-col="{e(h)}">{body}</td>')
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def text_html(text: str) -> str:
    """Escaped text, with display.py's `command` quotes set as code."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", e(text))


def _notes(views: list[View], rep: Report) -> str:
    """The footnotes under a group of tables: the cut-interval note if any cell of them was cut, the seed notes."""
    any_cut = any(text_rows(v)[3] for v in views)
    lines = [clip_note(views[0].bounds)] * any_cut + seed_notes(rep.flags, rep.dropped)
    return "".join(f'<p class="note">{text_html(line)}</p>' for line in lines)


def _cell(text: str, breakable: bool) -> str:
    """A number cell may break between the mean and its interval ("0.879" / "[0.297, 1]*"), the factors between
    their parts, never inside them: the model table then fits a desktop window without scrolling."""
    if not breakable or " " not in text:
        return e(text)
    parts = text.split(" / ") if " / " in text else text.split(" ", 1)
    return (" / " if " / " in text else " ").join(f"<span>{e(part)}</span>" for part in parts)


def _chance_rows(view: View) -> list[bool]:
    t = view.table
    return [bool(v > 0) for v in t["n_chance"]] if "n_chance" in t else [False] * len(t)


# --- figures ----------------------------------------------------------------------------------------------

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
    m = re.fullmatch(r"(.+)_vs_(dx|dy)", stem)
    if m:
        return f"{words.get(m[1], m[1])} against {m[2]} (the other shift 0), mean over seeds with its 95% band."
    m = re.fullmatch(r"(.+)_heatmap(_.*)?", stem)
    if m:
        run = f": {m[2][1:]}" if m[2] else ""  # one heatmap per run when several are compared
        return f"{words.get(m[1], m[1])} over every (dx, dy) of the grid, mean over seeds{run}."
    return stem


def figures_html(named: list[tuple[str, object]]) -> str:
    from .plots import png_bytes

    parts = []
    for name, fig in named:
        data = png_bytes(fig)
        parts.append(f"<figure>{image(data, 'image/png', _caption(name), size=_pixel_size(data))}"
                     f"<figcaption>{e(_caption(name))}</figcaption></figure>")
    return "\n".join(parts)


def study_html(rep: Report, folder: Path, metric: str) -> str:
    """A study folder (study.py): the model table's mean `metric` against each varied key, the figure that
    `invlab report STUDY --plot` writes (plot_study writes files: drawn into a temporary folder, then embedded)."""
    import tempfile

    from ..store.runs import read_study
    from ..run.study import plot_study

    parts = ["<h2>Across the study</h2>"]
    with tempfile.TemporaryDirectory(prefix="invlab-study-") as tmp:
        for key in read_study(folder)["vary"]:
            data = plot_study(rep, folder, key, f"mean_{metric}", Path(tmp)).read_bytes()
            words = f"mean {metric} against {key}, the study's varied key: one line per model, ± 95% CI over seeds."
            parts.append(f"<figure>{image(data, 'image/png', words, size=_pixel_size(data))}"
                         f"<figcaption>{e(words)}</figcaption></figure>")
    return "\n".join(parts)


# --- the gallery ------------------------------------------------------------------------------------------

def _p_cell(p: float, correct: bool) -> str:
    """p(true class), its background from red (0) to green (1); a wrong prediction is marked ✗ (the colour is
    not the only sign)."""
    hue = round(120 * max(0.0, min(1.0, float(p))))
    mark = "" if correct else " ✗"
    return (f'<td class="p{"" if correct else " wrong"}" style="background:hsl({hue},65%,86%)">'
            f"{p:.2f}{mark}</td>")


def gallery_html(result, n_images: int, flags: pd.DataFrame) -> str:
    """One result's gallery (gallery.py), or a one-line note saying why there is none. `flags`: seed_flags rows of
    every seed, those --drop-chance left out of the tables included (the gallery still shows its first seed)."""
    from .gallery import make_gallery, png, signed

    try:
        g = make_gallery(result, n_images)
    except InvlabError as exc:
        return f'<p class="note">No pictures for {e(result.label)}: {text_html(str(exc))}</p>'
    here = flags[(flags["run"] == result.label) & flags["at_chance"]]
    at_chance = set(zip(here["model"], here["seed"]))  # the networks shown that answer at chance
    out = [f"<h3>{e(g.label)}</h3>",
           (f'<p class="sub">{len(g.letters)} test images, the classes in turn; each model\'s network of seed '
            f"{g.seed}; shifted along {g.axis} ({g.mode}), the other shift 0. Under each picture: the model's "
            "probability of the true class; ✗ where it answers another class.</p>")]
    out += [f'<p class="note">{text_html(n)}</p>' for n in g.notes]
    for letter in g.letters:
        heads = "".join(f'<th class="num">{g.axis} = {signed(g.shifts[k])}</th>' for k in g.stills)
        h, w = letter.pixels.shape[1:3]
        zoom = max(1, round(THUMB_PX / max(h, w)))  # whole pixels: every input pixel the same size on screen
        pics = "".join(
            "<td>" + image(png(letter.pixels[k]), "image/png", f"{letter.label} at {g.axis} = {signed(g.shifts[k])}",
                           "px", (w * zoom, h * zoom)) + "</td>" for k in g.stills)
        rows = []
        for m in g.models:
            name = f"{m} †" if (m, g.seed) in at_chance else m
            rows.append(f'<tr><th class="sticky">{e(name)}</th>'
                        + "".join(_p_cell(letter.prob[m][k], letter.correct[m][k]) for k in g.stills) + "</tr>")
        anim = ""
        if letter.gif:
            size = _pixel_size(letter.gif)
            alt = (f"animation: test image {letter.index} sliding along {g.axis}, each model's probability of "
                   f"{letter.label}")
            anim = (f'<figure style="width:{size[0]}px;max-width:100%">'
                    f'{image(letter.gif, "image/gif", alt, "anim", size)}'
                    f"<figcaption>Test image {letter.index} ({e(letter.label)}) sliding along {g.axis} over every "
                    f"swept shift; below: p({e(letter.label)}) for each model, a hollow dot where it answers another "
                    "class, dotted line at chance. Orange lines: the canvas centre.</figcaption></figure>")
        out.append(f'<div class="letter"><h4>test image {letter.index}: {e(letter.label)}</h4><div class="pair">'
                   f'<div class="scroll"><table><thead><tr><th class="sticky">p({e(letter.label)})</th>{heads}</tr>'
                   f'</thead><tbody><tr><th class="sticky">input</th>{pics}</tr>{"".join(rows)}</tbody></table></div>'
                   f"{anim}</div></div>")
    return "\n".join(out)


# --- the page ---------------------------------------------------------------------------------------------

def html_report(paths: list[str | Path], *, metric: str = "flip_rate", drop_chance: bool = False,
                n_images: int = N_IMAGES) -> str:
    """The whole page for these run, sweep or measure folders, or one study folder (as `invlab report PATH…
    --html FILE` writes it).
    Parts that do not apply (no layer profile, no checkpoints to draw pictures from) are left out with a note."""
    from .plots import figures
    from ..store.runs import is_study

    if n_images < 1:
        raise InvlabError(f"the gallery needs at least one image; got {n_images}")
    rep = build_report(paths, by="model", drop_chance=drop_chance)
    results = rep.results
    labels = [r.label for r in results]
    several = len(results) > 1
    named = figures(results, metrics=tuple(dict.fromkeys([metric, "flip_rate", "prob_change"])))
    layer_fig = [(n, f) for n, f in named if n == "layers_vs_depth.png"]
    named = [(n, f) for n, f in named if n != "layers_vs_depth.png"]
    model_view = rep.views[0]
    body = [f"<h1>Translation invariance: {e(', '.join(labels))}</h1>",
            (f'<p class="sub">invlab report, {len(results)} folder{"s" if several else ""}; made '
             f"{datetime.now():%Y-%m-%d %H:%M} by invariance_lab {e(__version__)}.</p>"),
            "<h2>The question</h2>", f"<p>{e(QUESTION)}</p>",
            "<h2>How it was measured</h2>",
            "<ul>" + "".join(f"<li>{e(line)}</li>" for line in protocol_lines(results)) + "</ul>",
            "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in MEASURES) + "</dl>",
            f"<h2>Models{', compared across ' + str(len(results)) + ' folders' if several else ''}</h2>",
            (f'<p class="sub">{e(model_view.title)}. Accuracy beside the change under shift: a network can be '
             "consistent because it is right everywhere, or because it gives one answer to everything.</p>"),
            table_html(model_view, _chance_rows(model_view)), _notes([model_view], rep)]
    if len(paths) == 1 and is_study(paths[0]):
        body.append(study_html(rep, Path(paths[0]), metric))
    body += ["<h2>Plots</h2>", figures_html(named)]
    with_layers = [r for r in results if r.layers is not None]
    body.append("<h2>Layer by layer</h2>")
    if with_layers:
        layer_rep = build_report([r.path for r in with_layers], by="layer", drop_chance=drop_chance)
        for view in layer_rep.views:
            body += [f"<h3>{e(view.title)}</h3>", table_html(view, _chance_rows(view))]
        body += [_notes(layer_rep.views, layer_rep), figures_html(layer_fig)]
    else:
        body.append('<p class="note">No layer profile in these folders: make one with '
                    "<code>invlab sweep RUN --layers</code> and report that sweep folder.</p>")
    body += ["<h2>What the networks saw</h2>",
             *(gallery_html(r, n_images, pd.concat([rep.flags, rep.dropped])) for r in results)]
    body.append(f'<p class="foot">Made with <code>invlab report {e(" ".join(str(p) for p in paths))} --html FILE'
                "</code>. Every number is a mean over seeds, with its 95% t interval where there are several; the "
                "pictures are one network per model (the first seed).</p>")
    title = f"invlab report: {', '.join(labels)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body)
            + "\n</body>\n</html>\n")
