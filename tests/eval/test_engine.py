"""The all-shift engine (engine.py) gives brute force's numbers, shift by shift, wherever it applies, and refuses
(or leaves the model to brute force) where it does not.

Brute force here is sweep.run_sweep: one forward pass per rolled input. Every downsampling kind x head, circular
padding, untrained and briefly trained, on letters and a noise image; every circular shift of the canvas (a
product grid centred on 0, so the neighbour metric is checked too). Even canvases: 8 and 12 px through two
blocks (8 -> 4 -> 2, 12 -> 6 -> 3) and 10 px through one (10 -> 5); odd canvases: 9 px, where only stride-1
networks qualify.
"""

from __future__ import annotations

import functools
import json
import pathlib

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from invariance_lab.schema.config import DataConfig, TrainConfig
from invariance_lab.data.datasets import draw, glyph_table, reference_letters, training_set
from invariance_lab.eval.engine import allshift_plan, allshift_sweep, choose_engines, engine_protocol, why_not
from invariance_lab.eval.engine_rules import PHASES, _max_pool_phases, roll2d
from invariance_lab.core.errors import InvlabError
from invariance_lab.nn.downsample import DOWNSAMPLES
from invariance_lab.nn.layers import Pad2d
from invariance_lab.eval.layerwise import profile_layers
from invariance_lab.eval.taps import layer_taps
from invariance_lab.nn.models import HEADS, build_model, resolve_spec
from invariance_lab.data.shifts import circular_shift, shift_lines
from invariance_lab.data.shifts import every_roll
from invariance_lab.eval.sweep import run_sweep
from invariance_lab.eval.tables import summarize
from invariance_lab.run.train import train_model

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
# every kind the engine evaluates; TIPS does not commute with even shifts, so the engine leaves it to brute force
# (tests/eval/test_engine_rules.py checks the reason)
KINDS = [k for k in DOWNSAMPLES if k != "tips"]
HEAD_NAMES = list(HEADS)
COMPARED = ["accuracy", "flip_rate", "prob_change", "neighbor_flip_rate", "max_prob_change"]
TOL = 1e-6
ROOT = pathlib.Path(__file__).resolve().parents[2]


def factors(downsample: str, head: str, channels=(3, 4), padding: str = "circular") -> dict:
    return resolve_spec(dict(downsample=downsample, head=head, padding=padding, channels=list(channels), kernel=3,
                             blur_size=3))


@functools.cache
def letters(canvas: int) -> dict[str, torch.Tensor]:
    data = DataConfig(canvas=canvas, size=canvas * 0.6, thickness=[1.0, 1.5], train_images=48, test_images=6,
                      fonts=["futural", "timesr"])
    table = glyph_table(data)
    train_x, train_y = training_set(data, table)
    test = reference_letters(data)
    noise = torch.rand(1, 1, canvas, canvas, generator=torch.Generator().manual_seed(3))
    return dict(train_x=train_x, train_y=train_y, x=torch.cat([draw(table, test, canvas), noise]),
                y=torch.cat([test.labels, torch.tensor([0])]))


def model(f: dict, canvas: int, state: str) -> nn.Module:
    torch.manual_seed(0)
    if state == "untrained":
        return build_model(f, num_classes=2, canvas=canvas).eval()
    d = letters(canvas)
    net, _ = train_model(f, d["train_x"], d["train_y"], d["x"], d["y"], TrainConfig(epochs=1, batch_size=16, lr=1e-2),
                         noise=0.0, seed=0, num_classes=2, canvas=canvas, device=CPU)
    return net.eval()


def every_shift(canvas: int) -> list[list[tuple[float, float]]]:
    return shift_lines(every_roll(canvas), every_roll(canvas), "product")


def brute_and_engine(models: dict, canvas: int, lines=None, batch_size: int = 8):
    d = letters(canvas)
    lines = lines or every_shift(canvas)
    inputs = lambda c, dx, dy: circular_shift(d["x"][c], dx, dy)
    plans = choose_engines(models, canvas, "circular", "allshift")
    brute = run_sweep(models, inputs, d["y"], lines, batch_size, CPU)
    fast = allshift_sweep(plans, inputs, d["y"], lines, batch_size, CPU)
    return brute, fast


