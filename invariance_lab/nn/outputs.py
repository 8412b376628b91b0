"""What a model's output must be before a measurement or a training reads it, checked on the first images
(check_output): logits (N, classes) of a floating-point type, dense and on the device of its input, finite where
the images are real, and the same logits for the same images every time. A forward pass that draws random numbers
in eval mode (dropout forced on, added noise) or changes a buffer on each call would be measured as a change made by
the shift.

    check_materialized(model, "model mine")     # a FactoryError for weights on torch's meta device (no values)
    n = check_output(model, x, 2, "model mine", finite=True)   # logits per image, or a FactoryError saying why not
    check_dense(out, x, "model mine")            # a FactoryError for sparse logits, or logits on another device
    check_repeatable(out, again, "model mine")   # a FactoryError when two passes over the same images differ
    check_independent(out, alone, "model mine")  # a FactoryError when an image alone gets other logits than in x
    check_not_probabilities(out, "model mine")   # a FactoryError for rows that are probabilities (a final softmax)
"""

from __future__ import annotations

from itertools import chain

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from ..core.channels_last import channels_last_hint
from ..core.errors import FactoryError, clip, quote
from .finite import check_logits
from .logits import class_logits

# what a model that fails on the first batch can change, in the words of who gave the images: (channels, size)
FIXES = {"measure": ("see --colour, colour= in Python", "see --size, size= in Python"),
         "config": ("data.colour: rgb reads an image folder in colour, else change the model's input channels",
                    "data.canvas sets it")}

# Two passes over the same batch give the same bits on a CPU; a GPU may sum in another order (within ~1e-6 of the
# logits' scale). A random forward pass differs by far more (dropout: whole units; noise: its own scale).
REPEAT_TOLERANCE = 1e-5


def check_dense(out: torch.Tensor, x: torch.Tensor, what: str) -> None:
    """A FactoryError unless `out` is a dense (strided) tensor on the device of the model's input `x`."""
    if out.layout != torch.strided or out.device != x.device:
        kind = "dense" if out.layout == torch.strided else str(out.layout).removeprefix("torch.")
        raise FactoryError(f"{what} returned {kind} logits on device {out.device} for a batch on {x.device}; it "
                           f"must return dense logits (N, classes) on the device of its input (x.device)")


def _gap(out: torch.Tensor, other: torch.Tensor) -> str | None:
    """How far `other` is from `out` ("logits up to 0.2 apart", "another shape"), or None within REPEAT_TOLERANCE
    of their scale (NaN is left to the finite check, nn/finite.py)."""
    a, b = out.detach().double(), other.detach().double()
    if a.shape != b.shape:
        return "another shape"
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        return None
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    # logits in half precision round to ~1e-3 of their value: a sum in another order differs by that much
    tolerance = max(REPEAT_TOLERANCE, 4 * torch.finfo(out.dtype).eps)
    if diff <= tolerance * max(1.0, float(a.abs().max()) if a.numel() else 0.0):
        return None
    return f"logits up to {diff:.3g} apart"


def check_repeatable(out: torch.Tensor, again: torch.Tensor, what: str) -> None:
    """A FactoryError when `again`, the model's logits for the same images a second time (in eval mode), differ
    from `out` by more than REPEAT_TOLERANCE of their scale. NaN is left to the finite check (nn/finite.py)."""
    gap = _gap(out, again)
    if gap is None:
        return
    raise FactoryError(f"{what} gives different outputs for the same images twice in a row ({gap}), so every "
                       f"measurement would count that randomness as a change made by the shift. In eval mode its "
                       f"forward must give the same logits for the same images: dropout forced on "
                       f"(F.dropout(..., training=True)), noise added (torch.randn), or a buffer changed on every call "
                       f"are the usual causes")


def check_independent(out: torch.Tensor, alone: torch.Tensor, what: str) -> None:
    """A FactoryError when `alone`, the model's logits for the batch's first image by itself, differ from that
    image's row of `out` (the logits of the whole batch) by more than REPEAT_TOLERANCE of their scale: its output
    depends on the other images of the batch, so every number would depend on the batch size and on which images
    share a batch."""
    gap = _gap(out[:1], alone)
    if gap is None:
        return
    raise FactoryError(f"{what} gives an image other logits by itself than in a batch with another image ({gap}): "
                       f"its output depends on the other images of the batch, so every number would depend on the "
                       f"batch size and on which images share a batch. A BatchNorm with track_running_stats=False, "
                       f"or one that stays in training mode when the model is put in eval mode (a train() "
                       f"override), normalises by the batch's statistics; in eval mode each image's logits must "
                       f"come from that image alone")


