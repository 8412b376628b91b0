"""cli/show.py: what run, sweep and measure print at the end. A run whose own sweep holds every roll of the canvas
ends with the certificate too, as `invlab sweep --all-shifts` and `invlab measure --all-shifts` do
(tests/eval/test_engine.py, tests/run/test_measure.py)."""

from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app


def test_a_run_over_every_roll_prints_its_certificate_and_one_over_fewer_does_not(tmp_path, one_thread):
    every = ["--set", "sweep.mode=circular", "--set", "sweep.dx=[-11,12]", "--set", "sweep.dy=[-11,12]",
             "--set", "sweep.grid=product"]
    fewer = ["--set", "sweep.mode=circular", "--set", "sweep.dx=[-11,11]"]
    for grid, certified in ((every, True), (fewer, False)):
        res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path),
                                       "--quiet", "--threads", "1", "--set", "train.epochs=0", "--set", "seeds=[0]",
                                       "--set", "data.test_images=4", *grid])
        assert res.exit_code == 0, res.output
        out = " ".join(res.output.split())
        assert ("certificate over all 576 circular shifts of the canvas, 4 test images" in out) == certified, out
        assert ("conv_gap: NOT invariant" in out) == certified  # zero padding: not exact under circular shifts
