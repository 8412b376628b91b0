"""The sweep: section of a config: the shifts the trained networks are tested on, and its grid's limits.

    SweepConfig(mode="canvas", dx=[-8, 8], dy=[0, 0], grid="product")
    grid_problem(sweep)     # None, or the _Problem of a grid too large or of fractional rolls

Whether a shift can move a letter out of the frame depends on the letters: config/limits.py checks that.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_serializer, model_validator

from ..core.errors import ConfigError
from .fields import BIG, DECIMALS, Float, Int, _Problem, _Schema, check_range, range_values, without_defaults
from .messages import format_errors

MAX_SHIFTS = 100_000  # shifts in one sweep grid: each is a forward pass over the whole test set
# Fields added after runs were fingerprinted (store/find.py hashes the whole config, sweep included): written only
# when they differ from these defaults, so every older config.yaml and digest stays the same. Add new ones here.
SWEEP_DEFAULTS: dict = {"subpixel": "bilinear", "transform": "translate", "angles": [-40.0, 40.0, 10.0],
                        "scales": [0.8, 1.2, 0.1]}


MAX_SCALE = 1e6  # a sweep's largest scale factor: a letter a million times its size fills any canvas flat


class SweepConfig(_Schema):
    mode: Literal["canvas", "circular"] = "canvas"  # canvas: letter redrawn at the shift; circular: torch.roll
    dx: list[Float] = [-8, 8]  # inclusive [start, stop] or [start, stop, step], px; +-8: a whole stride-8 period
    dy: list[Float] = [0, 0]  # vertical shifts, the same way; [0, 0] = none
    grid: Literal["product", "axes"] = "product"  # product: every (dx, dy); axes: dx with dy = 0, then dy with dx = 0
    batch_size: Int = Field(64, ge=1, le=BIG)  # images per forward pass in the sweep: a matter of memory and speed;
    # larger batches run no faster, and their activations were most of a run's peak memory (at 128 the seed
    # question's sweep peaked 20-50 MB higher). The networks' outputs were bit-identical at 32, 64 and 128 (every
    # network of configs/); prob_change's sums are made per batch, so another batch size moves its last bits
    subpixel: Literal["bilinear", "fft"] = "bilinear"  # circular mode's fractional shifts: bilinear refuses them
    # (rolls are whole pixels), fft is the band-limited roll (data/transforms.fourier_shift); canvas mode: folder and
    # box images bilinear, drawn letters drawn again at the fractional position (docs/metrics.md)
    transform: Literal["translate", "rotate", "scale"] = "translate"  # what the test inputs undergo: rotate and
    # scale sweep `angles` or `scales` instead of dx, dy (drawn letters exactly, by the renderer; pixels bilinear)
    angles: list[Float] = [-40, 40, 10]  # rotate: [start, stop(, step)] degrees, counterclockwise on screen
    scales: list[Float] = [0.8, 1.2, 0.1]  # scale: [start, stop(, step)] factors about the letter's centre, 1 = as is

    def __new__(cls, *args, **values):
        """SweepConfig(...) in Python is checked as a config's sweep: section is: a bad value is a ConfigError naming
        the key and what it takes, not pydantic's ValidationError. Here, not in __init__: pydantic calls a custom
        __init__ for a sweep inside a Config too (with any keys, and losing their paths), never __new__ with keys."""
        if values:
            try:
                cls.model_validate(values)
            except ValidationError as e:
                raise ConfigError(format_errors(e, "SweepConfig(...)", cls, what="sweep")) from None
        return super().__new__(cls)

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler):
        return without_defaults(handler(self), SWEEP_DEFAULTS)

    @field_validator("dx", "dy", "angles", "scales")
    @classmethod
    def _range(cls, v, info):
        v = check_range(v, info.field_name)
        if info.field_name == "scales" and range_values(v)[0] <= 0:  # the value used (1e-10, used as 0: check_range)
            raise ValueError(f"scales are factors (1 = as drawn) and must be > 0, at least 1e-{DECIMALS}; got start "
                             f"{v[0]:g}")
        if info.field_name == "scales" and max(v[0], v[1]) > MAX_SCALE:  # 1e20 overflowed the drawing to NaN
            raise ValueError(f"scales are factors (1 = as drawn) of at most {int(MAX_SCALE):,}, which already "
                             f"leaves one flat value in any canvas; got {max(v[0], v[1]):g}")
        return v

    @model_validator(mode="after")
    def _grid(self) -> "SweepConfig":
        problem = grid_problem(self)  # whole pixels for circular rolls, at most MAX_SHIFTS shifts in the grid
        if problem:
            raise problem
        return self


MAX_ANGLE = 3600.0  # degrees: ten turns either way, past which a rotation grid's values are refused


def turn_problem(angles: list[float]) -> str | None:
    """Why a rotation grid cannot be measured as given: an angle past MAX_ANGLE (1e300 degrees is a turn that float
    rounding picks, named 1e+300), or one turn twice (a and a + 360k degrees: 0:720:90, -180:180:90), counted
    twice in every mean; None when fine. Checked for a config's sweep (config/limits.shift_problem, as the
    circular-roll check: a run folder's config too) and for every measurement's grid (eval/stream.check_grid)."""
    far = next((a for a in angles if abs(a) > MAX_ANGLE), None)
    if far is not None:
        return (f"an angle of {far:g} degrees is past the {MAX_ANGLE:g} (ten turns) invlab turns by: far out, the "
                f"turn is what float rounding leaves of it; give angles within one turn, e.g. -180:170:10")
    seen: dict[float, float] = {}
    for a in angles:
        turn = round(a % 360, DECIMALS) % 360
        if turn in seen:
            return (f"{seen[turn]:g} and {a:g} degrees are one turn (they differ by a multiple of 360), which "
                    f"would be measured twice and weigh double in every mean; keep the values within one turn, e.g. "
                    f"-180:170:10 or 0:350:10")
        seen[turn] = a
    return None


def axis(r: list[float]) -> list[float]:
    """The values of an inclusive [start, stop, step] range, as a sweep uses them (shifts.axis_values)."""
    return range_values(r)


def grid_problem(sweep: SweepConfig) -> _Problem | None:
    """Circular shifts that are not whole pixels (without subpixel: fft), fft shifts of the canvas, or a grid of
    more than MAX_SHIFTS shifts; None when fine."""
    if sweep.transform != "translate" and sweep.subpixel == "fft":
        return _Problem("subpixel", f"subpixel: fft shifts by fractions of a pixel; transform: {sweep.transform} "
                        "does not shift (leave subpixel out)", sweep.subpixel)
    if sweep.subpixel == "fft" and sweep.mode != "circular":
        return _Problem("subpixel", "subpixel: fft is a circular shift (the DFT wraps around); use it with mode: "
                        "circular (canvas shifts redraw the letter, or are bilinear for images)", sweep.subpixel)
    if sweep.mode == "circular" and sweep.subpixel != "fft":
        for key in ("dx", "dy"):
            if any(float(x) != int(x) for x in getattr(sweep, key)):
                return _Problem(key, f"mode: circular rolls by whole pixels; {key} must be integers, or set "
                                "subpixel: fft (--subpixel fft) for band-limited sub-pixel shifts", getattr(sweep, key))
    nx, ny = len(axis(sweep.dx)), len(axis(sweep.dy))
    n = nx * ny if sweep.grid == "product" else nx + ny - 1
    if n > MAX_SHIFTS:
        return _Problem("dx", f"the {sweep.grid} grid of {nx} dx x {ny} dy values has {n} shifts, each a pass over "
                        f"the whole test set; at most {MAX_SHIFTS}: use larger steps or grid: axes", sweep.dx)
    return None
