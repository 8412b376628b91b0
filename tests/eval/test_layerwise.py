"""Layer profile: exact where theory says exact, brute force for the normalised variance, and the CLI."""

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.nn.downsample import DOWNSAMPLES
from invariance_lab.eval.layerwise import profile_layers, translate
from invariance_lab.eval.taps import layer_taps
from invariance_lab.nn.models import build_model, resolve_spec
from invariance_lab.data.shifts import circular_shift

runner = CliRunner()
CPU = torch.device("cpu")


def tiny(seed=0, **factors):
    torch.manual_seed(seed)
    return build_model(resolve_spec({"channels": [3, 4], **factors}), 2, 12).eval()


def profile(models, images, points, mode="circular", batch_size=5):
    return profile_layers(models, lambda c, dx, dy: circular_shift(images[c], dx, dy), len(images), points, mode,
                         batch_size, CPU)


def test_taps_reproduce_the_forward_pass():
    m = tiny(arch="blurpool")
    x = torch.rand(4, 1, 12, 12)
    taps = layer_taps(m, x)
    assert [t[0] for t in taps] == ["block1.conv", "block1.down", "block2.conv", "block2.down", "head"]
    assert [t[1] for t in taps] == [1, 2, 2, 4, 4]
    assert torch.equal(m.fc(taps[-1][2]), m(x))
    strided = [s for _, s, _ in layer_taps(tiny(arch="strided_conv"), x)]
    assert strided == [2, 2, 4, 4, 4]  # a stride-2 conv counts at its own .conv tap


@pytest.mark.parametrize("downsample", DOWNSAMPLES)
def test_tap_strides_are_how_much_smaller_each_map_is(downsample):
    """A tap's stride comes from the blocks (the downsampling registry), not from kind names: with circular
    padding, which keeps sizes otherwise, stride x map side = canvas at every tap."""
    m = tiny(downsample=downsample, padding="circular", head="global_avg")
    taps = layer_taps(m, torch.rand(2, 1, 12, 12))
    assert all(f.shape[-1] * s == 12 for _, s, f in taps[:-1])
    assert taps[-1][1] == taps[-2][1]  # the head sits at the last map's stride


def test_a_registered_kind_gets_its_stride(monkeypatch):
    from invariance_lab.nn.downsample import MAX_S2, Downsample

    monkeypatch.setitem(DOWNSAMPLES, "max4", Downsample("max4", stages=(MAX_S2, MAX_S2)))
    m = build_model(resolve_spec({"channels": [2, 2], "downsample": "max4", "padding": "circular"}), 2, 16)
    assert [s for _, s, _ in layer_taps(m, torch.rand(1, 1, 16, 16))] == [1, 4, 4, 16, 16]


def test_translate_rolls_or_fills_with_zeros():
    f = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert torch.equal(translate(f, 1, -1, "circular"), torch.roll(f, (-1, 1), (-2, -1)))
    z = translate(f, 1, -1, "canvas")
    assert torch.equal(z[0, 0], torch.tensor([[0.0, 4, 5, 6], [0, 8, 9, 10], [0, 0, 0, 0]]))
    assert not translate(f, 4, 0, "canvas").any()


def test_stride1_circular_layers_are_equivariant_at_every_shift():
    images = torch.rand(10, 1, 12, 12)
    points = [(dx, dy) for dy in (-2, 0, 1) for dx in range(-3, 4)]
    table, summary = profile({("gap", 0): tiny(arch="conv_gap", padding="circular")}, images, points)
    assert table.equivariance_error.notna().all() and len(table) == 5 * len(points)
    assert (table.equivariance_error < 1e-5).all() and (table.pooled_invariance_error < 1e-5).all()
    assert (summary.normalized_variance < 1e-8).all()


def test_downsampling_keeps_equivariance_for_multiples_of_the_stride_only():
    images = torch.rand(8, 1, 12, 12)
    points = [(dx, 0.0) for dx in range(-4, 5)]
    table, _ = profile({("mp", 0): tiny(arch="conv_maxpool_gap", padding="circular")}, images, points)
    t = table.set_index(["layer_name", "dx"]).equivariance_error
    for dx in range(-4, 5):
        assert t[("block1.conv", dx)] < 1e-5
        assert np.isnan(t[("block1.down", dx)]) == (dx % 2 != 0)  # stride 2: odd shifts have no target
        assert np.isnan(t[("block2.down", dx)]) == (dx % 4 != 0)
    assert (table[table.layer_name.str.endswith("down")].equivariance_error.dropna() < 1e-5).all()
    odd = table[(table.layer_name == "head") & (table.dx % 2 != 0)]
    assert (odd.pooled_invariance_error > 1e-3).all()  # aliasing: odd shifts change the pooled features


