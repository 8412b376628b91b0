"""The theory of docs/science.md, checked on whole models (build_model), untrained and briefly trained.

Every case uses a 32 px canvas and three blocks, so a downsampling model has total stride 8, and circular
shifts (torch.roll) of real letter images (data.draw) and of uniform noise:

* circular padding + APS + global pooling: the same class and the same probabilities for EVERY shift;
* circular padding + max / stride / avg / blur downsampling + global pooling: exact for multiples of the
  total stride (of 4 where the global pooling absorbs the last block's downsampling; the lattice test says
  which), not otherwise; a one-pixel shift changes the output (aliasing); blurring reduces that change;
* circular padding + stride 1 + global pooling: exact for every shift;
* zero padding: a shift that wraps the letter across the border changes the output (the tests can fail).

Untrained APS models, untrained max / stride models with the mean head, and trained stride-1 models are checked
at all 32 x 32 shifts; trained cases (train_model for 12 steps on letters) use a fixed subsample of 88 shifts.
One torch thread: on a shared 2-core machine that is several times faster for these small convolutions.
"""

from __future__ import annotations

import copy
import functools
import statistics

import pytest
import torch

from invariance_lab.schema.config import DataConfig, TrainConfig
from invariance_lab.data.datasets import draw, glyph_table, training_set
from invariance_lab.data.datasets import reference_letters as make_test_letters
from invariance_lab.nn.models import build_model, resolve_spec
from invariance_lab.run.train import train_model
from invariance_lab.config.models import resolved_models

C = 32  # canvas side; a multiple of the total stride 8 of three downsampling blocks
STRIDE = 8
CHANNELS = [4, 8, 8]
TOL = 1e-5  # "exact": float32 round-off only (a change in the summation order of a rolled map)

ALL_SHIFTS = [(dy, dx) for dy in range(C) for dx in range(C)]  # (0, 0) first
MULTIPLES = [(dy, dx) for dy in range(0, C, STRIDE) for dx in range(0, C, STRIDE)]
ONE_PIXEL = [(0, 1), (1, 0), (0, -1), (-1, 0), (1, 1)]


def _subsampled_shifts() -> list[tuple[int, int]]:
    """(0, 0), every dx on one row, every dy on one column, and 24 fixed random (dy, dx): 88 shifts."""
    g = torch.Generator().manual_seed(123)
    rand = [tuple(p) for p in torch.randint(0, C, (24, 2), generator=g).tolist()]
    shifts = [(0, dx) for dx in range(C)] + [(dy, 3) for dy in range(C)] + rand
    return list(dict.fromkeys(shifts))  # distinct, (0, 0) still first


SOME_SHIFTS = _subsampled_shifts()


def factors(downsample: str, head: str = "global_avg", padding: str = "circular", blur_size: int = 3) -> dict:
    return resolve_spec(dict(downsample=downsample, head=head, padding=padding, channels=CHANNELS,
                             kernel=3, blur_size=blur_size))


# ----------------------------------------------------------------------------------------------- data and models

pytestmark = pytest.mark.usefixtures("one_thread")


# Trained means weights moved well away from their initialisation (checked in _trained); the exactness claims
# hold for any weights, so 12 Adam steps (3 epochs of 64 letters) do. Most of these networks still answer one class
# for every test letter, so their checks rest on the logits (the tolerance and total variation, which a broken
# circular padding fails in every trained case), not on the predictions; the APS rule's fine points are tested on
# adversarial inputs in tests/nn/test_aps.py (the inputs: tests/nn/adversarial.py).
DATA = DataConfig(canvas=C, size=14, train_images=64, test_images=16, fonts=["futural", "futuram", "timesr"])
TRAIN = TrainConfig(epochs=3, batch_size=16, lr=1e-2)


@functools.lru_cache(maxsize=None)
def letter_data() -> dict[str, torch.Tensor]:
    table = glyph_table(DATA)
    train_x, train_y = training_set(DATA, table)
    batch = make_test_letters(DATA)
    return dict(train_x=train_x, train_y=train_y, test_x=draw(table, batch, C), test_y=batch.labels)