def assert_same(brute, fast):
    assert list(fast.table.columns) == list(brute.table.columns)
    pd.testing.assert_frame_equal(fast.table[["model", "seed", "dx", "dy", "n_images"]],
                                  brute.table[["model", "seed", "dx", "dy", "n_images"]])
    for m in COMPARED:
        a, b = fast.table[m].to_numpy(float), brute.table[m].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), m
        assert np.nanmax(np.abs(a - b), initial=0.0) <= TOL, (m, np.nanmax(np.abs(a - b)))
    assert fast.clean_accuracy == pytest.approx(brute.clean_accuracy, abs=TOL)


# ----------------------------------------------------------------------------------------------- equality


@pytest.mark.parametrize("state", ["untrained", "trained"])
@pytest.mark.parametrize("head", HEAD_NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_engine_equals_brute_force_at_every_shift(kind, head, state):
    models = {(kind, 0): model(factors(kind, head), 8, state)}
    brute, fast = brute_and_engine(models, 8)
    assert len(fast.table) == 64
    assert_same(brute, fast)


@pytest.mark.parametrize("kind", KINDS)
def test_engine_on_an_odd_last_map(kind):
    """10 px through one block: the stride-2 layer meets an even side, the head an odd (5 x 5) map."""
    models = {(f"{kind}-{head}", 0): model(factors(kind, head, channels=(3,)), 10, "untrained") for head in HEAD_NAMES}
    assert_same(*brute_and_engine(models, 10))


@pytest.mark.parametrize("kind", KINDS)
def test_odd_canvas_only_stride_one_networks_qualify(kind):
    if any(w.even for s in DOWNSAMPLES[kind].stages for w in s.windows):  # APS, LPS, AFC refuse an odd map
        with pytest.raises(ValueError, match="even"):
            model(factors(kind, "flatten"), 9, "untrained")
        return
    net = model(factors(kind, "flatten"), 9, "untrained")
    if DOWNSAMPLES[kind].stride == 1:
        assert why_not(net, 9) is None
        assert_same(*brute_and_engine({(kind, 0): net}, 9))
        return
    assert "odd" in why_not(net, 9)
    assert choose_engines({(kind, 0): net}, 9, "circular", "auto") == {(kind, 0): None}  # brute force
    with pytest.raises(InvlabError, match="does not apply"):
        choose_engines({(kind, 0): net}, 9, "circular", "allshift")


def test_a_sub_grid_and_the_reference_outside_it():
    """Only the residues the grid needs are evaluated; (0, 0) is the reference even when not in the grid."""
    models = {(k, 0): model(factors(k, "flatten"), 12, "untrained") for k in ("max", "aps_stride")}
    for lines in (shift_lines([1, 5, 2], [0, 0], "product"), shift_lines([-3, 3], [-2, 2], "axes"),
                  shift_lines([2, 3], [-1, 1], "product")):
        assert_same(*brute_and_engine(models, 12, lines, batch_size=3))  # 3 batches of 3, 3 and 1 images


def test_the_fast_paths_are_the_same_arithmetic():
    x = torch.randn(3, 2, 6, 10)
    for sy, sx in [(0, 0), (1, 0), (0, 1), (1, 1), (-2, 7), (5, -13)]:
        assert torch.equal(roll2d(x, sy, sx), torch.roll(x, (sy, sx), dims=(-2, -1)))
    pool = nn.MaxPool2d(2)
    fast = _max_pool_phases(x)
    for p, got in zip(PHASES, fast):
        assert torch.equal(got, pool(torch.roll(x, p, dims=(-2, -1))))


# ----------------------------------------------------------------------------------------------- where it does not apply


@pytest.mark.parametrize("padding", ["zeros", "reflect", "valid", "full"])
def test_other_paddings_are_left_to_brute_force(padding):
    net = model(factors("max", "global_avg", padding=padding), 12, "untrained")
    assert "border" in why_not(net, 12)
    assert why_not(model(factors("max", "global_avg"), 12, "untrained"), 12, "canvas") is not None


def test_a_full_padded_network_is_never_certified():
    """Full padding grows the map (12 -> 14 -> 7 -> 9 -> 4): a roll of the input is not a roll of the map, so the
    engine must not apply, even when asked outright; brute force measures it instead."""
    net = model(factors("max", "global_max", padding="full"), 12, "untrained")
    with pytest.raises(InvlabError, match="does not apply"):
        choose_engines({("full", 0): net}, 12, "circular", "allshift")
    assert choose_engines({("full", 0): net}, 12, "circular", "auto") == {("full", 0): None}


def test_convolutions_without_bias_keep_the_engine_exact():
    f = resolve_spec({**factors("stride", "global_max"), "bias": False})
    assert_same(*brute_and_engine({("no_bias", 0): model(f, 8, "trained")}, 8))


def test_the_refusal_matters_with_zero_padding():
    """Shift-and-stitch run on a zero-padded network anyway is wrong by far more than round-off."""
    net = model(factors("max", "global_avg", padding="zeros"), 12, "untrained")
    for block in net.blocks:
        block.padding = "circular"  # lie to the rule; the padding modules still pad with zeros
        block.pad, block.conv.padding = Pad2d("zeros", 1, 1, 1, 1), (0, 0)  # the same zero padding, as a module
    plan = allshift_plan(net, 12)
    x, shifts = letters(12)["x"], [(dx, dy) for dx in range(12) for dy in range(12)]
    with torch.no_grad():
        want = torch.stack([net(circular_shift(x, dx, dy)) for dx, dy in shifts])
        assert (plan.logits(x, shifts) - want).abs().max() > 1e-3


def test_custom_models_use_the_engine_when_their_layers_are_known():
    torch.manual_seed(0)
    known = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3, stride=2, padding=1, padding_mode="circular"), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    # a head that is not roll-invariant and even holds a zero-padded conv: run per shift, so still exact
    tail = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(4, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 36, 2)).eval()
    assert allshift_plan(known, 12).roll_invariant and not allshift_plan(tail, 12).roll_invariant
    assert_same(*brute_and_engine({("known", 0): known, ("tail", 0): tail}, 12))

    class Own(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")

        def forward(self, x):
            return self.conv(x).mean((2, 3))

    assert "forward pass of its own" in why_not(Own(), 12)
    assert "not a layer the all-shift engine knows" in why_not(nn.Sequential(nn.Upsample(scale_factor=2)), 12)


# ----------------------------------------------------------------------------------------------- layer profile


@pytest.mark.parametrize("kind", ["stride", "blur_max", "aps_max"])
def test_taps_are_layer_taps_of_the_rolled_input(kind):
    net = model(factors(kind, "flatten"), 12, "trained")
    x = letters(12)["x"]
    shifts = [(dx, dy) for dx in range(-5, 7) for dy in range(-5, 7)]
    shifted = allshift_plan(net, 12).tap_maker(x, shifts)
    with torch.no_grad():
        for dx, dy in shifts:
            want, got = layer_taps(net, circular_shift(x, dx, dy)), shifted(dx, dy)
            assert [(n, s) for n, s, _ in got] == [(n, s) for n, s, _ in want]
            for (_, _, g), (_, _, w) in zip(got, want):
                assert (g - w).abs().max() <= 1e-5 * max(w.abs().max(), 1e-30)


def test_layer_profile_engine_equals_brute_force():
    models = {(k, 0): model(factors(k, "global_avg"), 12, "untrained") for k in ("max", "aps_stride")}
    x = letters(12)["x"]
    inputs = lambda c, dx, dy: circular_shift(x[c], dx, dy)
    points = [(dx, dy) for dx in (-3, 0, 1, 2, 4) for dy in (-2, 0, 1)]
    runs = [profile_layers(models, inputs, len(x), points, "circular", 4, CPU, engine=e) for e in ("auto", "brute")]
    for fast, brute in zip(*runs):
        assert list(fast.columns) == list(brute.columns)
        num = [c for c in fast.columns if c not in ("model", "layer_name")]
        np.testing.assert_allclose(fast[num].to_numpy(float), brute[num].to_numpy(float), atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------------------------- choosing and recording


def test_auto_mixes_engines_per_model_and_says_which():
    models = {("circ", 0): model(factors("max", "flatten"), 12, "untrained"),
              ("zero", 0): model(factors("max", "flatten", padding="zeros"), 12, "untrained")}
    plans = choose_engines(models, 12, "circular", "auto")
    assert plans[("circ", 0)] is not None and plans[("zero", 0)] is None
    proto = engine_protocol(plans, models, 12, "circular")
    assert proto["engine"] == "mixed" and proto["engines"] == {"circ": "allshift", "zero": "brute"}
    assert "border" in proto["engine_notes"]["zero"]
    assert engine_protocol(choose_engines(models, 12, "circular", "brute"), models, 12, "circular")["engine"] == "brute"
    with pytest.raises(InvlabError, match="unknown engine"):
        choose_engines(models, 12, "circular", "fast")


def test_summary_names_the_worst_shift_and_the_largest_single_change():
    net = {("max", 0): model(factors("max", "global_avg"), 12, "trained")}
    _, fast = brute_and_engine(net, 12)
    s = summarize(fast.table, fast.clean_accuracy, n_classes=2).iloc[0]
    moved = fast.table[(fast.table.dx != 0) | (fast.table.dy != 0)]
    worst = moved.loc[moved.prob_change.idxmax()]
    assert (s.worst_shift_dx, s.worst_shift_dy) == (worst.dx, worst.dy)
    assert s.max_prob_change == moved.max_prob_change.max() >= s.worst_prob_change > 0


# ----------------------------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def circular_run(tmp_path_factory):
    from invariance_lab.cli.main import app

    results = tmp_path_factory.mktemp("results")
    models = "{aps: {arch: aps, channels: [4, 8]}, maxpool: {arch: conv_maxpool_gap, padding: circular, channels: [4, 8]}}"
    res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results), "--quiet",
                                   "--set", "seeds=[0]", "--set", "data.test_images=12", "--set", f"models={models}"])
    assert res.exit_code == 0, res.output
    (run_dir,) = (results / "quick").iterdir()
    return run_dir


