import pytest
import torch

from invariance_lab.core.errors import InvlabError
from invariance_lab.data.glyphs import GlyphTable
from invariance_lab.data.letters import _has_capitals, load_glyphs, render
from invariance_lab.schema.fonts import DEFAULT_FONTS, LATIN_FONTS, LETTERS


@pytest.fixture(scope="module")
def table():
    return load_glyphs(LETTERS, DEFAULT_FONTS)


def _render_reference(table, glyph, cx, cy, height, thickness, canvas, part_offset=None, chunk=256):
    """The former render(), kept as the reference: distance from every canvas pixel to every segment."""
    device = cx.device
    segments, mask, part = (t.to(device) for t in (table.segments, table.mask, table.part))
    pos = torch.arange(canvas, device=device, dtype=torch.float32) + 0.5  # pixel centres
    px, py = pos.repeat(canvas)[None, :, None], pos.repeat_interleave(canvas)[None, :, None]  # (1, P, 1), row-major
    glyph = glyph.to(device)
    n_seg = mask.sum(1)[glyph]
    order = torch.argsort(n_seg, stable=True)
    out = torch.empty(glyph.shape[0], canvas * canvas, device=device)
    for i in range(0, glyph.shape[0], chunk):
        idx = order[i : i + chunk]
        g, S = glyph[idx], int(n_seg[idx].max())
        h, r = height[idx].float()[:, None], thickness[idx].float()[:, None]
        seg = segments[g, :S] * h[:, :, None]
        seg[..., 0::2] += cx[idx].float()[:, None, None]
        seg[..., 1::2] += cy[idx].float()[:, None, None]
        if part_offset is not None:
            shift = part_offset[idx].float().repeat(1, 2)[:, None, :] * part[g, :S, None]
            seg = seg + shift
        ax, ay, bx, by = (seg[:, None, :, k] for k in range(4))
        abx, aby = bx - ax, by - ay
        inv_len2 = 1.0 / (abx * abx + aby * aby).clamp_min(1e-12)
        apx, apy = px - ax, py - ay
        t = (apx * abx).add_(apy * aby).mul_(inv_len2).clamp_(0, 1)
        apx.sub_(t * abx).square_()
        apy.sub_(t.mul_(aby)).square_()
        d2 = apx.add_(apy).masked_fill_(~mask[g, None, :S], float("inf"))
        d = d2.amin(dim=-1).sqrt_()
        out[idx] = (r / 2 + 0.5 - d).clamp_(0, 1)
    return out.reshape(glyph.shape[0], 1, canvas, canvas)


def draw(table, glyph, cx=16.0, cy=16.0, height=16.0, thickness=1.5, canvas=32, **kw):
    glyph = torch.as_tensor(glyph).long().reshape(-1)
    full = lambda v: torch.as_tensor(v, dtype=torch.float32).expand(len(glyph)).clone()
    return render(table, glyph, full(cx), full(cy), full(height), full(thickness), canvas, **kw)


def centre_of_mass(img):
    img = img[:, 0].double()
    n = img.shape[-1]
    coords = torch.arange(n, dtype=torch.float64) + 0.5
    mass = img.sum((1, 2))
    return (img.sum(1) * coords).sum(1) / mass, (img.sum(2) * coords).sum(1) / mass  # x, y


def test_table_shapes_and_normalisation(table):
    G = len(LETTERS) * len(DEFAULT_FONTS)
    assert table.segments.shape[0] == G and table.segments.dtype == torch.float32
    assert table.mask.shape == table.groups.shape == table.part.shape == table.segments.shape[:2]
    for g in range(G):
        s = table.segments[g][table.mask[g]]
        xs, ys = s[:, 0::2], s[:, 1::2]
        assert ys.max() - ys.min() == pytest.approx(1.0, abs=1e-6)
        assert (xs.max() + xs.min()) / 2 == pytest.approx(0.0, abs=1e-6)
        assert (ys.max() + ys.min()) / 2 == pytest.approx(0.0, abs=1e-6)
    assert (table.groups[~table.mask] == -1).all() and (table.groups[table.mask] >= 0).all()
    g = table.index(torch.tensor([2, 25]), torch.tensor([1, 2]))
    assert g.tolist() == [2 * len(DEFAULT_FONTS) + 1, 25 * len(DEFAULT_FONTS) + 2]


