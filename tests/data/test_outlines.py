"""Filled outline glyphs (outlines.py, letters.render with a filled table): placement to the sub-pixel, the
anti-aliasing rule, exact invariance where theory says exact, and readable errors for bad fonts."""

import pytest
import torch
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError
from invariance_lab.schema.config import DataConfig
from invariance_lab.config.load import parse_config
from invariance_lab.data.datasets import evaluation_set, glyph_table
from invariance_lab.core.errors import InvlabError
from invariance_lab.data.letters import load_glyphs, render
from invariance_lab.core.metrics import tv_distance
from invariance_lab.nn.models import build_model
from invariance_lab.data.outlines import font_file, outline_fonts
from invariance_lab.schema.fonts import DEFAULT_OUTLINE_FONTS

FONTS = ("DejaVu Sans", "DejaVu Serif Bold")


@pytest.fixture(scope="module")
def table():
    return load_glyphs(tuple("ABOR"), FONTS, "outline")


def _draw(table, g, cx, cy, height=16.0, canvas=32, chunk=256):
    n = len(g)
    full = lambda v: torch.full((n,), float(v)) if not torch.is_tensor(v) else v.float()
    return render(table, torch.as_tensor(g), full(cx), full(cy), full(height), torch.ones(n), canvas, chunk=chunk)


def _centre_of_mass(img):
    w = img[:, 0]
    ys = torch.arange(w.shape[-2], dtype=torch.float64)[:, None] + 0.5
    xs = torch.arange(w.shape[-1], dtype=torch.float64)[None, :] + 0.5
    m = w.double().sum((-2, -1))
    return (w * xs).sum((-2, -1)) / m, (w * ys).sum((-2, -1)) / m


@pytest.mark.parametrize("dx, dy", [(0.25, 0.0), (0.0, 0.5), (0.3, 0.7), (-0.6, 0.125), (3.4, -2.2), (0.5, 0.5)])
def test_sub_pixel_offset_moves_the_centre_of_mass_by_the_offset(dx, dy):
    # The one-pixel distance ramp is exact area coverage only along straight edges; at 16 px thin tails and
    # tips (Q, J, U) alias by up to ~0.13 px per glyph, as round caps do for strokes (test_letters: < 0.1).
    # Over A-Z in two fonts the centre of mass follows the offset to 0.05 px, and to ~0.02 px on average.
    table = load_glyphs(tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), FONTS, "outline")
    g = torch.arange(26 * len(FONTS))
    x0, y0 = _centre_of_mass(_draw(table, g, 24.0, 24.0, canvas=48))
    x, y = _centre_of_mass(_draw(table, g, 24.0 + dx, 24.0 + dy, canvas=48))
    err = torch.stack([x - x0 - dx, y - y0 - dy])  # (2, glyphs)
    assert err.mean(1).abs().max() < 0.05 and err.abs().mean() < 0.03 and err.abs().max() < 0.15


def test_filled_glyph_follows_the_ramp_rule_and_stays_inside_the_frame(table):
    g = torch.arange(len(table.letters) * len(table.fonts))
    img = _draw(table, g, 16.0, 16.0, height=16 * 1.1)  # the largest default size
    assert img.min() >= 0 and img.max() == 1  # solid interiors
    edge = torch.cat([img[..., 0, :], img[..., -1, :], img[..., :, 0], img[..., :, -1]], -1)
    assert edge.abs().max() == 0  # nothing reaches the border: nothing is cut
    big = _draw(table, g, 32.0, 32.0, height=16 * 1.1, canvas=64)
    assert torch.allclose(img.sum((1, 2, 3)), big.sum((1, 2, 3)), rtol=1e-5)  # the same ink on a larger frame
    # O's hole is empty: its centre pixel is background, the ring around it ink
    o = table.letters.index("O") * len(FONTS)
    ring = _draw(table, [o], 16.0, 16.0, height=20)[0, 0]
    assert ring[16, 16] == 0 and ring[16].max() == 1
    # cap height 1: a 20 px tall glyph spans 20 px of rows plus at most the 0.5 px ramp on each side
    rows = (ring.sum(1) > 0).nonzero()
    assert 20 <= rows.max() - rows.min() + 1 <= 22


def test_rendering_is_deterministic_and_independent_of_chunking(table):
    gen = torch.Generator().manual_seed(0)
    n = 40
    g = torch.randint(len(table.letters) * len(table.fonts), (n,), generator=gen)
    cx, cy = 16 + torch.rand(n, generator=gen) * 4 - 2, 16 + torch.rand(n, generator=gen) * 4 - 2
    h = 12 + torch.rand(n, generator=gen) * 6
    a = _draw(table, g, cx, cy, h)
    assert torch.equal(a, _draw(table, g, cx, cy, h))
    assert torch.equal(a, _draw(table, g, cx, cy, h, chunk=7))


