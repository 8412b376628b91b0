"""The all-shift engine's plan for one model (engine.py): its layers as "map" and "down" steps (engine_rules.py),
grouped into levels between stride-2 layers, with the head that finishes every shift; a one-image trace checks
the map sizes. `allshift_plan(model, canvas)` builds it or raises NotApplicable saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from ..nn.models import HEADS, InvNet
from .engine_rules import PHASES, NotApplicable, Step, roll2d, steps_of


ENGINE_MEMORY = 512 * 2**20  # bytes the branch tree of one batch may take; images are processed in chunks
HEAD_BLOCK = 2**20  # values rolled at once for a head that is not roll-invariant (flatten): 4 MiB of float32

@dataclass
class Level:
    """The branches after some steps: node i holds images [i*n, (i+1)*n) of `stack`, the maps of the inputs
    rolled by every shift s with s mod 2^depth == residues[i] (up to a roll by (s mod C) >> depth)."""

    depth: int
    residues: list[tuple[int, int]]  # (row, column) residue mod 2**depth of each node, in stack order
    stack: torch.Tensor  # (len(residues) * n, channels, side, side)

    def nodes(self, n: int) -> torch.Tensor:
        return self.stack.reshape(len(self.residues), n, *self.stack.shape[1:])


@dataclass
class Plan:
    """A model split into steps (RULES) and a head; `canvas` is the input side it was checked for.

    The head maps the last feature map to logits. It is a black box, run on the rolled leaf of each shift, so
    it may hold anything; a roll-invariant head (global pooling first) runs once per leaf instead."""

    steps: list[Step]
    head: Callable[[torch.Tensor], torch.Tensor]
    roll_invariant: bool
    canvas: int
    in_channels: int
    pool: Callable[[torch.Tensor], torch.Tensor] | None = None  # InvNet's pool: the layer profile's `head` tap
    depth: int = 0  # stride-2 steps
    bytes_per_image: int = 0  # the largest level of the full tree, per input image
    n_classes: int = 0
    taps: list[tuple[str, int]] = field(default_factory=list)  # (tap name, cumulative stride), as layer_taps

    # -- the tree
    def _residues(self, shifts: list[tuple[int, int]], depth: int) -> set[tuple[int, int]]:
        m = 1 << depth
        return {(sy % m, sx % m) for sy, sx in shifts}

    def run(self, x: torch.Tensor, shifts: list[tuple[int, int]], keep_taps: bool = False):
        """(leaves, {tap: Level}) for the inputs x (N, channels, C, C) and the (row, column) shifts in [0, C)."""
        # a copy: a model of your own whose first layer works in place (nn.SiLU(inplace=True)) must not change the
        # batch that the next model, or brute force, reads (as nn/forward.call copies it)
        n, level, taps = len(x), Level(0, [(0, 0)], x.clone()), {}
        need = [self._residues(shifts, j) for j in range(self.depth + 1)]
        for step in self.steps:
            if step.kind == "map":
                level = Level(level.depth, level.residues, step.fn(level.stack))
            elif step.kind == "down":
                level = self._down(step, level, need[level.depth + 1], n)
            elif keep_taps:
                taps[step.label] = level
        return level, taps

    @staticmethod
    def _down(step: Step, level: Level, need: set[tuple[int, int]], n: int) -> Level:
        m, nodes = 1 << level.depth, level.nodes(n)
        keeps = [[i for i, (ry, rx) in enumerate(level.residues) if (ry + m * p[0], rx + m * p[1]) in need]
                 for p in PHASES]
        everything = [len(keep) == len(level.residues) for keep in keeps]
        if step.phases is not None:  # all four offsets at once, then the nodes each needs
            outs = [o.reshape(len(level.residues), n, *o.shape[1:]) for o in step.phases(level.stack)]
            parts = [(o if full else o[keep]).flatten(0, 1) for o, keep, full in zip(outs, keeps, everything) if keep]
        else:
            parts = [step.fn(roll2d((nodes if full else nodes[keep]).flatten(0, 1), *p))
                     for p, keep, full in zip(PHASES, keeps, everything) if keep]
        residues = [(level.residues[i][0] + m * p[0], level.residues[i][1] + m * p[1])
                    for p, keep in zip(PHASES, keeps) for i in keep]
        return Level(level.depth + 1, residues, torch.cat(parts) if len(parts) > 1 else parts[0])

    # -- outputs
    def rolls(self, shifts: list[tuple[float, float]]) -> list[tuple[int, int]]:
        """(dx, dy) shifts as (row, column) rolls in [0, C)."""
        return [(int(dy) % self.canvas, int(dx) % self.canvas) for dx, dy in shifts]

    def logits(self, x: torch.Tensor, shifts: list[tuple[float, float]]) -> torch.Tensor:
        """(len(shifts), N, classes): model(circular_shift(x, dx, dy)) for every (dx, dy) in `shifts`."""
        n, rolls = len(x), self.rolls(shifts)
        leaves, _ = self.run(x, rolls)
        k, index = self.depth, {r: i for i, r in enumerate(leaves.residues)}
        leaf = [index[(sy % (1 << k), sx % (1 << k))] for sy, sx in rolls]
        if self.roll_invariant:
            out = self.head(leaves.stack).reshape(len(leaves.residues), n, -1)
            return out[leaf]
        groups: dict[tuple[int, int], list[int]] = {}  # final roll -> the shifts that need it
        for i, (sy, sx) in enumerate(rolls):
            groups.setdefault((sy >> k, sx >> k), []).append(i)
        nodes = leaves.nodes(n)
        out = nodes.new_empty(len(rolls), n, self.n_classes)
        per_image = nodes[0, 0].numel()
        for t, members in groups.items():
            index = [leaf[i] for i in members]
            step = max(1, HEAD_BLOCK // (per_image * len(members)))  # small blocks: copies that stay in cache
            for start in range(0, n, step):
                src = roll2d(nodes[index, start:start + step], *t)
                out[members, start:start + step] = self.head(src.flatten(0, 1)).reshape(len(members), -1,
                                                                                         self.n_classes)
        return out

    def tap_maker(self, x: torch.Tensor, shifts: list[tuple[float, float]]):
        """shifted(dx, dy) -> taps.layer_taps(model, circular_shift(x, dx, dy)) for the given shifts, or None
        where the plan has no taps (models other than InvNet)."""
        if self.pool is None:
            return None
        n = len(x)
        leaves, levels = self.run(x, self.rolls(shifts), keep_taps=True)

        def at(level: Level, sy: int, sx: int) -> torch.Tensor:
            m = 1 << level.depth
            node = level.nodes(n)[level.residues.index((sy % m, sx % m))]
            return roll2d(node, sy >> level.depth, sx >> level.depth)

        def shifted(dx: float, dy: float) -> list[tuple[str, int, torch.Tensor]]:
            ((sy, sx),) = self.rolls([(dx, dy)])
            taps = [(name, stride, at(levels[name], sy, sx)) for name, stride in self.taps[:-1]]
            return taps + [("head", self.taps[-1][1], self.pool(at(leaves, sy, sx)))]

        return shifted

    def chunk(self, batch_size: int, n_shifts: int) -> int:
        """Images per batch so that the tree and the per-shift probabilities stay within ENGINE_MEMORY."""
        per_image = 3 * self.bytes_per_image + 16 * n_shifts * self.n_classes
        return max(1, min(batch_size, ENGINE_MEMORY // max(per_image, 1)))


ROLL_INVARIANT = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # with output size 1: global pooling


def allshift_plan(model: nn.Module, canvas: int) -> Plan:
    """The all-shift plan of `model` for C x C inputs (C = canvas); NotApplicable (with the reason) if none.

    Models it reads: InvNet (every block by RULES, then its head from HEADS), and nn.Sequential (the longest
    leading run of modules with a rule; the rest is the head, run per shift: global pooling first makes it
    roll-invariant). Any other module's forward is its own, so the engine cannot see its layers."""
    if isinstance(model, InvNet):
        if any(getattr(type(model), f) is not getattr(InvNet, f) for f in ("forward", "features", "pool")):
            raise NotApplicable(f"{type(model).__name__} changes InvNet's forward pass")
        if model.head not in HEADS:
            raise NotApplicable(f"head {model.head!r} is not in HEADS")
        steps = []
        for i, block in enumerate(model.blocks, 1):
            try:
                block_steps = steps_of(block)
            except NotApplicable as e:
                raise NotApplicable(f"block {i}: {e}") from None
            steps += [replace(s, label=f"block{i}.{s.label}" if s.kind == "tap" else f"block {i}: {s.label}")
                      for s in block_steps]
        plan = Plan(steps, lambda h: model.fc(model.pool(h)), HEADS[model.head].roll_invariant, canvas,
                    model.blocks[0].conv.in_channels, pool=model.pool)
    elif type(model) is nn.Sequential:
        steps, i = [], 0
        for i, module in enumerate(model):
            try:
                steps += [replace(s, label=f"layer {i}: {s.label}") for s in steps_of(module) if s.kind != "tap"]
            except NotApplicable as e:
                if not steps:
                    raise NotApplicable(f"layer {i}: {e}") from None
                break
        else:
            raise NotApplicable("an nn.Sequential with no head after its feature layers")
        rest = model[i:]
        first = rest[0]
        invariant = isinstance(first, ROLL_INVARIANT) and _pair(first.output_size) == (1, 1)
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise NotApplicable("an nn.Sequential without a Conv2d")
        plan = Plan(steps, rest, invariant, canvas, convs[0].in_channels)
    else:
        raise NotApplicable(f"{type(model).__name__} has a forward pass of its own: the engine reads InvNet and "
                            "nn.Sequential models")
    _trace(plan, model, canvas)
    return plan


