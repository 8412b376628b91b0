"""The Lie derivative (eval/lie.py): the transformations are what they say, the forward-mode derivative agrees with
a central finite difference, and it is ~0 exactly where theory says the network is invariant to the continuous
transformation (an alias-free network under band-limited translation, a radial mask under rotation), clearly > 0
for max pooling + flatten. Untrained tiny networks in float64 on a few 16 px images."""

import math

import pytest
import torch
from torch import nn
from torch.func import jvp

from invariance_lab.core.columns import LIE_COLUMNS
from invariance_lab.core.errors import InvlabError
from invariance_lab.data.write import write_folder
from invariance_lab.data.transforms import fourier_shift
from invariance_lab.eval.lie import TRANSFORMS, layer_lie_derivative, lie_derivative, lie_table, transform_images
from invariance_lab.nn.models import create_model

SIDE = 16


class GlobalAverage(nn.Module):
    def forward(self, h):
        return h.mean(dim=(-2, -1))


class Masked(nn.Module):
    """Logits (s, -s) of s, the image's mean intensity under a fixed mask less 1/2 (where the softmax is steep)."""

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        s = (x * self.mask).sum(dim=(1, 2, 3)) / self.mask.sum() - 0.5
        return torch.stack([s, -s], dim=1)


def images(n=3, seed=0, nyquist=True):
    x = torch.rand(n, 1, SIDE, SIDE, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    if not nyquist:  # no energy at the Nyquist frequency, which a band-limited shift cannot move (fourier_shift)
        spectrum = torch.fft.fft2(x)
        spectrum[..., SIDE // 2, :] = spectrum[..., :, SIDE // 2] = 0
        x = torch.fft.ifft2(spectrum).real
    return x


def circular_gap(act=None):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), *([act] if act else []),
                         GlobalAverage(), nn.Linear(4, 3)).double()


def maxpool_flatten():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * (SIDE // 2) ** 2, 3)).double()


def gaussian(cx, cy, sigma=2.5, side=SIDE):
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                            indexing="ij")
    return torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))


def scale_of(model, x, transform):
    """||J u||^2 per image for a random direction u as long as the transformation's own d/dt T_t x: what the
    Lie derivative would be if the network ignored the structure of the transformation."""
    zero = torch.zeros((), dtype=x.dtype)
    _, tangent = jvp(lambda t: transform_images(x, transform, t), (zero,), (torch.ones_like(zero),))
    u = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(1))
    u = u * tangent.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1) / u.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
    _, d = jvp(lambda z: torch.softmax(model(z), dim=1), (x,), (u,))
    return d.pow(2).sum(1).detach()


def test_the_transformations_are_what_they_say():
    x = images()
    for t in (0.3, -1.7):
        assert torch.allclose(transform_images(x, "translate_x", t), fourier_shift(x, t, 0.0), atol=1e-12)
        assert torch.allclose(transform_images(x, "translate_y", t), fourier_shift(x, 0.0, t), atol=1e-12)
    for tr in TRANSFORMS:
        assert torch.allclose(transform_images(x, tr, 0.0), x, atol=1e-12)
    side = 32  # room for a blob that is ~0 at the edges (the interpolant is periodic)
    c = (side - 1) / 2  # an off-centre blob turned by 0.4 rad lands at (c + 6 cos, c + 6 sin); scaled by e^0.2, grows
    rotated = transform_images(gaussian(c + 6, c, 2, side)[None, None], "rotate", 0.4)[0, 0]
    assert (rotated - gaussian(c + 6 * math.cos(0.4), c + 6 * math.sin(0.4), 2, side)).abs().max() < 1e-4
    scaled = transform_images(gaussian(c + 6, c, 2, side)[None, None], "scale", 0.2)[0, 0]
    assert (scaled - gaussian(c + 6 * math.exp(0.2), c, 2 * math.exp(0.2), side)).abs().max() < 1e-4


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("make", [maxpool_flatten, lambda: circular_gap(nn.ReLU())])
def test_agrees_with_a_central_finite_difference(make, transform):
    model, x, h = make(), images(), 1e-6  # small: max pooling switches its argmax rarely within +-h
    with torch.no_grad():
        p = lambda t: torch.softmax(model(transform_images(x, transform, t)), dim=1)
        fd = ((p(h) - p(-h)) / (2 * h)).pow(2).sum(1)
    exact = lie_derivative(model, x, transform)
    assert exact.shape == (len(x),)
    assert ((exact - fd).abs() / exact.abs().max()).max() < 1e-2


