"""ink.py: `data.ink: matched` equalises the classes' total ink on the rendered images; the ink-only baseline."""

import pytest
import torch

from invariance_lab.schema.config import DataConfig
from invariance_lab.data.datasets import draw, evaluation_set, glyph_table, reference_letters, training_set
from invariance_lab.data.ink import ink_baseline, total_ink

LETTERS = list("IWOLMT")  # I and L carry far less ink than W and M


def _class_means(images, labels, n):
    ink = total_ink(images)
    return torch.stack([ink[labels == c].mean() for c in range(n)])


@pytest.mark.parametrize("glyphs", ["stroke", "outline"])
def test_matched_ink_equalises_the_classes_mean_ink_to_one_percent(glyphs):
    free = DataConfig(letters=LETTERS, glyphs=glyphs, train_images=600, test_images=300)
    matched = free.model_copy(update={"ink": "matched"})
    for data, spread in ((free, 0.2), (matched, 0.01)):
        x, y = training_set(data, glyph_table(data))
        means = _class_means(x, y, len(LETTERS))
        ratio = float(means.max() / means.min() - 1)
        assert (ratio > spread) if data.ink == "free" else (ratio < spread), (data.ink, ratio)
        assert x.min() >= 0 and x.max() <= 1
    tx, ty = evaluation_set(matched, glyph_table(matched))
    means = _class_means(tx, ty, len(LETTERS))
    assert float(means.max() / means.min() - 1) < 0.01


def test_matched_gain_travels_with_the_letter_when_it_is_redrawn_shifted():
    data = DataConfig(letters=LETTERS, ink="matched", test_images=50)
    table, batch = glyph_table(data), reference_letters(data)
    a, b = total_ink(draw(table, batch, data.canvas)), total_ink(draw(table, batch, data.canvas, dx=1.25, dy=-0.5))
    assert torch.allclose(a, b, rtol=0.1) and abs(float(b.mean() / a.mean()) - 1) < 0.01  # sub-pixel aliasing
    assert torch.equal(draw(table, batch, data.canvas), draw(table, reference_letters(data), data.canvas))


def test_free_ink_is_the_default_and_unchanged():
    data = DataConfig()
    assert "ink" not in data.model_dump() and reference_letters(data).gain is None
    assert DataConfig(ink="matched").model_dump()["ink"] == "matched"


def test_ink_baseline_reads_ink_when_it_differs_and_is_at_chance_when_matched():
    for ink, lo, hi in (("free", 0.9, 1.0), ("matched", 0.3, 0.7)):
        data = DataConfig(letters=["I", "W"], ink=ink, train_images=400, test_images=200)
        table = glyph_table(data)
        (x, y), (tx, ty) = training_set(data, table), evaluation_set(data, table)
        acc = ink_baseline(x, y, tx, ty, 2)
        assert lo <= acc <= hi, (ink, acc)
        assert acc == ink_baseline(x, y, tx, ty, 2)  # deterministic


def test_run_reports_the_ink_baseline_and_parts_refuse_outline_glyphs(tmp_path, quick_config_path):
    import json

    from typer.testing import CliRunner

    from invariance_lab.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["run", str(quick_config_path), "--results-dir", str(tmp_path), "--quiet",
                              "--set", "data.glyphs=outline", "--set", "data.ink=matched", "--set", "seeds=[0]",
                              "--set", "data.fonts=[DejaVu Sans]"])
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "quick").iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert set(meta["ink_baseline"]) == {"accuracy", "chance"} and 0 <= meta["ink_baseline"]["accuracy"] <= 1
    assert "ink baseline: test accuracy" in res.output
    res = runner.invoke(app, ["report", str(run_dir)])  # the report says it too, under the table
    assert res.exit_code == 0 and "ink baseline: test accuracy" in res.output
    assert "glyphs: outline" in (run_dir / "config.yaml").read_text()
    res = runner.invoke(app, ["sweep", str(run_dir), "--kind", "parts", "--dx", "-2:2"])
    assert res.exit_code == 0, res.output  # A and B have counters: the part of a filled letter (outlines.py)
    assert "right-most counter, a hole of the filled letter, moved" in " ".join(res.output.split())