def check_not_probabilities(out: torch.Tensor, what: str) -> None:
    """A FactoryError when `out` (N, classes >= 2) looks like probabilities, every row non-negative and summing to 1
    (a softmax at the model's end): invlab takes logits and applies the softmax itself, so probabilities would go
    through a second softmax that squeezes every change (2.4x smaller at two classes). Log-probabilities
    (log_softmax) are fine: their softmax is the probabilities."""
    if out.dim() != 2 or out.shape[1] < 2 or not out.numel():
        return
    a = out.detach().double()
    if bool((a >= 0).all()) and bool(((a.sum(dim=1) - 1).abs() <= 1e-3).all()):
        raise FactoryError(f"{what} gives probabilities, not logits: every row of its output is non-negative and sums "
                           f"to 1 (a softmax at its end?). invlab applies the softmax itself, so a second one would "
                           f"squeeze every change it measures; return the logits (drop the final softmax), or "
                           f"log-probabilities (log_softmax)")


def check_materialized(model: nn.Module, what: str) -> None:
    """A FactoryError for a model holding a parameter or buffer on torch's meta device: a shape without values
    (built under `with torch.device("meta")`, or by an empty-weights initialiser), which cannot be moved to a
    device, loaded into by load_state_dict, or computed with."""
    name = next((n for n, t in chain(model.named_parameters(), model.named_buffers()) if t.is_meta), None)
    if name is not None:
        raise FactoryError(f"{what} holds {quote(name)} on torch's meta device: a shape with no values (built under "
                           f"`with torch.device('meta')` or by an empty-weights initialiser), which invlab cannot "
                           f"move to a device or compute with; build it on the CPU (--weights, or load_state_dict, "
                           f"then fills in its values)")


