"""Part-displacement sweeps: displacement 0 is the reference exactly; the CLI writes a parts sweep folder."""

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.core.errors import InvlabError
from invariance_lab.data.parts import candidates, stroke_share, strokes, with_part, without_part
from invariance_lab.schema.config import DataConfig, SweepConfig
from invariance_lab.data import datasets as D
from invariance_lab.eval.sweep import evaluate_shifts
from invariance_lab.data.shifts import part_inputs, shifted_inputs
from invariance_lab.nn.models import build_model, resolve_spec

runner = CliRunner()
DATA = DataConfig(canvas=20, size=9, test_images=24, fonts=["futural", "timesr"])


def test_zero_displacement_is_the_reference_bitwise():
    table, test = D.glyph_table(DATA), D.reference_letters(DATA)
    reference = D.draw(table, test, DATA.canvas)
    parts = part_inputs(table, test, DATA.canvas)
    rolled = shifted_inputs(table, test, DATA.canvas, "circular", max_shift=0)
    assert torch.equal(parts(slice(0, 24), 0.0, 0.0), reference)
    assert torch.equal(parts(slice(5, 11), 0.0, 0.0), reference[5:11])
    assert torch.equal(rolled(slice(0, 24), 0.0, 0.0), reference)
    moved = parts(slice(0, 24), 1.5, -1.0)
    assert (moved != reference).flatten(1).any(1).all()  # every letter's part moved
    assert torch.equal(moved.sum() > 0, torch.tensor(True))


def test_parts_sweep_at_zero_matches_the_translation_clean_accuracy():
    torch.manual_seed(0)
    factors = {"a": resolve_spec({"arch": "conv_gap", "channels": [3, 4]}),
               "b": resolve_spec({"arch": "conv_maxpool", "channels": [3, 4]})}
    models = {(n, 0): build_model(f, 2, DATA.canvas).eval() for n, f in factors.items()}
    sweep = SweepConfig(mode="circular", dx=[-1, 1], dy=[0, 0], batch_size=10)
    inv_t, sum_t = evaluate_shifts(models, factors, DATA, sweep, torch.device("cpu"))
    parts = SweepConfig(mode="canvas", dx=[-1, 1, 0.5], dy=[-1, 1], batch_size=7)
    inv_p, sum_p = evaluate_shifts(models, factors, DATA, parts, torch.device("cpu"), kind="parts")
    assert (inv_p["mode"] == "parts").all() and len(inv_p) == 2 * 5 * 3
    at_zero = inv_p[(inv_p.dx == 0) & (inv_p.dy == 0)].set_index("model")
    for name in factors:
        clean = sum_t.set_index("model").clean_accuracy[name]
        assert at_zero.accuracy[name] == clean == sum_p.set_index("model").clean_accuracy[name]
        assert at_zero.flip_rate[name] == 0 and at_zero.prob_change[name] == 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import untrained_quick_run

    return untrained_quick_run(tmp_path_factory, seeds="[0]")


def test_cli_parts_sweep_writes_its_folder(tiny_run):
    res = runner.invoke(app, ["sweep", str(tiny_run), "--kind", "parts", "--dx", "-1:1:0.5", "--dy", "-1:1",
                              "--quiet"])
    assert res.exit_code == 0, res.output
    assert "part displacement" in res.output
    (folder,) = (tiny_run / "sweeps").iterdir()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["protocol"]["kind"] == "parts"
    inv = pd.read_csv(folder / "invariance.csv")
    assert len(inv) == 2 * 5 * 3 and set(inv["mode"]) == {"parts"}
    assert (pd.read_csv(folder / "summary.csv").n_shifts == 14).all()
    run_inv = pd.read_csv(tiny_run / "invariance.csv")  # the run's own sweep: the same reference images
    ref = run_inv[(run_inv.dx == 0) & (run_inv.dy == 0)].set_index("model").accuracy
    assert (inv[(inv.dx == 0) & (inv.dy == 0)].set_index("model").accuracy == ref).all()
    res = runner.invoke(app, ["report", str(folder), "--format", "markdown"])
    assert res.exit_code == 0 and "part displacement (right-most stroke moved" in res.output


def test_cli_parts_refuses_circular_mode(tiny_run):
    res = runner.invoke(app, ["sweep", str(tiny_run), "--kind", "parts", "--mode", "circular"])
    assert res.exit_code == 2 and "--mode circular does not apply" in res.output


# ------------------------------------------------------------------ data/parts.py: candidate parts, the part removed

TABLE_DATA = DataConfig(canvas=24, size=12, test_images=30, fonts=["futural", "futuram", "timesr"])


def test_a_removed_part_is_the_part_moved_out_of_the_frame_and_only_ink_goes():
    table, test = D.glyph_table(TABLE_DATA), D.reference_letters(TABLE_DATA)
    picks = [candidates(table, g)[-1] for g in range(table.part.shape[0])]  # the last candidate: often two strokes
    chosen = with_part(table, picks)
    full = D.draw(chosen, test, TABLE_DATA.canvas)
    gone = D.draw(without_part(chosen), test, TABLE_DATA.canvas)
    far = torch.tensor([40.0 * TABLE_DATA.canvas, 0.0]).expand(len(test), 2)
    away = D.draw(chosen, test, TABLE_DATA.canvas, part_offset=far)
    assert torch.allclose(gone, away, atol=1e-6)  # exactly the letter without its part
    assert (gone <= full + 1e-6).all() and (gone.sum((1, 2, 3)) < full.sum((1, 2, 3))).all()


def test_candidates_are_parts_not_letters_and_with_part_refuses_a_whole_glyph():
    table = D.glyph_table(TABLE_DATA)
    for g in range(table.part.shape[0]):
        cands = candidates(table, g)
        assert cands and all(0 < len(c) <= 2 and stroke_share(table, g, c) <= 0.5 for c in cands), (g, cands)
        chosen = with_part(table, [c[0] if i == g else () for i, c in
                                   enumerate(candidates(table, i) for i in range(table.part.shape[0]))])
        mine = table.mask[g] & torch.isin(table.groups[g], torch.tensor(cands[0]))
        assert torch.equal(chosen.part[g], mine)
    with pytest.raises(InvlabError, match="no rest to move against"):
        with_part(table, [tuple(strokes(table, 0))] + [()] * (table.part.shape[0] - 1))


def test_with_part_refuses_strokes_the_glyph_does_not_have():
    """Catches the stroke check removed: an unknown stroke index gave an empty part, a parts sweep moving nothing."""
    table = D.glyph_table(TABLE_DATA)
    with pytest.raises(InvlabError, match="is not among them"):
        with_part(table, [(99,)] + [()] * (table.part.shape[0] - 1))


def test_a_candidate_is_never_the_whole_glyph_even_when_any_share_is_allowed():
    """Catches the whole glyph listed as a candidate part (nothing left for the part to move against)."""
    table = D.glyph_table(TABLE_DATA)
    for g in range(table.part.shape[0]):
        every = len(strokes(table, g))  # candidates of any size and any share: the whole glyph is among the sets
        assert all(len(c) < every for c in candidates(table, g, most=every, share=1.0)), g