def probes(n_letters: int) -> torch.Tensor:
    """(n_letters + 1, 1, C, C): centred letters (both classes among the first two) and one noise image."""
    d = letter_data()
    order = torch.cat([(d["test_y"] == 0).nonzero()[:1, 0], (d["test_y"] == 1).nonzero()[:1, 0],
                       torch.arange(len(d["test_y"]))])
    idx = list(dict.fromkeys(order.tolist()))[:n_letters]
    noise = torch.rand(1, 1, C, C, generator=torch.Generator().manual_seed(7))
    return torch.cat([d["test_x"][idx], noise])


def untrained(f: dict, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)  # the same initialisation train_model uses for this seed
    return build_model(f, num_classes=2, canvas=C).eval()


@functools.lru_cache(maxsize=None)
def _trained(key: tuple, seed: int) -> torch.nn.Module:
    f = dict(key)
    f["channels"] = list(f["channels"])
    d = letter_data()
    model, history = train_model(f, d["train_x"], d["train_y"], d["test_x"], d["test_y"], TRAIN, noise=0.0,
                                 seed=seed, num_classes=2, canvas=C, device=torch.device("cpu"))
    assert len(history) == TRAIN.epochs and history["train_loss"].notna().all()
    before = untrained(f, seed).state_dict()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("blocks.0.conv") for k in changed) and "fc.weight" in changed, "training changed nothing"
    return model.eval()


def trained(f: dict, seed: int = 0) -> torch.nn.Module:
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in f.items()))
    return _trained(key, seed)


def get_model(f: dict, state: str) -> torch.nn.Module:
    return trained(f) if state == "trained" else untrained(f)


def outputs(net: torch.nn.Module, x: torch.Tensor, shifts: list[tuple[int, int]]) -> torch.Tensor:
    """Logits (len(shifts), N, K) of every image rolled by every (dy, dx)."""
    with torch.no_grad():
        batch = torch.cat([torch.roll(x, s, dims=(-2, -1)) for s in shifts])
        out = torch.cat([net(batch[i:i + 2048]) for i in range(0, len(batch), 2048)])
    return out.view(len(shifts), len(x), -1)


def change(out: torch.Tensor) -> torch.Tensor:
    """Per shift, the largest |logit change| from the unshifted output out[0] over images and classes."""
    return (out - out[0]).abs().amax(dim=(1, 2))


def assert_exactly_invariant(out: torch.Tensor) -> None:
    """Same predicted class, same softmax probabilities and logits (within TOL) for every shift."""
    assert torch.equal(out.argmax(-1), out[0].argmax(-1).expand(len(out), -1))
    probs = out.softmax(-1)
    assert (probs - probs[0]).abs().max().item() < TOL
    assert change(out).max().item() < TOL
    # not trivially invariant: the network does tell the images apart
    assert (out[0] - out[0].mean(0)).abs().max().item() > 1e-4


# ----------------------------------------------------------------------------------------------- APS: every shift

# Every (downsample, head, state) with a blur size for each, 1 or 3 by turns (a half fraction of the 2^4 design:
# every pair of factor values still occurs, so each is seen with each of the others). Blur sizes 1 to 7, both
# kinds, untrained and trained, are each checked at every shift in tests/nn/test_aps.py.
APS_CASES = [(d, 1 + 2 * ((d == "aps_stride") ^ (h == "global_max") ^ (s == "trained")), h, s)
             for s in ("untrained", "trained") for h in ("global_avg", "global_max") for d in ("aps_max", "aps_stride")]


@pytest.mark.parametrize("downsample, blur_size, head, state", APS_CASES)
def test_circular_aps_model_is_exactly_invariant_to_every_circular_shift(downsample, blur_size, head, state):
    net = get_model(factors(downsample, head, blur_size=blur_size), state)
    if state == "untrained":  # all 1024 shifts, a letter and noise
        out = outputs(net, probes(1), ALL_SHIFTS)
    else:  # 88 shifts, three letters and noise
        out = outputs(net, probes(3), SOME_SHIFTS)
    assert_exactly_invariant(out)
    probs = out.softmax(-1)
    assert (0.5 * (probs - probs[0]).abs().sum(-1)).max().item() <= 1e-6  # total variation (tests/nn/test_aps.py)


