"""Open an invlab HTML report in a real headless browser (Chromium) and check that it rendered.

    python bench/html_screenshot.py PAGE.html [--out DIR] [--widths 390,1280] [--browser PATH]

At each width (390 px: a phone; 1280: a desktop) the page is shown in an iframe of exactly that width (headless
Chromium will not make its window narrower than 500 px; inside the iframe the page's viewport, and so its
media queries, are the width asked for). The page goes in as srcdoc, unchanged: it runs no script of its own.
A small script in the wrapper, once everything has loaded, writes into the DOM: how many <img> the page has,
which did not decode (naturalWidth 0) or are not displayed (zero size), whether the page is wider than its
viewport (on a phone only the tables may scroll sideways, inside their boxes), any src/href that is not a data:
URI or an in-page anchor, the page's height, and its order and sizes (layout_problems): the answer in words
(id=answer) above the model table, the table starting within the first screen (900 px), fitting or scrolling in
its own box with text of at least 12 px, and each plot's smallest text on screen (its rendered / natural width
times the px size html.py writes in data-label-px) at least 11 px. `--dump-dom` prints that DOM and this script
reads the result back: one browser launch per width for all of it. Then a full-page screenshot
(DIR/<page>-<width>px.png, for a person to look at) is checked for not being blank, and the page is printed to PDF
(DIR/<page>.pdf) to check that it prints.

Exit 0 when every check passes, 1 otherwise (each problem printed), 2 when no browser is found.
tests/report/test_html.py runs check_page where Chromium is installed (`apt-get install chromium`; .ci/run
installs it), skips otherwise, and fails without it under CI=true.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
WIDTHS = (390, 1280)
SCREEN_HEIGHT = 900  # px: the first screen, which the model table must start within (the probe's iframe height)
MIN_TABLE_FONT_PX = 12  # the model table's numbers, px, at every width
MIN_LABEL_PX = 11  # a plot's smallest text on screen, px (report/html.py's MIN_LABEL_PX)
MAX_SHOT_HEIGHT = 30_000  # px: a full-page screenshot taller than this is cut (Chromium's own limits are near)
PROBE = """
<script>
window.addEventListener("load", function () {
  var doc = document.getElementById("page").contentDocument;
  var imgs = Array.prototype.slice.call(doc.images);
  var links = Array.prototype.slice.call(doc.querySelectorAll("[src],[href]"));
  var out = {
    images: imgs.length,
    undecoded: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return i.alt; }),
    hidden: imgs.filter(function (i) { var r = i.getBoundingClientRect(); return r.width < 1 || r.height < 1; })
                .map(function (i) { return i.alt; }),
    outside: links.map(function (e) { return e.getAttribute("src") || e.getAttribute("href"); })
                  .filter(function (u) { return !/^(data:|#)/.test(u); }),
    pageWidth: doc.documentElement.scrollWidth,
    windowWidth: doc.defaultView.innerWidth,
    height: doc.documentElement.scrollHeight
  };
  // the answer in words, then the model table (the page's first), within the first screen
  var answer = doc.getElementById("answer"), table = doc.querySelector("table");
  out.answerBottom = answer ? answer.getBoundingClientRect().bottom : null;
  out.tableTop = table ? table.getBoundingClientRect().top : null;
  if (table) {
    // the table fits its window or scrolls inside its own box; its numbers keep a readable size
    var box = table.parentElement, view = doc.defaultView;
    out.tableFits = table.getBoundingClientRect().width <= out.windowWidth;
    out.tableScrollBox = /^(auto|scroll)$/.test(view.getComputedStyle(box).overflowX)
                         && box.getBoundingClientRect().right <= out.windowWidth + 0.5;
    out.tableFontPx = Math.min.apply(null, Array.prototype.map.call(table.querySelectorAll("td, th"),
      function (c) { return parseFloat(view.getComputedStyle(c).fontSize); }));
  }
  // plots (html.py marks each with the px size of its smallest text in the PNG): that text's size on screen
  out.plotLabels = imgs.filter(function (i) { return i.hasAttribute("data-label-px"); }).map(function (i) {
    var shown = i.getBoundingClientRect().width / (i.naturalWidth || 1);
    return {alt: i.alt, px: shown * parseFloat(i.getAttribute("data-label-px"))};
  });
  // what sticks out of the window outside the boxes that scroll sideways (elements, or a word too long for its
  // line): the page's sideways scroll comes from it
  var view = doc.defaultView, walker = doc.createTreeWalker(doc.body, NodeFilter.SHOW_TEXT);
  out.wide = [];
  while (walker.nextNode() && out.wide.length < 3) {
    var node = walker.currentNode, range = doc.createRange(), inBox = false;
    for (var p = node.parentElement; p && p !== doc.body; p = p.parentElement) {
      if (/^(auto|scroll|hidden|clip)$/.test(view.getComputedStyle(p).overflowX)) { inBox = true; break; }
    }
    range.selectNodeContents(node);
    if (!inBox && range.getBoundingClientRect().right > out.windowWidth + 0.5) {
      out.wide.push(node.parentElement.tagName.toLowerCase() + ": " + node.textContent.trim().slice(0, 60));
    }
  }
  var pre = document.createElement("pre");
  pre.id = "invlab-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(browser: str, profile: Path, width: int, height: int, *args: str, timeout: float = 120) -> str:
    """Run headless Chromium once; its stdout. --no-sandbox: containers often run as root, where the sandbox
    refuses to start; the pages opened here are our own files. A fresh profile keeps runs independent."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
           "--no-first-run", "--mute-audio", f"--user-data-dir={profile}", "--force-device-scale-factor=1",
           f"--window-size={width},{height}", "--virtual-time-budget=15000", *args]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{browser} exited with {done.returncode}: {done.stderr[-800:]}")
    return done.stdout


def wrapper(page: Path, work: Path, width: int, height: int, script: str = "") -> Path:
    """A file showing `page` (as srcdoc) in an iframe of width x height px, top left, with `script` after it."""
    text = page.read_text(encoding="utf-8")
    out = work / f"wrapper-{width}x{height}.html"
    out.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
                   f'<iframe id="page" style="border:0;display:block;width:{width}px;height:{height}px" '
                   f'srcdoc="{html.escape(text, quote=True)}"></iframe>{script}</body></html>', encoding="utf-8")
    return out


def probe(browser: str, page: Path, width: int, work: Path) -> dict:
    """The probe script's findings for `page` at `width` px."""
    shown = wrapper(page, work, width, 900, PROBE)
    dom = _chromium(browser, work / "profile", max(width, 500), 900, "--dump-dom", shown.as_uri())
    m = re.search(r'<pre id="invlab-probe">(.*?)</pre>', dom, re.DOTALL)
    if not m:
        raise RuntimeError(f"the probe wrote nothing at {width} px: the page did not finish loading")
    return json.loads(html.unescape(m.group(1)))


def layout_problems(found: dict, where: str) -> list[str]:
    """What the probe says against the page's order and sizes: the answer in words above the model table, the
    table starting within the first screen, fitting its window or scrolling inside its own box with numbers of at
    least MIN_TABLE_FONT_PX, and every plot's smallest text at least MIN_LABEL_PX on screen."""
    out = []
    if found.get("tableTop") is None:
        return [f"{where}: the page has no table"]
    if found.get("answerBottom") is None:
        out.append(f"{where}: no answer in words (id=answer) on the page")
    elif found["answerBottom"] > found["tableTop"]:
        out.append(f"{where}: the answer in words is not above the model table")
    if found["tableTop"] > SCREEN_HEIGHT:
        out.append(f"{where}: the model table starts {found['tableTop']:.0f} px down, below the first screen "
                   f"({SCREEN_HEIGHT} px)")
    if not (found["tableFits"] or found["tableScrollBox"]):
        out.append(f"{where}: the model table is wider than the window and not inside a box that scrolls sideways")
    if found["tableFontPx"] < MIN_TABLE_FONT_PX:
        out.append(f"{where}: the model table's text is {found['tableFontPx']:.1f} px (< {MIN_TABLE_FONT_PX})")
    small = [f"{p['alt'][:40]}: {p['px']:.1f} px" for p in found["plotLabels"] if p["px"] < MIN_LABEL_PX - 0.05]
    if small:
        out.append(f"{where}: plot labels smaller than {MIN_LABEL_PX} px on screen: {small[:5]}")
    return out


def crop(path: Path, width: int) -> None:
    """Cut the screenshot to the iframe's width (the window is at least 500 px wide)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.width > width:
            im = im.crop((0, 0, width, im.height))
            im.load()
        else:
            return
    im.save(path)


def screenshot_is_blank(path: Path) -> bool:
    """True when the screenshot is (nearly) one colour: nothing was drawn."""
    from PIL import Image

    with Image.open(path) as im:
        grey = im.convert("L")
        hist = grey.histogram()
    return max(hist) > 0.995 * sum(hist)


def check_page(page: Path, out_dir: Path, widths=WIDTHS, browser: str | None = None) -> tuple[list[str], list[Path]]:
    """(problems, files written): an empty list of problems means the page rendered at every width."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found (tried {', '.join(BROWSERS)})")
    page, out_dir = Path(page).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems, files = [], []
    with tempfile.TemporaryDirectory(prefix="invlab-html-") as tmp:
        work = Path(tmp)
        for width in widths:
            found = probe(browser, page, width, work)
            where = f"at {width} px"
            if found["images"] == 0:
                problems.append(f"{where}: the page holds no image")
            if found["undecoded"]:
                problems.append(f"{where}: {len(found['undecoded'])} image(s) did not decode: {found['undecoded'][:5]}")
            if found["hidden"]:
                problems.append(f"{where}: {len(found['hidden'])} image(s) have no size on screen: "
                                f"{found['hidden'][:5]}")
            if found["outside"]:
                problems.append(f"{where}: links or sources outside the page: {found['outside'][:5]}")
            problems += layout_problems(found, where)
            if found["pageWidth"] > found["windowWidth"]:
                problems.append(f"{where}: the page is {found['pageWidth']} px wide, wider than the window "
                                f"({found['windowWidth']} px): it scrolls sideways as a whole; sticking out: "
                                f"{found.get('wide')}")
            shot = out_dir / f"{page.stem}-{width}px.png"
            height = min(found["height"], MAX_SHOT_HEIGHT)
            _chromium(browser, work / "profile", max(width, 500), height, f"--screenshot={shot}",
                      wrapper(page, work, width, height).as_uri())
            if shot.is_file():
                crop(shot, width)
            if not shot.is_file() or screenshot_is_blank(shot):
                problems.append(f"{where}: the screenshot {shot} is missing or blank")
            files.append(shot)
            least = min((p["px"] for p in found["plotLabels"]), default=float("nan"))
            print(f"{width} px: {found['images']} images, page {found['pageWidth']} x {found['height']} px, table "
                  f"from {found['tableTop']:.0f} px, its text {found['tableFontPx']:.1f} px, smallest plot label "
                  f"{least:.1f} px, screenshot {shot}", file=sys.stderr)
        pdf = out_dir / f"{page.stem}.pdf"
        _chromium(browser, work / "profile", 1280, 900, f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
                  page.as_uri())
        head = pdf.read_bytes()[:5] if pdf.is_file() else b""
        if head != b"%PDF-":
            problems.append(f"printing to PDF gave no PDF ({pdf})")
        else:
            pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
            print(f"print: {pdf}, {pages} pages", file=sys.stderr)
            files.append(pdf)
    return problems, files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page", type=Path)
    ap.add_argument("--out", type=Path, default=Path("screenshots"))
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="comma-separated window widths, px")
    ap.add_argument("--browser", default=None, help="path to Chromium or Chrome (default: searched on PATH)")
    args = ap.parse_args()
    if not args.page.is_file():
        print(f"error: {args.page} is not a file", file=sys.stderr)
        return 2
    browser = args.browser or find_browser()
    if browser is None:
        print(f"error: no Chromium found (tried {', '.join(BROWSERS)}); apt-get install chromium", file=sys.stderr)
        return 2
    problems, _ = check_page(args.page, args.out, [int(w) for w in args.widths.split(",")], browser)
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    print("ok: every image decoded and shown, no outside links, no sideways page" if not problems
          else f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
