"""report/answer.py: the sentence that opens the HTML page, on model tables built by hand (the shape of
tables.model_table): the right model or head named with its numbers, overlapping intervals worded as within the
seed spread, models at chance left out and named, one model, a page of `invlab measure` folders."""

import math

import pandas as pd
import pytest

from invariance_lab.report.answer import answer, pct, pct_range


def table(*rows, run=None):
    """A model table: rows (model, head, mean flip rate, (lo, hi) or None for one seed[, n_chance])."""
    out = []
    for model, head, mean, interval, *chance in rows:
        lo, hi = interval if interval else (math.nan, math.nan)
        out.append(dict(model=model, downsample="none", head=head, padding="zeros",
                        n_seeds=3 if interval else 1, n_chance=chance[0] if chance else 0,
                        mean_flip_rate=mean, mean_flip_rate_ci=(hi - lo) / 2, mean_flip_rate_lo=lo,
                        mean_flip_rate_hi=hi, worst_flip_rate=min(1.0, 2 * mean)))
    t = pd.DataFrame(out)
    if run is not None:
        t.insert(0, "run", run)
    return t


SEED_QUESTION = table(("conv_only", "flatten", 0.291, (0.25, 0.33)),
                      ("conv_maxpool", "flatten", 0.388, (0.35, 0.42)),
                      ("strided_conv", "flatten", 0.33, (0.30, 0.36)),
                      ("conv_gap", "global_avg", 0.004, (0.001, 0.007)))


@pytest.mark.parametrize("v, want", [(0, "0%"), (0.004, "0.4%"), (0.0001, "< 0.1%"), (0.0996, "10%"),
                                     (0.291, "29%"), (0.0949, "9.5%"), (1.0, "100%")])
def test_percentages(v, want):
    assert pct(v) == want


def test_range_of_percentages():
    assert pct_range(0.291, 0.388) == "29–39%" and pct_range(0.29, 0.2901) == "29%"


def test_head_named_when_its_models_are_apart():
    text = answer(SEED_QUESTION)
    assert text.startswith("Global average pooling makes the network most invariant: 0.4% of predictions change")
    assert "against 29–39% for the flatten + dense heads" in text
    assert "conv_only" not in text  # the heads are the answer; the table names the models


def test_head_not_named_when_an_interval_overlaps():
    """One flatten model as low as the pooled one: no head claim; the ranking, with the tie said."""
    t = table(("conv_gap", "global_avg", 0.004, (0.001, 0.007)), ("conv_only", "flatten", 0.291, (0.25, 0.33)),
              ("lucky_flat", "flatten", 0.01, (0.0, 0.02)))
    text = answer(t)
    assert "Global average pooling" not in text
    assert text.startswith("Most invariant: conv_gap, 0.4% of predictions change")
    assert "least: conv_only, 29% (95% interval 25–33% over 3 seeds)" in text
    assert "lucky_flat is within the seed spread of conv_gap (95% intervals overlap)" in text


def test_most_and_least_named_whatever_the_table_order():
    t = table(("blurred", "global_avg", 0.30, (0.28, 0.32)), ("plain", "global_avg", 0.05, (0.04, 0.06)),
              ("middle", "global_avg", 0.12, (0.10, 0.14)))
    text = answer(t)
    assert text.startswith("Most invariant: plain, 5.0% of predictions change when the letter moves "
                           "(95% interval 4.0–6.0% over 3 seeds); least: blurred, 30%")
    assert "seed spread" not in text  # every interval apart


def test_overlapping_intervals_are_no_winner():
    t = table(("a", "global_avg", 0.10, (0.02, 0.18)), ("b", "global_avg", 0.14, (0.06, 0.22)))
    text = answer(t)
    assert text.startswith("No model is shown more invariant than another")
    assert "the 95% intervals overlap: the difference is within the seed spread" in text
    assert "Most invariant" not in text


def test_one_seed_claims_no_spread():
    t = table(("a", "global_avg", 0.02, None), ("b", "flatten", 0.30, None))
    text = answer(t)
    assert "Fewest changes: a, 2.0%" in text and "most: b, 30%" in text
    assert "not known" in text and "makes the network" not in text  # no head claim without an interval


def test_models_at_chance_left_out_and_named():
    """conv_gap never flips because it answers one class: it must not be named the most invariant."""
    t = table(("conv_only", "flatten", 0.121, (0.0, 0.70)), ("conv_gap", "global_avg", 0.0, (0.0, 0.0), 2))
    text = answer(t)
    assert text.startswith("conv_only: 12% of predictions change when the letter moves (mean over the non-zero "
                           "shifts; 95% interval 0–70% over 3 seeds; at the worst shift 24%).")
    assert "conv_gap (2 of 3 seeds) answers at chance" in text and "says nothing about invariance" in text
    assert "Most invariant" not in text and "Global average" not in text


def test_every_model_at_chance():
    t = table(("a", "flatten", 0.0, (0.0, 0.0), 3), ("b", "global_avg", 0.0, (0.0, 0.0), 1))
    text = answer(t)
    assert text.startswith("No model can be compared")
    assert "a (3 of 3 seeds) and b (1 of 3 seeds) answer at chance" in text


