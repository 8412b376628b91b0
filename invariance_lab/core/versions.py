"""The package's version: pyproject.toml holds it, the installed package's metadata gives it.

    >>> from invariance_lab import __version__     # "0.2.0"

Checkpoints record it (store/checkpoints.py), and a run reuses only checkpoints of the same version unless told
(--reuse-old); the HTML page names it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("invariance_lab")
except PackageNotFoundError:  # the source imported without being installed (pip install -e . installs it)
    __version__ = "0+unknown"
