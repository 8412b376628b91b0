"""run_images.py: a run's test letters as images to measure, and the export docs/measure.md makes of them (PNGs in
class folders, read back by the image-folder reader with the same classes and labels)."""

from conftest import untrained_quick_run

import invariance_lab as il


def test_a_runs_test_letters_export_as_png_folders_that_read_back(tmp_path_factory, tmp_path):
    run = untrained_quick_run(tmp_path_factory)
    test = il.run_images(run)
    assert test.n == 12 and test.classes == ["A", "B"] and sorted(set(test.labels.tolist())) == [0, 1]
    il.write_folder(test.tensor, tmp_path / "png", test.labels, test.classes)
    back = il.open_folder(tmp_path / "png")
    assert back.n == test.n and back.classes == test.classes and back.shape == test.shape
    # class folders are read in order, so labels come back sorted; each class keeps its count and its pixels to 8 bits
    for label in (0, 1):
        ours, theirs = test.tensor[test.labels == label], back(slice(0, back.n))[back.labels == label]
        assert len(ours) == len(theirs) and (ours - theirs).abs().max() <= 0.5 / 255 + 1e-6