# ----------------------------------------------------------------------------------------------- strided models

@pytest.mark.parametrize("state", ["untrained", "trained"])
@pytest.mark.parametrize("head", ["global_avg", "global_max"])
@pytest.mark.parametrize("downsample", ["max", "stride"])
def test_circular_strided_model_is_exact_only_for_multiples_of_the_stride(downsample, head, state):
    net = get_model(factors(downsample, head), state)
    x = probes(3)
    if state == "untrained" and head == "global_avg":  # every shift: exact on the stride-8 lattice
        out = outputs(net, x[[0, -1]], ALL_SHIFTS)
        on_lattice = torch.tensor([dy % STRIDE == 0 and dx % STRIDE == 0 for dy, dx in ALL_SHIFTS])
        assert change(out)[on_lattice].max().item() < TOL
        assert change(out)[~on_lattice].min().item() > TOL  # no other shift is exact, on these inputs
    assert_exactly_invariant(outputs(net, x, MULTIPLES))
    one_px = change(outputs(net, x, [(0, 0)] + ONE_PIXEL))[1:]
    assert one_px.max().item() > 1e-4  # aliasing: a one-pixel shift clearly changes the output (> 10 TOL)


@pytest.mark.parametrize("state", ["untrained", "trained"])
@pytest.mark.parametrize("head", ["global_avg", "global_max"])
@pytest.mark.parametrize("downsample", ["blur_max", "blur_stride", "blur_avg"])
def test_circular_blurpool_model_is_exact_for_multiples_of_the_stride(downsample, head, state):
    net = get_model(factors(downsample, head), state)
    assert_exactly_invariant(outputs(net, probes(3), MULTIPLES))


# Which shifts leave the output exactly unchanged, at every (dy, dx) from 0 to 8 (a whole period and the lattice
# points closing it: one period of 8, two of 4), in float64 (so that exact and inexact are many orders of magnitude
# apart). The period is the total stride 8, except where the LAST block's downsampling
# is absorbed by the global pooling, which leaves the stride of the first two blocks, 4:
#   max pool (k2, s2) + global max = global max (the 2x2 windows tile the map);
#   avg pool (k2, s2) + global mean = global mean;
#   binomial blur (size >= 2) + subsampling + global mean = global mean (with circular padding): every polyphase
#   component of a binomial filter sums to 1/4, because (1 + z)^(k-1) vanishes at z = -1.
# Blur size 1 (plain subsampling) is not absorbed; neither is a strided conv (the ReLU comes after it).
@pytest.mark.parametrize("downsample, head, blur_size, period", [
    ("max", "global_avg", 3, 8),
    ("max", "global_max", 3, 4),
    ("avg", "global_avg", 3, 4),
    ("avg", "global_max", 3, 8),
    ("stride", "global_avg", 3, 8),
    ("blur_max", "global_avg", 3, 4),
    ("blur_max", "global_max", 3, 8),
    ("blur_max", "global_avg", 1, 8),
    ("blur_stride", "global_avg", 5, 4),
])
def test_exact_shifts_form_the_predicted_lattice(downsample, head, blur_size, period):
    net = untrained(factors(downsample, head, blur_size=blur_size)).double()
    shifts = [(dy, dx) for dy in range(9) for dx in range(9)]
    ch = change(outputs(net, probes(1).double(), shifts))
    on_lattice = torch.tensor([dy % period == 0 and dx % period == 0 for dy, dx in shifts])
    assert ch[on_lattice].max().item() < 1e-10
    assert ch[~on_lattice].min().item() > 1e-8


def mean_one_pixel_change(downsample: str, head: str, seed: int, x: torch.Tensor) -> float:
    """Mean |logit change| over images, classes and the four one-pixel shifts, of an untrained net."""
    out = outputs(untrained(factors(downsample, head), seed), x, [(0, 0), (0, 1), (1, 0), (0, -1), (-1, 0)])
    return (out[1:] - out[0]).abs().mean().item()


