"""`invlab report --html`: one self-contained page (no outside links, every picture a data: URI that decodes),
the model table's numbers are report/tables.py's, the gallery's probabilities are the checkpoints' own, parts that do
not apply are left out with a note, and bad paths are refused by option name. Where Chromium is installed, the
page is also opened in it at a phone's and a desktop's width (bench/html_screenshot.py)."""

import base64
import importlib.util
import io
import json
import os
import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from conftest import ROOT, write_fake_result
from PIL import Image
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.report.display import cell
from invariance_lab.report.html import html_report
from invariance_lab.report.tables import MODEL_METRICS, RATE_RANGE, load_result, model_table

runner = CliRunner()
LONG_NAME = "quick_letters_with_a_factory_model_beside_the_presets"  # wider than a phone at the title's size


class Page(HTMLParser):
    """The parts of a page the tests read: every <img> (its attributes), and every table as rows of cells
    (tag, data-col or None, text)."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.tables, self._cell = [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = [tag, attrs.get("data-col"), ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data

    def body_rows(self, table: int) -> list[dict]:
        """The rows of a table that hold data cells, as {data-col: text}."""
        return [{col: text for tag, col, text in row if tag == "td"} for row in self.tables[table]
                if any(tag == "td" for tag, _, _ in row)]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(tuple(self._cell))
            self._cell = None


def decode(src: str) -> Image.Image:
    m = re.fullmatch(r"data:image/(png|gif);base64,([A-Za-z0-9+/=]+)", src)
    assert m, src[:80]
    im = Image.open(io.BytesIO(base64.b64decode(m[2], validate=True)))
    assert im.format.lower() == m[1]
    return im


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An untrained run of configs/quick.yaml (12 test images, seed 0) with a factory model beside the presets,
    named with one long word: the page's title must wrap it on a phone, not scroll sideways."""
    results = tmp_path_factory.mktemp("results")
    res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results), "--quiet",
                              "--set", f"name={LONG_NAME}",
                              "--threads", "1", "--set", "train.epochs=0", "--set", "seeds=[0]",
                              "--set", "data.test_images=12", "--set",
                              'models.mine={factory: "custom_models:circular_gap", kwargs: {channels: 4}}'])
    assert res.exit_code == 0, res.output
    (folder,) = (results / LONG_NAME).iterdir()
    return folder


@pytest.fixture(scope="module")
def page(run_dir, tmp_path_factory):
    """The page as `invlab report RUN --html FILE` writes it, and the file."""
    out = tmp_path_factory.mktemp("html") / "sub" / "report.html"
    res = runner.invoke(app, ["report", str(run_dir), "--html", str(out)])
    assert res.exit_code == 0, res.output
    assert f"html: {out}" in res.output
    return out.read_text(encoding="utf-8"), out