def sweep(run_dir, *args):
    from invariance_lab.cli.main import app

    res = CliRunner().invoke(app, ["sweep", str(run_dir), "--quiet", *args])
    folder = max((run_dir / "sweeps").iterdir()) if (run_dir / "sweeps").exists() else None
    return res, folder


def test_all_shifts_certifies_aps_and_names_the_shift_that_breaks_max_pooling(circular_run):
    res, folder = sweep(circular_run, "--all-shifts")
    assert res.exit_code == 0, res.output
    meta = json.loads((folder / "meta.json").read_text())
    p = meta["protocol"]
    assert p["engine"] == "allshift" and p["all_shifts"] and p["n_shifts"] == 24 * 24
    assert p["dx"] == p["dy"] == [-11, 12, 1] and p["mode"] == "circular"
    summary = pd.read_csv(folder / "summary.csv").set_index("model")
    assert summary.loc["aps", "max_prob_change"] <= 1e-6 and summary.loc["aps", "worst_flip_rate"] == 0
    assert summary.loc["maxpool", "max_prob_change"] > 1e-3
    out = " ".join(res.output.split())
    assert "engine: all-shift" in out and "aps: invariant" in out
    dx, dy = summary.loc["maxpool", ["worst_shift_dx", "worst_shift_dy"]]
    assert (f"maxpool: NOT invariant: the shift that moves the probabilities most on average, (dx, dy) = "
            f"({dx:g}, {dy:g})") in out
    # and the one image moved most, wherever it is: the largest max_prob_change of any shift and seed
    inv = pd.read_csv(folder / "invariance.csv")
    rows = inv[inv.model == "maxpool"]
    one = rows.loc[rows.max_prob_change.idxmax()]  # the first such shift in the table's order
    assert (f"the largest change of one image at any shift is {one.max_prob_change:.3g}, at ({one.dx:g}, "
            f"{one.dy:g}) (seed {one.seed})") in out

    res, brute = sweep(circular_run, "--all-shifts", "--engine", "brute", "--models", "maxpool")
    assert res.exit_code == 0, res.output
    assert json.loads((brute / "meta.json").read_text())["protocol"]["engine"] == "brute"
    a, b = pd.read_csv(folder / "invariance.csv"), pd.read_csv(brute / "invariance.csv")
    a = a[a.model == "maxpool"].reset_index(drop=True)
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 576
    np.testing.assert_allclose(a[COMPARED].to_numpy(float), b[COMPARED].to_numpy(float), atol=TOL, rtol=0)


