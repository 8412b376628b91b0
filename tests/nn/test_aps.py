"""APS (aps.APSDown) is exact as claimed: with circular padding, the output for EVERY circular shift of the
input is a circular shift of the unshifted output, on inputs built to make polyphase components tie.

Adversarial inputs (16 x 16): blank, constant, checkerboards, stripes, a diagonal, two identical blobs, mirror
images, dots spaced differently in different components, sparse dots, noise and blurred noise. Checked on the
module alone (blur sizes 1..7, one and three channels) and on whole aps_max / aps_stride networks (circular
padding, global average head, total stride 8), untrained and briefly trained: worst total-variation distance
between softmax outputs <= 1e-6, and every block's output a roll of the unshifted one.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from invariance_lab.nn.aps import TIE_ULPS, APSDown
from invariance_lab.eval.taps import layer_taps
from invariance_lab.nn.models import build_model, resolve_spec

S = 16  # canvas side: 256 circular shifts per image
ROLL_TOL = 1e-6  # "is a roll": relative l2 distance to the nearest roll (float32 noise is ~1e-7)
TV_TOL = 1e-6

pytestmark = pytest.mark.usefixtures("one_thread")


def adversarial() -> dict[str, torch.Tensor]:
    """Named (1, 1, S, S) images whose polyphase components tie exactly (or are meant to try)."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    blob = torch.tensor([[0.2, 1.0, 0.5], [0.3, 0.9, 0.1], [0.0, 0.4, 0.6]])
    row = torch.tensor([1.0, 2, 0, 0, 0, 0, 2, 1])  # even / odd samples are mirror images: [1,0,0,2], [2,0,0,1]
    images = {"blank": torch.zeros(S, S), "constant": torch.full((S, S), 0.7),
              "checker_1px": ((yy + xx) % 2).float(), "checker_2px": ((yy // 2 + xx // 2) % 2).float(),
              "stripe_1px": (yy == 5).float(), "stripe_2px": ((yy == 5) | (yy == 6)).float(),
              "diagonal": (yy == xx).float()}
    x = torch.zeros(S, S)
    x[2:4, 2:4] = x[7:9, 9:11] = 1.0  # 2x2 blobs: all four components tie, each with a different spacing
    images["two_blobs_2x2"] = x
    for name, (r, c) in {"two_blobs_odd": (8, 6), "two_blobs_even": (9, 9)}.items():
        x = torch.zeros(S, S)
        x[1:4, 1:4] = x[r:r + 3, c:c + 3] = blob
        images[name] = x
    x = torch.zeros(S, S)
    x[3, 2:10] = x[4, 2:10] = row
    images["mirror_row"] = x
    x = torch.zeros(S, S)
    x[4:7, 4:7], x[4:7, 9:12] = blob, blob.flip(-1)
    images["mirror_blobs"] = x
    x = torch.zeros(S, S)
    x[0, 0] = x[0, 4] = x[1, 1] = x[1, 7] = 1.0  # component (0,0): dots 2 apart; component (1,1): 3 apart
    images["dots_2_vs_3"] = x
    images["sparse_dots"] = (torch.rand(S, S, generator=g) > 0.9).float()
    images["noise"] = torch.rand(S, S, generator=g)
    images["blurred_noise"] = F.avg_pool2d(torch.rand(1, S + 6, S + 6, generator=g), 7, 1)[0, :S, :S]
    return {k: v[None, None] for k, v in images.items()}


TIES = ["two_blobs_2x2", "two_blobs_odd", "mirror_row", "dots_2_vs_3"]  # exact ties between non-translates
# For whole networks and three channels, a subset that keeps each kind of tie (one channel: all of them)
NETWORK_IMAGES = ["blank", "checker_2px", "two_blobs_2x2", "two_blobs_odd", "mirror_blobs",
                  "dots_2_vs_3", "blurred_noise"]


def all_rolls(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (H*W*N, C, H, W): every circular shift of every image, shift (0, 0) first."""
    h, w = x.shape[-2:]
    return torch.cat([torch.roll(x, (dy, dx), dims=(-2, -1)) for dy in range(h) for dx in range(w)])


def distance_to_nearest_roll(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(N,) min over circular shifts r of ||out[n] - roll(ref[n % M], r)|| / ||ref[n % M]||, for out (N, C, h, w)
    and ref (M, C, h, w), N a multiple of M (out: M images rolled N / M times, as all_rolls makes them).

    All shifts at once through the FFT, in float64: <out, roll(ref, r)> is a circular cross-correlation. The
    difference of squares resolves distances down to ~1e-8 of ||ref||, far below ROLL_TOL. Each reference is
    transformed once, not once per roll (the same numbers as transforming it repeated N / M times)."""
    o, r = out.double(), ref.double()
    k = o.shape[0] // r.shape[0]
    spectra = torch.fft.fft2(o).view(k, *r.shape)
    corr = torch.fft.ifft2(spectra * torch.fft.fft2(r).conj()).real.sum(2).flatten(0, 1)  # (N, h, w)
    o2, r2 = o.pow(2).sum(dim=(1, 2, 3)), r.pow(2).sum(dim=(1, 2, 3)).repeat(k)
    d2 = (o2 + r2)[:, None, None] - 2 * corr
    return d2.amin(dim=(1, 2)).clamp_min(0).sqrt() / r2.sqrt().clamp_min(1e-30)


def distinct(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the distinct images of x, the index of each image of x among them). The rolls of a periodic image (blank,
    constant, checkerboards, stripes, diagonal) repeat; the modules and networks here compute each image on its
    own (eval mode), so a repeat's output is the first one's and each distinct image is computed once."""
    return torch.unique(x, dim=0, return_inverse=True)


def worst_roll_distance(f, x: torch.Tensor) -> float:
    """Largest distance_to_nearest_roll between f(every roll of x) and f(x), over all images of x."""
    rolls, index = distinct(all_rolls(x))
    with torch.no_grad():
        ref, out = f(x), f(rolls)[index]
    return distance_to_nearest_roll(out, ref).max().item()


def images(names=None) -> torch.Tensor:
    adv = adversarial()
    return torch.cat([adv[n] for n in (names or adv)])


def three_channels(x: torch.Tensor) -> torch.Tensor:
    """Three channels that tie like the input does: x, x squared, and x moved by one component position."""
    return torch.cat([x, x * x, torch.roll(x, (2, 0), dims=(-2, -1))], dim=1)


# ----------------------------------------------------------------------------------------------- the module

@pytest.mark.parametrize("blur_size", range(1, 8))
def test_aps_output_is_a_roll_for_every_shift(blur_size):
    assert worst_roll_distance(APSDown(1, blur_size), images()) < ROLL_TOL
    assert worst_roll_distance(APSDown(3, blur_size), three_channels(images(NETWORK_IMAGES))) < ROLL_TOL


def first_tied(comps: torch.Tensor) -> torch.Tensor:
    """A rule to contrast with: the same norms and tie tolerance, ties settled by the fixed order."""
    energy = comps.double().pow(2).sum(dim=(2, 3, 4))
    best = energy.amax(1, keepdim=True)
    return (energy >= best * (1 - TIE_ULPS * torch.finfo(comps.dtype).eps)).to(torch.uint8).argmax(1)


def plain_argmax(comps: torch.Tensor) -> torch.Tensor:
    return comps.double().pow(2).sum(dim=(2, 3, 4)).argmax(1)


@pytest.mark.parametrize("rule", [first_tied, plain_argmax])
def test_the_tied_inputs_do_defeat_position_based_tie_breaks(rule, monkeypatch):
    """The inputs in TIES exercise the tie-break: settled by position, each of them is no longer a roll."""
    monkeypatch.setattr(APSDown, "choose", lambda self, comps: rule(comps))
    aps = APSDown(1, blur_size=1)
    for name in TIES:
        assert worst_roll_distance(aps, images([name])) > 0.1, name


def test_aps_keeps_the_largest_norm_and_passes_gradients():
    x = torch.zeros(2, 1, 4, 4)
    x[0, 0, 1, 0] = 3.0  # component (1, 0)
    x[1, 0, 1, 1] = 2.0  # component (1, 1)
    x.requires_grad_(True)
    y = APSDown(1)(x)
    assert y[0, 0].max().item() == 3.0 and y[1, 0].max().item() == 2.0
    y.sum().backward()
    assert x.grad[0, 0, 1, 0].item() == 1.0 and x.grad.sum().item() == 8.0  # 4 kept pixels per sample
    with pytest.raises(ValueError, match="even"):
        APSDown(1)(torch.rand(1, 1, 5, 5))


def comps_of(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[..., i::2, j::2] for i in (0, 1) for j in (0, 1)], dim=1)


def test_the_norm_decides_beyond_the_tolerance_and_content_within_it():
    """The paper's rule (largest norm) wherever norms differ by more than the float-noise tolerance; within it,
    the content: a component of a tie made 1 ulp larger does not win by that, one made 16 ulps larger does."""
    aps = APSDown(1)
    comps = comps_of(torch.rand(512, 1, 8, 8, generator=torch.Generator().manual_seed(1)))
    energy = comps.double().pow(2).sum(dim=(2, 3, 4))
    top2 = energy.topk(2, dim=1).values
    apart = (top2[:, 0] - top2[:, 1]) > TIE_ULPS * 2 ** -23 * top2[:, 0]
    assert apart.float().mean() > 0.99  # noise is (nearly) never tied ...
    assert torch.equal(aps.choose(comps)[apart], energy.argmax(1)[apart])  # ... and then the norm decides

    tied = comps_of(images(["dots_2_vs_3"]))  # (0,0): dots 2 apart wins the tie-break over (1,1): 3 apart
    assert aps.choose(tied).item() == 0
    for ulps, winner in [(1, 0), (16, 3)]:
        nudged = tied.clone()
        nudged[0, 3, 0, 0, 0] = 1 + ulps * 2 ** -23  # a dot of (1, 1): its energy 2 -> 2 (1 + ulps * 2**-23)
        assert aps.choose(nudged).item() == winner, ulps


# ----------------------------------------------------------------------------------------------- whole networks

def aps_net(downsample: str, blur_size: int, trained: bool) -> torch.nn.Module:
    torch.manual_seed(blur_size)
    f = resolve_spec(dict(downsample=downsample, head="global_avg", padding="circular", channels=[4, 8, 8],
                          kernel=3, blur_size=blur_size))
    net = build_model(f, num_classes=3, canvas=S)
    if trained:  # a few Adam steps on random images: weights no longer at their initial values
        g = torch.Generator().manual_seed(2)
        x = torch.rand(48, 1, S, S, generator=g)
        y = torch.randint(0, 3, (48,), generator=g)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(8):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@functools.lru_cache(maxsize=1)
def adversarial_rolls() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network images, their distinct rolls and where each of the S * S * n rolls is among them (distinct)."""
    x = images(NETWORK_IMAGES)
    return x, *distinct(all_rolls(x))


@pytest.mark.parametrize("trained", [False, True], ids=["untrained", "trained"])
@pytest.mark.parametrize("blur_size", range(1, 8))
@pytest.mark.parametrize("downsample", ["aps_max", "aps_stride"])
def test_aps_network_is_exactly_invariant_to_every_circular_shift(downsample, blur_size, trained):
    net = aps_net(downsample, blur_size, trained)
    x, rolls, index = adversarial_rolls()
    with torch.no_grad():
        ref, out = layer_taps(net, x), [(name, stride, f[index]) for name, stride, f in layer_taps(net, rolls)]
    n = len(x)
    for (name, _, f_ref), (_, _, f) in zip(ref, out):
        if name.endswith(".down"):  # after APS: a roll of the unshifted map, image by image
            assert distance_to_nearest_roll(f, f_ref).max().item() < ROLL_TOL, name
    p_ref = net.fc(ref[-1][2]).softmax(-1)
    p = net.fc(out[-1][2]).softmax(-1).view(S * S, n, -1)
    assert (0.5 * (p - p_ref).abs().sum(-1)).max().item() <= TV_TOL
    assert (p_ref - p_ref.mean(0)).abs().max().item() > 1e-4  # the network does tell the images apart