def test_one_model_only():
    text = answer(table(("conv_gap", "global_avg", 0.004, (0.001, 0.007))))
    assert text == ("conv_gap: 0.4% of predictions change when the letter moves (mean over the non-zero shifts; "
                    "95% interval 0.1–0.7% over 3 seeds; at the worst shift 0.8%).")


def test_measure_folder_names_the_images_not_letters():
    protocol = dict(kind="translation", mode="canvas", dx=[-8.0, 8.0, 1.0], dy=[0.0, 0.0, 1.0], test_images=40,
                    images="/data/cats", seeds=[0])
    text = answer(table(("mynet", "?", 0.0625, None)), measure=protocol)
    assert text == ("mynet: 6.2% of predictions change when the 40 images of /data/cats are shifted by dx -8..8 "
                    "inside their frame (mean over the non-zero shifts; at the worst shift 12%).")
    assert "letter" not in text


def test_a_measure_over_every_roll_says_so_not_its_ranges():
    protocol = dict(kind="translation", mode="circular", dx=[-3.0, 4.0, 1.0], dy=[-2.0, 3.0, 1.0], test_images=40,
                    images="/data/cats", seeds=[0], all_shifts=True, n_shifts=48)
    text = answer(table(("mynet", "?", 0.0625, None)), measure=protocol)
    assert text.startswith("mynet: 6.2% of predictions change when the 40 images of /data/cats are rolled through "
                           "all 48 circular shifts (mean over"), text


def test_a_rotate_or_scale_measure_says_the_images_were_turned_or_scaled():
    protocol = dict(kind="translation", mode="canvas", transform="rotate", angles=[-40.0, 40.0, 10.0], test_images=40,
                    images="/data/cats", seeds=[0])
    text = answer(table(("mynet", "?", 0.0625, None)), measure=protocol)
    assert text.startswith("mynet: 6.2% of predictions change when the 40 images of /data/cats are turned by "
                           "-40..40 degrees about their centre (mean over"), text
    protocol.update(transform="scale", scales=[0.8, 1.2, 0.1])
    assert "are scaled by factors 0.8..1.2 about their centre" in answer(table(("mynet", "?", 0.0625, None)),
                                                                        measure=protocol)


@pytest.mark.parametrize("transform, words", [("translate", "when the letter moves"),
                                              ("rotate", "when the letter is turned"),
                                              ("scale", "when the letter is scaled")])
def test_a_sweeps_transform_is_what_the_letters_underwent(transform, words):
    assert words in answer(table(("conv_gap", "global_avg", 0.004, (0.001, 0.007))), transform=transform)


def test_several_runs_name_the_run():
    t = pd.concat([table(("m", "global_avg", 0.02, (0.01, 0.03)), run="a/1"),
                   table(("m", "global_avg", 0.20, (0.18, 0.22)), run="b/2")], ignore_index=True)
    text = answer(t)
    assert text.startswith("Most invariant: m (a/1), 2.0%") and "least: m (b/2), 20%" in text


def test_lone_measured_model_at_chance_names_the_images():
    protocol = dict(mode="circular", dx=[-3.0, 3.0, 1.0], dy=[-1.0, 1.0, 1.0], test_images=12, images="imgs")
    text = answer(table(("mynet", "?", 0.0, None, 1)), measure=protocol)
    assert text == ("mynet (1 of 1 seed) answers at chance on the 12 images of imgs: its flip rate says nothing "
                    "about invariance.")


def test_measured_on_a_run_folders_own_images():
    protocol = dict(mode="circular", dx=[-3.0, 3.0, 1.0], dy=[-1.0, 1.0, 1.0], test_images=40,
                    images="the test images of run results/quick/r1")
    text = answer(table(("mynet", "?", 0.25, None)), measure=protocol)
    assert ("25% of predictions change when the test images of run results/quick/r1 (40 images) are shifted by "
            "dx -3..3 and dy -1..1 with wrap-around") in text


def test_a_middle_model_apart_from_the_worst_is_not_called_no_different():
    """The ends' intervals overlapping said "No model is shown more invariant than another" even where a model in
    between is clearly apart from the worst (11-13% against 70-90%)."""
    t = table(("a", "flatten", 0.10, (0.0, 0.75)), ("b", "flatten", 0.12, (0.11, 0.13)),
              ("c", "flatten", 0.80, (0.70, 0.90)))
    text = answer(t)
    assert "No model is shown" not in text
    assert "their 95% intervals overlap, but these are apart: b (12%) below c (80%)." in text


def test_one_seed_words_belong_to_the_model_with_one_seed():
    """--drop-chance can leave one seed of the most invariant model: "(one seed: no interval ...)" was said after
    the least invariant one, which had three."""
    t = table(("gap", "global_avg", 0.001, None), ("only", "flatten", 0.37, (0.26, 0.48)))
    text = answer(t)
    assert text.startswith("Fewest changes: gap, 0.1% of predictions change when the letter moves (one seed: no "
                           "interval); most: only, 37% (95% interval 26–48% over 3 seeds)")