def test_engine_option_errors(circular_run):
    res, _ = sweep(circular_run, "--engine", "allshift", "--mode", "canvas", "--dx", "-1:1")
    assert res.exit_code == 2 and "does not apply" in res.output
    res, _ = sweep(circular_run, "--all-shifts", "--dx", "0:3")
    assert res.exit_code == 2 and "leave out --dx" in res.output
    res, _ = sweep(circular_run, "--engine", "quick")
    assert res.exit_code == 2 and "unknown --engine 'quick'" in res.output


def test_circular_sweeps_of_a_config_take_the_engine(circular_run):
    res, folder = sweep(circular_run, "--mode", "circular", "--dx", "-3:3", "--layers", "--layer-images", "4")
    assert res.exit_code == 0, res.output
    p = json.loads((folder / "meta.json").read_text())["protocol"]
    assert p["engine"] == "allshift" and p["layers"]["engine"] == "allshift" and "all_shifts" not in p
    res, folder = sweep(circular_run, "--dx", "-1:1")  # the run's canvas mode
    assert json.loads((folder / "meta.json").read_text())["protocol"]["engine"] == "brute"


# ----------------------------------------------------------------------------------------------- mutation audit


def _circ(cin: int, cout: int, **kw) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="circular", **kw)


def test_a_layer_that_shrinks_the_map_is_refused_by_the_trace():
    """Catches a removed size check in _trace: a circular conv without padding (8 -> 6) is no map step."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding_mode="circular"), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(2, 2)).eval()
    assert "does not commute with circular shifts" in why_not(net, 8)


def test_an_invnet_subclass_with_its_own_forward_is_left_to_brute_force():
    """Catches a removed check that InvNet's forward/features/pool are InvNet's own."""
    base = model(factors("max", "global_avg"), 8, "untrained")

    class Flipped(type(base)):
        def forward(self, x):
            return super().forward(torch.flip(x, dims=(-1,)))

    net = Flipped.__new__(Flipped)
    net.__dict__.update(base.__dict__)
    assert "changes InvNet's forward pass" in why_not(net, 8)


def test_a_pooled_head_larger_than_one_pixel_is_run_per_shift():
    """Catches AdaptiveAvgPool2d(2) taken as roll-invariant: only output size 1 pools every position alike."""
    torch.manual_seed(0)
    net = nn.Sequential(_circ(1, 3), nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(12, 2)).eval()
    x, shifts = torch.rand(2, 1, 8, 8), [(dx, dy) for dx in range(8) for dy in range(8)]
    with torch.no_grad():
        want = torch.stack([net(circular_shift(x, dx, dy)) for dx, dy in shifts])
    assert (allshift_plan(net, 8).logits(x, shifts) - want).abs().max() < 1e-5


@pytest.mark.parametrize("layers, reason", [
    ([_circ(1, 2), nn.ReLU()], "no head after its feature layers"),
    ([nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 2)], "without a Conv2d"),
])
def test_sequential_models_the_engine_cannot_read_say_why(layers, reason):
    """Catches the removed 'no head' and 'no Conv2d' refusals (an IndexError instead of brute force)."""
    net = nn.Sequential(*layers).eval()
    assert reason in why_not(net, 8)
    assert choose_engines({("m", 0): net}, 8, "circular", "auto") == {("m", 0): None}


def test_the_engine_does_not_write_into_the_callers_batch():
    """Catches the dropped x.clone() in Plan.run: a first layer working in place would change the batch."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.ReLU(inplace=True), _circ(1, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(2, 2)).eval()
    x = torch.randn(2, 1, 8, 8)
    before = x.clone()
    allshift_plan(net, 8).logits(x, [(1, 0), (0, 3)])
    assert torch.equal(x, before)


