"""What a network's forward pass holds in memory, measured on a small batch: the most bytes alive at once (every
operation's inputs and outputs, what earlier operations made that is still referenced, and a convolution's
scratch), every module's output summed (what a layer profile keeps) and every operation's (what training keeps).
`invlab measure` charges the first two (eval/measure_memory.py); a run charges its own models (factories) the
first and the last, for training (config/memory.py).

    peak, taps, made = feature_map_bytes({"mine": model}, torch.zeros(2, 1, 64, 64))   # bytes per image

The operations are seen by a torch dispatch mode, below modules: functional code (`torch.relu(x + y)`, F.conv2d)
and the inside of a TorchScript model count as a module's do, and an operation made of others is seen as its
parts (scaled_dot_product_attention's scores and softmax). Parameters and buffers are left out (they do not grow
with the batch); so is the input batch itself (the caller's, charged as its own part). Temporaries inside one
kernel are not seen, except a convolution's (conv_scratch) and the contiguous copy a matrix product makes of a
transposed input. Where a measurement stopped: docs/bad_inputs.md (Memory).
"""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..core.errors import FactoryError, InvlabError, clip

# oneDNN (torch's CPU convolution for float32) computes in a blocked layout, channels in blocks of 16 on AVX-512
# (8 on AVX2: 16 is the larger), so a convolution makes a blocked copy of its output, and of its input when that has
# more than ONEDNN_PLAIN_INPUT channels; the input's copy is freed before the output is copied back
# (bench/measure_memory.py measured each case within 3%)
ONEDNN_BLOCK = 16
ONEDNN_PLAIN_INPUT = 8
MATMUL_OPS = {"linear", "mm", "addmm", "bmm", "baddbmm", "matmul"}