@torch.inference_mode()
def _trace(plan: Plan, model: nn.Module, canvas: int) -> None:
    """Run one blank image through the steps: every map keeps the side, every down meets an even side and halves
    it. Fills in depth, taps, bytes_per_image and n_classes."""
    first = next(model.parameters())
    x = torch.zeros(1, plan.in_channels, canvas, canvas, dtype=first.dtype, device=first.device)
    depth, largest, taps = 0, x.numel(), []
    for step in plan.steps:
        side = tuple(x.shape[-2:])
        if step.kind == "tap":
            taps.append((step.label, 1 << depth))
            continue
        if step.kind == "down" and (side[0] % 2 or side[1] % 2):
            raise NotApplicable(f"{step.label} is a stride-2 layer on an odd {side[0]}x{side[1]} map: its shifts by "
                                "one pixel have no polyphase counterpart (use a canvas divisible by the total stride)")
        y = step.fn(x)
        want = side if step.kind == "map" else (side[0] // 2, side[1] // 2)
        if tuple(y.shape[-2:]) != want:
            raise NotApplicable(f"{step.label} turns a {side[0]}x{side[1]} map into {y.shape[-2]}x{y.shape[-1]}, not "
                                f"{want[0]}x{want[1]}: it does not commute with circular shifts")
        depth += step.kind == "down"
        x = y
        largest = max(largest, y.numel() * 4 ** depth)
    plan.depth, plan.bytes_per_image = depth, largest * x.element_size()
    plan.n_classes = plan.head(x).shape[-1]
    plan.taps = taps + [("head", 1 << depth)]