def test_one_file_nothing_outside(page):
    text, out = page
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # written whole: no temporary file left
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""", text)
    assert refs and all(r.startswith(("data:", "#")) for r in refs)
    assert not re.search(r"<(script|link|iframe|object|embed)\b|@import|url\(", text, re.IGNORECASE)
    assert re.search(r"@media print", text) and 'name="viewport"' in text


def test_every_image_decodes_and_gifs_move(page, run_dir):
    images = Page(page[0]).images
    decoded = [decode(img["src"]) for img in images]
    for im in decoded:
        im.verify()  # a truncated or corrupt file raises here
    gifs = [decode(img["src"]) for img in images if img["src"].startswith("data:image/gif")]
    assert len(gifs) == 4  # one animation per gallery image
    assert all(g.n_frames == 5 for g in gifs)  # every swept dx of quick.yaml: -2 .. 2
    pngs = [img for img in images if img["src"].startswith("data:image/png")]
    assert sum("px" == img.get("class") for img in pngs) == 4 * 5  # the stills: 4 images x 5 shifts
    assert any("consistency" in img["alt"].lower() for img in pngs)  # the accuracy-consistency plot is on it


def test_the_gallery_shifts_a_band_limited_sweep_as_it_was_made_and_names_an_edited_one():
    """A run's `--mode circular --subpixel fft` sweep ended `report --html` in a pydantic traceback: the gallery
    rebuilt its sweep without subpixel, and fractional rolls need it."""
    from invariance_lab.core.errors import RunFolderError
    from invariance_lab.report.gallery import _sweep_of

    fft = dict(mode="circular", grid="product", dx=[-1.0, 1.0, 0.25], dy=[0.0, 0.0, 1.0], subpixel="fft")
    sweep, kind = _sweep_of(fft, "quick/r/s")
    assert (sweep.subpixel, sweep.dx, kind) == ("fft", [-1.0, 1.0, 0.25], "translation")
    with pytest.raises(RunFolderError, match=r"quick/r/s: its protocol is not a sweep invlab makes .* edited"):
        _sweep_of({**fft, "subpixel": None}, "quick/r/s")


@pytest.mark.parametrize("mode, words", [("parts", "Test image 0 (A) with its moved part sliding along dx"),
                                         ("canvas", "Test image 0 (A) sliding along dx")])
def test_a_part_displacements_animation_says_only_the_part_moves(monkeypatch, mode, words):
    """A --kind parts sweep's animations said the test image slid along dx, though one part of it moves."""
    import numpy as np

    from invariance_lab.report import html_gallery
    from invariance_lab.report.gallery import Gallery, Letter

    gif = io.BytesIO()
    Image.new("L", (4, 4)).save(gif, format="GIF")
    letter = Letter(0, "A", np.zeros((2, 4, 4)), {"m": np.array([0.9, 0.8])}, {"m": np.array([True, True])},
                    gif.getvalue())
    gallery = Gallery("quick/r/s", "dx", mode, [0.0, 1.0], [0, 1], 0, ["m"], ["A", "B"], 2, [letter])
    monkeypatch.setattr(html_gallery, "make_gallery", lambda result, n: gallery)
    flags = pd.DataFrame({"run": [], "model": [], "seed": [], "at_chance": []})
    assert words + " over every" in html_gallery.gallery_html(SimpleNamespace(label="quick/r/s"), 1, flags)


def test_a_2d_grid_without_the_other_shift_at_0_has_no_pictures_and_a_subsampled_line_says_so(run_dir, monkeypatch):
    """The gallery drew dy = 0 for a grid of dy 1..2 (shifts never swept, captioned "every swept shift"); it now
    refuses such a grid as the 1-D tables do, and an animation of MAX_FRAMES of more values says it is a sample."""
    from invariance_lab.core.errors import InvlabError
    from invariance_lab.report import html_gallery
    from invariance_lab.report.gallery import Gallery, make_gallery

    res = runner.invoke(app, ["sweep", str(run_dir), "--mode", "circular", "--dx", "-2:2", "--dy", "1:2", "--models",
                              "conv_gap", "--quiet"])
    assert res.exit_code == 0, res.output
    (sweep,) = (run_dir / "sweeps").glob("*")
    with pytest.raises(InvlabError, match="has no shifts with dy = 0, so there are no pictures along dx"):
        make_gallery(load_result(sweep), 1, animate=False)
    many = Gallery("quick/r/s", "dx", "canvas", [0.0, 1.0], [0, 1], 0, [], ["A", "B"], 81, [])
    monkeypatch.setattr(html_gallery, "make_gallery", lambda result, n: many)
    many.letters.append(SimpleNamespace(index=0, label="A", pixels=torch.zeros(2, 1, 4, 4).numpy(), prob={},
                                        correct={}, gif=_gif()))
    flags = pd.DataFrame({"run": [], "model": [], "seed": [], "at_chance": []})
    assert "over 2 of the 81 swept dx values, evenly spaced;" in html_gallery.gallery_html(
        SimpleNamespace(label="quick/r/s"), 1, flags)


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("L", (4, 4)).save(out, format="GIF")
    return out.getvalue()


def test_factory_model_left_out_of_pictures_not_of_tables(page):
    text = page[0]
    assert "mine is left out of the gallery" in text and "custom_models:circular_gap" in text
    models = [r["model"].split()[0] for r in Page(text).body_rows(0)]
    assert models == ["conv_only", "conv_gap", "mine"]


