"""What a canvas shift by a fraction of a pixel does to a drawn letter besides moving it, as markdown.

    python bench/subpixel_ink.py [--config configs/seed_question.yaml configs/outline_letters.yaml]

A canvas sweep draws the letter again at the shifted position (data/shifts.shifted_inputs). At whole pixels that
is the reference image translated; at a fraction of a pixel the letter is sampled at a new phase, and its
anti-aliased pixels change in ways a translation does not: per test letter, the total ink (the sum of its pixels)
against the reference's, and the centre of mass against where the shift puts it (x) or leaves it (y). A network
that reads ink (global average pooling) answers to that too; `--mode circular --subpixel fft` (the Fourier shift)
keeps every letter's ink exactly.
"""

from __future__ import annotations

import argparse

import torch

from invariance_lab.config.load import load_config
from invariance_lab.data.datasets import draw, glyph_table, reference_letters

SHIFTS = (0.25, 0.5, 0.75, 1.0)


def _centre(images: torch.Tensor, dim: int) -> torch.Tensor:
    """Centre of mass of each (N, 1, H, W) image along x (dim 2: columns) or y (dim 1: rows), in pixels."""
    profile = images[:, 0].sum(dim)
    return (profile * torch.arange(profile.shape[1], dtype=profile.dtype)).sum(1) / profile.sum(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", nargs="+", default=["configs/seed_question.yaml", "configs/outline_letters.yaml"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| config | letters | dx | ink change: mean \\|.\\| | ink change: range | x centre error: range | "
          "largest y centre move |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in args.config:
        data = load_config(path).data
        table, test = glyph_table(data), reference_letters(data)
        ref = draw(table, test, data.canvas).double()
        for dx in SHIFTS:
            moved = draw(table, test, data.canvas, dx, 0.0).double()
            ink = moved.sum((1, 2, 3)) / ref.sum((1, 2, 3)) - 1
            x_error = _centre(moved, 1) - _centre(ref, 1) - dx
            y_move = (_centre(moved, 2) - _centre(ref, 2)).abs().max()
            print(f"| {path} | {len(test)} | {dx:g} | {ink.abs().mean():.2%} | {ink.min():+.1%} … {ink.max():+.1%} | "
                  f"{x_error.min():+.2f} … {x_error.max():+.2f} px | {y_move:.2f} px |")


if __name__ == "__main__":
    main()
