"""The paper configs (configs/papers/): each loads, and Chaman & Dokmanic's claim holds as the config tests it."""

import pandas as pd
import pytest

from invariance_lab.config.load import load_config
from invariance_lab.core.columns import INVARIANT_TV
from invariance_lab.report.papers import paper_views
from invariance_lab.run.experiment import run_experiment
from invariance_lab.schema.paper import comparison
from invariance_lab.store.layout import SUMMARY_CSV
from invariance_lab.store.results import load_result

from conftest import ROOT

PAPERS = sorted((ROOT / "configs" / "papers").glob("*.yaml"))


@pytest.mark.parametrize("path", PAPERS, ids=[p.stem for p in PAPERS])
def test_every_paper_config_loads_with_its_paper_block(path):
    cfg = load_config(path)
    assert cfg.paper, f"{path.name} holds no published numbers"


def test_zhangs_block_holds_only_the_order_of_numbers_from_another_setup():
    cfg = load_config(ROOT / "configs" / "papers" / "zhang2019_blur.yaml")
    assert comparison(cfg.paper) == "order"
    flips = [cfg.paper[m]["mean_flip_rate"] for m in ("baseline", "rect2", "tri3", "bin5")]
    assert flips == sorted(flips, reverse=True)  # the paper's claim: consistency rises with the filter's size


def test_aps_is_consistent_at_every_circular_shift_before_training_and_the_report_says_the_paper_holds(
        tmp_path, one_thread):
    """The claim "100% consistency even before training", on the config's own sweep (all 1024 circular shifts of
    the 32 px canvas), untrained, with few images; max pooling beside it moves its probabilities."""
    cfg = load_config(ROOT / "configs" / "papers" / "chaman2021_aps.yaml",
                      overrides=["seeds=[0, 1]", "train.epochs=0", "data.train_images=20", "data.test_images=10"])
    cfg.models = {m: cfg.models[m] for m in ("baseline", "aps")}
    cfg.paper = {"aps": cfg.paper["aps"]}
    run_dir = run_experiment(cfg, results_dir=tmp_path, threads=1)
    summary = pd.read_csv(run_dir / SUMMARY_CSV)
    aps, baseline = (summary[summary["model"] == m] for m in ("aps", "baseline"))
    assert list(aps["seed"]) == [0, 1] and set(aps["n_shifts"]) == {32 * 32 - 1}
    assert set(aps["consistent_fraction"]) == {1.0} and set(aps["worst_flip_rate"]) == {0.0}
    # untrained, max pooling answers one class too (consistent, and meaningless); its probabilities move, APS's
    # only by float round-off: the sweep could have seen a change
    assert (aps["max_prob_change"] <= INVARIANT_TV).all() and (baseline["max_prob_change"] > 1e-3).all()
    (view,) = paper_views([load_result(run_dir)])
    row = view.table.set_index("model").loc["aps"]
    # every seed at chance (one class for every image): the agreement is marked, since it says nothing
    assert (row["ours"], row["paper"], row["in_ci"]) == ("100.0 ± 0.0", "100.0", "yes †")
