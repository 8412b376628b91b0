"""Measure a model of your own, train it with invlab, and compare it with the preset conv_gap.

    python examples/measure_your_model.py            # about 10 s on 2 CPU cores
    python examples/measure_your_model.py --quick    # seconds: tiny data (what tests/run/test_measure.py runs)

The network is defined in this file (small_cnn); invlab trains it from a config that names it as a factory,
"measure_your_model:small_cnn", found in this file's folder. Importing it runs this file as a module: the
`if __name__ == "__main__"` guard keeps that from running main() again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

import invariance_lab as il

HERE = Path(__file__).resolve().parent


def small_cnn(width: int = 16, classes: int = 2) -> nn.Module:
    """Circular padding, stride 1, global average pooling: invariant to every circular shift by construction."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny data and one epoch: seconds")
    ap.add_argument("--results-dir", type=Path, default=Path("results"))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    size = dict(canvas=16, size=8, train_images=64, test_images=24) if args.quick else \
        dict(canvas=32, size=16, train_images=2000, test_images=500)
    width, shifts = (4, range(-4, 5)) if args.quick else (16, range(-8, 9))

    # 1. Any model, as it is: untrained, on images made up here (a tensor (N, C, H, W); a folder works too).
    images = torch.rand(16, 1, size["canvas"], size["canvas"])
    df = il.measure(small_cnn(width), images, dx=shifts, mode="circular")
    print("1. untrained small_cnn, circular shifts of random images: largest change of the softmax output "
          f"{df.prob_change.max():.1e} (invariant by construction)")

    # 2. Trained by invlab beside a preset: the config names this file's function as a factory.
    cfg = il.parse_config({
        "name": "your_model_example", "seeds": [0], "device": "cpu",
        "data": dict(letters=["A", "B"], fonts=["futural", "timesr"], **size),
        "models": {"small_cnn": {"factory": "measure_your_model:small_cnn", "kwargs": {"width": width}},
                   "conv_gap": {"arch": "conv_gap", "channels": [width, 2 * width]}},
        "train": {"epochs": 1 if args.quick else 3},
        "sweep": {"mode": "canvas", "dx": [shifts[0], shifts[-1]]},
    })
    run_dir = il.run_experiment(cfg, results_dir=args.results_dir, factory_dirs=[HERE])
    print(f"2. trained both: {run_dir}")

    # 3. Both trained networks, measured with the API on the run's own test letters (the run folder), rolled.
    trained = {name: il.load_checkpoint(il.checkpoint_path(run_dir, name, 0), torch.device("cpu"), trust=True)[0]
               for name in ("small_cnn", "conv_gap")}
    df = il.measure(trained, run_dir, dx=shifts, mode="circular")
    table = il.summarize(df)[["model", "head", "padding", "clean_accuracy", "at_chance", "mean_flip_rate",
                              "mean_prob_change", "worst_prob_change"]]
    print("3. circular shifts of the run's test images:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for name in table.model[table.at_chance.astype(bool)]:
        # a network that answers one class for every image changes no answer when the image moves
        print(f"   {name} is at chance (its clean accuracy is that of a guess): its flip rate says nothing about "
              "invariance" + (" (--quick trains one epoch on 64 letters)" if args.quick else ""))

    # 4. Where it comes from, layer by layer: every conv, pooling and normalisation module, then the output.
    profile = il.layer_profile(trained["small_cnn"], run_dir, shifts=shifts, mode="circular", n_images=16)
    print("4. small_cnn layer by layer (circular shifts):")
    print(profile[["layer_name", "stride", "mean_equivariance_error", "mean_pooled_invariance_error"]]
          .to_string(index=False, float_format=lambda v: f"{v:.2g}"))


if __name__ == "__main__":
    main()
