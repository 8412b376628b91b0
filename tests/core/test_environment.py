"""environment.py: what meta.json records about the machine, for reproducing a run."""

import torch

from invariance_lab.core.environment import environment


def test_environment_names_versions_cpu_and_threads():
    env = environment()
    assert torch.__version__.startswith(env["versions"]["torch"].split("+")[0])
    assert env["torch_threads"] == torch.get_num_threads() and env["cpu"] and env["cpu_threads"] >= 1
    assert env["python"].count(".") == 2


def test_a_cuda_device_records_the_gpu_and_its_libraries_and_the_cpu_none(monkeypatch):
    """What a GPU run's reproduction needs to match (docs/getting_started.md, Reproducibility): the GPU's name and
    the CUDA and cuDNN versions; a CPU run records none of them (no CUDA context is started for it)."""
    import torch

    from invariance_lab.core.environment import environment

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU 80GB")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91000)
    gpu = environment("--threads 1", torch.device("cuda", 0))
    assert gpu["gpu"] == "Fake GPU 80GB" and gpu["cudnn"] == 91000 and gpu["cuda"] == torch.version.cuda
    cpu = environment("--threads 1", torch.device("cpu"))
    assert not {"gpu", "cuda", "cudnn"} & set(cpu) and set(gpu) - set(cpu) == {"gpu", "cuda", "cudnn"}
