"""The machine a run was made on: versions, CPU and threads, recorded in meta.json.

A run is reproduced bit for bit on the same machine with the same torch version and thread count; elsewhere
the last digits can move (README, Reproducibility). This is what a reader needs to tell the two apart.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path


@lru_cache(maxsize=1)  # a process asks once (a subprocess each time was most of a small sweep's overhead)
def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def _versions() -> tuple:
    versions = []
    for pkg in ("invariance_lab", "torch", "numpy", "pandas", "pydantic", "typer", "Hershey-Fonts", "matplotlib"):
        try:
            versions.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            versions.append((pkg, None))
    return tuple(versions)


def environment(threads_why: str | None = None, device=None) -> dict:
    """Versions, CPU and thread count (and why that many: runtime.set_threads): what a bit-for-bit reproduction
    needs to match (README, Reproducibility); on a CUDA `device`, the GPU and the CUDA and cuDNN versions too."""
    import torch

    gpu = {}
    if device is not None and torch.device(device).type == "cuda":
        gpu = dict(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    return dict(python=platform.python_version(), platform=platform.platform(), versions=dict(_versions()),
                git_commit=git_commit(), cpu=cpu_model(), cpu_threads=os.cpu_count(),
                torch_threads=torch.get_num_threads(), **({"threads_why": threads_why} if threads_why else {}), **gpu)