def test_normalized_variance_matches_brute_force():
    m = tiny(arch="conv_maxpool_gap", seed=3)
    images = torch.rand(7, 1, 12, 12)
    points = [(0.0, 0.0), (1.0, 0.0), (2.0, 1.0), (-1.0, 3.0)]
    _, summary = profile({("m", 0): m}, images, points, batch_size=3)
    with torch.no_grad():
        # acts[layer]: (shifts, images, channels) of the pooled activations
        acts = list(zip(*[[(f.mean((-2, -1)) if f.dim() == 4 else f).double().numpy()
                           for _, _, f in layer_taps(m, circular_shift(images, dx, dy))] for dx, dy in points]))
    for j, a in enumerate(acts):
        a = np.stack(a)
        var_images = a.var(axis=1).mean(0)
        keep = var_images > 1e-12 * (a ** 2).mean()
        expect = (a.var(axis=0).mean(0)[keep] / var_images[keep]).mean()
        assert summary.normalized_variance[j] == pytest.approx(expect, rel=1e-6, abs=1e-12)


def test_canvas_mode_zero_fills_the_target():
    # a 1x1 conv, no bias, identity weights: F = relu(x), so on a blank border the zero-fill target is exact
    m = tiny(arch="conv_gap", kernel=1, channels=[1])
    with torch.no_grad():
        m.blocks[0].conv.weight.fill_(1.0)
        m.blocks[0].conv.bias.zero_()
    images = torch.zeros(3, 1, 12, 12)
    images[:, :, 4:8, 4:8] = torch.rand(3, 1, 4, 4)
    draw = lambda c, dx, dy: translate(images[c], int(dx), int(dy), "canvas")  # noqa: E731
    table, _ = profile_layers({("m", 0): m}, draw, 3, [(2.0, -1.0), (3.0, 3.0)], "canvas", 3, CPU)
    assert (table.equivariance_error < 1e-6).all()


# --- CLI on a tiny untrained run ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import untrained_quick_run

    return untrained_quick_run(tmp_path_factory, seeds="[0,1]")


