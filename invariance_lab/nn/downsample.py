"""The downsampling kinds, one registry: ``DOWNSAMPLES`` (name -> ``Downsample``). Each entry says what the conv's
stride is and which stages run after the ReLU; the module, the block's stride and its output size are all derived
from that one entry, so registering a kind is all it takes (``invlab models`` lists them)::

    >>> [(d.name, d.stride, d.describe()) for d in DOWNSAMPLES.values()][:2]
    [('none', 1, 'no downsampling'), ('max', 2, 'MaxPool(k2, s2)')]
    >>> get_downsample("blur_max").out_size(32, kernel=3, padding="zeros", blur_size=3)
    16

Downsampling by 2 keeps translation equivariance only for even shifts, unless the subsampling is anti-aliased
(BlurPool, Zhang 2019: reduces aliasing, not exact) or adaptive (APS, Chaman & Dokmanic 2021: exact for circular
shifts with circular padding). It sits above layers.py and aps.py, whose modules its stages build.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..core.errors import choose
from .afc import AliasFreeDown, PolyActivation
from .aps import APSDown
from .layers import PADDING_KINDS, PADDINGS, BlurPool, LayerConfigError, MaxPoolS1
from .lps import LPSDown
from .tips import TIPSDown

BLUR = -1  # a Window.side standing for the block's blur_size
# What a model's blur_padding may say: paddings that keep the blur's map the same size. Left out, a blur pads as the
# network does; Zhang 2019's BlurPool pads by reflection whatever the convolutions do (adobe/antialiased-cnns).
BLUR_PADDINGS = ("zeros", "circular", "reflect")


@dataclass(frozen=True)
class Window:
    """A window slid over the map: `side` (or BLUR), `stride`; `padded` with the network's padding mode (a
    'same' padding) or never padded (nn.MaxPool2d / AvgPool2d); `even`: the map must have an even side; `conv`: the
    block's conv, padded as its padding kind pads convs ('full': side-1 on each side); `blur`: a blur's window
    (side BLUR), padded with the model's blur_padding where it sets one."""

    label: str
    side: int
    stride: int
    padded: bool = True
    even: bool = False
    conv: bool = False
    blur: bool = False


@dataclass(frozen=True)
class Stage:
    """One module run after the ReLU, and the windows it slides over the map, in order (for the sizes)."""

    label: str  # for describe(): "MaxPool(k2, s2)"
    build: Callable[[int, str, int], nn.Module]  # (channels, padding, blur_size) -> module
    windows: tuple[Window, ...]
    blurs: bool = False  # its padding pads only its blur: the model's blur_padding where it sets one


MAX_S2 = Stage("MaxPool(k2, s2)", lambda c, p, b: nn.MaxPool2d(kernel_size=2, stride=2),
               (Window("max pooling (k2, s2)", 2, 2, padded=False),))
AVG_S2 = Stage("AvgPool(k2, s2)", lambda c, p, b: nn.AvgPool2d(kernel_size=2, stride=2),
               (Window("average pooling (k2, s2)", 2, 2, padded=False),))
MAX_S1 = Stage("MaxPool(k2, s1)", lambda c, p, b: MaxPoolS1(p), (Window("max-pool (k2, s1)", 2, 1),))
BLUR_S2 = Stage("BlurPool(s2)", lambda c, p, b: BlurPool(c, b, stride=2, padding=p), (Window("blur-pool", BLUR, 2),),
                blurs=True)
# APS: an optional stride-1 blur, then one of the four polyphase components (a stride-2 subsampling).
APS = Stage("optional blur (s1) + APS", lambda c, p, b: APSDown(c, b, p),
            (Window("blur", BLUR, 1), Window("APS", 1, 2, padded=False, even=True)), blurs=True)
# LPS: as APS, the component chosen by a learned score (lps.py). TIPS: the components mixed by weights from the map
# (tips.py). AFC: an ideal FFT low-pass, then stride 2 (afc.py). Each needs an even map, as APS does.
LPS = Stage("optional blur (s1) + LPS", lambda c, p, b: LPSDown(c, b, p),
            (Window("blur", BLUR, 1), Window("LPS", 1, 2, padded=False, even=True)), blurs=True)
