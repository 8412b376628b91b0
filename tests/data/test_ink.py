"""ink.py: `data.ink: matched` equalises the classes' total ink on the rendered images; `data.ink: invariant` every
invariant statistic; the contrast-only control (data.gain); the ink-only baseline and its battery (ink_stats.py)."""

import hashlib

import pytest
import torch

from invariance_lab.schema.config import DataConfig
from invariance_lab.data.datasets import (draw, evaluation_set, glyph_table, reference_letters, sample_letters,
                                          training_set)
from invariance_lab.data.ink import ink_baseline, total_ink
from invariance_lab.data.ink_stats import STATISTICS, battery, ink_statistics, readable

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
    ink = meta["ink_baseline"]
    assert set(ink) == {"accuracy", "chance", "test_images", "battery"} and 0 <= ink["accuracy"] <= 1
    assert set(ink["battery"]) == {*STATISTICS, "all"} and ink["test_images"] == 40
    assert "ink baseline: test accuracy" in res.output and "ink battery, test accuracy" in res.output
    res = runner.invoke(app, ["report", str(run_dir)])  # the report says it too, under the table
    assert res.exit_code == 0 and "ink baseline: test accuracy" in res.output
    high = readable(ink["battery"], ink["chance"])  # the protocol line names what is not at chance, if any
    assert ("above chance: " + ", ".join(high) if high else "within 5 points of chance") in " ".join(res.output.split())
    assert "glyphs: outline" in (run_dir / "config.yaml").read_text()
    res = runner.invoke(app, ["sweep", str(run_dir), "--kind", "parts", "--dx", "-2:2"])
    assert res.exit_code == 0, res.output  # A and B have counters: the part of a filled letter (outlines.py)
    assert "right-most counter, a hole of the filled letter, moved" in " ".join(res.output.split())


def _sets(**kw):
    data = DataConfig(**kw)
    table = glyph_table(data)
    return (*training_set(data, table), *evaluation_set(data, table))


@pytest.mark.parametrize("glyphs", ["stroke", "outline"])
def test_invariant_ink_leaves_every_statistic_within_5_points_of_chance_where_matched_ink_does_not(glyphs):
    kw = dict(letters=["A", "B"], canvas=32, size=14, glyphs=glyphs, train_images=600, test_images=600)
    inv = battery(*_sets(ink="invariant", **kw), 2)
    assert not readable(inv, 0.5), inv  # every statistic, and all of them with their squares, within 0.05
    matched = battery(*_sets(ink="matched", **kw), 2)  # total ink at chance; the spread and the peak are not
    assert abs(matched["total"] - 0.5) < 0.05 and matched["spread"] > 0.9 and matched["peak"] > 0.65, matched


def test_battery_statistics_are_exact_on_a_drawn_pair_of_pixels():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 1, 0], x[0, 0, 1, 2] = 1.0, 0.5  # two pixels in a row: centre x = 2/3 (weighted by intensity)
    stats = ink_statistics(x)
    assert stats["total"].item() == 1.5 and stats["peak"].item() == 1.0 and stats["area"].item() == 2
    assert stats["mean_inked"].item() == 0.75
    var_x = (1.0 * (0 - 2 / 3) ** 2 + 0.5 * (2 - 2 / 3) ** 2) / 1.5
    assert torch.allclose(stats["spread"][0], torch.tensor([var_x, 0.0, 0.0], dtype=torch.float64))
    shifted = ink_statistics(torch.roll(x, (2, 1), (-2, -1)))  # every statistic is translation-invariant
    assert all(torch.equal(stats[k], shifted[k]) for k in STATISTICS)


def _blobs(gain, count, compact, gen):
    """Images of `count` pixels of intensity `gain` each, at random positions: compact (a run in one row) or
    scattered over the canvas (the spread is large)."""
    n = len(gain)
    x = torch.zeros(n, 1, 16, 16)
    for i in range(n):
        if compact[i]:
            r, c = torch.randint(16, (1,), generator=gen).item(), torch.randint(16 - 10, (1,), generator=gen).item()
            x[i, 0, r, c:c + int(count[i])] = gain[i]
        else:
            x[i, 0].view(-1)[torch.randperm(256, generator=gen)[:int(count[i])]] = gain[i]
    return x


def test_battery_reads_each_statistic_where_the_classes_differ_in_it_alone():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 2
    one, eight = torch.ones(400), torch.full((400,), 8)
    # the same shape, brighter for class 1: total, peak and mean read it; area and spread are the same for both,
    # so their classifiers answer one class for every image: exactly 0.5 of the balanced test images
    brighter = _blobs(0.2 + 0.2 * torch.rand(400, generator=gen) + 0.4 * y, eight, torch.ones(400, dtype=bool), gen)
    # the same eight pixels of ink, compact for class 0 and scattered for class 1: only the spread tells them apart
    scattered = _blobs(one, eight, y == 0, gen)
    # more pixels of the same intensity, scattered: area and total read it (and the spread a little: the scatter
    # of more pixels varies less), peak and mean not at all
    larger = _blobs(one, 5 + torch.randint(5, (400,), generator=gen) + 10 * y, torch.zeros(400, dtype=bool), gen)
    for x, reads, same in ((brighter, {"total", "peak", "mean_inked", "all"}, {"spread", "area"}),
                           (scattered, {"spread", "all"}, {"total", "peak", "mean_inked", "area"}),
                           (larger, {"total", "area", "all"}, {"peak", "mean_inked"})):
        scores = battery(x[:200], y[:200], x[200:], y[200:], 2)
        assert all(scores[k] > 0.95 for k in reads) and all(scores[k] == 0.5 for k in same), scores


