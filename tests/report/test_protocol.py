"""report/protocol.py: the sentence under every table says how it was measured, including where a canvas sweep
went past the shifts that keep every test letter whole (the frame cut some: cropped as well as moved)."""

import json

from invariance_lab.store.results import load_result
from invariance_lab.report.protocol import protocol_lines

CUT = "the frame cuts some test letters at whole-pixel shifts past"


def test_a_canvas_sweep_of_letters_at_fractions_of_a_pixel_says_the_ink_changes_too(tmp_path, fake_result):
    """Fractional canvas shifts of drawn letters are more than a translation (docs/metrics.md): the protocol line
    says so; whole-pixel grids, circular fft shifts and image folders (moved as pixels) do not get the note."""
    note = "fractional shifts redrawn at a new sampling phase"
    sub = load_result(fake_result(tmp_path / "demo" / "r1", dx=(-1, 1, 0.5)))
    (line,) = protocol_lines([sub])
    assert note in line and "--mode circular --subpixel fft keeps it" in line
    assert note not in protocol_lines([load_result(fake_result(tmp_path / "demo" / "r2", dx=(-2, 2, 1)))])[0]
    for extra in ({"mode": "circular", "subpixel": "fft"}, {"images": "imgs", "fill": "zeros",
                                                          "interpolation": "bilinear"}):
        sub.meta["protocol"].update(extra)
        assert note not in protocol_lines([sub])[0]


def test_a_grid_past_the_shifts_that_keep_every_letter_whole_says_the_frame_cuts_letters(tmp_path, fake_result):
    """The main run's worst shift for conv_gap (dy = +-8) also cut 31% of its test letters; nothing said so."""
    folder = fake_result(tmp_path / "demo" / "r1", dx=(-8, 8, 1))  # dy -4..4
    meta = json.loads((folder / "meta.json").read_text())
    for whole, said in (({"dx": [-8, 8], "dy": [-7, 7]}, None), ({"dx": [-7, 8], "dy": [-4, 4]}, "dx -7..8 px"),
                        ({"dx": [-8, 8], "dy": [-3, 5]}, "dy -3..5 px"),
                        ({"dx": [-6, 6], "dy": [-2, 2]}, "dx -6..6 and dy -2..2 px"), ({}, None)):
        meta["protocol"]["whole"] = whole
        (folder / "meta.json").write_text(json.dumps(meta))
        (line,) = protocol_lines([load_result(folder)])
        assert (CUT in line) == (said is not None), line
        if said:
            assert f"{CUT} {said} (those images are cropped as well as moved" in line
    del meta["protocol"]["whole"]  # older folders: no sentence
    (folder / "meta.json").write_text(json.dumps(meta))
    assert CUT not in protocol_lines([load_result(folder)])[0]


def test_the_frame_cut_clause_reads_the_shifts_measured_and_whole_pixels_only(tmp_path, fake_result):
    """-6:8:4 measures -6, -2, 2, 6 (none past 7); a fractional shift redraws the letter at another phase, whose
    extent `whole` does not measure (7.5 cut none of the main run's letters): both got the clause. A grid whose only
    shifts past the range are fractional says they may cut letters (it had said nothing)."""
    maybe = "the grid's fractional shifts go past dx -7..7 px, the whole-pixel shifts within which every test letter"
    for dx, said in (((-6, 8, 4), False), ((-7.5, 7.5, 0.5), False), ((-8, 8, 0.5), True), ((-7, 9, 2), True)):
        folder = fake_result(tmp_path / "demo" / f"r{len(str(dx))}{said}", dx=dx)
        meta = json.loads((folder / "meta.json").read_text())
        meta["protocol"]["whole"] = {"dx": [-7, 7], "dy": [-7, 7]}
        (folder / "meta.json").write_text(json.dumps(meta))
        line = protocol_lines([load_result(folder)])[0]
        assert (CUT in line) == said and (maybe in line) == (dx == (-7.5, 7.5, 0.5)), (dx, line)