def test_a_chunk_never_exceeds_the_batch_size():
    """Catches chunk() ignoring batch_size: the engine must not take more images at once than asked."""
    plan = allshift_plan(model(factors("max", "global_avg"), 8, "untrained"), 8)
    assert plan.chunk(3, 64) == 3 and plan.chunk(1, 64) == 1


@pytest.mark.parametrize("layer, word", [(nn.BatchNorm2d(1), "BatchNorm2d"), (nn.Dropout(0.5), "Dropout")])
def test_layers_in_training_mode_are_refused(layer, word):
    """Catches removed training-mode checks: batch statistics or random drops are no function of one image."""
    net = nn.Sequential(layer, _circ(1, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
    net.eval()
    assert why_not(net, 8) is None
    layer.train()
    assert f"{word} in training mode" in why_not(net, 8) and "model.eval()" in why_not(net, 8)


def test_a_one_logit_model_is_measured_as_two_classes_by_the_engine():
    """Catches allshift_sweep without class_logits: a softmax of one logit is 1, so no shift would change it."""
    torch.manual_seed(0)
    net = nn.Sequential(_circ(1, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 1)).eval()
    d = letters(8)
    inputs = lambda c, dx, dy: circular_shift(d["x"][c], dx, dy)  # noqa: E731
    lines = every_shift(8)
    brute = run_sweep({("one", 0): net}, inputs, d["y"], lines, 8, CPU)
    fast = allshift_sweep(choose_engines({("one", 0): net}, 8, "circular", "allshift"), inputs, d["y"], lines, 8, CPU)
    assert fast.table["prob_change"].max() > 1e-3
    assert_same(brute, fast)


def test_sub_pixel_rotate_and_scale_sweeps_are_not_rolls():
    """Catches roll_mode missing a fractional shift and plan_for accepting sub-pixel, rotate or scale sweeps."""
    from invariance_lab.eval.engine import SUBPIXEL_MODE, plan_for, roll_mode
    from invariance_lab.eval.engine_rules import NotApplicable
    assert roll_mode("circular", [(0.0, 0.0), (0.5, 0.0)]) == SUBPIXEL_MODE
    assert roll_mode("circular", [(1.0, 0.0), (2.0, -1.0)]) == "circular"
    net = model(factors("max", "global_avg"), 8, "untrained")
    for mode, words in ((SUBPIXEL_MODE, "whole-pixel"), ("rotate", "turns or scales"), ("scale", "turns or scales")):
        with pytest.raises(NotApplicable, match=words):  # the reason names what the sweep does instead of rolling
            plan_for(net, 8, mode)


def test_a_model_whose_seeds_took_different_engines_is_mixed():
    """Catches engine_protocol reporting one seed's engine for a model whose seeds differ."""
    net = model(factors("max", "global_avg"), 8, "untrained")
    plans = {("a", 0): allshift_plan(net, 8), ("a", 1): None}
    out = engine_protocol(plans, {("a", 0): net, ("a", 1): net}, 8, "circular")
    assert out["engines"] == {"a": "mixed"} and out["engine"] == "mixed"


def test_images_that_are_not_square_are_left_to_brute_force():
    """Catches measure_engines planning a C x C roll for H x W images: the engine rolls square maps only."""
    from invariance_lab.eval.measurement import measure_engines
    net = model(factors("max", "global_avg"), 8, "untrained")
    plans, protocol = measure_engines({("m", 0): net}, (1, 8, 12), "circular")
    assert plans == {("m", 0): None} and protocol["engine"] == "brute"
    assert "not square" in protocol["engine_notes"]["m"]
    with pytest.raises(InvlabError, match="square"):
        measure_engines({("m", 0): net}, (1, 8, 12), "circular", "allshift")
