"""invlab measure --run RUN --images DIR (run/measure_run.py): every checkpoint of a run on an image folder."""

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import untrained_quick_run
from invariance_lab.cli.main import app
from invariance_lab.config.load import load_config
from invariance_lab.core.errors import DataError
from invariance_lab.data.shifts import every_roll
from invariance_lab.run.measure_run import measure_run_to_folder
from invariance_lab.store.results import load_result
from invariance_lab.store.run_images import run_images


def _as_pngs(run_dir, folder, rename=None, first=None):
    """The run's own test letters (the `first` of them, else all) as 8-bit PNGs in class folders (renamed by
    `rename`)."""
    src = run_images(run_dir)
    n = len(src) if first is None else first
    x = src(slice(0, n))
    for i, (image, label) in enumerate(zip(x, src.labels[:n])):
        cls = src.classes[int(label)]
        (folder / (rename or {}).get(cls, cls)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image[0].clamp(0, 1) * 255).round().byte().numpy()).save(
            folder / (rename or {}).get(cls, cls) / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def run_and_images(tmp_path_factory):
    run_dir = untrained_quick_run(tmp_path_factory, seeds="[0, 1]")
    return run_dir, _as_pngs(run_dir, tmp_path_factory.mktemp("pngs"))


def test_every_model_and_seed_of_the_run_is_measured_into_one_table_over_seeds(run_and_images, tmp_path):
    run_dir, images = run_and_images
    folder = measure_run_to_folder(run=run_dir, images=images, dx=[-2, 2, 2], results_dir=tmp_path)
    r, own = load_result(folder), pd.read_csv(run_dir / "summary.csv")
    assert r.meta["kind"] == "measure" and r.meta["seeds"] == [0, 1]
    # labelled as the folder lies (results/measure/<name>-<time>), as a --weights measurement is: not as a run
    assert folder.parent.name == "measure" and r.label == f"measure/{folder.name}"
    assert sorted(zip(r.summary["model"], r.summary["seed"])) == sorted(zip(own["model"], own["seed"]))
    assert set(r.summary["n_images"]) == {12}
    res = CliRunner().invoke(app, ["measure", "--run", str(run_dir), "--images", str(images), "--dx", "0",
                                   "--results-dir", str(tmp_path), "--quiet"])
    assert res.exit_code == 0 and "measure: every checkpoint of" in res.output, res.output


def test_class_folders_that_are_not_the_runs_classes_are_refused(run_and_images, tmp_path):
    run_dir, _ = run_and_images
    images = _as_pngs(run_dir, tmp_path / "pngs", rename={"A": "Z"})
    with pytest.raises(DataError, match="not classes of run"):
        measure_run_to_folder(run=run_dir, images=images, results_dir=tmp_path)
    res = CliRunner().invoke(app, ["measure", "--run", str(run_dir), "--images", str(images), "--model", "m:f"])
    assert res.exit_code == 2 and "--model does not apply" in res.output


def test_a_run_folder_given_as_images_is_named_with_the_command_that_measures_its_test_images(run_and_images, tmp_path):
    run_dir, _ = run_and_images  # it was read as image files: "holds both files (config.yaml, ...) and subfolders"
    res = CliRunner().invoke(app, ["measure", "--run", str(run_dir), "--images", str(run_dir), "--results-dir",
                                   str(tmp_path), "--quiet"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and f"--images {run_dir} is a run folder" in said and f"invlab sweep {run_dir}" in said
    assert not (tmp_path / "measure").exists()


def test_a_rotate_measurement_of_every_checkpoint(run_and_images, tmp_path):
    run_dir, images = run_and_images
    res = CliRunner().invoke(app, ["measure", "--run", str(run_dir), "--images", str(images), "--angles", "-20:20:20",
                                   "--results-dir", str(tmp_path), "--quiet"])
    assert res.exit_code == 0, res.output
    r = load_result(next((tmp_path / "measure").iterdir()))
    assert r.meta["protocol"]["transform"] == "rotate" and r.meta["seeds"] == [0, 1]
    assert sorted(set(r.invariance["angle"])) == [-20.0, 0.0, 20.0] and "dx" not in r.invariance
    at_zero = r.invariance[r.invariance["angle"] == 0.0]
    assert (at_zero["flip_rate"] == 0).all() and (at_zero["prob_change"] == 0).all()  # the reference itself
    assert len(r.invariance) == 3 * len(r.summary)  # every model and seed at every angle


def test_metric_lie_of_every_checkpoint(run_and_images, tmp_path):
    run_dir, images = run_and_images
    folder = measure_run_to_folder(run=run_dir, images=images, dx=[0, 1, 1], metric="lie", layer_images=4,
                                   results_dir=tmp_path)
    lie, summary = load_result(folder).lie, load_result(folder).summary
    assert sorted(set(zip(lie.model, lie.seed))) == sorted(zip(summary.model, summary.seed))
    assert len(lie) == 4 * len(summary) and (lie.value >= 0).all()
    assert load_result(folder).meta["protocol"]["lie"]["n_images"] == 4


def test_all_shifts_rolls_every_checkpoint_over_the_runs_canvas(run_and_images, tmp_path):
    run_dir, _ = run_and_images
    images = _as_pngs(run_dir, tmp_path / "pngs", first=2)  # every roll is many shifts: two images will do
    folder = measure_run_to_folder(run=run_dir, images=images, all_shifts=True, results_dir=tmp_path)
    r, canvas = load_result(folder), load_config(run_dir / "config.yaml").data.canvas
    p = r.meta["protocol"]
    assert p["all_shifts"] is True and p["mode"] == "circular" and p["n_shifts"] == canvas * canvas
    assert p["dx"] == p["dy"] == every_roll(canvas)
    assert len(r.invariance) == canvas * canvas * len(r.summary)  # every model and seed at every roll


# ------------------------------------------------------------ what a mutation audit found untested

def test_a_folder_of_one_class_is_labelled_by_its_name_and_rows_go_model_by_model(run_and_images, tmp_path):
    """B/ alone was labelled by position (output 0, A): the same images scored as A/ and as B/ must add up to 1.
    Also: rows model by model with seeds within, as a run's own tables, and the run's fingerprints recorded."""
    import json
    import shutil

    run_dir, images = run_and_images
    accuracy = {}
    for name in ("A", "B"):
        shutil.copytree(images / "B", tmp_path / name / name)
        folder = measure_run_to_folder(run=run_dir, images=tmp_path / name, dx=[0, 0, 1], results_dir=tmp_path / "r")
        r = load_result(folder)
        accuracy[name] = r.summary.set_index(["model", "seed"])["clean_accuracy"]
    assert ((accuracy["A"] + accuracy["B"]) - 1).abs().max() < 1e-9, accuracy
    assert list(zip(r.summary.model, r.summary.seed)) == [("conv_only", 0), ("conv_only", 1), ("conv_gap", 0),
                                                          ("conv_gap", 1)]
    assert r.meta["fingerprints"] == json.loads((run_dir / "meta.json").read_text())["fingerprints"]


def test_images_of_another_size_are_read_at_the_runs_canvas(run_and_images, tmp_path):
    """Images were read at their own size: a flattening network refused them, a pooling one saw other letters."""
    run_dir, images = run_and_images
    for png in images.glob("*/*.png"):
        (tmp_path / "big" / png.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(png).resize((48, 48)).save(tmp_path / "big" / png.parent.name / png.name)
    folder = measure_run_to_folder(run=run_dir, images=tmp_path / "big", dx=[0, 0, 1], results_dir=tmp_path / "r")
    assert set(load_result(folder).summary["n_images"]) == {12}


def test_an_unfinished_run_is_refused_saying_its_state(run_and_images, tmp_path):
    """A failed run's checkpoints were measured as if the run were finished."""
    import json
    import shutil

    from invariance_lab.core.errors import RunFolderError

    run_dir, images = run_and_images
    stopped = tmp_path / "quick" / run_dir.name
    shutil.copytree(run_dir, stopped)
    meta = json.loads((stopped / "meta.json").read_text())
    (stopped / "meta.json").write_text(json.dumps(dict(meta, status="failed")))
    with pytest.raises(RunFolderError, match=r"is not a finished run \(status: failed\)"):
        measure_run_to_folder(run=stopped, images=images, dx=[0, 0, 1], results_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