@pytest.mark.parametrize("head", ["global_avg", "global_max"])
@pytest.mark.parametrize("plain, blurred", [("max", "blur_max"), ("stride", "blur_stride")])
def test_blur_reduces_the_one_pixel_change(plain, blurred, head):
    """Zhang 2019's claim on our nets: with the same seed (hence the same conv and fc weights, the blur having
    none), BlurPool shrinks the mean |logit change| under one-pixel shifts. Blurred/plain ratio of the 5-seed
    means on these 16 letters: 0.15 (max, global_avg), 0.27 (max, global_max), 0.02 / 0.07 (stride); over 8
    groups of 5 seeds on 32 letters it never exceeded 0.27 (max) or 0.10 (stride), and blur won in each of the
    40 seeds. We assert < 0.5. (Relative to the spread of logits across images the reduction is smaller and
    not robust per seed, so that is not asserted.)"""
    x = letter_data()["test_x"]
    plain_mean = statistics.mean(mean_one_pixel_change(plain, head, s, x) for s in range(5))
    blurred_mean = statistics.mean(mean_one_pixel_change(blurred, head, s, x) for s in range(5))
    assert blurred_mean < 0.5 * plain_mean


# ----------------------------------------------------------------------------------------------- stride 1

@pytest.mark.parametrize("head", ["global_avg", "global_max"])
def test_circular_stride1_model_is_exactly_invariant_after_training(head):
    net = trained(factors("none", head))
    assert_exactly_invariant(outputs(net, probes(1), ALL_SHIFTS))


# ----------------------------------------------------------------------------------------------- zero padding

WRAPPING = [(0, 16), (16, 0), (16, 16), (0, 20)]  # the centred letter is cut by the border and wraps around


@pytest.mark.parametrize("state", ["untrained", "trained"])
@pytest.mark.parametrize("downsample", ["none", "aps_max"])
def test_zero_padding_is_not_invariant_when_the_letter_wraps_across_the_border(downsample, state):
    net = get_model(factors(downsample, "global_avg", padding="zeros"), state)
    x = probes(2)[:2]  # letters only
    with pytest.raises(AssertionError):  # the exactness check above does fail here ...
        assert_exactly_invariant(outputs(net, x, [(0, 0)] + WRAPPING))
    # ... and not by round-off: in float64 the change is still far above float32 round-off
    ch = change(outputs(copy.deepcopy(net).double(), x.double(), [(0, 0)] + WRAPPING))[1:]
    assert ch.max().item() > 2 * TOL


def test_zero_padding_stride1_is_exact_while_the_letter_stays_away_from_the_border():
    """The contrast: the border only matters when ink (through the receptive field) reaches it. With stride 1 a
    small shift of a centred letter leaves everything near the border unchanged, so the output is exact."""
    net = trained(factors("none", "global_avg", padding="zeros"))
    x = probes(2)[:2]
    small = [(0, 0)] + [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert change(outputs(net, x, small)).max().item() < TOL


# ----------------------------------------------------------------------------------------------- the shipped config

def test_antialiasing_config_models_follow_the_theory():
    """configs/antialiasing.yaml loads, and its (untrained, float64) models are exact on the sweep's axes exactly
    where its header says: maxpool at dx, dy = 0, +-8; blur* also at +-4 (global mean absorbs the last blur);
    aps* everywhere."""
    from pathlib import Path

    from invariance_lab.config.load import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "antialiasing.yaml")
    assert cfg.data.canvas == C and cfg.sweep.mode == "circular" and cfg.data.train_mode == "circular"
    shifts = [(0, 0)] + [(0, d) for d in range(-8, 9) if d] + [(d, 0) for d in range(-8, 9) if d]
    expected_period = {"max": 8, "blur_max": 4, "aps_max": 1}
    for name, f in resolved_models(cfg).items():
        period = expected_period[f["downsample"]]
        net = untrained(f).double()
        ch = change(outputs(net, probes(1).double(), shifts))
        exact = torch.tensor([dy % period == 0 and dx % period == 0 for dy, dx in shifts])
        assert ch[exact].max().item() < 1e-10, name
        if (~exact).any():
            assert ch[~exact].min().item() > 1e-8, name