def test_circular_stride_one_global_pool_net_is_exactly_invariant_on_outline_glyphs(table):
    torch.manual_seed(0)
    side = 16
    net = build_model(dict(channels=[4, 4], kernel=3, padding="circular", downsample="none", head="global_avg",
                           blur_size=3), num_classes=4, canvas=side).eval()
    x = _draw(table, [0, 3, 5], 8.3, 7.6, height=10, canvas=side)
    rolls = torch.cat([torch.roll(x, (dy, dx), (-2, -1)) for dy in range(side) for dx in range(side)])
    with torch.no_grad():
        p = torch.softmax(net(rolls), -1).view(side * side, 3, -1)
    assert tv_distance(p, p[:1].expand_as(p)).max() <= 1e-5


def test_config_dumps_glyphs_only_when_not_stroke():
    assert "glyphs" not in DataConfig().model_dump()  # fingerprints of earlier runs stay the same
    d = DataConfig(glyphs="outline", letters=["A", "B"])
    assert d.model_dump()["glyphs"] == "outline" and d.fonts == list(DEFAULT_OUTLINE_FONTS)
    assert DataConfig(**d.model_dump()) == d  # the dump reads back to the same config


def test_outline_data_sets_render(tmp_path):
    data = DataConfig(glyphs="outline", fonts=list(FONTS), train_images=8, test_images=6)
    x, y = evaluation_set(data, glyph_table(data))
    assert x.shape == (6, 1, 32, 32) and x.max() == 1 and glyph_table(data).filled


@pytest.mark.parametrize("fonts, says", [
    (["DejaVu Sanz"], "did you mean 'DejaVu Sans'"),
    (["/no/such/font.ttf"], "does not exist"),
    (["README.md"], None),  # a relative file that is not a font: an unknown name then
    (["STIXSizeOneSym"], "has no glyph for letter 'A'"),
    # a math-extension font maps A, B, ... to parenthesis pieces: it was accepted and trained on them as letters
    (["cmex10"], "draws 'A' as the glyph 'parenrightbt', not the letter"),
    (["futural"], "is a stroke font"),
])
def test_bad_outline_fonts_are_one_readable_error_naming_key_and_value(fonts, says, tmp_path):
    with pytest.raises(ConfigError) as e:
        parse_config({"data": {"glyphs": "outline", "fonts": fonts}})
    msg = str(e.value)
    assert "[data.fonts]" in msg and repr(fonts[0]) in msg and "Traceback" not in msg
    if says:
        assert says in msg


def test_a_file_that_is_not_a_font_is_refused(tmp_path):
    bad = tmp_path / "fake.ttf"
    bad.write_text("not a font")
    with pytest.raises(InvlabError, match="not a font"):
        font_file(str(bad))
    with pytest.raises(ConfigError, match=r"\[data.fonts\].*not a font"):
        parse_config({"data": {"glyphs": "outline", "fonts": [str(bad)]}})


def test_a_font_path_works_like_its_name():
    path = outline_fonts()["DejaVu Sans"]
    a = load_glyphs(("A",), ("DejaVu Sans",), "outline")
    b = load_glyphs(("A",), (path,), "outline")
    assert torch.equal(a.segments, b.segments)


def test_a_filled_glyphs_part_is_its_right_most_counter_moved_alone(table):
    one = lambda v: torch.tensor([float(v)])  # noqa: E731
    for g in range(table.part.shape[0]):  # A, B, O, R all have a counter; it is a closed contour inside the letter
        assert table.part[g].any() and table.part[g].sum() < table.mask[g].sum()
        edges = table.segments[g][table.part[g]]
        ends, starts = {tuple(e[2:].tolist()) for e in edges}, {tuple(e[:2].tolist()) for e in edges}
        assert ends == starts  # every edge of the part ends where another begins: a whole contour
    plain = render(table, torch.tensor([2]), one(16), one(16), one(16), one(1), 32)  # B
    assert torch.equal(plain, render(table, torch.tensor([2]), one(16), one(16), one(16), one(1), 32,
                                     part_offset=torch.zeros(1, 2)))
    moved = render(table, torch.tensor([2]), one(16), one(16), one(16), one(1), 32,
                   part_offset=torch.tensor([[0.0, 1.0]]))
    changed = (moved != plain)[0, 0].nonzero()
    lower = table.segments[2][table.part[2]][:, 1::2]  # the part's y in glyph units (centre 0, height 1, y down)
    assert changed.numel() and changed[:, 0].min() >= 16 + 16 * float(lower.min()) - 2  # only around the counter
    assert torch.equal(moved[..., :8, :], plain[..., :8, :])  # the top of the B (its upper bowl) does not move


def test_letters_without_a_counter_refuse_part_displacement(tmp_path):
    from invariance_lab.cli.main import app

    res = CliRunner().invoke(app, ["sweep", str(ROOT / "configs" / "quick.yaml"), "--kind", "parts", "--results-dir",
                                   str(tmp_path), "--quiet", "--set", "data.glyphs=outline", "--set",
                                   "data.letters=[A, C]", "--set", "data.fonts=[DejaVu Sans]", "--set",
                                   "train.epochs=0", "--set", "seeds=[0]", "--set", "data.test_images=8"])
    assert res.exit_code == 2 and "C in DejaVu Sans has none" in res.output and "Traceback" not in res.output


