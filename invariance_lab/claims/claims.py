"""The question's six claims, tested: each claim as the thread words it, the experiment that tests it, and the
judge that turns the numbers into a verdict by the thresholds of rules.py. answers.py runs the experiments and
writes the answers page (<run>/answers.md, or docs/answers.md with --out).

    invlab claims configs/question_claims.yaml --threads 1
    findings = judge_all(cfg, {"run": load_result(run_dir), "every_roll": ..., "layers": ...,
                               "part_focus": load_part_focus(run_dir / "part_focus")})

Every verdict comes from the numbers of a finished run of configs/question_claims.yaml, its extra sweeps
(answers.SWEEPS: "every_roll", "layers"; evidence.py reads them) and claim 2's part experiment (part_focus.py,
judged by part_tests.py). A verdict's scope says, in the verdict table, the conditions it holds under.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import RunFolderError
from ..core.stats import clip_interval
from ..report.tables import LAYER_RANGE, Result, layer_table
from ..schema.config import Config
from ..store.layout import LAYERS_CSV
from .evidence import Evidence, Finding, Stat, compare, exact_on_lattice_only, lattice, lattice_numbers, tv
from .part_focus import PART_MODELS
from .part_tests import part_finding
from .protocol import pct, pct_interval, ratio
from .rules import (AGREE_TV, ALPHA, APPROX, APPROX_EQUIVARIANCE, APPROX_FLIP, CIRCULAR, EXACT_EQUIVARIANCE, EXACT_TV,
    FAILS, HOLDS, MIN_REMOVAL, PART_SPAN, PARTLY, POWER, POWERED_FRACTION, UNDECIDED, within_flip)

# ----------------------------------------------------------------------------------------------- the claims


@dataclass(frozen=True)
class Claim:
    number: int
    text: str  # as the thread words it
    experiment: str
    rule: str  # how the verdict is decided
    sources: tuple[str, ...]  # "run" (the run's own sweep) and keys of answers.SWEEPS
    models: tuple[str, ...]  # the models whose numbers decide (seeds at chance make it UNDECIDED)
    judge: Callable[[Evidence], Finding]


CLAIMS: list[Claim] = []


def claim(text: str, experiment: str, rule: str, sources: tuple[str, ...], models: tuple[str, ...]):
    def register(judge):
        CLAIMS.append(Claim(len(CLAIMS) + 1, text, experiment, rule, sources, models, judge))
        return judge
    return register


@claim("Convolution feature maps are equivariant",
       "Layer profile under circular shifts along each axis over the whole canvas, by brute force: the relative "
       "equivariance error ||F(Tx) - T'F(x)|| / ||F(x)|| of every conv and downsampling tap (T' = the shift divided "
       "by the tap's cumulative stride, defined where it divides), for stride-1 networks with circular padding "
       "(global average and global max heads), stride-2 networks with circular padding (strided conv, max pooling) "
       "and a stride-1 network with zero padding.",
       f"holds if every tap of the stride-1 circular networks has error (mean over images) <= {EXACT_EQUIVARIANCE:g} "
       f"at every shift and seed (exact), holds only approximately if <= {APPROX_EQUIVARIANCE:g}, else does not "
       "hold; the condition says whether stride-2 taps are exact at multiples of their stride (and change elsewhere: "
       f"pooled error of the last tap > {EXACT_EQUIVARIANCE:g}) and whether zero padding is exact.",
       ("layers",), ("gap_circular", "gmp_circular", "strided_gmp_circular", "maxpool_gap_circular", "gap_zeros"))
def _equivariance(ev: Evidence) -> Finding:
    r = ev.results["layers"]
    if r.layer_shifts is None:  # store/results checks it beside layers_summary.csv
        raise RunFolderError(f"{r.path}: the layer sweep has no {LAYERS_CSV} (each tap's error at each shift) beside "
                             "its layers_summary.csv; the folder was edited")
    taps = r.layer_shifts
    taps = taps[(taps.layer_name != "head") & ((taps.dx != 0) | (taps.dy != 0))]
    means, ci = layer_table([r], "mean_equivariance_error")
    worst, numbers = {}, []
    for m in ("gap_circular", "gmp_circular", "strided_gmp_circular", "maxpool_gap_circular", "gap_zeros"):
        mine = taps[taps.model == m]
        worst[m] = float(mine.equivariance_error.max())
        last = mine.layer_name.iloc[-1]  # the deepest tap: block<n>.down
        row = (r.label, m)
        lo, hi, _ = clip_interval(means.loc[row, last], ci.loc[row, last], *LAYER_RANGE)
        numbers += [("largest equivariance error (mean over images; any tap and seed, at the shifts where it is "
                     "defined: multiples of the tap's stride)", m, tv(worst[m])),
                    (f"mean equivariance error at {last}", m,
                     str(Stat(means.loc[row, last], ci.loc[row, last], float(lo), float(hi), LAYER_RANGE)))]
    stride1 = max(worst["gap_circular"], worst["gmp_circular"])
    stride2 = max(worst["strided_gmp_circular"], worst["maxpool_gap_circular"])
    moved = 0.0
    for m in ("strided_gmp_circular", "maxpool_gap_circular"):
        mine = taps[taps.model == m]
        last = mine[mine.layer_name == mine.layer_name.iloc[-1]]
        step = int(last.stride.iloc[0])
        error = float(last[~lattice(last, step)].pooled_invariance_error.max())
        what = f"largest pooled (channel-mean) error of {last.layer_name.iloc[0]} between multiples of {step}"
        numbers.append((what, m, ratio(error)))
        moved = max(moved, error)
    verdict = HOLDS if stride1 <= EXACT_EQUIVARIANCE else APPROX if stride1 <= APPROX_EQUIVARIANCE else FAILS
    parts = [(f"{'exactly' if verdict == HOLDS else 'not exactly'} for stride-1 convolutions with circular padding "
             f"(largest error {tv(stride1)} over every tap, shift and seed)")]
    if stride2 <= EXACT_EQUIVARIANCE and moved > EXACT_EQUIVARIANCE:
        parts.append(f"after a stride-2 layer only for shifts that are multiples of the cumulative stride (there "
                     f"{tv(stride2)}); in between the map is no shifted copy (its channel means move by up to "
                     f"{ratio(moved, '.2g')})")
    else:
        parts.append(f"after a stride-2 layer: largest error {tv(stride2)} at multiples of the stride, pooled "
                     f"error {ratio(moved, '.2g')} in between")
    z = worst["gap_zeros"]
    one = taps[(taps.model == "gap_zeros") & (taps.dx == 1) & (taps.dy == 0)]
    first, deep = (float(one[one.layer_name == one.layer_name.iloc[k]].equivariance_error.max()) for k in (0, -1))
    taps_1px = f"{one.layer_name.iloc[0]}; {one.layer_name.iloc[-1]}"
    numbers.append((f"largest equivariance error at a 1 px shift: {taps_1px}", "gap_zeros",
                    f"{tv(first)}; {ratio(deep)}"))
    parts.append(f"not with zero padding (largest error {z:.2g}; at a 1 px shift {tv(first)} in the first block, "
                 f"whose input background is 0 like the padding, but {ratio(deep, '.2g')} in the last)"
                 if z > EXACT_EQUIVARIANCE else f"also with zero padding (largest error {tv(z)})")
    scope = ("for stride-1 convolutions with circular padding only; after stride 2 only at multiples of the stride"
             f"{'' if z <= EXACT_EQUIVARIANCE else '; not with zero padding'}" if verdict == HOLDS else "")
    return Finding(verdict, "; ".join(parts), numbers, scope)


@claim("Max pooling puts a slightly displaced part back into focus",
       "Part displacement with a part the networks use: per glyph (letter x font) each stroke, and each pair of "
       "strokes, that makes at most half of the letter's drawn length is removed in turn, and the one whose removal "
       "changes the most predictions of the five networks below (every seed; ties: the larger probability change) "
       f"is the part. It is moved by every (dx, dy) of -{PART_SPAN}..{PART_SPAN} px, the rest in place; an image's "
       "probability change (TV) at distance d = max(|dx|, |dy|) is its mean over those displacements: 1 px is less "
       "than a 2x2 max-pooling window's stride (the moved stroke stays in its window at half of the positions, and "
       "crosses into the next at the other half), 2 and 3 px are a stride or more. Max pooling against none, in two pairs with "
       "everything else equal: flatten head with zero padding (conv_maxpool vs conv_only) and global average head "
       "with circular padding (maxpool_gap_circular vs gap_circular); a strided convolution (stride 2 without any "
       "max, flatten head) beside them. Control: the part removed altogether.",
       f"per pair at 1 px (within the pooling window): holds if max pooling's change is lower by a paired t-test "
       f"over the test images (each image's TV averaged over seeds; two-sided, p < {ALPHA:g}) and lower in every "
       f"seed; does not hold if it is higher (p < {ALPHA:g}), or if no difference is found by a test that detects "
       f"one of {POWERED_FRACTION:.0%} of no pooling's change with {POWER:.0%} power; otherwise undecided (the "
       f"test lacks power). It cannot be tested where removing the part changes fewer than {MIN_REMOVAL:.0%} of a "
       "pair's predictions. The claim holds if every pair that can be tested holds, holds for some networks only "
       "if some do, does not hold if a pair does not and none holds, and cannot be tested if no pair can; 2 and 3 px "
       "are reported beside.",
       ("part_focus",), PART_MODELS)
def _part_displacement(ev: Evidence) -> Finding:
    pf = ev.results["part_focus"]
    return part_finding(pf.images, pf.parts)


@claim("Stacking conv + max pooling until a single value gives total invariance",
       "Conv + 2x2 max-pooling blocks until the map is 1x1 ({blocks} on a {canvas} px canvas: total stride {canvas}), "
       "then the dense layer: {canvas_shifts} (zero padding), and every circular shift of the canvas "
       "(circular padding); three blocks + flatten (conv_maxpool) for comparison.",
       f"holds if no image changes by more than {EXACT_TV:g} (TV) at any shift, seed and protocol; holds only "
       f"approximately if the mean flip rate is at most {APPROX_FLIP:g} under both protocols (its whole 95% interval "
       "over seeds); does not hold if it is above under either (the whole interval); else undecided.",
       ("run", "every_roll"), ("maxpool_1x1", "maxpool_1x1_circular", "conv_maxpool"))
def _pool_to_one(ev: Evidence) -> Finding:
    canvas, circ = ev.stat("run", "maxpool_1x1", "mean_flip_rate"), ev.stat("every_roll", "maxpool_1x1_circular",
                                                                            "mean_flip_rate")
    three = ev.stat("run", "conv_maxpool", "mean_flip_rate")
    big = (ev.max_tv("run", "maxpool_1x1"), ev.max_tv("every_roll", "maxpool_1x1_circular"))
    numbers = [("mean flip rate, canvas shifts", "maxpool_1x1", str(canvas)),
               ("worst-shift flip rate, canvas shifts", "maxpool_1x1", str(ev.stat("run", "maxpool_1x1",
                                                                                   "worst_flip_rate"))),
               ("mean flip rate, canvas shifts", "conv_maxpool (3 blocks + flatten)", str(three)),
               ("mean flip rate, every circular shift", "maxpool_1x1_circular", str(circ)),
               ("worst-shift flip rate, every circular shift", "maxpool_1x1_circular",
                str(ev.stat("every_roll", "maxpool_1x1_circular", "worst_flip_rate"))),
               ("largest probability change of any image (canvas; circular)", "maxpool_1x1(_circular)",
                f"{big[0]:.3g}; {big[1]:.3g}")]
    near = [within_flip(canvas), within_flip(circ)]
    verdict = (HOLDS if max(big) <= EXACT_TV else APPROX if all(near) else FAILS if False in near else UNDECIDED)
    stride = ev.total_stride("maxpool_1x1_circular")
    return Finding(verdict, f"the single value per channel is reached (total stride {stride}, canvas "
                   f"{ev.cfg.data.canvas} px), yet {pct(canvas.mean)} of predictions change on average under canvas "
                   f"shifts and {pct(circ.mean)} over every circular shift; against three blocks + flatten "
                   f"({pct(three.mean)}): {compare(canvas, three)}. The max-pooling grid is exact only for shifts by "
                   f"multiples of the total stride, and on this canvas that is no non-zero shift", numbers,
                   f"under canvas shifts ({pct_interval(canvas)} of predictions change) and circular shifts "
                   f"({pct_interval(circ)})")


@claim("Any symmetric function over positions — max, sum, mean — makes the output invariant",
       "Stride-1 networks with circular padding and a global max or a global average head (a sum is the mean times "
       "the number of positions, so it is the mean's case): every circular shift of the canvas (all-shift engine), "
       "checked by brute force along both axes; then the same heads where the map before them is not equivariant: "
       "zero padding (gap_zeros, circular and canvas shifts) and stride 2 (strided_gmp_circular, every shift).",
       f"holds if, for both heads, no image of any seed changes by more than {EXACT_TV:g} (TV) at any circular shift "
       f"by either engine (which must agree within {AGREE_TV:g}); else does not hold. The condition gives the same "
       "heads on a map that is not equivariant.",
       ("every_roll", "layers", "run"), ("gap_circular", "gmp_circular", "gap_zeros", "strided_gmp_circular"))
def _symmetric_head(ev: Evidence) -> Finding:
    heads, numbers = ("gmp_circular", "gap_circular"), []
    for m in heads:
        numbers += [("largest probability change, every circular shift (engine)", m, tv(ev.max_tv("every_roll", m))),
                    ("largest probability change, axis shifts (brute force)", m, tv(ev.max_tv("layers", m))),
                    ("worst-shift flip rate, every circular shift", m,
                     str(ev.stat("every_roll", m, "worst_flip_rate"))),
                    ("mean flip rate, canvas shifts", m, str(ev.stat("run", m, "mean_flip_rate")))]
    gap = ev.engine_gap(CIRCULAR)
    zeros_roll, zeros_canvas = ev.stat("layers", "gap_zeros", "mean_flip_rate"), ev.stat("run", "gap_zeros",
                                                                                          "mean_flip_rate")
    strided = ev.stat("every_roll", "strided_gmp_circular", "mean_flip_rate")
    numbers += [("largest difference of mean TV, engine vs brute force, on the shifts both ran", "circular models",
                 tv(gap)),
                ("largest probability change, axis shifts (brute force)", "gap_zeros",
                 f"{ev.max_tv('layers', 'gap_zeros'):.3g}"),
                ("mean flip rate, circular; canvas shifts", "gap_zeros", f"{zeros_roll}; {zeros_canvas}"),
                ("mean flip rate, every circular shift", "strided_gmp_circular", str(strided))]
    exact = {m: max(ev.max_tv("every_roll", m), ev.max_tv("layers", m)) <= EXACT_TV for m in heads}
    if gap > AGREE_TV:
        return Finding(UNDECIDED, f"the all-shift engine and brute force disagree by {tv(gap)} (> {AGREE_TV:g})",
                       numbers)
    verdict = HOLDS if all(exact.values()) else FAILS
    # the engine's own number alone could be 0 by construction (it rolls one map): brute force's is beside it
    engine, brute = (max(ev.max_tv(sweep, m) for m in heads) for sweep in ("every_roll", "layers"))
    said = (f"exactly for both global max and global average (largest change {tv(engine)} over all "
            f"{ev.results['every_roll'].meta['protocol']['n_shifts']} circular shifts by the all-shift engine, "
            f"{tv(brute)} over the shifts along both axes by brute force, every seed), when the map "
            "before them is shift-equivariant: circular padding and stride 1" if verdict == HOLDS else
            "not exactly for " + ", ".join(m for m, ok in exact.items() if not ok))
    return Finding(verdict, f"{said}. Not otherwise: with zero padding the global average changes "
                   f"{pct(zeros_roll.mean, 2)} of predictions under circular shifts ({pct(zeros_canvas.mean, 2)} "
                   f"under canvas shifts), and after stride-2 convolutions a global max changes "
                   f"{pct(strided.mean)}", numbers,
                   "for global max and average after stride-1 layers with circular padding only; not with zero "
                   f"padding ({pct(zeros_roll.mean, 2)}) or after stride 2 ({pct(strided.mean)})"
                   if verdict == HOLDS else "")


SHUFFLERS = {"strided_gmp_circular": "strided conv + global max",
             "maxpool_gap_circular": "max pooling + global average"}


@claim("With stride > 1 it is only approximately a shuffle",
       "Stride-2 networks (three blocks: total stride 8) with circular padding and a global-pooling head, strided "
       "convolutions + global max and max pooling + global average: every circular shift of the canvas, split into "
       "the multiples of the total stride and the rest.",
       f"Both words are tested, per network. 'Only': exact (no image changes by more than {EXACT_TV:g}) at every "
       "multiple of the total stride and at no odd shift; 'approximately': between the multiples at most "
       f"{APPROX_FLIP:.0%} of predictions change (mean flip rate: its whole 95% interval over seeds; undecided for "
       "the network when the interval holds the threshold). Holds for a network that passes both; the claim holds "
       "if both networks do, holds for some networks only if one does, is undecided if none does and one is "
       "undecided, else does not hold.",
       ("every_roll", "layers"), ("strided_gmp_circular", "maxpool_gap_circular"))
def _stride_shuffle(ev: Evidence) -> Finding:
    """Claim 5, per network: 'only' (exact on the stride lattice and at no odd shift) and 'approximately'."""
    found, numbers = {}, []
    for m in ("strided_gmp_circular", "maxpool_gap_circular"):
        found[m], more = lattice_numbers(ev, m)
        numbers += more
    gap = ev.engine_gap(list(found))
    numbers.append(("largest difference of mean TV, engine vs brute force, on the shifts both ran", "both", tv(gap)))
    if gap > AGREE_TV:
        return Finding(UNDECIDED, f"the all-shift engine and brute force disagree by {tv(gap)}", numbers)
    only = {m: exact_on_lattice_only(f) for m, f in found.items()}
    approx = {m: within_flip(f["off"]) for m, f in found.items()}
    holds = [m for m in found if only[m] and approx[m]]
    open_ = [m for m in found if only[m] and approx[m] is None]  # the seeds disagree about 'approximately'
    verdict = HOLDS if len(holds) == len(found) else PARTLY if holds else UNDECIDED if open_ else FAILS
    said, scope = [], []
    for m, f in sorted(found.items(), key=lambda kv: kv[0] not in holds):  # the networks it holds for first
        on = max(f["on"], f["on_brute"])
        exact = (f"exact at every multiple of its total stride {f['step']} (largest change {tv(on)})"
                 if on <= EXACT_TV else f"not exact even at multiples of its total stride {f['step']} ({tv(on)})")
        exact += f", exact at {f['odd_exact']} of its {f['n_odd']} odd shifts"
        if f["period"] is not None and f["period"] < f["step"]:
            exact += f" (exact on a finer lattice, every {f['period']} px)"
        how = {True: "approximately", False: "not even approximately", None: "undecided whether approximately"}
        near = (f"{how[approx[m]]} a shuffle in between ({pct_interval(f['off'])} of predictions change; "
                f"approximately: at most {APPROX_FLIP:.0%}{', which the interval holds' if approx[m] is None else ''})")
        said.append(f"{m}: {'only' if only[m] else 'not only'} a shuffle on the lattice ({exact}); {near}")
        scope.append(f"{'for' if m in holds else 'undecided for' if m in open_ else 'not for'} {SHUFFLERS[m]} "
                     f"({pct_interval(f['off'])} of predictions change between lattice points"
                     f"{'' if only[m] else '; not exact on the lattice only'})")
    return Finding(verdict, "; ".join(said), numbers, "; ".join(scope))


@claim("Replace max pooling by strided convolutions and take a global max pooling: invariant without pooling",
       "Strided convolutions (three stride-2 blocks) + global max against conv + 2x2 max pooling + flatten, both "
       "with zero padding, under {canvas_shifts}; the strided + global max network with "
       "circular padding over every circular shift (where it must be exact at multiples of 8).",
       f"holds if strided conv + global max changes no image by more than {EXACT_TV:g} under canvas shifts; holds "
       f"only approximately if its mean flip rate is at most {APPROX_FLIP:g} (its whole 95% interval over seeds); "
       "does not hold if the whole interval is above; else undecided. The condition "
       "compares it with max pooling + flatten.",
       ("run", "every_roll"), ("strided_gmp", "conv_maxpool", "strided_gmp_circular"))
def _strided_global_max(ev: Evidence) -> Finding:
    sg, mp = ev.stat("run", "strided_gmp", "mean_flip_rate"), ev.stat("run", "conv_maxpool", "mean_flip_rate")
    numbers = [("mean flip rate, canvas shifts", m, str(ev.stat("run", m, "mean_flip_rate")))
               for m in ("strided_gmp", "conv_maxpool")]
    numbers += [("worst-shift flip rate, canvas shifts", m, str(ev.stat("run", m, "worst_flip_rate")))
                for m in ("strided_gmp", "conv_maxpool")]
    numbers += [("mean accuracy under canvas shifts", m, str(ev.stat("run", m, "mean_accuracy")))
                for m in ("strided_gmp", "conv_maxpool")]
    found, more = lattice_numbers(ev, "strided_gmp_circular")
    numbers += more
    near = within_flip(sg)
    verdict = (HOLDS if ev.max_tv("run", "strided_gmp") <= EXACT_TV else APPROX if near else FAILS if near is False
               else UNDECIDED)
    step = found["step"]
    circular = (f"exact only at multiples of its total stride {step}" if exact_on_lattice_only(found) else
                f"exact at {found['odd_exact']} odd shifts, and up to {tv(found['on'])} at multiples of {step}")
    return Finding(verdict, f"strided conv + global max changes {pct(sg.mean)} of predictions on average under canvas "
                   f"shifts, against {pct(mp.mean)} for max pooling + flatten ({compare(sg, mp)}); with circular "
                   f"padding it is {circular} and changes {pct(found['off'].mean)} of predictions in between: the "
                   "global max removes where things are, but the stride-2 subsampling before it aliases", numbers,
                   f"under canvas shifts ({pct_interval(sg)} of predictions change) and, with circular padding, off "
                   f"the stride-{step} lattice ({pct_interval(found['off'])})")


def judge_all(cfg: Config, results: dict[str, Result]) -> list[tuple[Claim, Finding]]:
    """Every claim's finding from loaded results; seeds at chance among a claim's models make it UNDECIDED."""
    ev = Evidence(cfg, results)
    out = []
    for c in CLAIMS:
        found = c.judge(ev)
        chance = ev.at_chance(c.models)
        if chance:
            found.verdict = UNDECIDED
            found.condition = ("seeds at chance (" + ", ".join(f"{m}: {n} seed{'s' if n != 1 else ''}"
                                                         for m, n in chance.items()) +
                               "): their consistency says nothing. " + found.condition[:1].upper()
                               + found.condition[1:])
        out.append((c, found))
    return out

