"""data.test_sets measured after training (run/test_sets.py), on a reduced run of the Red-Green paper config."""

import filecmp

import pandas as pd
import pytest

from invariance_lab.config.load import load_config
from invariance_lab.report.papers import per_test_set_views
from invariance_lab.run.experiment import run_experiment, sweep_experiment
from invariance_lab.schema.sweep import SweepConfig
from invariance_lab.store.results import load_result
from invariance_lab.store.layout import SUMMARY_CSV, other_test_set_dir

from conftest import ROOT

PAPER = ROOT / "configs" / "papers" / "kayhan2020_red_green.yaml"
# The paper's circular network, trained one batch of 40 images (50 less the validation fifth) and measured on 20:
# the test sets' equality is the network's stride and the boxes' move, whatever the images and the training.
REDUCED = ["seeds=[0, 1]", "train.epochs=1", "data.train_images=50", "data.test_images=20", "sweep.dx=[-8, 8, 8]"]


@pytest.fixture(scope="module")
def circular_run(tmp_path_factory, one_thread):
    cfg = load_config(PAPER, overrides=REDUCED)
    cfg.models = {"circular": cfg.models["circular"]}
    cfg.paper = {"circular": cfg.paper["circular"]}  # the run's config.yaml is read again by invlab sweep
    results = tmp_path_factory.mktemp("papers")
    return cfg, results, run_experiment(cfg, results_dir=results, threads=1)


def test_the_circular_models_similar_and_dissimilar_numbers_are_equal_seed_by_seed(circular_run):
    """The dissimilar boxes are the similar ones rolled 16 rows, a multiple of the circular network's total stride
    8, and nothing wraps: every number of the two test sets is the same for every seed (docs/papers.md)."""
    _, _, run_dir = circular_run
    own = pd.read_csv(run_dir / SUMMARY_CSV)
    other = pd.read_csv(other_test_set_dir(run_dir, "dissimilar") / SUMMARY_CSV)
    assert list(own.columns) == list(other.columns) and list(own["seed"]) == [0, 1]
    metrics = [c for c in own.columns if c.startswith(("clean_", "mean_", "worst_"))]
    pd.testing.assert_frame_equal(own[metrics], other[metrics], atol=1e-9, rtol=0)


def test_a_run_without_test_sets_writes_the_same_files_from_the_same_checkpoints(circular_run):
    """Test sets change no fingerprint (the checkpoints are reused, nothing is trained) and leave the run's own
    tables byte for byte as a run without them writes them."""
    cfg, results, run_dir = circular_run
    plain = cfg.model_copy(update={"data": cfg.data.model_copy(update={"test_sets": None})})
    again = run_experiment(plain, results_dir=results, threads=1)
    assert again != run_dir and not (again / "test_sets").exists()
    for name in ("summary.csv", "invariance.csv"):
        assert filecmp.cmp(run_dir / name, again / name, shallow=False)


def test_a_sweep_measures_the_test_sets_on_its_grid_and_on_the_runs_grid_gives_the_runs_tables(circular_run):
    """invlab sweep measures data.test_sets too (sweeps/<id>/test_sets/<name>/): on the run's own grid, byte for byte
    the run's tables; on a new grid, the new shifts; a part displacement measures the run's own letters only."""
    _, _, run_dir = circular_run
    same = sweep_experiment(run_dir, threads=1)
    for name in (SUMMARY_CSV, "invariance.csv"):
        assert filecmp.cmp(other_test_set_dir(run_dir, "dissimilar") / name,
                           other_test_set_dir(same, "dissimilar") / name, shallow=False)
    wider = sweep_experiment(run_dir, SweepConfig(mode="canvas", dx=[-4, 4, 4], dy=[0, 0]), threads=1)
    inv = pd.read_csv(other_test_set_dir(wider, "dissimilar") / "invariance.csv")
    assert sorted(set(inv["dx"])) == [-4, 0, 4]
    (view,) = per_test_set_views([load_result(wider)])  # the sweep folder's report has a column per test set
    assert view.values == ["default", "dissimilar"] and list(view.table["n_seeds"]) == [2]


def test_what_run_and_sweep_print_shows_the_clean_accuracy_on_every_test_set(circular_run):
    """The table `invlab run` and `invlab sweep` print at the end holds the other test sets' clean accuracy
    (data.test_sets), beside the run's own: the number the Red-Green experiment is about."""
    from rich.console import Console

    from invariance_lab.report.display import brief_tables

    _, _, run_dir = circular_run
    console = Console(width=200, record=True)
    for table in brief_tables(load_result(run_dir), title="run"):
        console.print(table)
    text = console.export_text()
    assert "clean_accuracy per test set" in text and "dissimilar" in text
    row = next(line for line in text.splitlines() if line.lstrip("│ ").startswith("circular") and line.count("±") == 2)
    own, other = (pd.read_csv(d / SUMMARY_CSV)["clean_accuracy"].mean()
                  for d in (run_dir, other_test_set_dir(run_dir, "dissimilar")))
    assert row.index(f"{own:.3f} ±") < row.index(f"{other:.3f} ±", row.index(f"{own:.3f} ±") + 1), row