def test_render_is_deterministic_and_chunking_does_not_matter(table):
    g = torch.arange(table.segments.shape[0])
    a = draw(table, g, cx=15.3, cy=16.7)
    b = draw(table, g, cx=15.3, cy=16.7)
    c = draw(table, g, cx=15.3, cy=16.7, chunk=7)
    assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.parametrize("canvas", [24, 33, 64])
def test_render_matches_reference(table, canvas):
    # render() only computes a window around each glyph; everything else must be 0 in the
    # reference too. Letters partly (or wholly) outside the frame, per-image heights and
    # pens, moved parts, and chunks that mix glyph sizes.
    gen = torch.Generator().manual_seed(canvas)
    n = 160
    glyph = torch.randint(0, table.segments.shape[0], (n,), generator=gen)
    cx = torch.rand(n, generator=gen) * (canvas + 12) - 6
    cy = torch.rand(n, generator=gen) * (canvas + 12) - 6
    cx[:20] = torch.rand(20, generator=gen) * 2 - 1  # near the left edge
    cy[20:40] = canvas + torch.rand(20, generator=gen) * 2 - 1  # near the bottom edge
    cx[40:50] = canvas / 2 + 0.37  # fully inside on bigger canvases
    cy[40:50] = canvas / 2 - 0.21
    height = torch.rand(n, generator=gen) * 22 + 4
    height[:5] = 40.0  # taller than the smaller canvases
    thickness = torch.rand(n, generator=gen) * 3.5
    offset = torch.randn(n, 2, generator=gen) * 3
    for part_offset in (None, offset):
        args = (table, glyph, cx, cy, height, thickness, canvas)
        ref = _render_reference(*args, part_offset=part_offset, chunk=64)
        fast = render(*args, part_offset=part_offset, chunk=64)
        assert fast.shape == ref.shape == (n, 1, canvas, canvas) and fast.dtype == torch.float32
        assert (fast - ref).abs().max() < 1e-5
        assert ((fast == 0) == (ref == 0)).float().mean() > 0.999  # same footprint, up to round-off at its edge
        assert ref.sum() > 0
        assert torch.equal(fast, render(*args, part_offset=part_offset, chunk=11))


def test_centred_glyph_fits_inside_canvas_with_ink(table):
    img = draw(table, torch.arange(table.segments.shape[0]))
    assert img.shape == (table.segments.shape[0], 1, 32, 32) and img.dtype == torch.float32
    border = torch.cat([img[:, 0, 0], img[:, 0, -1], img[:, 0, :, 0], img[:, 0, :, -1]], dim=1)
    assert (border == 0).all()
    assert (img.amax((1, 2, 3)) >= 0.75).all() and (img.sum((1, 2, 3)) > 20).all()
    assert img.min() >= 0 and img.max() <= 1


def test_glyph_height_is_as_asked(table):
    # Futural 'I' is a vertical bar from y = 8 to 24; at thickness 1 ink reaches 1 px beyond.
    img = draw(table, table.index(torch.tensor([8]), torch.tensor([0])), thickness=1.0)
    rows = img[0, 0].amax(1).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 18  # pixel centres 7.5 .. 24.5 lie within 1 px of the bar


def test_pixel_centre_convention(table):
    # Futural 'I' is a vertical bar, symmetric about its centre: with the centre on a
    # pixel centre or corner, the ink's centre of mass is exactly (cx, cy).
    bar = table.index(torch.tensor([8]), torch.tensor([0]))
    for cx, cy in [(16.0, 16.0), (16.5, 15.5), (9.0, 20.5)]:
        x, y = centre_of_mass(draw(table, bar, cx=cx, cy=cy))
        assert x.item() == pytest.approx(cx, abs=1e-5) and y.item() == pytest.approx(cy, abs=1e-5)


@pytest.mark.parametrize("shift", [0.25, 0.5, 1.75])
def test_subpixel_shift_moves_centre_of_mass(table, shift):
    # Sampling the distance field on a grid is only nearly shift-equivariant (diagonals,
    # junctions and round caps alias a little), least so for thin pens: at thickness 2
    # the centre of mass follows the shift to ~0.01 px on average, < 0.1 px per glyph.
    g = torch.arange(table.segments.shape[0])
    x0, y0 = centre_of_mass(draw(table, g, cx=16.0, cy=16.0, thickness=2.0))
    x1, y1 = centre_of_mass(draw(table, g, cx=16.0 + shift, cy=16.0 - shift, thickness=2.0))
    err = torch.cat([x1 - x0 - shift, y1 - y0 + shift]).abs()
    assert err.mean() < 0.02 and err.max() < 0.1


