"""The gallery on the HTML page: per test image, its pictures at a few shifts with each model's probability of the
true class under them, beside the animation of it sliding (gallery.py makes both).

    gallery_html(result, 4, pd.concat([rep.flags, rep.dropped]))   # str: an <h3> and a table per image
"""

from __future__ import annotations

import pandas as pd

from ..core.errors import InvlabError
from .gallery import GIF_DPI, GIF_FONT_PT, make_gallery, png, signed
from .html_elements import e, image, pixel_size, text_html

THUMB_PX = 60  # about how wide a still is shown (a whole multiple of its pixels): 32 px canvases at 2x


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
    label_px = GIF_FONT_PT * GIF_DPI / 72  # the animation's text in px: the browser probe checks it on screen
    span = f"every swept {g.axis}" if len(g.shifts) == g.n_swept else \
        f"{len(g.shifts)} of the {g.n_swept} swept {g.axis} values, evenly spaced"
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
            size = pixel_size(letter.gif)
            moving = ("with its moved part sliding along" if g.mode == "parts" else "sliding along") \
                + f" {g.axis}"
            alt = f"animation: test image {letter.index} {moving}, each model's probability of {letter.label}"
            anim = (f'<figure style="width:{size[0]}px;max-width:100%">'
                    f'{image(letter.gif, "image/gif", alt, "anim", size, {"data-label-px": f"{label_px:.2f}"})}'
                    f"<figcaption>Test image {letter.index} ({e(letter.label)}) {moving} over {span}; below: "
                    f"p({e(letter.label)}) for each model, a hollow dot where it answers another class, dotted line at "
                    "chance. Orange lines: the canvas centre.</figcaption></figure>")
        out.append(f'<div class="letter"><h4>test image {letter.index}: {e(letter.label)}</h4><div class="pair">'
                   f'<div class="scroll"><table><thead><tr><th class="sticky">p({e(letter.label)})</th>{heads}</tr>'
                   f'</thead><tbody><tr><th class="sticky">input</th>{pics}</tr>{"".join(rows)}</tbody></table></div>'
                   f"{anim}</div></div>")
    return "\n".join(out)
