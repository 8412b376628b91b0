"""schema/sweep.py: sweep.subpixel (bilinear | fft). The default is not written, so every earlier config.yaml and
config digest stays the same; fft is a circular shift, so it is refused on the canvas and lets circular sweeps
take fractional steps."""

import pytest
from conftest import ROOT

from invariance_lab.config.load import load_config, parse_config, to_yaml
from invariance_lab.core.errors import ConfigError
from invariance_lab.schema.sweep import SweepConfig


def test_the_default_is_not_written_so_digests_stay_the_same():
    assert "subpixel" not in SweepConfig().model_dump() and SweepConfig().subpixel == "bilinear"
    text = to_yaml(load_config(ROOT / "configs" / "quick.yaml"))
    assert "subpixel" not in text
    assert to_yaml(load_config(ROOT / "configs" / "quick.yaml", ["sweep.subpixel=bilinear"])) == text
    fft = load_config(ROOT / "configs" / "quick.yaml", ["sweep.mode=circular", "sweep.subpixel=fft"])
    assert "subpixel: fft" in to_yaml(fft)
    assert SweepConfig.model_validate(fft.sweep.model_dump(mode="json")) == fft.sweep  # a worker reads it back


def test_fft_takes_fractional_circular_steps_and_only_circular_ones():
    s = SweepConfig(mode="circular", dx=[-1, 1, 0.25], subpixel="fft")
    assert s.dx == [-1.0, 1.0, 0.25]
    with pytest.raises(ConfigError, match=r"\[sweep.subpixel\].*mode: circular"):
        parse_config({"sweep": {"subpixel": "fft"}})
    with pytest.raises(ConfigError, match=r"\[sweep.dx\].*whole pixels.*subpixel: fft"):
        parse_config({"sweep": {"mode": "circular", "dx": [0, 2, 0.5]}})
    with pytest.raises(ConfigError, match="sweep.subpixel"):
        parse_config({"sweep": {"mode": "circular", "subpixel": "lanczos"}})


def test_transform_angles_and_scales_are_written_only_when_set():
    text = to_yaml(load_config(ROOT / "configs" / "quick.yaml"))
    assert not any(k in text for k in ("transform", "angles", "scales"))
    assert to_yaml(load_config(ROOT / "configs" / "quick.yaml", ["sweep.transform=translate"])) == text
    turned = load_config(ROOT / "configs" / "quick.yaml", ["sweep.transform=rotate", "sweep.angles=[-40,40,20]"])
    assert "transform: rotate" in to_yaml(turned) and turned.sweep.angles == [-40.0, 40.0, 20.0]
    with pytest.raises(ConfigError, match=r"\[sweep.scales\].*> 0"):
        parse_config({"sweep": {"transform": "scale", "scales": [0, 1, 0.5]}})
    with pytest.raises(ConfigError, match="sweep.transform"):
        parse_config({"sweep": {"transform": "shear"}})