def _bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _blocked(nbytes: int, channels: int) -> int:
    """The bytes of a map of `channels` channels with them rounded up to a whole number of oneDNN blocks."""
    return nbytes * (-(-channels // ONEDNN_BLOCK) * ONEDNN_BLOCK) // max(channels, 1)


def _onednn(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and bool(torch.backends.mkldnn.enabled))


def conv_scratch(args: tuple, out: torch.Tensor) -> int:
    """Bytes aten.convolution (its arguments `args`: input, weight, bias, stride, padding, dilation, transposed,
    ...) holds beyond its input and output, as bench/measure_memory.py measures them. On oneDNN (CPU, float32, a
    2-D convolution) the blocked copies, max(blocked input + blocked output - output, blocked output): a 64-channel
    3 x 3 convolution holds one map more than its input and output, not the nine of its unfolded input. Elsewhere
    (CUDA, float64, 1-D and 3-D, transposed) the unfolded input (in_channels x kernel area values per output
    position), the most the native path (im2col) makes. Every convolution reaches the mode as aten.convolution
    (conv2d and the rest are decomposed); a padded copy made first (padding_mode circular, padding='same' with an
    even kernel) is an operation of its own, its output counted as any."""
    x, w = args[0], args[1]
    if not (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and isinstance(out, torch.Tensor)) \
            or out.dim() != x.dim() or x.dim() < 3:
        return 0
    in_channels, out_channels = x.shape[1], out.shape[1]
    if not (len(args) > 6 and bool(args[6])) and x.dim() == 4 and _onednn(x):
        src = _blocked(_bytes(x), in_channels) if in_channels > ONEDNN_PLAIN_INPUT else 0
        dst = _blocked(_bytes(out), out_channels)
        return max(src + dst - _bytes(out), dst)
    return in_channels * math.prod(w.shape[2:]) * _bytes(out) // max(out_channels, 1)


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _storages(tensors: list[torch.Tensor]) -> dict[int, int]:
    """{address: bytes} of the memory behind the tensors: a view and an in-place result share their input's."""
    out = {}
    for t in tensors:
        try:
            out[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):  # a tensor without plain storage (sparse): its values
            out[id(t)] = _bytes(t)
    return out


class Maps(NamedTuple):
    """A forward pass's memory, in bytes per image: `peak` the most alive at once, `taps` every module's output
    summed (what a layer profile keeps), `made` every operation's output summed (about what training keeps for
    its backward pass)."""
    peak: int
    taps: int
    made: int


class _LiveBytes(TorchDispatchMode):
    """After each operation: the bytes of its inputs and outputs, of the earlier outputs still referenced (held
    weakly: a residual block's input while its body runs; a plain chain frees each once the next has run) and of
    its scratch, less `fixed` (parameters, buffers, the input batch); `peak`, their most; `made`, every output."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # False: torch would wrap __torch_dispatch__ in torch._dynamo.disable, whose first call imports torch's
        # compiler stack (torch._dynamo, sympy: about a second of CPU) into every `invlab measure` and every run of
        # a model of your own; without the compiler stack imported no model is compiled, and nothing would be
        # disabled (a compiled model is measured by _LiveBytesBesideCompiler)
        return False

    def __init__(self, fixed: set[int]):
        super().__init__()
        self.fixed, self.held, self.peak, self.made = fixed, {}, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # an operation made of others (matmul with broadcasting, scaled_dot_product_attention) is seen as its parts,
        # whose temporaries count: whole, it would show only its result (decomposed as torch's FlopCounterMode does)
        if torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), torch._C.DispatchKey.CompositeImplicitAutograd):
            with self:
                parts = func.decompose(*args, **(kwargs or {}))
            if parts is not NotImplemented:
                return parts
        out = func(*args, **(kwargs or {}))
        self.held = {k: (ref, where) for k, (ref, where) in self.held.items() if ref() is not None}
        alive = {}
        for _, where in self.held.values():
            alive.update(where)
        outs, ins = _tensors(out), _storages(_tensors(args) + _tensors(kwargs or {}))
        alive.update(ins)
        alive.update(_storages(outs))
        name = func.overloadpacket.__name__
        scratch = conv_scratch(args, out) if name == "convolution" else 0
        if name in MATMUL_OPS:  # BLAS reads contiguous matrices: a transposed input is copied first
            scratch += sum(_bytes(t) for t in _tensors(args) if not t.is_contiguous())
        self.peak = max(self.peak, sum(b for a, b in alive.items() if a not in self.fixed) + scratch)
        self.held.update((id(t), (weakref.ref(t), _storages([t]))) for t in outs)  # an in-place result: once
        # new memory only: a view or an in-place result is its input's (an address may be used again once freed)
        self.made += sum(b for a, b in _storages(outs).items() if a not in ins and a not in self.fixed)
        return out


class _LiveBytesBesideCompiler(_LiveBytes):
    """_LiveBytes where torch's compiler stack is imported: a model compiled with torch.compile would otherwise
    have the compiler trace __torch_dispatch__ itself, again at every operation (recompiling until its limit, with
    a warning; ten times slower), where torch's own wrapper (torch._dynamo.disable) keeps it out."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return True

    __torch_dispatch__ = _LiveBytes.__torch_dispatch__  # defined here, so that torch wraps it


def _probe(model: nn.Module, x: torch.Tensor, what: str):
    """model(x) for the measurement: a model of your own that fails here (after its checks passed: in inference
    mode, say) is a FactoryError naming it, its own exception chained (--debug shows its traceback)."""
    try:
        return model(x)
    except InvlabError:
        raise
    except (Exception, SystemExit) as e:  # the model's own, sys.exit() too
        raise FactoryError(f"{what} failed when the memory its forward pass needs was measured (in inference mode, on "
                           f"a batch of shape {tuple(x.shape)}) ({type(e).__name__}: {clip(e, 240)})") from e


@torch.inference_mode()
def feature_map_bytes(models: dict[str, nn.Module], x: torch.Tensor,
                      run: Callable[[nn.Module, torch.Tensor, str], Any] = _probe) -> Maps:
    """Maps(the most bytes alive at once during a forward pass, every module's output summed, every operation's
    output summed), per image, the most over the models, measured on x (one image is enough; two let a batch be a
    batch; a storage shared by a view or an in-place result counts once). `run(model, x, "model NAME")` runs a
    model: a model of your own that fails is a FactoryError naming it (`invlab measure` passes nn/forward.call,
    whose words speak of its batches)."""
    peak, taps, made = 0, 0, 0
    for name, m in models.items():
        outputs = [0]

        def hook(module, args, out, outputs=outputs):  # this model's, bound now
            outputs[0] += sum(_bytes(t) for t in _tensors(out))

        # a TorchScript module takes no hooks: its own output alone is its taps (the dispatch mode sees inside it)
        inner = [] if isinstance(m, torch.jit.ScriptModule) else [s for s in m.modules() if not list(s.children())]
        handles = [s.register_forward_hook(hook) for s in inner]
        mode = _LiveBytesBesideCompiler if "torch._dynamo" in sys.modules else _LiveBytes
        live = mode(set(_storages([*m.parameters(), *m.buffers(), x])))
        try:
            with live:
                out = run(m, x, f"model {name}")
            if not inner:
                hook(m, (x,), out)
        finally:
            for h in handles:
                h.remove()
        peak, taps, made = max(peak, live.peak), max(taps, outputs[0]), max(made, live.made)
    n = max(len(x), 1)
    return Maps(peak // n, taps // n, made // n)
