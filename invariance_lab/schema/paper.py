"""A config's `paper:` block: the published numbers a run is held against, beside ours in `invlab report`.

    paper:                                   # model -> {metric: number, or [mean, std]}, in percent as printed
      valid: {clean_accuracy: 100.0, dissimilar.clean_accuracy: 0.2}
      circular: {clean_accuracy: [73.7, 1.0], dissimilar.clean_accuracy: [73.7, 1.0]}

A metric is a summary.csv metric (clean_accuracy, mean_flip_rate, ...) of the run's own test set, or
`<test set>.<metric>` of one of data.test_sets. Every summary metric is a fraction; papers print percent, so the
numbers here are percent (0..100). Free-form otherwise: the block changes no training and no measurement (a config
without it keeps its digest and its checkpoints).

Beside the models, one setting: `compare: values` (the default) holds each published number against our interval;
`compare: order` holds only their order, for numbers measured in another setup (ImageNet, another network) whose
values cannot be ours but whose ranking is the paper's claim:

    paper:
      compare: order                         # rank the models by each metric, ours beside theirs
      baseline: {mean_flip_rate: 11.48}
      tri3: {mean_flip_rate: 10.40}
"""

from __future__ import annotations

import math
from typing import Any

from ..core.columns import SUMMARY_METRICS, WORST_CASE_COLUMNS
from ..core.errors import InvlabError, choose
from .fields import _Problem

METRICS = SUMMARY_METRICS + WORST_CASE_COLUMNS
COMPARE = "compare"  # the block's one setting beside the models (a model's entry is a mapping, the setting a word)
COMPARISONS = ("values", "order")


def comparison(paper: dict) -> str:
    """What the block holds against ours: "values" (the default) or "order"."""
    value = paper.get(COMPARE)
    return value if isinstance(value, str) else "values"


def entries(paper: dict) -> dict:
    """The block's models: model -> {metric: published}, without the compare setting."""
    return {m: v for m, v in paper.items() if not (m == COMPARE and isinstance(v, str))}


def published(value: Any) -> tuple[float, float | None]:
    """(mean, std or None) of one published number: a number, or [mean, std]."""
    if isinstance(value, (list, tuple)):
        return float(value[0]), float(value[1])
    return float(value), None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_paper(paper: Any) -> dict:
    """`paper` if it is model -> {metric: percent or [mean, std]}; a _Problem naming the key otherwise. The
    metrics' names are checked against the summary metrics here, the models and test sets by the config."""
    if not isinstance(paper, dict) or not paper:
        raise _Problem((), "paper is a mapping of model -> {metric: number or [mean, std]}, in percent as the paper "
                       "prints them, e.g. {valid: {clean_accuracy: 100.0, dissimilar.clean_accuracy: [0.2, 0.1]}}",
                       paper)
    if isinstance(paper.get(COMPARE), str):
        try:
            choose("comparison", paper[COMPARE], COMPARISONS, error=InvlabError)
        except InvlabError as e:
            raise _Problem((COMPARE,), f"{e} (values: each published number against our interval; order: only "
                           "their ranking, for numbers from another setup)", paper[COMPARE]) from None
    if not entries(paper):
        raise _Problem((), "paper names no model: add model -> {metric: number}", paper)
    for model, metrics in entries(paper).items():
        if not isinstance(metrics, dict) or not metrics:
            raise _Problem((model,), "each model maps metrics to the published numbers, e.g. {clean_accuracy: 99.8}",
                           metrics)
        for key, value in metrics.items():
            metric = str(key).rpartition(".")[2]
            try:
                choose("metric", metric, METRICS, error=InvlabError)
            except InvlabError as e:
                raise _Problem((model, key), f"{e} (a test set's: <test set>.<metric>)", key) from None
            pair = isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_number, value))
            if not (_number(value) or pair) or not 0 <= published(value)[0] <= 100 or (pair and value[1] < 0):
                raise _Problem((model, key), "a published number is a percentage in [0, 100], or [mean, std] "
                               "with std >= 0 (as the paper prints mean ± std)", value)
    if comparison(paper) == "order":
        for key in {k for metrics in entries(paper).values() for k in metrics}:
            if sum(key in metrics for metrics in entries(paper).values()) < 2:
                raise _Problem((COMPARE,), f"compare: order ranks the models by each metric, and only one model "
                               f"has {key}: give it for two or more, or write compare: values", key)
    return paper


def check_names(paper: dict, models, test_sets) -> None:
    """The block's models are the config's and its test sets data.test_sets'; a _Problem otherwise."""
    for model, metrics in entries(paper).items():
        try:
            choose("model", model, models, error=InvlabError)
        except InvlabError as e:
            raise _Problem((model,), f"paper: {e} (the config's models)", model) from None
        for key in metrics:
            test_set = str(key).rpartition(".")[0]
            if test_set:
                try:
                    choose("test set", test_set, test_sets, error=InvlabError)
                except InvlabError as e:
                    raise _Problem((model, key), f"{e} (data.test_sets)" if test_sets else "no data.test_sets: "
                                   f"{key} names test set {test_set!r}; add it under data.test_sets, or write "
                                   f"{str(key).rpartition('.')[2]} for the run's own test set", key) from None
