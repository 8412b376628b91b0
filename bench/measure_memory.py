"""Memory estimates of own models (nn/maps.py: `invlab measure`, and `invlab run`'s) against the memory used.

    python bench/measure_memory.py [--convs-only | --runs]

Part 1, one convolution (nn/maps.conv_scratch's term): a batch of 16 in inference mode, one thread; the growth
of the process's peak resident memory over the convolution, against the estimate of input + output + scratch
(the input is allocated before the growth is read, so it is added to the growth).
Part 2, `invlab measure` end to end on models of your own (a VGG-like, a ResNet-like and a plain network of 64
channels, plain ones of 4 and 16, the tests' circular_gap; the VGG-like once more with --layers --layer-images 256)
over a folder of random RGB PNGs: the estimate (measure_memory's parts as the refusal adds them, measure_total)
against the growth of peak resident memory over the command. Images are made once under a temporary folder.
INVLAB_MEMORY_LIMIT is raised so that nothing is refused.
Part 3 (--runs), `invlab run` of models of your own (one epoch on 256 letters): the run's estimate once the models
are built (run_experiment's second memory check) against the growth of peak resident memory over the command.
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
from invariance_lab.nn.maps import feature_map_bytes
b, c, o, side, groups, stride, mode, kernel, padding = json.loads(sys.argv[1])
torch.set_num_threads(1)
conv = torch.nn.Conv2d(c, o, kernel, padding=padding, groups=groups, stride=stride, padding_mode=mode)
x = torch.randn(b, c, side, side)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with torch.inference_mode():
    y = conv(x)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
size = lambda t: t.numel() * t.element_size()
print(json.dumps([size(x) + grew, size(x) + feature_map_bytes({"c": conv}, x)[0] * b]))
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
print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base, mm.measure_total(parts)]))
"""

TRAIN = r"""
import json, resource, sys
import invariance_lab.config.memory as memory
import invariance_lab.run.experiment as experiment
from invariance_lab.cli.main import app
from typer.testing import CliRunner
parts = {}
def recorded(cfg, source, _note=lambda key: "", own=None):  # run_experiment's second check, with own models
    parts.update(memory.memory_estimate(cfg, own)); return memory.check_resources(cfg, source, _note, own)
experiment.check_resources = recorded
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
res = CliRunner().invoke(app, ["run", *json.loads(sys.argv[1]), "--quiet"])
assert res.exit_code == 0, res.output
print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base,
                  sum(b for b, _ in parts.values())]))
"""

MODELS = r'''
import torch
from torch import nn


def vgg(width=64, classes=2, pools=3, channels=3):
    layers, c = [], channels
    for _ in range(pools):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))


class Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))

    def forward(self, x):
        return torch.relu(x + self.body(x))  # the block's input stays alive beside its body's maps


def resnet(width=64, classes=2, blocks=2, channels=3):
    return nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), *[Residual(width) for _ in range(blocks)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def plain(width=64, classes=2, depth=3, channels=3):
    layers, c = [], channels
    for _ in range(depth):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))
'''

# (batch, in channels, out channels, side, groups, stride, padding_mode, kernel, padding)
CONVS = [(16, 64, 64, 256, 1, 1, "zeros", 3, 1), (16, 3, 64, 512, 1, 1, "zeros", 3, 1),
         (16, 4, 4, 512, 1, 1, "zeros", 3, 1), (16, 8, 1, 512, 1, 1, "zeros", 3, 1),
         (16, 17, 17, 512, 1, 1, "zeros", 3, 1), (16, 32, 3, 512, 1, 1, "zeros", 3, 1),
         (16, 64, 10, 256, 1, 1, "zeros", 3, 1), (16, 64, 128, 256, 1, 2, "zeros", 3, 1),
         (16, 64, 64, 256, 64, 1, "zeros", 3, 1), (16, 64, 64, 256, 1, 1, "circular", 3, 1),
         (16, 4, 4, 512, 1, 1, "circular", 3, 1), (16, 64, 64, 256, 1, 1, "reflect", 5, 2),
         (16, 64, 64, 256, 1, 1, "zeros", 2, "same"), (16, 4, 4, 512, 1, 1, "zeros", 4, "same")]

# (label, --model, --model-kwargs, image side, --batch-size, --colour)
RUNS = [("vgg 64 ch, 128 px", "bench_models:vgg", {"width": 64}, 128, 256, "rgb"),
        ("plain 64 ch, 256 px", "bench_models:plain", {"width": 64}, 256, 64, "rgb"),
        ("plain 16 ch, 128 px", "bench_models:plain", {"width": 16}, 128, 256, "rgb"),
        ("resnet 64 ch, 128 px", "bench_models:resnet", {"width": 64}, 128, 256, "rgb"),
        ("plain 4 ch, 512 px", "bench_models:plain", {"width": 4}, 512, 16, "rgb"),
        ("circular_gap 4 ch, 1024 px", "custom_models:circular_gap", {}, 1024, 12, "grey"),
        ("vgg 64 ch, 128 px, --layers", "bench_models:vgg", {"width": 64}, 128, 256, "rgb")]


# `invlab run` of a model of your own, letters A and B: (label, factory, kwargs, canvas, train.batch_size)
TRAININGS = [("vgg 64 ch, 64 px", "bench_models:vgg", {"width": 64}, 64, 64),
             ("vgg 16 ch, 128 px", "bench_models:vgg", {"width": 16}, 128, 64),
             ("plain 64 ch, 128 px", "bench_models:plain", {"width": 64}, 128, 64),
             ("plain 16 ch, 128 px", "bench_models:plain", {"width": 16}, 128, 128),
             ("resnet 64 ch, 64 px", "bench_models:resnet", {"width": 64}, 64, 64)]


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
    p.add_argument("--runs", action="store_true", help="also `invlab run` of models of your own (training)")
    args = p.parse_args()
    mib = 2**20
    head = "convolution (batch, in, out, side, groups, stride, mode, kernel, padding)"
    print(f"{head:62s} {'MiB':>6s} estimate ratio")
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
            command = ["--images", str(folder), "--model", model, "--model-kwargs", json.dumps(kwargs), "--colour",
                       colour, "--dx", "0:1", "--batch-size", str(batch), "--threads", "1", "--results-dir",
                       str(tmp / "results")] + (["--layers", "--layer-images", "256"] if "--layers" in label else [])
            used, est = _child(MEASURE, command, env)
            print(f"{label + f' ({batch})':34s} {used / 2**30:6.2f} {est / 2**30:8.2f} {est / used:5.2f}")
        if not args.runs:
            return
        print(f"\n{'invlab run, one epoch (train batch)':34s} {'GiB':>6s} {'estimate':>8s} ratio")
        for label, factory, kwargs, canvas, batch in TRAININGS:
            config = tmp / "train.yaml"
            config.write_text(json.dumps(dict(
                name="train", seeds=[0], device="cpu",
                data=dict(letters=["A", "B"], fonts=["futural"], canvas=canvas, size=canvas // 3, train_images=256,
                          test_images=64),
                models=dict(mine=dict(factory=factory, kwargs=dict(kwargs, channels=1))),
                train=dict(epochs=1, batch_size=batch), sweep=dict(dx=[-1, 1], dy=[0, 0], batch_size=64))))
            used, est = _child(TRAIN, [str(config), "--results-dir", str(tmp / "results"), "--threads", "1"], env)
            print(f"{label + f' ({batch})':34s} {used / 2**30:6.2f} {est / 2**30:8.2f} {est / used:5.2f}")


if __name__ == "__main__":
    main()
