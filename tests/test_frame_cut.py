"""docs/frame_cut.py (where the frame cuts a canvas run's test letters, quoted by docs/results.md) on the quick
run, so that the script cannot rot: a grid whose shifts keep every letter whole has no row, and a wider one cuts
letters only from the shift where the largest letter reaches the frame, more of them the further out."""

import importlib.util

import yaml
from conftest import ROOT, untrained_quick_run

spec = importlib.util.spec_from_file_location("frame_cut", ROOT / "docs" / "frame_cut.py")
fc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fc)


def test_only_shifts_past_the_largest_letter_cut_and_the_flips_split_every_image(tmp_path_factory, capsys):
    run = untrained_quick_run(tmp_path_factory)
    assert fc.frame_cuts(run) == []  # quick.yaml's ±2 px keep each letter of 12 px whole on its 24 px canvas
    raw = yaml.safe_load((run / "config.yaml").read_text())
    raw["sweep"]["dy"] = [-11, 11]
    (run / "config.yaml").write_text(yaml.safe_dump(raw))
    rows = fc.frame_cuts(run)
    assert rows and all(r["dx"] == 0 and abs(r["dy"]) >= 5 for r in rows)
    for sign in (-1, 1):
        cut = [r["cut"] for r in sorted(rows, key=lambda r: abs(r["dy"])) if r["dy"] * sign > 0]
        assert cut == sorted(cut) and cut[-1] == rows[0]["images"]  # 11 px out: every letter loses ink
    for r in rows:
        ((cut_flips, whole_flips),) = r["flips"]  # one seed
        assert 0 <= cut_flips <= r["cut"] and 0 <= whole_flips <= r["images"] - r["cut"]
        assert 0 < r["largest_loss"] <= 1
    assert fc.main([str(run)]) == 0
    assert f"| 0 | 11 | {rows[0]['images']} of {rows[0]['images']} |" in capsys.readouterr().out
    assert fc.main([str(run / "missing")]) == 2