def check_output(model: nn.Module, x: torch.Tensor, num_classes: int | None, what: str, *, finite: bool = False,
                 one_logit: bool = False, fixes: str = "measure", seed: int | None = None) -> int:
    """Run `model` (in eval mode, RNG untouched) on the batch `x`; the number of logits it gives per image. An
    InvlabError says what is wrong: it fails, does not return a float tensor (N, classes), or has another number
    of classes than `num_classes` (when given); with `finite` (real images, as a measurement sees them), gives
    logits whose probabilities are NaN, naming a NaN or infinite weight when it holds one. With `one_logit` (a
    measurement, not training) a single logit per image stands for two classes (nn/logits.py): the count
    returned is still 1 (logits.class_count gives the classes). `fixes` (FIXES): whose options a failure's hint
    names, invlab measure's and il.measure's or a config's keys. Two passes must agree (check_repeatable); `seed`
    seeds the forked RNG they run with."""
    shape = tuple(x.shape)
    was = model.training
    buffers = _buffers(model)  # a BatchNorm a train() override keeps training counts these passes: given back
    model.eval()
    cuda = [x.device.index or 0] if x.device.type == "cuda" else []
    try:  # twice, each on a copy of x (a model may write into its input): the same images must give the same logits
        with torch.random.fork_rng(devices=cuda), torch.no_grad():
            if seed is not None:  # lazy layers draw their weights now (on x's device): from `seed`, not the process
                torch.random.default_generator.manual_seed(seed)
                if cuda:  # that device's generator alone: the fork gives back only the generators it forked
                    with torch.cuda.device(x.device):
                        torch.cuda.manual_seed(seed)
            out, again = model(x.clone()), model(x.clone())
            alone = _alone(model, x) if shape[0] > 1 else None
    except (Exception, SystemExit) as e:  # the model's own, sys.exit() too
        hint = _hint(model, x, e, FIXES[fixes])
        raise FactoryError(f"{what} failed on a batch of shape {shape} ({type(e).__name__}: {clip(e, 240)}){hint}; "
                          f"it must map a batch (N, C, H, W) to logits (N, classes)") from e  # --debug shows it
    finally:
        model.train(was)
        _restore(model, buffers)
    if not isinstance(out, torch.Tensor):
        raise FactoryError(f"{what} returned {type(out).__name__} for a batch of shape {shape}, not a tensor; it must "
                          f"return the logits (N, classes) alone")
    if one_logit and out.dim() == 2 and out.shape[1] == 1 and num_classes == 2:
        num_classes = 1
    want = f"({shape[0]}, {num_classes})" if num_classes else f"({shape[0]}, classes)"
    if out.dim() != 2 or out.shape[0] != shape[0] or (num_classes and out.shape[1] != num_classes):
        need = f"one logit per class ({num_classes} classes)" if num_classes else "one row of logits per image"
        if out.dim() >= 1 and out.shape[0] != shape[0]:
            fix = (f"It gave {out.shape[0]} rows for {shape[0]} images: one row per image, in their order (several "
                   f"views per image, or a reshape to a fixed batch size, give other counts)")
        elif out.dim() > 2 and out.shape[0] == shape[0] and all(s == 1 for s in out.shape[2:]):
            fix = "Flatten its output (its last dimensions are 1)"
        elif out.dim() > 2 and out.shape[0] == shape[0] and sum(s != 1 for s in out.shape[1:]) <= 1:
            fix = "Flatten its output (its other dimensions are 1: output.flatten(1) gives (N, classes))"
        elif out.dim() == 1 and out.shape[0] == shape[0]:
            fix = "Return (N, 1) for one logit per image (.unsqueeze(1)), or one logit per class"
        elif out.dim() == 2 and out.shape[0] == shape[0] and num_classes:
            fix = ("Set its number of outputs (through its kwargs) to match, give each class folder its output "
                   "index (--class-index cat=281,dog=207), or measure it on images without labels (a folder with "
                   "no class subfolders)" if one_logit else
                   "Set its number of outputs (through its kwargs) to match")
        else:
            fix = "Set its number of outputs (through its kwargs) to match"
        raise FactoryError(f"{what} gave an output of shape {tuple(out.shape)} for a batch of shape {shape}; invlab "
                          f"needs {want}: {need}. {fix}")
    if not out.is_floating_point():
        raise FactoryError(f"{what} returned {out.dtype} values; logits must be floating point")
    check_dense(out, x, what)
    check_repeatable(out, again, what)
    if isinstance(alone, torch.Tensor) and alone.layout == torch.strided and tuple(alone.shape) == (1, out.shape[1]):
        check_independent(out, alone, what)
    check_not_probabilities(out, what)
    if finite:
        check_logits(model, class_logits(out) if one_logit else out, what, x)
    return int(out.shape[1])


def _buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every buffer the model holds (a lazy module's, not yet made, left out)."""
    return {name: b.detach().clone() for name, b in model.named_buffers() if not is_lazy(b)}


@torch.no_grad()
def _restore(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Each buffer of `saved` written back in place, where the model still holds it as it was (shape, dtype)."""
    now = dict(model.named_buffers())
    for name, value in saved.items():
        b = now.get(name)
        if b is not None and b.shape == value.shape and b.dtype == value.dtype and b.device == value.device:
            b.copy_(value)


def _alone(model: nn.Module, x: torch.Tensor):
    """The model's output for the batch's first image by itself, or None where it gives none: a model may fail on a
    batch of one (x.squeeze() drops the batch dimension), which the batches it is measured on may never be."""
    try:
        return model(x[:1].clone())
    except (Exception, SystemExit):
        return None


def _hint(model: nn.Module, x: torch.Tensor, error: Exception, fixes: tuple[str, str]) -> str:
    """What a model's failure on the first batch most likely means, for the message (or "")."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if dtypes and x.dtype not in dtypes:
        names = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
        fix = ("give invlab the model in float32, model.float()" if x.dtype == torch.float32 else
               "give the images in the model's dtype, images.float()" if dtypes == {torch.float32} else
               "give the model and the images in float32, model.float() and images.float()")
        return f" (its weights are {names}, the images {str(x.dtype).removeprefix('torch.')}: {fix})"
    text = str(error)
    if hint := channels_last_hint(tuple(x.shape[1:])):
        return hint
    if "channels" in text:
        return f" (the model expects another number of input channels than these images' {x.shape[1]}: {fixes[0]})"
    if "shapes cannot be multiplied" in text or "size mismatch" in text or "must match the size" in text:
        return (f" (the model may expect images of another size than these {x.shape[-2]} x {x.shape[-1]} px: "
                f"{fixes[1]})")
    return ""