def test_alias_free_networks_are_invariant_to_continuous_translation():
    x = images(nyquist=False)
    linear = circular_gap()  # a circular conv commutes with every band-limited shift; the mean is its DC term
    for tr in ("translate_x", "translate_y"):
        assert (lie_derivative(linear, x, tr) / scale_of(linear, x, tr)).max() < 1e-6
    torch.manual_seed(0)
    afc = create_model({"arch": "conv_gap", "downsample": "afc", "padding": "circular", "channels": [4, 8]},
                       num_classes=3, canvas=SIDE).double()  # alias-free down-sampling and activation
    assert (lie_derivative(afc, x, "translate_x") / scale_of(afc, x, "translate_x")).max() < 1e-6
    assert max(layer_lie_derivative(afc, x, "translate_y").values()) < 1e-12  # every tap equivariant


def test_a_relu_aliases_but_integer_shifts_stay_exact():
    """circular conv + ReLU + global mean is invariant to whole-pixel shifts, not to continuous ones: ReLU of a
    band-limited signal is not band-limited, so its mean moves between the pixels (docs: Lie derivative)."""
    model, x = circular_gap(nn.ReLU()), images()
    with torch.no_grad():
        p = lambda t: torch.softmax(model(transform_images(x, "translate_x", t)), dim=1)
        assert torch.allclose(p(1.0), p(0.0), atol=1e-12) and not torch.allclose(p(0.5), p(0.0), atol=1e-12)
    assert lie_derivative(model, x, "translate_x").min() > 0
    taps = layer_lie_derivative(model, x, "translate_x", taps=["0", "output"])
    assert taps["0"] < 1e-20 < taps["output"]  # the convolution is equivariant; the error enters at the ReLU


def test_max_pooling_and_flatten_are_clearly_not_invariant():
    model, x = maxpool_flatten(), images()
    for tr in TRANSFORMS:
        assert (lie_derivative(model, x, tr) / scale_of(model, x, tr)).min() > 1e-3


def test_a_radial_mask_is_invariant_to_rotation():
    c = (SIDE - 1) / 2
    x = images(nyquist=False)
    # sigma 1.5 px: ~0 at the edges (the interpolant is periodic) and ~0 at the Nyquist frequency, so its
    # spectral gradient is radial to ~1e-5; a wider or sharper mask is not (2.5 px: 1e-2 of the off-centre's)
    radial, off_centre = Masked(gaussian(c, c, 1.5)), Masked(gaussian(c + 3, c, 1.5))
    assert lie_derivative(off_centre, x, "rotate").min() > 1e-8
    assert (lie_derivative(radial, x, "rotate") / lie_derivative(off_centre, x, "rotate")).max() < 1e-6


def test_lie_table_rows_and_the_models_mode_kept():
    torch.manual_seed(0)
    model = create_model("conv_gap", num_classes=2, canvas=SIDE)
    model.train()
    table = lie_table({("conv_gap", 0): model}, images(2).float(), transforms=("translate_x", "scale"), layers=True)
    assert list(table.columns) == LIE_COLUMNS
    assert model.training  # measured in eval mode, the caller's mode restored
    out = table[table["layer"] == ""]
    assert list(out["transform"]) == ["translate_x", "scale"] and (out["value"] > 0).all()
    assert {"block1.conv", "head"} <= set(table["layer"])


def test_bad_inputs_are_refused():
    with pytest.raises(InvlabError, match="unknown Lie derivative transform 'rotation'"):
        lie_derivative(circular_gap(), images(), "rotation")
    with pytest.raises(InvlabError, match=r"float tensor \(N, C, H, W\)"):
        lie_derivative(circular_gap(), images()[0, 0])  # one (H, W) image; (N, H, W) is N one-channel images
    wide = nn.Sequential(nn.Flatten(), nn.Linear(4 * 32 * 32, 2))  # built for 32 px images: not told "forward mode"
    with pytest.raises(InvlabError, match=r"shapes cannot be multiplied.*another size than these 16 x 16 px") as e:
        lie_derivative(wide, torch.rand(2, 4, 16, 16))
    assert "forward-mode" not in str(e.value)


def test_a_callers_autocast_does_not_change_the_values():
    """Inside torch.autocast("cpu", bfloat16) the derivative had been taken in bfloat16 (values 2x off); it is
    taken in the model's own float32, for the output and for every tap, and the caller's autocast stays on."""
    model, x = maxpool_flatten().float(), images().float()
    plain, layers = lie_derivative(model, x, "rotate"), layer_lie_derivative(model, x, "rotate")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = lie_derivative(model, x, "rotate")
        assert layer_lie_derivative(model, x, "rotate") == layers
        assert torch.is_autocast_enabled("cpu")
    assert cast.dtype == torch.float32 and torch.equal(cast, plain)


