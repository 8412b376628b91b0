"""`invlab measure`'s memory estimate (eval/measure_memory.py) against the memory it uses, each case in a fresh process.

    python bench/measure_memory.py [--convs-only]

Part 1, one convolution (the term conv_scratch estimates): a batch of 16 in inference mode, one thread; the growth
of the process's peak resident memory over the convolution, against the estimate of input + output + scratch
(the input is allocated before the growth is read, so it is added to the growth).
Part 2, `invlab measure` end to end on models of your own (a VGG-like and a plain network of 64 channels, thin ones
of 4 and 16, the tests' circular_gap) over a folder of random RGB PNGs: the estimate's total (measure_memory's
parts, as the refusal sums them) against the growth of peak resident memory over the command. Images are made
once under a temporary folder. INVLAB_MEMORY_LIMIT is raised so that nothing is refused.
Peak resident memory is coarse (the allocator's rounding and its pools): ratios within 10% are a match.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONV = r"""
import json, resource, sys, torch
from invariance_lab.nn.maps import conv_scratch
b, c, o, side, groups, stride, mode = json.loads(sys.argv[1])
torch.set_num_threads(1)
conv = torch.nn.Conv2d(c, o, 3, padding=1, groups=groups, stride=stride, padding_mode=mode)
x = torch.randn(b, c, side, side)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with torch.inference_mode():
    y = conv(x)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
size = lambda t: t.numel() * t.element_size()
print(json.dumps([size(x) + grew, size(x) + size(y) + conv_scratch(conv, x, y)]))
"""

MEASURE = r"""
import json, resource, sys
import invariance_lab.eval.measure_memory as mm
from invariance_lab.cli.main import app
from typer.testing import CliRunner
parts = {}
estimate = mm.measure_memory
def recorded(*a, **k):
    parts.clear(); parts.update(estimate(*a, **k)); return parts
mm.measure_memory = recorded
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
res = CliRunner().invoke(app, ["measure", *json.loads(sys.argv[1]), "--quiet"])
assert res.exit_code == 0, res.output
print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base, sum(parts.values())]))
"""

MODELS = r'''
from torch import nn


def vgg(width=64, classes=2, pools=3, channels=3):
    layers, c = [], channels
    for _ in range(pools):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))


def plain(width=64, classes=2, depth=3, channels=3):
    layers, c = [], channels
    for _ in range(depth):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))
'''

# (batch, in channels, out channels, side, groups, stride, padding_mode)
CONVS = [(16, 64, 64, 256, 1, 1, "zeros"), (16, 3, 64, 512, 1, 1, "zeros"), (16, 4, 4, 512, 1, 1, "zeros"),
         (16, 8, 1, 512, 1, 1, "zeros"), (16, 17, 17, 512, 1, 1, "zeros"), (16, 32, 3, 512, 1, 1, "zeros"),
         (16, 64, 10, 256, 1, 1, "zeros"), (16, 64, 128, 256, 1, 2, "zeros"), (16, 64, 64, 256, 64, 1, "zeros"),
         (16, 64, 64, 256, 1, 1, "circular"), (16, 4, 4, 512, 1, 1, "circular")]

# (label, --model, --model-kwargs, image side, --batch-size, --colour)
RUNS = [("vgg 64 ch, 128 px", "bench_models:vgg", {"width": 64}, 128, 256, "rgb"),
        ("plain 64 ch, 256 px", "bench_models:plain", {"width": 64}, 256, 64, "rgb"),
        ("plain 16 ch, 128 px", "bench_models:plain", {"width": 16}, 128, 256, "rgb"),
        ("plain 4 ch, 512 px", "bench_models:plain", {"width": 4}, 512, 16, "rgb"),
        ("circular_gap 4 ch, 1024 px", "custom_models:circular_gap", {}, 1024, 12, "grey")]


def _child(code: str, arg, env: dict | None = None) -> list:
    out = subprocess.run([sys.executable, "-c", code, json.dumps(arg)], check=True, capture_output=True, text=True,
                         env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def _images(folder: Path, side: int, n: int) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        (folder / f"{side}" / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{side}" / "ab"[i % 2] / f"{i}.png")
    return folder / f"{side}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--convs-only", action="store_true")
    args = p.parse_args()
    mib = 2**20
    print(f"{'convolution (batch, in, out, side, groups, stride, padding)':62s} {'MiB':>6s} {'estimate':>8s} ratio")
    for case in CONVS:
        used, est = _child(CONV, case)
        print(f"{case!s:62s} {used / mib:6.0f} {est / mib:8.0f} {est / used:5.2f}")
    if args.convs_only:
        return
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "bench_models.py").write_text(MODELS)
        env = {**os.environ, "INVLAB_MEMORY_LIMIT": "16",
               "PYTHONPATH": os.pathsep.join([str(tmp), str(root / "tests"), os.environ.get("PYTHONPATH", "")])}
        print(f"\n{'invlab measure (batch)':34s} {'GiB':>6s} {'estimate':>8s} ratio")
        for label, model, kwargs, side, batch, colour in RUNS:
            folder = _images(tmp / "images", side, batch)  # one whole batch
            used, est = _child(MEASURE, ["--images", str(folder), "--model", model, "--model-kwargs", json.dumps(kwargs),
                                         "--colour", colour, "--dx", "0:1", "--batch-size", str(batch), "--threads", "1",
                                         "--results-dir", str(tmp / "results")], env)
            print(f"{label + f' ({batch})':34s} {used / 2**30:6.2f} {est / 2**30:8.2f} {est / used:5.2f}")


if __name__ == "__main__":
    main()
