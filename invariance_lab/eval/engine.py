"""The all-shift engine: a circular network's output for every circular shift of its input, exactly, from one
polyphase pass per batch instead of one forward pass per shift (shift-and-stitch).

    plan = allshift_plan(model, canvas=32)          # NotApplicable, with the reason, where it does not apply
    logits = plan.logits(x, [(dx, dy), ...])         # (shifts, N, classes): the same as model(roll(x)) per shift
    plans = choose_engines(models, canvas, "circular", "auto")   # per model a Plan, or None for brute force
    result = allshift_sweep(plans, inputs, labels, lines, batch_size, device)   # what run_sweep returns

Why it is exact. Let x be a C x C map and s a shift (one axis shown; the other works alike). A layer that
commutes with circular shifts (a stride-1 conv with circular padding, a pointwise ReLU, a stride-1 blur or max
pool padded circularly) gives L(roll(x, s)) = roll(L(x), s). A stride-2 layer (strided conv, 2 x 2 max or average
pooling with stride 2, BlurPool, APS) on an even side commutes with even shifts, L(roll(x, 2q)) = roll(L(x), q),
so writing s = 2q + p with p in {0, 1}:

    L(roll(x, s)) = roll(L(roll(x, p)), q)

Both parities per axis (four polyphase offsets in 2-D) are the branches of that layer; every shift's output is a
roll of one branch. Through k stride-2 layers the branches form a tree with 4^k leaves (pruned to the residues
the requested shifts need); shift s reaches leaf s mod 2^k, rolled by (s mod C) >> k. The head finishes: a
roll-invariant one (global average or max) pools each leaf once; any other (flatten) gets the roll, then the
dense layer, once per shift. Stride-1 work runs once per branch: in a block conv + ReLU + 2 x 2 max pooling, the
conv runs on each node and only the pooling on its four offsets. Only the model's own modules run, on the same
values, so the numbers are the brute force's up to float round-off (the summation order of a rolled map, a batch
of another size).

APS is no exception: as a stride-2 layer it is evaluated on all four offsets (its choice of component is made
on each branch, as brute force makes it), and only its equivariance to even shifts is used: its components are
then merely rolled, with the same norms (aps.py).

Models it reads: InvNet (every block by its rule, the head from HEADS) and nn.Sequential, as custom factories
may return (its longest leading run of modules with a rule; the rest is the head, run per shift, so it may hold
anything; global pooling first makes it roll-invariant). Where it does not apply, and the sweep falls back to
brute force (`auto`) or refuses (`allshift` asked for): zero, reflect or valid padding (the border does not move
with a roll), canvas shifts and part displacements (not rolls of the input), a stride-2 layer on an odd side
(its shifts by one pixel have no polyphase counterpart), a module without a rule in RULES, and a model whose
forward pass is its own code. Register a rule for a new layer kind with
`@register_rule(ModuleType)`: it returns the module's steps, each "map" (commutes with circular shifts, keeps the
side) or "down" (stride 2: commutes with even shifts, halves an even side); the sizes are checked by a trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from ..core.progress import progress_bar
from ..core.errors import InvlabError, choose
from ..nn.logits import class_logits
from .accumulate import Grid, ShiftSums, sweep_result
from .engine_plan import Plan, allshift_plan  # noqa: F401  (allshift_plan: part of this module's API)
from .engine_rules import NotApplicable
from .tables import SweepResult, tidy_table


# ----------------------------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class Engine:
    name: str
    words: str  # for the protocol line


ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine("allshift", "all-shift engine (exact polyphase evaluation of every shift)"),
    Engine("brute", "brute force (one forward pass per shift)"),
)}
ENGINE_CHOICES = ("auto", *ENGINES)  # auto: allshift for each model where it applies, brute force elsewhere
SUBPIXEL_MODE = "circular sub-pixel"  # a circular sweep with fractional (fft) shifts: not rolls of the input


# ----------------------------------------------------------------------------------------------- choosing


def plan_for(model: nn.Module, canvas: int, mode: str = "circular") -> Plan:
    """allshift_plan for a sweep in `mode` (circular, canvas, parts); NotApplicable outside circular sweeps."""
    if mode == SUBPIXEL_MODE:
        raise NotApplicable("sub-pixel circular shifts (subpixel: fft) are not rolls of the input; the engine "
                            "evaluates whole-pixel circular shifts only")
    if mode in ("rotate", "scale"):  # sweep.transform: a turned or scaled image is no permutation of its pixels
        raise NotApplicable(f"a {mode} sweep turns or scales the image, which is not a roll of it; the engine "
                            "evaluates circular shifts only (brute force: one forward pass per angle or scale)")
    if mode != "circular":
        raise NotApplicable(f"{mode} sweeps do not roll the input; the engine evaluates circular shifts only")
    return allshift_plan(model, canvas)


def roll_mode(mode: str, points) -> str:
    """The mode as plan_for takes it: SUBPIXEL_MODE for a circular sweep with a fractional (fft) shift among
    `points`, else `mode` as it is."""
    if mode == "circular" and any(v != int(v) for p in points for v in p):
        return SUBPIXEL_MODE
    return mode


def why_not(model: nn.Module, canvas: int, mode: str = "circular") -> str | None:
    """Why the engine does not apply to `model` in a sweep of `mode` (None if it does)."""
    try:
        plan_for(model, canvas, mode)
    except NotApplicable as e:
        return str(e)
    return None


def choose_engines(models: dict, canvas: int, mode: str, engine: str = "auto") -> dict:
    """{model key: Plan, or None for brute force}. `mode`: circular (the engine's only setting), canvas or parts.

    auto takes the engine for each model where it applies; allshift refuses (InvlabError, with the reason) where
    it does not; brute never takes it."""
    choose("engine", engine, ENGINE_CHOICES)
    plans = {}
    for key, model in models.items():
        plan = None
        if engine != "brute":
            try:
                plan = plan_for(model, canvas, mode)
            except NotApplicable as e:
                if engine == "allshift":
                    name = key[0] if isinstance(key, tuple) else key
                    raise InvlabError(f"--engine allshift does not apply to model {name}: {e}; use --engine auto "
                                      "(brute force where the engine does not apply) or --engine brute") from None
        plans[key] = plan
    return plans


def engine_protocol(plans: dict, models: dict, canvas: int, mode: str) -> dict:
    """What meta.json records: engine (allshift | brute | mixed), engines {model: allshift | brute} and, for the
    models left to brute force, engine_notes {model: why the engine did not apply}."""
    per_model: dict[str, set] = {}
    for key, plan in plans.items():
        per_model.setdefault(key[0], set()).add("brute" if plan is None else "allshift")
    engines = {m: used.pop() if len(used) == 1 else "mixed" for m, used in per_model.items()}
    kinds = set(engines.values())
    out = dict(engine=kinds.pop() if len(kinds) == 1 else "mixed", engines=engines)
    notes = {}
    for key, plan in plans.items():
        if plan is None and key[0] not in notes:
            reason = why_not(models[key], canvas, mode)
            if reason:
                notes[key[0]] = reason
    if notes:
        out["engine_notes"] = notes
    return out


# ----------------------------------------------------------------------------------------------- the sweep


@torch.inference_mode()
def allshift_sweep(plans: dict, inputs, labels: torch.Tensor | None, lines: list[list[tuple[float, float]]],
                   batch_size: int, device: torch.device, progress: bool = False, n: int | None = None) -> SweepResult:
    """sweep.run_sweep's SweepResult (the same table, to float round-off) from the all-shift plans of circular
    models. inputs(chunk, 0, 0) gives the unshifted test images; every shift is a roll of them. Without labels
    (give n, the number of images) accuracy is NaN. Every shift of a batch is added at once (accumulate.py)."""
    grid = Grid(lines)
    has = [p for p in grid.shifts if p in grid.previous]  # the shifts with a neighbour, and where it is
    at = torch.tensor([grid.index[p] for p in has], dtype=torch.long, device=device)
    before = torch.tensor([grid.index[grid.previous[p]] for p in has], dtype=torch.long, device=device)
    n = len(labels) if labels is not None else n
    labels = labels.to(device) if labels is not None else None
    sums = {k: ShiftSums(grid) for k in plans}
    chunk = min(p.chunk(batch_size, len(grid.shifts)) for p in plans.values())
    bar = progress_bar(len(plans) * math.ceil(n / chunk), "sweep (all-shift engine)", "batch", progress)
    for start in range(0, n, chunk):
        c = slice(start, min(start + chunk, n))
        x = inputs(c, 0.0, 0.0).to(device)
        for key, plan in plans.items():
            probs = torch.softmax(class_logits(plan.logits(x, grid.shifts)).float(), dim=-1)  # (S, m, classes)
            pred = sums[key].add(grid.shifts, probs, probs[grid.ref], None if labels is None else labels[c], c)
            if has:
                sums[key].add_neighbours(has, pred[at], pred[before])
            bar.update(1)
    bar.close()
    return sweep_result(sums, n, labelled=labels is not None)


def sweep_by_engine(models: dict, plans: dict, brute, fast):
    """One SweepResult of every model: brute(the models without a plan) and fast(the plans of the rest), each
    called only when it has models; rows in model order. Run sweeps and invlab measure share this split."""
    slow = {k: m for k, m in models.items() if plans[k] is None}
    quick = {k: p for k, p in plans.items() if p is not None}
    parts = ([brute(slow)] if slow else []) + ([fast(quick)] if quick else [])
    if len(parts) == 1:
        return parts[0]
    return SweepResult(table=tidy_table(pd.concat([r.table for r in parts], ignore_index=True).to_dict("records"),
                                        list(models)),
                       clean_accuracy={k: r.clean_accuracy[k] for k in models for r in parts if k in r.clean_accuracy},
                       worst_case={k: r.worst_case[k] for k in models for r in parts if k in r.worst_case})