def test_thicker_pen_gives_more_ink(table):
    g = torch.arange(table.segments.shape[0])
    ink = [draw(table, g, thickness=t).sum((1, 2, 3)) for t in (1.0, 1.5, 2.5)]
    assert (ink[1] > ink[0]).all() and (ink[2] > ink[1]).all()


def test_values_in_unit_interval_for_random_inputs(table):
    torch.manual_seed(0)
    n = 300
    img = render(
        table, torch.randint(0, table.segments.shape[0], (n,)), torch.rand(n) * 40 - 4, torch.rand(n) * 40 - 4,
        torch.rand(n) * 30 + 2, torch.rand(n) * 4, canvas=32, chunk=64,
    )
    assert img.shape == (n, 1, 32, 32) and img.min() >= 0 and img.max() <= 1 and not img.isnan().any()


def test_zero_part_offset_is_bit_identical(table):
    g = torch.arange(table.segments.shape[0])
    a = draw(table, g, cx=15.6, cy=16.2)
    b = draw(table, g, cx=15.6, cy=16.2, part_offset=torch.zeros(len(g), 2))
    assert torch.equal(a, b)


def test_part_offset_changes_only_pixels_near_the_part(table):
    g = torch.arange(table.segments.shape[0])
    offset = torch.tensor([2.0, -1.0]).expand(len(g), 2)
    a = draw(table, g, part_offset=None)
    b = draw(table, g, part_offset=offset)
    changed = (a != b)[:, 0]
    assert changed.flatten(1).any(1).all()  # every glyph's part moved
    # Pixels that changed are within reach of the part, before or after the move.
    pix = torch.stack(torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="xy"), -1) + 0.5
    reach = 0.75 + 0.5 + 1e-4  # half pen + anti-aliasing ramp
    for i in range(len(g)):
        seg = table.segments[i][table.part[i]] * 16 + 16
        near = torch.zeros(32, 32, dtype=torch.bool)
        for d in (torch.zeros(2), offset[0]):
            p0, p1 = seg[:, :2] + d, seg[:, 2:] + d
            ab, ap = p1 - p0, pix[:, :, None] - p0
            t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
            dist = (ap - t[..., None] * ab).norm(dim=-1).amin(-1)
            near |= dist < reach
        assert not (changed[i] & ~near).any(), f"glyph {i}: pixels far from the part changed"


def test_every_letter_has_a_part_in_all_latin_fonts():
    table = load_glyphs(LETTERS, LATIN_FONTS)
    assert table.part.any(1).all()
    assert not (table.part & ~table.mask).any()
    # In a multi-stroke glyph the part is exactly one whole stroke.
    for g in range(table.segments.shape[0]):
        groups = table.groups[g][table.part[g]].unique()
        assert len(groups) == 1


def test_part_rule_examples(table):
    # Futural A: the part is the right diagonal, running down and to the right.
    a = table.index(torch.tensor([0]), torch.tensor([0])).item()
    (x0, y0, x1, y1), = table.segments[a][table.part[a]].tolist()
    assert x1 > x0 and y1 > y0 and (x0 + x1) / 2 > 0
    # Futural I is one straight bar: cut at the centre, its lower half is the part.
    i = table.index(torch.tensor([8]), torch.tensor([0])).item()
    assert table.mask[i].sum() == 2 and table.part[i].sum() == 1
    part = table.segments[i][table.part[i]]
    assert (part[:, 1::2] >= 0).all()


def test_zero_length_segment_draws_a_dot():
    seg = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    real = torch.tensor([[True, False]])
    table = GlyphTable(("A",), ("dot",), seg, real, torch.tensor([[0, -1]]), real.clone())
    img = draw(table, [0], cx=10.5, cy=12.5, thickness=2.0)
    assert not img.isnan().any()
    assert img[0, 0, 12, 10] == 1 and img[0, 0, 12, 12] == 0 and img[0, 0, 12, 11] == pytest.approx(0.5)


def test_latin_fonts_all_have_capitals():
    assert set(DEFAULT_FONTS) <= set(LATIN_FONTS)
    assert all(_has_capitals(f) for f in LATIN_FONTS)
    assert not _has_capitals("markers")  # a symbol font with no glyphs past P
    assert not _has_capitals("no_such_font")


