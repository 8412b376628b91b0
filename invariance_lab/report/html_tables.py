"""The report's tables as HTML: display.py's cell texts in a table that scrolls sideways with the model name
kept in view, the metric columns grouped (accuracy apart from change under shift), and the footnotes under them.

    table_html(rep.views[0], at_chance_rows(rep.views[0])) + notes_html([rep.views[0]], rep)
"""

from __future__ import annotations

from ..core.columns import FACTOR_COLUMNS, WORST_CASE_COLUMNS
from .display import SHORT_HEADERS, clip_note, seed_notes, text_rows
from .html_elements import e, text_html
from .tables import Report, View

ACCURACY_COLUMNS = {"clean_accuracy", "mean_accuracy", "worst_accuracy"}
# the model table's metric columns in three groups, by which way is better: accuracy, the change under shift, and
# the worst case per image (the fraction of images right, or unchanged, at every shift)
CHANGE_GROUP = "change under shift: lower is more invariant"
GROUPS = {**dict.fromkeys(ACCURACY_COLUMNS, "accuracy: higher is better"),
          **dict.fromkeys(WORST_CASE_COLUMNS, "per image, at every shift: higher is better")}
FACTORS = "/".join(FACTOR_COLUMNS)  # the merged factor column's name (as the terminal table calls it)


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
    cell tagged with its column (data-col) so the page can be checked against tables.py. Metric columns get a
    group header (GROUPS): accuracy and the worst case per image (higher is better) apart from change under shift
    (lower is more invariant)."""
    heads, rows, numeric = _merge_factors(*text_rows(view)[:3])
    group = {h: GROUPS.get(h, CHANGE_GROUP) for h in heads if h in view.values}
    grouped = any(h in ACCURACY_COLUMNS for h in group)  # the model table; layer and shift views stay flat
    sticky = heads.index("model") if "model" in heads else None

    def head(k: int, h: str, extra: str = "") -> str:
        # every head but the model's wraps at its spaces ("at chance"): a column is as wide as its numbers
        cls = " ".join(c for c in ("num" if numeric[k] else "", "sticky" if k == sticky else "wrap") if c)
        text = " / ".join(FACTOR_COLUMNS) if h == FACTORS else SHORT_HEADERS.get(h, h)  # spaces let it wrap
        return f'<th class="{cls}" data-col="{e(h)}"{extra}>{e(text)}</th>'

    out = ['<div class="bleed"><div class="scroll"><table>', "<thead>"]
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
            if k == sticky:  # a long model name breaks after an underscore, not in the middle of a word
                body = body.replace("_", "_<wbr>")
            cells.append(f'<td class="{klass}" data-col="{e(h)}">{body}</td>')
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div></div>")
    return "\n".join(out)


def notes_html(views: list[View], rep: Report) -> str:
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


def at_chance_rows(view: View) -> list[bool]:
    t = view.table
    return [bool(v > 0) for v in t["n_chance"]] if "n_chance" in t else [False] * len(t)
