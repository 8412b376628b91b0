"""The column names of the tidy tables a sweep writes, named once: the measurement (eval/) makes them, the run
folder (store/results.py) checks them, reports and claims read them. docs/metrics.md defines each metric.

    invariance.csv       model, seed, FACTOR_COLUMNS, mode, dx, dy, n_images, METRIC_COLUMNS, MAX_COLUMN, CORRECT_FLIP
                         (angle or scale in place of dx, dy in a rotate or scale sweep: GRID_COLUMNS)
    summary.csv          model, seed, FACTOR_COLUMNS, mode, n_images, n_shifts, CHANCE_COLUMNS, SUMMARY_METRICS, ...,
                         CORRECT_FLIP_SUMMARY, WORST_CASE_COLUMNS
    layers_summary.csv   model, seed, FACTOR_COLUMNS, mode, LAYER_SUMMARY_COLUMNS
    lie.csv              LIE_COLUMNS (model, seed, transform, layer, value)
"""

from __future__ import annotations

METRIC_COLUMNS = ["accuracy", "flip_rate", "prob_change", "neighbor_flip_rate"]  # invariance.csv, per shift
FACTOR_COLUMNS = ["downsample", "head", "padding"]  # the architecture factors, after model and seed
CUSTOM = "custom"  # what the factor columns say for a model of your own (a factory: nn/factory.py)
# summary.csv, per model x seed: accuracy at (0, 0), then the mean and the worst of each metric over the non-zero
# shifts (worst = lowest accuracy, highest of the others); n_classes and at_chance say whether the seed learned.
SUMMARY_METRICS = ["clean_accuracy", *(f"{agg}_{m}" for m in METRIC_COLUMNS for agg in ("mean", "worst"))]
CHANCE_COLUMNS = ["n_classes", "at_chance"]
# Added later (older folders lack them): invariance.csv's max_prob_change, the largest TV distance of any one image
# at the shift; summary.csv's worst shift (the non-zero shift of worst_prob_change) and max_prob_change, the
# largest over every image and non-zero shift: the worst case an --all-shifts sweep certifies.
MAX_COLUMN = "max_prob_change"
WORST_SHIFT_COLUMNS = ["worst_shift_dx", "worst_shift_dy"]
# sweep.transform: the grid columns of invariance.csv (a grid point is a tuple of their values, in this order) and
# its reference point, where flip_rate and prob_change compare. A translate sweep keeps dx, dy (its files stay as
# they were); rotate and scale sweeps have one column instead, the angle (degrees) or the factor (1 = as drawn).
GRID_COLUMNS = {"translate": ("dx", "dy"), "rotate": ("angle",), "scale": ("scale",)}
REFERENCE = {"translate": (0.0, 0.0), "rotate": (0.0,), "scale": (1.0,)}
TRANSFORMS = tuple(GRID_COLUMNS)


def table_transform(table) -> str:
    """The transform whose grid columns a tidy table holds: translate for dx, dy (and for older folders)."""
    return next((t for t, c in GRID_COLUMNS.items() if t != "translate" and c[0] in table.columns), "translate")


def grid_columns(table) -> tuple[str, ...]:
    """The grid columns a tidy table holds: dx, dy, or a rotate or scale sweep's angle or scale."""
    return GRID_COLUMNS[table_transform(table)]


INVARIANT_TV = 1e-6  # a model changes no probability by more than this (float round-off): invariant
# Added later still, at summary.csv's end: the worst case per image over the whole grid, the reference included
# (Michaeli et al., CVPR 2023): robust_accuracy, the fraction of images correct at every shift (NaN unlabelled);
# consistent_fraction, the fraction whose prediction never changes. Not in older folders or in il.summarize of a
# table read back from a CSV (the per-image flags are not in invariance.csv).
ROBUST, CONSISTENT = "robust_accuracy", "consistent_fraction"
WORST_CASE_COLUMNS = [ROBUST, CONSISTENT]
# Added last, after max_prob_change: the flip rate on the images a model classifies correctly at the reference
# (NaN unlabelled, or with none correct), beside flip_rate on all of them: a consistent model can be consistently
# wrong. summary.csv gives its mean and worst over the non-zero shifts before WORST_CASE_COLUMNS.
CORRECT_FLIP = "flip_rate_correct"
CORRECT_FLIP_SUMMARY = [f"mean_{CORRECT_FLIP}", f"worst_{CORRECT_FLIP}"]

# layers.csv (per model x seed x tap x shift) and layers_summary.csv (per model x seed x tap), after model, seed
LAYER_COLUMNS = ["layer", "layer_name", "stride", "dx", "dy", "n_images", "equivariance_error",
                 "pooled_invariance_error"]
LAYER_SUMMARY_COLUMNS = ["layer", "layer_name", "stride", "n_images", "n_shifts", "mean_equivariance_error",
                         "mean_pooled_invariance_error", "normalized_variance"]

# lie.csv (`invlab sweep --metric lie`, eval/lie.py), per model x seed x transform x layer: the Lie derivative's
# value; layer is empty for the softmax output (the mean over images of ||L f(x)||^2), else a tap's name (--layers)
LIE_COLUMNS = ["model", "seed", "transform", "layer", "value"]

# train.csv (per model x seed x epoch, after model, seed): VAL_COLUMNS only when the run has a validation set
# (data.val_fraction or a val/ folder), so train.csv of a run without one keeps its columns
TRAIN_COLUMNS = ["epoch", "train_loss", "train_accuracy", "test_accuracy", "seconds"]
VAL_COLUMNS = ["val_loss", "val_accuracy"]  # after train_accuracy
EPOCH_KEPT = "epoch_kept"  # the checkpoint's record of the epoch whose weights were kept (train.select: best_val)
