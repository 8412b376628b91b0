"""The Lie derivative of an alias-free network against a ReLU network, untrained (docs/beyond.md's table).

    python bench/lie_alias_free.py

Untrained circular-padding conv_gap networks (channels 4, 8; float64), downsample none (ReLU) against afc
(alias-free ConvNets), on 8 random 16 px images with no energy at the Nyquist frequency (which no band-limited
shift can move): the mean over the images of each transform's Lie derivative (eval/lie.py), and the tap with the
largest layer-wise value under translate_x. Prints a markdown table.
"""

import torch

import invariance_lab as il
from invariance_lab.eval.lie import layer_lie_derivative

TRANSFORMS = ("translate_x", "translate_y", "rotate", "scale")


def main() -> None:
    torch.manual_seed(0)
    x = torch.rand(8, 1, 16, 16, dtype=torch.float64)
    spec = torch.fft.fft2(x)
    spec[..., 8, :] = 0
    spec[..., :, 8] = 0
    x = torch.fft.ifft2(spec).real
    print("| downsample | " + " | ".join(TRANSFORMS) + " | worst tap, translate_x |")
    print("|---|" + "---:|" * (len(TRANSFORMS) + 1))
    for kind in ("none", "afc"):
        torch.manual_seed(0)
        model = il.create_model({"arch": "conv_gap", "downsample": kind, "padding": "circular", "channels": [4, 8]},
                                num_classes=3, canvas=16).double()
        values = [il.lie_derivative(model, x, t).mean().item() for t in TRANSFORMS]
        taps = layer_lie_derivative(model, x, "translate_x")
        worst = max(taps, key=taps.get)
        print(f"| {kind} | " + " | ".join(f"{v:.3g}" for v in values) + f" | {worst} {taps[worst]:.3g} |")


if __name__ == "__main__":
    main()