def test_a_study_names_each_models_setting_not_the_model_twice():
    t = table(("conv_only", "flatten", 0.092, (0.05, 0.13)), ("conv_only", "flatten", 0.35, (0.30, 0.40)))
    t.insert(0, "data.train_shift", [3, 0])  # report/study.py: the varied keys first, no run column
    text = answer(t)
    assert "conv_only (data.train_shift=3), 9.2%" in text and "conv_only (data.train_shift=0), 35%" in text


def test_unlabelled_images_say_that_at_chance_is_not_known():
    protocol = dict(mode="canvas", dx=[-3.0, 3.0, 1.0], dy=[0.0, 0.0, 1.0], test_images=10, images="flat",
                    labels=False)
    text = answer(table(("const", "?", 0.0, None)), measure=protocol)
    assert text.endswith("The images have no labels, so whether a model answers at chance is not known: one that "
                         "gives every image the same class changes 0% too.")
    assert "no labels" not in answer(table(("const", "?", 0.0, None)), measure={**protocol, "labels": True})


def test_a_model_with_one_seed_is_set_apart_and_the_others_still_ranked():
    """One model left with one seed (after --drop-chance) hid the clear difference between the others."""
    t = table(("gap", "global_avg", 0.004, (0.001, 0.007)), ("flat", "flatten", 0.35, (0.30, 0.40)),
              ("one", "flatten", 0.60, None))
    text = answer(t)
    assert text.startswith("Global average pooling makes the network most invariant")
    assert text.endswith("Not ranked, with one seed and so no interval: one (60%).")


def test_many_models_at_chance_are_counted_not_listed():
    t = table(("ok", "flatten", 0.2, (0.1, 0.3)), *((f"m{i}", "flatten", 0.0, (0.0, 0.0), 3) for i in range(6)))
    text = answer(t)
    assert "6 models (marked † in the table) have seeds that answer at chance" in text and "m3" not in text


def test_a_varied_value_reads_as_the_legends_write_it():
    t = table(("m", "flatten", 0.1, (0.05, 0.15)), ("m", "flatten", 0.5, (0.45, 0.55)))
    t.insert(0, "data.train_shift", [0.0, 1.5])  # a float column: 0 is read back as 0.0
    assert "m (data.train_shift=0), 10%" in answer(t) and "m (data.train_shift=1.5)" in answer(t)


def test_intervals_that_touch_at_one_end_overlap():
    """Catches a strict comparison in the overlap rule: intervals sharing an end are not apart."""
    t = table(("a", "global_avg", 0.10, (0.05, 0.25)), ("b", "global_avg", 0.30, (0.25, 0.35)))
    assert answer(t).startswith("No model is shown more invariant than another")


def test_at_most_three_apart_pairs_are_listed_and_more_are_said():
    """Catches a changed cap on the pairs listed when the ends overlap, or a lost "(and more)"."""
    wide = table(("a", "flatten", 0.10, (0.0, 0.95)), ("b", "flatten", 0.12, (0.11, 0.13)),
                 ("c", "flatten", 0.80, (0.70, 0.90)), ("d", "flatten", 0.90, (0.85, 0.96)))
    text = answer(wide)  # apart: b-c, b-d (two pairs)
    assert "these are apart: b (12%) below c (80%); b (12%) below d (90%)." in text and "(and more)" not in text
    three = table(("a", "flatten", 0.10, (0.0, 0.95)), ("b", "flatten", 0.12, (0.11, 0.13)),
                  ("e", "flatten", 0.50, (0.45, 0.55)), ("c", "flatten", 0.80, (0.70, 0.90)))
    text = answer(three)  # apart: b-e, b-c, e-c (three pairs: all listed, no "and more")
    assert text.count(" below ") == 3 and "(and more)" not in text
    four = table(("a", "flatten", 0.10, (0.0, 0.95)), ("b", "flatten", 0.12, (0.11, 0.13)),
                 ("e", "flatten", 0.50, (0.45, 0.55)), ("c", "flatten", 0.80, (0.70, 0.90)),
                 ("d", "flatten", 0.92, (0.91, 0.93)))
    text = answer(four)
    assert text.count(" below ") == 3 and text.endswith("(and more).")


def test_one_other_model_is_named_as_one_head():
    """Catches "heads" said of a single other model in the head sentence."""
    t = table(("gap", "global_avg", 0.004, (0.001, 0.007)), ("flat", "flatten", 0.35, (0.30, 0.40)))
    assert "against 35% for the flatten + dense head (means over seeds" in answer(t)


def test_a_measure_with_ranked_models_does_not_repeat_the_images_for_those_at_chance():
    """Catches the images named again in the at-chance sentence when the ranking already named them."""
    protocol = dict(mode="canvas", dx=[-3.0, 3.0, 1.0], dy=[0.0, 0.0, 1.0], test_images=12, images="imgs")
    text = answer(table(("ok", "?", 0.2, None), ("stuck", "?", 0.0, None, 1)), measure=protocol)
    assert "stuck (1 of 1 seed) answers at chance: its flip rate" in text
    assert text.count("the 12 images of imgs") == 1