def test_gain_control_draws_every_letters_gain_whatever_its_class():
    data = DataConfig(letters=["A", "B"], gain=[0.3, 0.9], train_images=2000)
    gen = torch.Generator().manual_seed(5)
    batch = sample_letters(data, 2000, gen)
    g = batch.gain
    assert float(g.min()) >= 0.3 and float(g.max()) <= 0.9
    # the gains do not see the class: other letters, the same gains; and the classes' gains alike (KS < 0.05)
    other = sample_letters(data.model_copy(update={"letters": ["I", "W"]}), 2000, torch.Generator().manual_seed(5))
    assert torch.equal(other.gain, g)
    a, b = g[batch.labels == 0].sort().values, g[batch.labels == 1].sort().values
    grid = torch.linspace(0.3, 0.9, 61)
    ks = (torch.searchsorted(a, grid) / len(a) - torch.searchsorted(b, grid) / len(b)).abs().max()
    assert float(ks) < 0.05, float(ks)
    # and the drawn images are the free images, each scaled by its gain
    table = glyph_table(data)
    free = draw(table, sample_letters(data.model_copy(update={"gain": None}), 50, torch.Generator().manual_seed(1)),
                data.canvas)
    scaled = sample_letters(data, 50, torch.Generator().manual_seed(1))
    assert torch.equal(draw(table, scaled, data.canvas), free * scaled.gain[:, None, None, None])


# sha256 of the quick config's training images and labels as drawn before ink: invariant and data.gain existed
QUICK_TRAINING_SET = {"free": "eab01bd34008921a59a8345822cd7363c569da4b4447d6142b5b529d517fbe1d",
                      "matched": "8fd5805c97caf76913e8d817ff738819707347e6a4a14496e263b304d363a76d"}


@pytest.mark.parametrize("ink", ["free", "matched"])
def test_existing_configs_draw_byte_identical_images(ink, quick_config_path):
    from invariance_lab.config.load import load_config

    data = load_config(quick_config_path).data.model_copy(update={"ink": ink})
    x, y = training_set(data, glyph_table(data))
    assert hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest() == QUICK_TRAINING_SET[ink]
    assert "gain" not in data.model_dump()  # and the saved config (its fingerprint) has no new key


def test_invariant_letters_keep_the_class_balance_and_their_drawing_when_redrawn_shifted():
    data = DataConfig(letters=list("ABCDE"), ink="invariant", train_images=103, test_images=40)
    _, y = training_set(data, glyph_table(data))
    assert y.bincount().tolist() == (torch.arange(103) % 5).bincount().tolist()  # as sample_letters balances them
    table, batch = glyph_table(data), reference_letters(data)
    assert batch.gain is not None and batch.linear is not None  # gain, width and slant: kept per letter
    moved = draw(table, batch, data.canvas, dx=2, dy=-1)
    rolled = torch.roll(draw(table, batch, data.canvas), (-1, 2), (-2, -1))  # whole pixels: the same letter
    assert torch.allclose(rolled, moved, atol=1e-5)  # up to float rounding of the pixel centres


def test_the_pool_is_drawn_in_smaller_chunks_on_larger_canvases_with_the_same_letters_chosen(monkeypatch):
    """4096 pool letters at a time took 7 GB on a 256 px canvas; the chunk shrinks with the canvas (ink.pool_chunk),
    and a letter's statistics do not depend on its chunk: the same letters are chosen, drawn alike."""
    from invariance_lab.data import datasets
    from invariance_lab.data.ink import pool_chunk

    assert pool_chunk(32) == pool_chunk(16) == 4096 and pool_chunk(64) == 1024 and pool_chunk(256) == 64
    data = DataConfig(letters=["A", "B"], ink="invariant", canvas=48, size=20, train_images=40, test_images=10)
    chosen = {}
    for chunk in (4096, 7):
        monkeypatch.setattr(datasets, "pool_chunk", lambda canvas: chunk)
        chosen[chunk] = training_set(data, glyph_table(data))[0]
    assert torch.equal(chosen[4096], chosen[7])


def test_statistics_of_8_bit_pixels_are_those_of_the_same_image_as_floats():
    """Catches uint8 pixels of an image folder taken as 0-255 (ink_stats._grey): peak and mean_inked 255 times
    too large, against the module's rule that they count as value / 255."""
    x = torch.zeros(2, 3, 6, 6, dtype=torch.uint8)
    x[0, :, 1:4, 2] = 255
    x[1, 1, 2:5, 1:3] = 128
    got, want = ink_statistics(x), ink_statistics(x.float() / 255)
    for k in STATISTICS:
        assert torch.allclose(got[k], want[k]), k
