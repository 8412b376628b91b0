import pathlib

import pytest
import torch
from typer.testing import CliRunner

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def quick_config_path():
    return ROOT / "configs" / "quick.yaml"


@pytest.fixture(scope="module")
def one_thread():
    """Small convs on a busy 2-core machine: one thread is several times faster than two fighting for cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def untrained_quick_run(tmp_path_factory, seeds: str = "[0]") -> pathlib.Path:
    """A finished run folder of configs/quick.yaml with untrained networks and 12 test images (seconds)."""
    from invariance_lab.cli import app

    results = tmp_path_factory.mktemp("results")
    res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results),
                                   "--quiet", "--set", "train.epochs=0", "--set", f"seeds={seeds}",
                                   "--set", "data.test_images=12"])
    assert res.exit_code == 0, res.output
    (run_dir,) = (results / "quick").iterdir()
    return run_dir
