"""The claims' evidence helpers (claims/evidence.py) that need no run."""

from invariance_lab.claims.evidence import Evidence
from invariance_lab.config.load import parse_config


def test_the_total_stride_is_the_product_of_each_blocks_own_stride():
    cfg = parse_config({"models": {"kayhan": {"arch": "strided_conv", "first_stride": 1, "channels": [4, 4, 4]},
                                   "pooled": {"arch": "conv_maxpool", "channels": [4, 4]},
                                   "gap": {"arch": "conv_gap"}}})
    ev = Evidence(cfg, {})
    # first_stride: 1 leaves the first block at stride 1: 1 * 2 * 2, not 2 ** 3
    assert {m: ev.total_stride(m) for m in cfg.models} == {"kayhan": 4, "pooled": 4, "gap": 1}