def test_cli_sweep_layers_writes_the_profile(tiny_run, tmp_path):
    res = runner.invoke(app, ["sweep", str(tiny_run), "--layers", "--layer-images", "8", "--mode", "circular",
                              "--dx", "-2:2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "equivariance error per layer" in res.output
    folder = max((tiny_run / "sweeps").iterdir())
    layers = pd.read_csv(folder / "layers.csv")
    assert list(layers.columns) == ["model", "seed", "downsample", "head", "padding", "mode", "layer", "layer_name",
                                    "stride", "dx", "dy", "n_images", "equivariance_error", "pooled_invariance_error"]
    assert len(layers) == 2 * 2 * 5 * 5 and (layers.n_images == 8).all()  # models x seeds x taps x shifts
    summary = pd.read_csv(folder / "layers_summary.csv")
    assert len(summary) == 2 * 2 * 5 and "normalized_variance" in summary
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["protocol"]["layers"] == {"n_images": 8, "engine": "brute"}

    res = runner.invoke(app, ["report", str(folder), "--by", "layer", "--format", "csv"])
    assert res.exit_code == 0, res.output
    csv = res.stdout[res.stdout.index("quantity"):]
    df = pd.read_csv(io.StringIO(csv))
    assert set(df.quantity) == {"mean_equivariance_error", "mean_pooled_invariance_error", "normalized_variance"}
    assert "block1.conv" in df.columns and "head_ci" in df.columns
    res = runner.invoke(app, ["report", str(folder), "--by", "layer", "--plot", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    png = tmp_path / "plots" / "layers_vs_depth.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, needle", [
    (["--layers", "--kind", "parts"], "cannot be combined with --kind parts"),
    (["--layers", "--layer-images", "0"], "--layer-images must be at least 1"),
    (["--kind", "rotation"], "choose one of: translation, parts"),
])
def test_cli_sweep_bad_layer_options_exit_2(tiny_run, args, needle):
    before = sorted((tiny_run / "sweeps").iterdir()) if (tiny_run / "sweeps").exists() else []
    res = runner.invoke(app, ["sweep", str(tiny_run), *args])
    assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
    after = sorted((tiny_run / "sweeps").iterdir()) if (tiny_run / "sweeps").exists() else []
    assert before == after


def test_report_by_layer_needs_a_layer_sweep(tiny_run):
    res = runner.invoke(app, ["report", str(tiny_run), "--by", "layer"])
    assert res.exit_code == 2 and "--layers" in res.output, res.output


def test_the_summary_means_are_over_the_moved_shifts_only():
    """mean_*_error is the mean over the shifts other than the reference (0, 0), whose error is 0 by construction
    and would dilute it, of the per-shift rows that are defined (NaN: no target at that stride)."""
    images = torch.rand(6, 1, 12, 12)
    points = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (-2.0, 2.0), (3.0, -1.0), (4.0, -4.0)]
    table, summary = profile({("mp", 0): tiny(arch="conv_maxpool_gap")}, images, points)
    moved = table[(table.dx != 0) | (table.dy != 0)].groupby("layer")
    at_reference = table[(table.dx == 0) & (table.dy == 0)]
    assert (at_reference.equivariance_error == 0).all() and (at_reference.pooled_invariance_error == 0).all()
    s = summary.set_index("layer")
    assert (s.n_shifts == len(points) - 1).all()
    assert table.equivariance_error.isna().any()  # odd shifts at stride 2, and not multiples of 4 at stride 4
    for col in ("equivariance_error", "pooled_invariance_error"):
        expect = moved[col].mean()  # pandas skips NaN
        assert expect.notna().all() and (expect > 1e-3).all()
        np.testing.assert_allclose(s[f"mean_{col}"], expect, rtol=1e-12)


def test_an_image_whose_reference_is_zero_is_left_out_of_the_average():
    """A blank image through a network without biases gives 0 at every tap: its errors are undefined (0 / 0) and
    it is left out of the per-shift averages, not counted as an image with no error (which would dilute them)."""
    m = tiny(arch="conv_maxpool_gap")
    with torch.no_grad():
        for block in m.blocks:
            block.conv.bias.zero_()
    images = torch.rand(5, 1, 12, 12)
    with_blank = torch.cat([images, torch.zeros(1, 1, 12, 12)])
    points = [(0.0, 0.0), (1.0, 0.0), (2.0, 1.0), (-2.0, -2.0)]
    plain, _ = profile({("m", 0): m}, images, points, batch_size=6)
    blank, _ = profile({("m", 0): m}, with_blank, points, batch_size=6)
    assert (plain.pooled_invariance_error[plain.dx != 0] > 1e-3).all()
    for col in ("equivariance_error", "pooled_invariance_error"):
        np.testing.assert_allclose(blank[col], plain[col], rtol=1e-12)


# ----------------------------------------------------------------------------------------------- taps (mutation audit)


def test_infer_stride_allows_less_than_one_step_of_slack():
    """Catches `> s` for `>= s`: 34 -> 16 is two pixels off stride 2, a whole step, so no stride fits."""
    from invariance_lab.eval.taps import infer_stride
    assert infer_stride((31, 31), (16, 16)) == 2 and infer_stride((33, 33), (16, 16)) == 2
    assert infer_stride((34, 34), (16, 16)) == 0


def _tiny(inplace_input: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    layers = [torch.nn.ReLU(inplace=True)] if inplace_input else []
    return torch.nn.Sequential(*layers, torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(inplace=True),
                               torch.nn.Flatten(), torch.nn.Linear(32, 2)).eval()


def test_a_tap_keeps_the_modules_output_before_an_in_place_relu():
    """Catches the hook keeping the output itself: the in-place ReLU after the conv would zero its negatives."""
    from invariance_lab.eval.taps import taps_for
    net, x = _tiny(), torch.randn(2, 1, 4, 4)
    with torch.no_grad():
        want = net[0](x)
        taps = taps_for(net)(x)
    assert [t[0] for t in taps] == ["0", "output"]  # the logits are tapped by default
    assert want.min() < 0 and torch.equal(taps[0][2], want)


def test_tapping_does_not_write_into_the_callers_batch():
    """Catches taps_for calling model(x) without a copy: a first in-place layer would change the batch."""
    from invariance_lab.eval.taps import taps_for
    x = torch.randn(2, 1, 4, 4)
    before = x.clone()
    with torch.no_grad():
        taps_for(_tiny(inplace_input=True))(x)
    assert torch.equal(x, before)


def test_a_named_tap_of_another_shape_is_refused():
    """Catches a named 3-D tap skipped silently: a tap the user names must be profiled or refused."""
    from invariance_lab.core.errors import InvlabError
    from invariance_lab.eval.taps import taps_for
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Flatten(2), torch.nn.Flatten(1),
                              torch.nn.Linear(32, 2)).eval()
    with pytest.raises(InvlabError, match="only maps"):
        taps_for(net, ["1"])(torch.rand(1, 1, 4, 4))