def test_gallery_probabilities_are_the_checkpoints(page, run_dir):
    """p(true class) at dx = 0 under each still equals the checkpoint's softmax on the run's own test image."""
    from invariance_lab.store.checkpoints import load_checkpoint
    from invariance_lab.config.load import load_config
    from invariance_lab.data.datasets import evaluation_set, glyph_table
    from invariance_lab.report.gallery import make_gallery
    from invariance_lab.store.layout import checkpoint_path

    g = make_gallery(load_result(run_dir), 4, animate=False)
    cfg = load_config(run_dir / "config.yaml")
    images, labels = evaluation_set(cfg.data, glyph_table(cfg.data))
    zero = g.shifts.index(0.0)
    assert [lt.label for lt in g.letters] == ["A", "B", "A", "B"]  # the classes in turn
    for m in ("conv_only", "conv_gap"):
        net, _ = load_checkpoint(checkpoint_path(run_dir, m, 0), torch.device("cpu"))
        with torch.no_grad():
            p = torch.softmax(net(images), dim=1)
        for letter in g.letters:
            want = float(p[letter.index, labels[letter.index]])
            assert letter.prob[m][zero] == pytest.approx(want, abs=1e-5)
    # and the page shows them under the pictures, to two decimals: a gallery table's rows after "input"
    tables = [t for t in Page(page[0]).tables if t and t[0][0][2].startswith("p(")]
    assert len(tables) == len(g.letters)
    for table, letter in zip(tables, g.letters):
        shown = {row[0][2]: [text for tag, _, text in row[1:]] for row in table[2:]}
        for m in ("conv_only", "conv_gap"):
            name = next(k for k in shown if k.split()[0] == m)
            want = [f"{letter.prob[m][k]:.2f}{'' if letter.correct[m][k] else ' ✗'}" for k in g.stills]
            assert shown[name] == want


def test_model_table_groups_its_columns_by_which_way_is_better(page):
    """Each metric column sits under the group header that says whether higher or lower is better: the worst case
    per image (robust accuracy, consistent fraction) is higher-is-better, not a change under shift."""
    thead = page[0][page[0].index("<table"):page[0].index("</thead>")]
    first, second = thead.split("</tr>")[:2]
    spans = [(int(n), words) for n, words in re.findall(r'<th colspan="(\d+)" class="group">([^<]*)</th>', first)]
    columns = re.findall(r'data-col="([^"]+)"', second)
    under = [words for n, words in spans for _ in range(n)]
    assert len(under) == len(columns)
    group = dict(zip(columns, under))
    assert {group[c] for c in ("clean_accuracy", "mean_accuracy", "worst_accuracy")} == {"accuracy: higher is better"}
    assert {group[c] for c in ("robust_accuracy", "consistent_fraction")} == {
        "per image, at every shift: higher is better"}
    assert {group[c] for c in ("mean_flip_rate", "worst_prob_change", "mean_neighbor_flip_rate")} == {
        "change under shift: lower is more invariant"}
    assert ">robust acc</th>" in second and ">consistent</th>" in second
    defined = re.findall(r"<dt>([^<]*)</dt>", page[0])  # and the page says what they are
    assert defined == ["accuracy", "flip rate", "probability change (Δp)", "step flip", "at chance",
                       "flip mean, correct", "robust acc", "consistent"]


@pytest.fixture
def axes_page(fake_line_page):
    """A fake run over dx -2..2 at dy 0 (two line plots and the accuracy-consistency plot: fast) and its page, which
    tests only read (tests/conftest.py: made once per process)."""
    return fake_line_page


def test_columns_a_folder_lacks_are_not_defined(axes_page):
    text = axes_page[1]  # a fake folder holds none of LATER_MEASURES' columns
    assert re.findall(r"<dt>([^<]*)</dt>", text) == ["accuracy", "flip rate", "probability change (Δp)",
                                                     "step flip", "at chance"]


@pytest.fixture(scope="module")
def chance_sweep_page(tmp_path_factory):
    """A fake sweep along dx (no heatmaps: fast) with a layer profile, plain's seed 2 at chance, and its page, which
    tests only read: the model table's numbers and the layer tables are both on it."""
    folder = write_fake_result(tmp_path_factory.mktemp("chance") / "d" / "r" / "sweeps" / "s", kind="sweep",
                               layers=True, chance=[("plain", 2)], dy=(0, 0, 1))
    return folder, html_report([folder])


def test_model_table_numbers_are_reports(chance_sweep_page):
    folder, text = chance_sweep_page
    rows = Page(text).body_rows(0)
    table = model_table([load_result(folder)])
    assert [r["model"] for r in rows] == ["plain †", "blur"]
    for row, (_, want) in zip(rows, table.iterrows()):
        assert row["downsample/head/padding"] == f"{want.downsample} / {want['head']} / {want.padding}"
        assert int(row["n_seeds"]) == want.n_seeds and int(row["n_chance"]) == want.n_chance
        for m in MODEL_METRICS:
            expected, _ = cell(want[m], want[f"{m}_ci"], want[f"{m}_lo"], want[f"{m}_hi"], RATE_RANGE)
            assert row[m] == expected, m
    assert "[0, " in text and "* the 95% interval" in text  # some interval was cut, and the page says so
    assert 'class="chance"' in text and "at chance" in text


