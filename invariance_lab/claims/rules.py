"""The rules the claims' verdicts follow (claims.py applies them): the verdict names, the thresholds, and the models
the claims read with the factors each must have.

    check_claim_models(load_config("configs/question_claims.yaml"))   # an InvlabError when a model is missing

Every verdict is decided from the run's and its sweeps' numbers by these thresholds:

* EXACT_TV: a model is exactly invariant at a shift when no image's softmax output moves by more than 1e-6 in
  total variation, for any seed (sweep.INVARIANT_TV: float32 round-off, the `--all-shifts` certificate's rule).
* EXACT_EQUIVARIANCE: a feature map is exactly equivariant when the relative error ||F(Tx) - T'F(x)|| / ||F(x)||,
  averaged over the profiled images (layers.csv keeps the mean per tap, shift and seed), is at most 1e-5 at every
  tap, shift and seed (float32 round-off; tests/eval/test_theory.py uses the same bound); APPROX_EQUIVARIANCE: at
  most 1% is "approximately". The errors are >= 0, so a mean of 0 is 0 for every image; a mean of at most 1e-5
  bounds one image's error by n x 1e-5 only, n the number of images.
* APPROX_FLIP: a model is approximately invariant when its mean flip rate over the shifts is at most 5% (the
  global-average models of the README change 0.1-0.3%; the flatten models 30-40%), read on the 95% interval over
  seeds (within_flip): at most 5% when the whole interval is, more when the whole interval is above, and
  UNDECIDED when the interval holds 5% (the seeds disagree: max pooling + global average changed 1.0% [0, 5.1%]
  with seeds 0-2, 13.1% [0, 43.6%] with seeds 3-5 and 4.2% [0, 9.7%] with seeds 6-8 between lattice points).
  With one seed (no interval) the mean decides.
* A comparison between two models is "clear" when their 95% intervals over seeds (cut to [0, 1]) do not
  overlap; otherwise it is "within the seed spread".
* Claim 2 (a displaced part): a paired t-test over the test images (each image's change averaged over seeds), at
  ALPHA = 0.05 with its power stated. The images share their networks, so p speaks of these trained networks: a
  clear difference decides the verdict only when every seed shows it (else UNDECIDED); no clear difference with
  the power to see max pooling halve the change does not hold. The displaced part must be one the networks use:
  removing it changes at least MIN_REMOVAL = 5% of predictions, or the claim cannot be tested with it (UNTESTED).
* Where the networks that decide a claim differ, the verdict is PARTLY and says which hold. Networks outside a
  claim's conditions (zero padding or stride 2 for claims 1 and 4) are reported in its conditions, not counted.
* A claim whose deciding models have a seed at chance (report.seed_flags) is UNDECIDED: a network that answers
  one class for every image never changes its mind, so its consistency says nothing.
* Exactness verdicts rest on brute force (one forward pass per shift) as well as on the all-shift engine:
  AGREE_TV bounds how far the two may differ on the shifts both measured, or the verdict is UNDECIDED.
"""

from __future__ import annotations

import math

from ..core.errors import ConfigError, quote
from ..core.columns import INVARIANT_TV
from ..nn.models import check_model
from ..schema.config import Config
from ..schema.sweep import axis
from ..config.models import resolved_models

HOLDS, APPROX, FAILS, UNDECIDED = "holds", "holds only approximately", "does not hold", "undecided"
PARTLY = "holds for some networks only"  # the networks a claim names differ: the verdict's scope says which
UNTESTED = "cannot be tested here"  # the experiment cannot decide (claim 2: removing the part changes nothing)
VERDICTS = (HOLDS, APPROX, PARTLY, FAILS, UNDECIDED, UNTESTED)
EXACT_TV = INVARIANT_TV  # 1e-6
EXACT_EQUIVARIANCE = 1e-5
APPROX_EQUIVARIANCE = 1e-2
APPROX_FLIP = 0.05
AGREE_TV = 1e-5  # engine against brute force: mean TV per shift, model and seed
PART_SPAN = 3  # part displacements of -3..3 px on each axis: "slightly displaced"; 1 px is less than a pool's stride
# claim 2 (part_tests.py): a paired t-test over the test images at ALPHA (two-sided), its power stated as the
# difference it detects with POWER; no difference found counts as "does not hold" only when that detectable
# difference is at most POWERED_FRACTION of no pooling's change (the test could have seen max pooling halve it);
# the part must matter: its removal must change at least MIN_REMOVAL of both networks' predictions.
ALPHA, POWER, POWERED_FRACTION, MIN_REMOVAL = 0.05, 0.8, 0.5, 0.05