def test_unknown_letter_lists_choices():
    with pytest.raises(InvlabError, match="ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        load_glyphs(["A", "a"], DEFAULT_FONTS)


def test_unknown_font_lists_choices():
    with pytest.raises(InvlabError, match="futural.*timesr.*gothitt"):
        load_glyphs(["A"], ["comic_sans"])
    with pytest.raises(InvlabError, match="choose from"):
        load_glyphs(["A"], ["greek"])  # exists, but its A-Z are Greek letters


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(table):
    g = torch.arange(table.segments.shape[0])
    cpu = draw(table, g, cx=15.3, cy=16.7)
    full = lambda v: torch.full((len(g),), v, device="cuda")
    gpu = render(table, g.cuda(), full(15.3), full(16.7), full(16.0), full(1.5), 32)
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-4)


# ------------------------------------------------------------------ turned letters (sweep.transform: rotate)
def _square_table():
    """One glyph: a square with a diagonal tail (not symmetric under a quarter turn), dyadic coordinates, so that
    at height 16 on a 32 px canvas every coordinate and distance the renderer computes is exact."""
    seg = torch.tensor([[[-.5, -.5, .5, -.5], [.5, -.5, .5, .5], [.5, .5, -.5, .5], [-.5, .5, -.5, -.5],
                         [.5, -.5, .25, -.25]]])
    return GlyphTable(("A",), ("square",), seg, torch.ones(1, 5, dtype=torch.bool), torch.zeros(1, 5, dtype=torch.long),
                      torch.zeros(1, 5, dtype=torch.bool))


@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_a_quarter_turn_of_a_square_glyph_is_torch_rot90_exactly(k):
    one = lambda v: torch.full((1,), float(v))  # noqa: E731
    args = (_square_table(), torch.zeros(1, dtype=torch.long), one(16), one(16), one(16), one(2), 32)
    upright, turned = render(*args), render(*args, angle=90 * k)
    assert torch.equal(turned, torch.rot90(upright, k, dims=(-2, -1)))  # counterclockwise, as rot90
    assert not torch.equal(turned, upright) and turned.sum() > 100


def test_every_letter_turned_a_quarter_is_rot90_to_float_round_off_and_angle_0_is_exact(table):
    """Hershey coordinates are not dyadic: the pixel coordinates (about 16 + y * h) round in float32 before the
    distances are taken, a few 1e-6 px, and the ink is linear in the distance: hence 1e-5, not exact."""
    n = table.segments.shape[0]
    g, c = torch.arange(n), torch.full((n,), 16.0)
    args = (table, g, c, c, torch.full((n,), 18.0), torch.full((n,), 2.0), 32)
    upright = render(*args)
    assert torch.equal(render(*args, angle=0.0), upright) and torch.equal(render(*args, angle=360.0), upright)
    for k in (1, 2, 3):
        torch.testing.assert_close(render(*args, angle=90.0 * k), torch.rot90(upright, k, dims=(-2, -1)),
                                   atol=1e-5, rtol=0)
    turned = render(*args, angle=30.0)  # ink is kept: a turn moves the strokes, it does not resample them
    torch.testing.assert_close(turned.sum((1, 2, 3)), upright.sum((1, 2, 3)), rtol=0.03, atol=0)


def test_a_child_forked_while_a_font_loads_makes_its_own_reader():
    """The process's one font reader is loaded under a lock (data/letters._hershey): a child forked while another
    thread held it inherited it held, and its first font load waited for ever."""
    import os
    import signal

    from invariance_lab.data import letters

    _, lock = letters._hershey()
    with lock:  # as another thread loading a font
        pid = os.fork()
        if pid == 0:  # the child: a load that hangs is ended by the alarm (exit by signal, not 0)
            signal.alarm(20)
            try:
                os._exit(0 if letters._font_strokes.__wrapped__("timesr")["A"] else 1)
            except BaseException:
                os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_a_duplicate_letter_or_font_is_refused():
    """Catches the duplicate check removed: letters [A, A] made two classes of one letter (a 50% ceiling)."""
    with pytest.raises(InvlabError, match="duplicate letter"):
        load_glyphs(["A", "B", "A"], ["futural"])
    with pytest.raises(InvlabError, match="duplicate font"):
        load_glyphs(["A", "B"], ["futural", "futural"])