TIPS = Stage("TIPS", lambda c, p, b: TIPSDown(c, p), (Window("TIPS", 1, 2, padded=False, even=True),))
AFC = Stage("ideal FFT low-pass + subsample (s2)", lambda c, p, b: AliasFreeDown(),
            (Window("alias-free downsampling", 1, 2, padded=False, even=True),))


@dataclass(frozen=True)
class Downsample:
    """A downsampling kind: the conv's own stride, then the stages after the ReLU. Everything else (the
    module, the block's stride, its output size) is derived from these two fields."""

    name: str
    conv_stride: int = 1
    stages: tuple[Stage, ...] = ()
    literature: str = ""
    note: str = ""  # replaces the generated description where the stages alone don't say it
    alias_of: str = ""  # another name of the same network: the same stages, the same weights for a seed
    # the block's activation, (channels) -> module, where it is not a ReLU (afc: a polynomial at 2x resolution)
    activation: Callable[[int], nn.Module] | None = None
    # (training, evaluation): what config/memory.py's rule is multiplied by, from bench/memory_factors.py at 32, 64
    # and 128 px with a margin: training, the measured ratio itself; evaluation, the ratio over a plain network's
    # (blur, APS, LPS and TIPS keep stride-1 copies; afc works at 2x resolution in FFTs)
    memory: tuple[float, float] = (1.0, 1.0)
    stride: int = field(init=False)  # total stride of the block: the conv's times every window's

    def __post_init__(self):
        strides = [w.stride for s in self.stages for w in s.windows]
        object.__setattr__(self, "stride", self.conv_stride * math.prod(strides))

    def build(self, channels: int, padding: str, blur_size: int, blur_padding: str | None = None) -> nn.Module:
        """The module applied after the ReLU (Identity when the conv alone does the work); its blurs pad with
        `blur_padding` (BLUR_PADDINGS), or with `padding` when None."""
        modules = [stage.build(channels, _blur_pad(padding, blur_padding) if stage.blurs else padding, blur_size)
                   for stage in self.stages]
        if not modules:
            return nn.Identity()
        return modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def windows(self, kernel: int, blur_size: int) -> list[Window]:
        """Every window of a block, the conv first, with BLUR resolved to `blur_size`."""
        conv = Window("conv", kernel, self.conv_stride, conv=True)
        rest = [w for s in self.stages for w in s.windows]
        return [conv] + [Window(w.label, blur_size if w.side == BLUR else w.side, w.stride, w.padded, w.even,
                                blur=w.side == BLUR) for w in rest]

    def out_size(self, size: int, kernel: int, padding: str, blur_size: int, blur_padding: str | None = None) -> int:
        """Side of a block's output for a square input of side `size` (PyTorch floor semantics), by arithmetic:
        nothing is built, so torch's RNG is untouched. Raises LayerConfigError (a ValueError) if the block cannot
        run on it: a map that becomes empty, APS on an odd map, reflect padding of p pixels on a side <= p,
        circular padding of p pixels on a side < p. `blur_padding` pads the blurs' windows, as in build."""
        blurred = _blur_pad(padding, blur_padding)
        where = (f"padding={padding!r}, downsample={self.name!r}, kernel={kernel}, blur_size={blur_size}, "
                 + (f"blur_padding={blur_padding!r}, " if blur_padding is not None else "") + f"input {size}x{size}")
        s = size
        for w in self.windows(kernel, blur_size):
            if w.even and s % 2:
                raise LayerConfigError(
                    f"{self.name} needs an even feature map; got {s}x{s} at this block ({where}); choose a "
                    f"canvas divisible by the total stride (2 per downsampling block)")
            s = _window_out(s, w, blurred if w.blur else padding, where)
        return s

    def describe(self) -> str:
        if self.alias_of:
            return f"the same network as {self.alias_of} ({self.note})" if self.note else f"= {self.alias_of}"
        if self.note:
            return self.note
        if self.conv_stride > 1:
            return f"the conv itself has stride {self.conv_stride}"
        return " + ".join(s.label for s in self.stages) or "no downsampling"


def _blur_pad(padding: str, blur_padding: str | None) -> str:
    """What a blur pads with: the model's blur_padding (one of BLUR_PADDINGS), else the network's padding."""
    if blur_padding is None:
        return padding
    return choose("blur_padding", blur_padding, BLUR_PADDINGS, error=LayerConfigError)