# The models the claims read, with the factors each must have (the config may change channels, kernel, ...).
MODELS = {
    "conv_only": ("none", "flatten", "zeros"), "conv_maxpool": ("max", "flatten", "zeros"),
    "strided_conv": ("stride", "flatten", "zeros"), "gap_circular": ("none", "global_avg", "circular"),
    "gmp_circular": ("none", "global_max", "circular"), "gap_zeros": ("none", "global_avg", "zeros"),
    "strided_gmp_circular": ("stride", "global_max", "circular"),
    "maxpool_gap_circular": ("max", "global_avg", "circular"), "strided_gmp": ("stride", "global_max", "zeros"),
    "maxpool_1x1": ("max", "flatten", "zeros"), "maxpool_1x1_circular": ("max", "flatten", "circular"),
}
ONE_BY_ONE = ("maxpool_1x1", "maxpool_1x1_circular")  # their last map must be 1 x 1
CIRCULAR = ("gap_circular", "gmp_circular", "strided_gmp_circular", "maxpool_gap_circular", "maxpool_1x1_circular")


def within_flip(stat) -> bool | None:
    """Whether a mean flip rate over seeds (evidence.Stat) is at most APPROX_FLIP: True when its whole 95% interval
    is, False when the whole interval is above, None when the interval holds the threshold (the seeds disagree)."""
    if math.isnan(stat.lo) or math.isnan(stat.hi):  # one seed: no interval, the mean decides
        return stat.mean <= APPROX_FLIP
    return True if stat.hi <= APPROX_FLIP else False if stat.lo > APPROX_FLIP else None


def check_claim_models(cfg: Config) -> None:
    """The config has every model the claims read, with the factors each claim assumes; an InvlabError if not."""
    factors = resolved_models(cfg)
    for name, (down, head, pad) in MODELS.items():
        f = factors.get(name)
        if f is None:
            raise ConfigError(f"the claims need model {name!r} ({down} / {head} / {pad}); the config "
                              f"{cfg.name!r} has none: start from configs/question_claims.yaml")
        got = (f.get("downsample"), f.get("head"), f.get("padding"))
        if got != (down, head, pad):
            raise ConfigError(f"model {name!r} must be {down} / {head} / {pad} (downsample / head / padding) for the "
                              f"claims; the config gives {' / '.join(map(str, got))}")
    s = cfg.sweep  # claims 3, 4 and 6 read the run's own sweep as canvas shifts: none would leave them NaN
    if s.mode != "canvas" or not any(v != 0 for v in axis(s.dx) + axis(s.dy)):
        raise ConfigError(f"the claims read the run's own sweep as canvas shifts (claims 3, 4 and 6); the config "
                          f"{cfg.name!r} gives sweep mode {s.mode} with dx {quote(s.dx)} and dy {quote(s.dy)}"
                          f"{', no shift but (0, 0)' if s.mode == 'canvas' else ''}: give sweep: {{mode: canvas, "
                          "dx: [-8, 8], dy: [-8, 8]} as configs/question_claims.yaml does, or other non-zero shifts")
    for name in ONE_BY_ONE:
        side = check_model(factors[name], cfg.data.canvas)
        if side != 1:
            raise ConfigError(f"model {name!r} must pool the {cfg.data.canvas} px canvas down to 1x1; its last map is "
                              f"{side}x{side}: give it log2(canvas) = {math.log2(cfg.data.canvas):g} blocks")
