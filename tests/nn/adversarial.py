"""What the exact-invariance tests of APS, LPS, AFC, TIPS and circular layers share (test_aps.py, test_lps.py,
test_afc.py, test_tips.py, test_layers.py): 16 x 16 images whose polyphase components tie, every circular roll of
them, the distance of an output to the nearest roll of a reference, and small circular networks with their logits
at every shift."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from invariance_lab.nn.models import build_model, resolve_spec

S = 16  # canvas side: 256 circular shifts per image
ROLL_TOL = 1e-6  # "is a roll": relative l2 distance to the nearest roll (float32 noise is ~1e-7)
TOL = 1e-5  # largest |logit change| allowed: float32 round-off


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


def small_net(downsample: str, trained: bool, seed: int = 0, head: str = "global_avg",
              steps: int = 5) -> torch.nn.Module:
    """channels [4, 8] on a 16 px canvas, circular padding; trained: `steps` Adam steps on 24 random images."""
    torch.manual_seed(seed)
    f = resolve_spec(dict(downsample=downsample, head=head, padding="circular", channels=[4, 8], kernel=3,
                          blur_size=1))
    net = build_model(f, num_classes=3, canvas=S)
    if trained:
        g = torch.Generator().manual_seed(2)
        x, y = torch.rand(24, 1, S, S, generator=g), torch.randint(0, 3, (24,), generator=g)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(steps):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        untrained = small_net(downsample, False, seed).state_dict()["blocks.0.conv.weight"]
        assert not torch.equal(net.state_dict()["blocks.0.conv.weight"], untrained), "training changed nothing"
    return net.eval()


@functools.lru_cache(maxsize=1)
def probes() -> torch.Tensor:
    """Noise and inputs whose polyphase components tie (adversarial() above)."""
    return torch.cat([torch.rand(2, 1, S, S, generator=torch.Generator().manual_seed(5)),
                      images(["blank", "two_blobs_2x2", "dots_2_vs_3", "mirror_blobs"])])


def logits_at_every_shift(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(S*S, N, classes): the logits of every circular shift of every image, shift (0, 0) first."""
    rolls, index = distinct(all_rolls(x))  # the blank image's rolls are one image
    with torch.no_grad():
        return net(rolls)[index].view(S * S, len(x), -1)


def assert_exact(out: torch.Tensor) -> None:
    assert torch.equal(out.argmax(-1), out[0].argmax(-1).expand(len(out), -1))  # predictions never change
    assert (out - out[0]).abs().max().item() <= TOL
    assert (out[0] - out[0].mean(0)).abs().max().item() > 1e-4  # the network does tell the images apart