def test_images_of_another_dtype_than_the_model_are_told_to_match_it():
    with pytest.raises(InvlabError, match=r"the images float64: give the images in the model's dtype"):
        lie_derivative(circular_gap().float(), images())


def test_a_folder_of_images_is_read_as_il_measure_reads_it(tmp_path):
    x = (images().float() * 255).round() / 255  # 8-bit pixels: what a PNG holds
    folder = write_folder(x, tmp_path / "pngs")
    model = circular_gap().float()
    assert torch.allclose(lie_derivative(model, folder), lie_derivative(model, x), atol=1e-7)


def test_the_lie_derivative_of_one_logit_is_that_of_the_two_logits_zero_and_it():
    # a sigmoid binary classifier (nn/logits.py): measured as (0, z), whose softmax moves as sigmoid(z) does
    one = nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 1)).double()

    class TwoLogits(nn.Module):
        def forward(self, x):
            z = one(x)
            return torch.cat([torch.zeros_like(z), z], dim=1)

    x = images(4)
    a, b = lie_derivative(one, x), lie_derivative(TwoLogits(), x)
    assert torch.allclose(a, b) and bool((a > 0).all())


def test_a_model_that_changes_a_buffer_in_forward_is_told_so_not_blamed_on_forward_mode():
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.register_buffer("calls", torch.zeros(()))

        def forward(self, x):
            self.calls += 1  # in place, on a tensor the model holds: jvp cannot trace it
            return self.conv(x).mean((2, 3))

    with pytest.raises(InvlabError, match=r"changes a tensor it holds in place during forward") as e:
        lie_derivative(Counting(), torch.rand(3, 1, 8, 8))
    assert "one has none" not in str(e.value)


def test_a_tap_with_no_stride_is_measured_by_its_spatial_mean():
    """A conv padded 2 on a 16 px image gives 18 px, a map no stride fits (taps.infer_stride 0): its target is the
    invariance of its spatial mean, which a full convolution keeps exactly (its sum is sum(x) * sum(kernel) + bias,
    and a band-limited shift keeps sum(x)). Measuring the map itself instead would give ~0.4, not ~0."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=2), GlobalAverage(), nn.Linear(4, 3)).double()
    for tr in ("translate_x", "translate_y"):
        assert layer_lie_derivative(model, images(), tr, taps=["0"])["0"] < 1e-12


def test_a_tap_that_is_zero_on_every_image_is_nan_not_invariant():
    """A dead layer has no scale to compare its derivative with: NaN, not 0 (which would read as invariant)."""
    torch.manual_seed(0)
    model = circular_gap()
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
    values = layer_lie_derivative(model, images(), "translate_x", taps=["0", "output"])
    assert math.isnan(values["0"]) and not math.isnan(values["output"])


def test_exact_on_turns_tf32_off_on_cuda_only_and_gives_the_callers_flags_back():
    """The Lie derivative ran CUDA convolutions in TF32 (torch's default, ~1e-4 relative), so an exactly invariant
    network did not measure ~0; the flags are plain settings, readable without a GPU."""
    from invariance_lab.core.runtime import exact_on

    cudnn = torch.backends.cudnn
    before = cudnn.allow_tf32
    try:
        cudnn.allow_tf32 = True
        with exact_on(torch.device("cpu")):
            assert cudnn.allow_tf32  # the CPU has no TF32: nothing to change
        with exact_on(torch.device("cuda", 0)):
            assert not cudnn.allow_tf32
        assert cudnn.allow_tf32
    finally:
        cudnn.allow_tf32 = before


def test_a_folder_of_images_is_read_onto_the_models_device_and_measured_there(tmp_path, monkeypatch):
    """A folder is read on the CPU: a CUDA model met CPU images ("failed on a batch of shape ...")."""
    from invariance_lab.eval import lie

    write_folder(torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)), tmp_path / "imgs",
                 torch.tensor([0, 1, 0, 1]), ["a", "b"])
    seen = []
    real = lie.exact_on
    monkeypatch.setattr(lie, "exact_on", lambda device: seen.append(device) or real(device))
    torch.manual_seed(0)
    values = lie.lie_derivative(circular_gap().float(), tmp_path / "imgs")
    assert values.shape == (4,) and seen == [torch.device("cpu")]