def test_page_leads_with_the_answer_then_table_then_plots(axes_page):
    """The sentence is answer.py's on the model table (so computed, not written in), and comes first."""
    from invariance_lab.report.answer import answer
    from invariance_lab.report.html_elements import text_html

    folder, text = axes_page
    shown = re.search(r'<p class="answer" id="answer">(.*?)</p>', text)[1]
    assert shown == text_html(answer(model_table([load_result(folder)]).drop(columns="run")))
    assert shown.startswith("Most invariant: blur, ")  # the fake's smoother model flips less (conftest)
    order = [text.index(k) for k in ('id="answer"', "<table", "<h2>Plots</h2>", "<h2>The question</h2>",
                                     "<h2>How it was measured</h2>")]
    assert order == sorted(order)


def test_the_question_names_what_the_runs_trained_on():
    """A run on an image folder (or the boxes) was not trained on letters: the page said it was."""
    from types import SimpleNamespace

    from invariance_lab.report.html import _question

    letters = SimpleNamespace(meta={"kind": "run", "protocol": {"dx": [-2, 2, 1]}})
    folder = SimpleNamespace(meta={"kind": "run", "protocol": {"images": "the test split of data/cats"}})
    assert "to tell synthetic letters apart, then moves the letters and" in _question([letters])
    for results in ([folder], [letters, folder]):
        text = _question(results)
        assert "letters" not in text and "then moves the images and" in text


def test_measure_page_describes_the_images_not_letters(tmp_path, fake_result):
    import json

    folder = fake_result(tmp_path / "measure" / "m-1", kind="measure", name="m", run_id="m-1", models=("mynet",),
                         seeds=(0,), dx=(-4, 4, 1), dy=(0, 0, 1))
    meta = json.loads((folder / "meta.json").read_text())
    meta["protocol"].update(images="/data/cats", test_images=40, dx=[-4.0, 4.0, 1.0], dy=[0.0, 0.0, 1.0], fill="zeros",
                            interpolation="bilinear")
    (folder / "meta.json").write_text(json.dumps(meta))
    text = html_report([folder])
    shown = re.search(r'<p class="answer" id="answer">(.*?)</p>', text)[1]
    assert shown.startswith("mynet: ") and "when the 40 images of /data/cats are shifted by dx -4..4" in shown
    assert "letter" not in shown and "<h2>What was measured</h2>" in text
    assert "synthetic letters" not in text and "<h2>The question</h2>" not in text