def _window_out(s: int, w: Window, padding: str, where: str) -> int:
    """Side after window `w` on an s x s map, padded with `padding` where the window is padded."""
    padded = s
    if w.padded:
        lo, hi = PADDINGS[choose("padding", padding, PADDINGS, error=LayerConfigError)].amounts(w.side, w.conv)
        # PyTorch cannot reflect by >= the side, nor wrap around more than once.
        if (padding == "reflect" and hi >= s) or (padding == "circular" and hi > s):
            raise LayerConfigError(f"{w.label}: {padding} padding by {hi} does not fit a {s}x{s} map "
                                   f"({where}); use a larger canvas")
        padded = s + lo + hi
    if padded < w.side:
        raise LayerConfigError(f"{w.label}: the {w.side}x{w.side} window does not fit a {s}x{s} map ({where}); "
                               f"use a larger canvas or fewer blocks")
    return (padded - w.side) // w.stride + 1


DOWNSAMPLES: dict[str, Downsample] = {}


def register_downsample(name: str, **fields) -> Downsample:
    """Add a downsampling kind to DOWNSAMPLES (fields as in Downsample); returns the entry."""
    DOWNSAMPLES[name] = entry = Downsample(name, **fields)
    return entry


register_downsample("none", memory=(0.6, 1.0))
register_downsample("max", stages=(MAX_S2,), memory=(0.8, 1.0))
register_downsample("avg", stages=(AVG_S2,), memory=(0.8, 1.0))
register_downsample("stride", conv_stride=2, memory=(0.4, 0.5))
register_downsample("blur_max", stages=(MAX_S1, BLUR_S2), literature="Zhang 2019", memory=(1.25, 2.0))
# Zhang 2019 rewrites a strided conv as conv (s1) + BlurPool(s2) and average pooling AvgPool(k2, s2) as
# BlurPool(s2): after the ReLU both are one BlurPool(s2), so blur_avg is the same network as blur_stride (bit for
# bit, for a seed), kept as a second name for configs that use it.
register_downsample("blur_stride", stages=(BLUR_S2,), literature="Zhang 2019", memory=(1.25, 2.0),
                    note="conv (s1) + ReLU, then BlurPool(s2)")
register_downsample("blur_avg", stages=(BLUR_S2,), literature="Zhang 2019", alias_of="blur_stride",
                    memory=(1.25, 2.0),
                    note="Zhang 2019's blurred average pooling is BlurPool(s2) after the ReLU, as its blurred strided "
                         "conv is")
register_downsample("aps_max", stages=(MAX_S1, APS), literature="Chaman & Dokmanic 2021", memory=(2.0, 3.0))
register_downsample("aps_stride", stages=(APS,), literature="Chaman & Dokmanic 2021", memory=(2.0, 3.0),
                    note="conv (s1) + ReLU, then optional blur (s1) + APS")
register_downsample("lps", stages=(LPS,), literature="Rojas-Gomez et al. 2022", memory=(3.0, 3.0),
                    note="conv (s1) + ReLU, then optional blur (s1) + learnable polyphase sampling")
register_downsample("tips", stages=(TIPS,), literature="Saha & Gokhale, WACV 2025", memory=(1.75, 2.0),
                    note="conv (s1) + ReLU, then TIPS (polyphase components mixed by quadrant weights)")
register_downsample("afc", stages=(AFC,), literature="Michaeli et al. 2023", activation=PolyActivation,
                    memory=(12.0, 16.0),
                    note="conv (s1) + polynomial activation at 2x (FFT), then ideal FFT low-pass + subsample (s2)")

DOWNSAMPLE_KINDS = DOWNSAMPLES  # the older name: iterating, `in` and ", ".join() see the kind names


def get_downsample(kind: str) -> Downsample:
    """The registry entry of `kind`; a LayerConfigError listing the valid kinds if there is none."""
    return DOWNSAMPLES[choose("downsample", kind, DOWNSAMPLES, error=LayerConfigError)]


def make_downsample(kind: str, channels: int, padding: str, blur_size: int, blur_padding: str | None = None
                    ) -> nn.Module:
    """The module applied after the ReLU for downsampling `kind` (for 'stride', the conv does the work)."""
    entry = get_downsample(kind)
    choose("padding", padding, PADDING_KINDS, error=LayerConfigError)
    return entry.build(channels, padding, blur_size, blur_padding)
