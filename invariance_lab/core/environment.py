"""The machine a run was made on: versions, CPU and threads, recorded in meta.json.

A run is reproduced bit for bit on the same machine with the same torch version and thread count; elsewhere
the last digits can move (README, Reproducibility). This is what a reader needs to tell the two apart.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Versions, CPU and thread count: what a bit-for-bit reproduction needs to match (README, Reproducibility)."""
    import torch

    versions = {}
    for pkg in ("invariance_lab", "torch", "numpy", "pandas", "pydantic", "typer", "Hershey-Fonts", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return dict(python=platform.python_version(), platform=platform.platform(), versions=versions,
                git_commit=git_commit(), cpu=cpu_model(), cpu_threads=os.cpu_count(),
                torch_threads=torch.get_num_threads())