def test_a_rotate_measure_page_is_titled_and_worded_for_rotation(tmp_path):
    from invariance_lab.data.write import write_folder

    pixels = (torch.rand(6, 1, 12, 12, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    write_folder(pixels, tmp_path / "imgs", torch.tensor([0, 1] * 3), ["a", "b"])
    res = runner.invoke(app, ["measure", "--images", str(tmp_path / "imgs"), "--model", "custom_models:circular_gap",
                              "--angles", "-30:30:30", "--results-dir", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 0, res.output
    text = html_report(list((tmp_path / "r" / "measure").iterdir()))
    assert re.search(r"<h1>Rotation invariance: measure/circular_gap-", text)
    assert "Translation invariance" not in text and "are shifted" not in text
    # the definitions measure from angle 0, not from (0, 0)
    assert "the prediction at angle 0;" in text and "(0, 0)" not in text and "neighbouring angles" in text
    # each plot's caption in words (they had been the bare file names, flip_rate_vs_angle)
    assert "flip rate against the angle turned (degrees), mean over seeds" in text and "flip_rate_vs_angle" not in text


def test_plots_are_never_shown_with_text_below_11_px(page):
    """Each plot's smallest text (data-label-px, in its picture's px) times the smallest scale the page allows it
    (min-width / width) is at least 11 px: on a phone the plot's box scrolls instead (checked in Chromium too)."""
    plots = [img for img in Page(page[0]).images if img.get("class") != "px"]  # all but the gallery's stills
    assert len(plots) >= 5 and all("data-label-px" in img for img in plots)
    for img in plots:
        least = re.fullmatch(r"min-width:(\d+)px", img["style"])[1] if "style" in img else img["width"]
        assert int(least) / int(img["width"]) * float(img["data-label-px"]) >= 11 - 0.05, img["alt"]


def test_parts_that_do_not_apply_are_notes(tmp_path, fake_result):
    run = fake_result(tmp_path / "a" / "r1", run_id="r1", dy=(0, 0, 1))  # no config.yaml, no checkpoints
    measure = fake_result(tmp_path / "measure" / "m-1", kind="measure", name="m", run_id="m-1", dy=(0, 0, 1))
    text = html_report([run, measure])
    assert "No pictures for demo/r1: " in text and "holds no config.yaml" in text
    assert "No pictures for m/m-1: " in text and "<code>invlab measure</code> folder" in text
    assert "No layer profile in these folders" in text
    assert "compared across 2 folders" in text
    assert all(img["src"].startswith("data:image/png") for img in Page(text).images)  # no animation


def test_layer_sweep_gets_its_tables_and_figure(chance_sweep_page):
    text = chance_sweep_page[1]
    cols = {col for t in Page(text).tables for r in t for _, col, _ in r}
    assert {"block1.conv", "block1.down", "head"} <= cols
    assert "No layer profile" not in text
    assert any("each layer" in img["alt"] for img in Page(text).images)


def test_html_path_refused_by_option_name(run_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for bad in (blocker / "report.html", tmp_path):  # under a file; a folder
        res = runner.invoke(app, ["report", str(run_dir), "--html", str(bad)])
        assert res.exit_code == 2 and "--html" in res.output and "Traceback" not in res.output, res.output


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("html_screenshot", ROOT / "bench" / "html_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _browser():
    """bench/html_screenshot.py and Chromium's path; the test is skipped without a browser, except under CI=true."""
    shots = _screenshot_module()
    if shots.find_browser() is None:
        # CI (.ci/run) installs Chromium: there a missing browser is a failure, not a check quietly left out
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true but no Chromium here (.ci/run installs it: apt-get install chromium)")
        pytest.skip("no Chromium here (apt-get install chromium): the browser check is skipped")
    return shots, shots.find_browser()


def test_page_renders_in_chromium(page, tmp_path):
    shots, _ = _browser()
    # the phone width only (each width is two browser launches): a page that fits 390 px fits wider windows, and
    # `python bench/html_screenshot.py PAGE` checks 390 and 1280 px by hand
    problems, files = shots.check_page(page[1], tmp_path / "shots", widths=(390,))
    assert problems == []
    assert sorted(f.name for f in files) == ["report-390px.png", "report.pdf"]


@pytest.mark.parametrize("spec, want", [
    ((-8, 8, 1), [-8, -4, -2, -1, 0, 1, 2, 4, 8]),
    ((-2, 2, 1), [-2, -1, 0, 1, 2]),
    ((-2, 2, 0.25), [-2, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 2]),
    ((0, 8, 1), [0, 1, 2, 4, 8]),
    ((0, 0, 1), [0]),
])
def test_stills_are_zero_the_ends_and_halvings(spec, want):
    from invariance_lab.report.gallery import pick_stills
    from invariance_lab.data.shifts import axis_values

    shifts = axis_values(list(spec))
    assert [shifts[i] for i in pick_stills(shifts)] == want


def test_study_page_compares_across_the_varied_key(tmp_path):
    # shifts along x only: the runs' plots along dy would be two more line plots to draw, and this page is about
    # the study's plot and table
    res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--vary", "data.train_shift=0,2",
                              "--results-dir", str(tmp_path), "--quiet", "--threads", "1", "--set", "train.epochs=0",
                              "--set", "seeds=[0]", "--set", "data.test_images=12", "--set", "sweep.dy=[0,0]"])
    assert res.exit_code == 0, res.output
    (study,) = (tmp_path / "quick").glob("study-*")
    text = html_report([study], n_images=1)
    page = Page(text)
    assert f"<h1>Translation invariance: study quick/{study.name}</h1>" in text  # not the runs' ids
    assert "conv_only (data.train_shift=" in text.split('id="answer">')[1].split("</p>")[0]  # which run is which
    assert [(r["data.train_shift"], r["model"].split()[0]) for r in page.body_rows(0)] == [
        ("0", "conv_only"), ("0", "conv_gap"), ("2", "conv_only"), ("2", "conv_gap")]
    (study_plot,) = [img for img in page.images if "against data.train_shift" in img["alt"]]
    decode(study_plot["src"]).verify()
    assert sum(img["src"].startswith("data:image/gif") for img in page.images) == 2  # a gallery per run


def test_measure_folders_of_different_images_keep_the_no_labels_caveat():
    """Two measure folders over different unlabelled images share no protocol, but both lack labels: the answer
    must still say that being at chance cannot be told."""
    from types import SimpleNamespace

    from invariance_lab.report.html import _measured

    def result(images, labels=False):
        return SimpleNamespace(meta=dict(kind="measure", protocol=dict(images=images, labels=labels, mode="canvas")))

    assert _measured([result("f1"), result("f2")]) == {"labels": False}
    assert _measured([result("f1"), result("f2", labels=True)]) == {}
    assert _measured([result("f1"), result("f1")])["images"] == "f1"


def test_a_model_name_may_break_after_its_underscores_in_the_table(page):
    """The sticky model column wraps a long name (at most 14em) at its underscores, not in the middle of a word."""
    text = page[0]
    assert 'data-col="model">conv_<wbr>gap' in text
    assert "overflow-wrap: break-word; min-width: 6em; max-width: 14em" in text


# the factorial config's model names (downsample-head-padding): the longest names a typical model table shows
FACTORIAL_NAMES = [f"{d}-{h}-{p}" for d in ("none", "max", "stride", "blur_max", "aps_max")
                   for h in ("flatten", "global_avg") for p in ("zeros", "circular")]
# reads, once the page has loaded, how wide the page, the model table and the box it scrolls in are
WIDTH_PROBE = """<script>
window.addEventListener("load", function () {
  var doc = document.getElementById("page").contentDocument, table = doc.querySelector("table");
  var box = table.parentElement, pre = document.createElement("pre");
  pre.id = "widths";
  pre.textContent = JSON.stringify({window: doc.defaultView.innerWidth, page: doc.documentElement.scrollWidth,
                                    box: box.clientWidth, table: box.scrollWidth});
  document.body.appendChild(pre);
});
</script>"""


def test_a_factorial_model_table_fits_a_desktop_window(tmp_path, fake_result):
    """At 1280 px the model table of twenty long-named models, with every column a run writes (the three
    per-image measures added to the fake folder) and cut intervals, is shown whole: neither the page nor the
    table's own box scrolls sideways."""
    folder = fake_result(tmp_path / "factorial" / "r1", models=FACTORIAL_NAMES, dy=(0, 0, 1),
                         chance=[(m, 2) for m in FACTORIAL_NAMES[::3]])  # seeds at chance: intervals cut at 0, 1
    summary = pd.read_csv(folder / "summary.csv")
    summary["mean_flip_rate_correct"] = summary["mean_flip_rate"]
    summary["robust_accuracy"] = summary["worst_accuracy"]
    summary["consistent_fraction"] = 1 - summary["worst_flip_rate"]
    summary.to_csv(folder / "summary.csv", index=False)
    page = tmp_path / "report.html"
    page.write_text(html_report([folder], n_images=1), encoding="utf-8")
    text = page.read_text(encoding="utf-8")
    assert 'data-col="consistent_fraction"' in text and ", 1]*" in text  # every column; some intervals cut
    shots, browser = _browser()
    shown = shots.wrapper(page, tmp_path, 1280, 900, WIDTH_PROBE)
    dom = shots._chromium(browser, tmp_path / "profile", 1280, 900, "--dump-dom", shown.as_uri())
    widths = json.loads(re.search(r'<pre id="widths">(.*?)</pre>', dom, re.DOTALL)[1])
    assert widths["window"] == 1280
    assert widths["page"] <= widths["window"], widths
    assert widths["table"] <= widths["box"], widths  # every column in view, none behind a sideways scroll


def test_gallery_images_take_the_classes_in_turn_each_the_earliest():
    """Catches the gallery picking other items than the earliest of each class, taken in turn (A, B, A, B)."""
    import torch

    from invariance_lab.report.gallery import _pick_images
    labels = torch.tensor([1, 1, 0, 1, 0, 0, 1])
    assert _pick_images(labels, 4) == [2, 0, 4, 1]
    assert _pick_images(torch.tensor([0, 0, 0]), 2) == [0, 1]  # one class: its earliest items


def test_gallery_captions_sign_their_shifts():
    """Catches a caption writing a shift of +2 as "2" (which way the letter moved)."""
    from invariance_lab.report.gallery import signed
    assert (signed(2.0), signed(-0.5), signed(0.0)) == ("+2", "-0.5", "0")
