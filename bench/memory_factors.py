"""Each downsampling kind's activation memory against config/memory.py's rule, measured in a fresh process each.

    python bench/memory_factors.py [--canvas 64] [--kinds none,max,afc]

For each kind: a network of three blocks of 32 channels (kernel 3, global average head) on a --canvas px canvas,
one thread. `train`: the growth of the process's peak resident memory over two training steps on a batch of 64
(forward, backward, Adam), against the rule's 2 x 3 maps of each block's input size per image; `eval`: over two
forward passes in inference mode on a batch of 256, against the rule's 2 maps of the widest block.
nn/downsample.py's `memory` factors cover these ratios: in training the ratio itself (the rule overstates a plain
block's), in evaluation the ratio over the plain network's (`none`). Peak resident memory is coarse (the
allocator's rounding and its pools), so the factors keep a margin above them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import gc, resource, sys, torch
from invariance_lab.nn.downsample import get_downsample
from invariance_lab.nn.models import build_model, resolve_spec
torch.set_num_threads(1)
kind, canvas, phase = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ch = [32, 32, 32]
padding = "circular" if kind in ("afc", "aps_max", "aps_stride", "lps", "tips") else "zeros"
f = resolve_spec(dict(downsample=kind, head="global_avg", padding=padding, channels=ch, kernel=3))
net = build_model(f, num_classes=2, canvas=canvas)
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if phase == "train":
    opt, batch = torch.optim.Adam(net.parameters()), 64
    x, y = torch.rand(batch, 1, canvas, canvas), torch.randint(0, 2, (batch,))
    net(x[:2]).sum().backward()
    gc.collect()
    base = peak()
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    side, saved = canvas, 0
    for cout in ch:
        saved += 3 * cout * side * side
        side = get_downsample(kind).out_size(side, 3, padding, f["blur_size"])
    rule = 2 * saved * batch * 4
else:
    net.eval()
    batch = 256
    x = torch.rand(batch, 1, canvas, canvas)
    with torch.inference_mode():
        net(x[:2])
        gc.collect()
        base = peak()
        for _ in range(2):
            net(x)
    rule = 2 * max(ch) * canvas * canvas * batch * 4
print((peak() - base) / rule)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--canvas", type=int, default=64)
    p.add_argument("--kinds", default="none,max,stride,blur_max,aps_max,lps,tips,afc")
    args = p.parse_args()
    from invariance_lab.nn.downsample import get_downsample

    print(f"{'kind':10s} {'train':>7s} {'eval':>7s}   measured / rule; factors in nn/downsample.py (train, eval)")
    for kind in args.kinds.split(","):
        ratio = [float(subprocess.run([sys.executable, "-c", CHILD, kind, str(args.canvas), phase], check=True,
                                      capture_output=True, text=True).stdout) for phase in ("train", "eval")]
        print(f"{kind:10s} {ratio[0]:7.2f} {ratio[1]:7.2f}   {get_downsample(kind).memory}")


if __name__ == "__main__":
    main()
