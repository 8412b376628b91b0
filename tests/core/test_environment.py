"""environment.py: what meta.json records about the machine, for reproducing a run."""

import torch

from invariance_lab.core.environment import environment


def test_environment_names_versions_cpu_and_threads():
    env = environment()
    assert torch.__version__.startswith(env["versions"]["torch"].split("+")[0])
    assert env["torch_threads"] == torch.get_num_threads() and env["cpu"] and env["cpu_threads"] >= 1
    assert env["python"].count(".") == 2