def test_fonts_command_lists_both_kinds():
    result = CliRunner().invoke(app, ["fonts"])
    assert result.exit_code == 0
    assert "futural" in result.output and "DejaVu Sans" in result.output and "DejaVu Serif Bold" in result.output


def test_renderer_matches_brute_force_signed_distance_and_even_odd_rule(table):
    # Reference: every canvas pixel against every edge, float64, a ray-crossing count per pixel.
    gen = torch.Generator().manual_seed(3)
    n, canvas = 8, 24
    g = torch.randint(len(table.letters) * len(table.fonts), (n,), generator=gen)
    cx, cy = 12 + torch.rand(n, generator=gen) * 2 - 1, 12 + torch.rand(n, generator=gen) * 2 - 1
    h = 14 + torch.rand(n, generator=gen) * 4
    got = _draw(table, g, cx, cy, h, canvas=canvas)
    c = torch.arange(canvas, dtype=torch.float64) + 0.5
    py, px = torch.meshgrid(c, c, indexing="ij")
    px, py = px[..., None], py[..., None]
    for i in range(n):
        seg = table.segments[g[i]][table.mask[g[i]]].double() * float(h[i])
        ax, ay = seg[:, 0] + float(cx[i]), seg[:, 1] + float(cy[i])
        bx, by = seg[:, 2] + float(cx[i]), seg[:, 3] + float(cy[i])
        t = (((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)).clamp(0, 1)
        d = ((px - ax - t * (bx - ax)) ** 2 + (py - ay - t * (by - ay)) ** 2).sqrt().amin(-1)
        spans = (ay > py) != (by > py)
        xc = ax + (py - ay) * (bx - ax) / torch.where(spans, by - ay, torch.ones_like(by))
        inside = ((px < xc) & spans).sum(-1) % 2 == 1
        want = (0.5 + torch.where(inside, d, -d)).clamp(0, 1)
        assert (got[i, 0].double() - want).abs().max() < 1e-4


def test_memory_estimate_covers_outline_drawing_and_ink_matching():
    from invariance_lab.config.memory import memory_estimate

    stroke = memory_estimate(parse_config({}))
    outline = memory_estimate(parse_config({"data": {"glyphs": "outline", "ink": "matched"}}))
    assert outline["letter drawing"][0] > 0 and outline["ink matching"][0] > 0 and "ink matching" not in stroke


def test_invlab_fonts_lists_the_outline_fonts_that_draw_letters():
    from invariance_lab.data.outlines import font_names, outline_fonts

    listed = font_names()["outline"]
    assert "DejaVu Sans" in listed and "cmr10" in listed
    assert "cmex10" in outline_fonts() and "cmex10" not in listed and "STIXSizeOneSym" not in listed


def test_a_filled_glyph_has_no_strokes_and_only_its_own_part_as_candidate(table):
    """Catches an outline table's contours taken for strokes (parts.strokes): its part is a counter, not a stroke."""
    from invariance_lab.data.parts import candidates, strokes

    assert all(strokes(table, g) == [] and candidates(table, g) == [()] for g in range(table.part.shape[0]))


def test_a_filled_glyph_keeps_its_aspect_ratio_at_unit_height(table):
    """Catches the outline's x normalised by its own width: every filled letter squeezed or stretched to a square."""
    from invariance_lab.data.outlines import _glyph_polygons

    for g in range(table.part.shape[0]):
        letter, font = table.letters[g // len(table.fonts)], table.fonts[g % len(table.fonts)]
        pts = [p for poly in _glyph_polygons(font_file(font), letter) for p in poly]
        aspect = (max(x for x, _ in pts) - min(x for x, _ in pts)) / (max(y for _, y in pts) - min(y for _, y in pts))
        seg = table.segments[g][table.mask[g]]
        xs, ys = seg[:, 0::2], seg[:, 1::2]
        assert float(ys.max() - ys.min()) == pytest.approx(1.0, abs=1e-5)
        assert float(xs.max() - xs.min()) == pytest.approx(aspect, abs=1e-4), (letter, font)


def test_the_part_contour_is_the_right_most_hole_the_lower_on_a_tie_never_an_island():
    """Catches the part rule's order or parity changed: the hole whose box centre is right-most moves (the lower,
    larger y, on a tie), and a contour inside a hole (an island, inside two contours) is not a hole."""
    from invariance_lab.data.outlines import _part_contour

    def square(x0, y0, x1, y1):
        return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))

    outer = square(0, 0, 10, 10)
    assert _part_contour((outer,)) is None
    assert _part_contour((outer, square(1, 6, 3, 9), square(6, 1, 9, 3))) == 2  # right-most, though higher
    assert _part_contour((outer, square(6, 1, 9, 3), square(6, 6, 9, 9))) == 2  # same x: the lower one
    assert _part_contour((outer, square(1, 1, 9, 9), square(7, 4, 8, 5))) == 1  # index 2 is an island in 1
