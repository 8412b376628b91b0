"""A run folder's own test images, as images to measure a model on (invlab measure --images RUN_DIR).

    if is_run_folder(path):
        images = run_images(path, n_images=100)   # drawn exactly as the run drew them, with their class names
"""

from __future__ import annotations

from pathlib import Path

from ..config.load import load_config
from ..core.errors import whole
from ..data.datasets import class_names, evaluation_set, glyph_table
from ..data.folder import to_float
from ..data.images import TensorImages, from_tensor
from .find import require_finished_run
from .layout import CONFIG_FILE, META_FILE


def run_images(run_dir: str | Path, n_images: int | None = None) -> TensorImages:
    """A run folder's own test images (the reference images of its sweep, drawn exactly as the run drew them:
    float pixels, not 8-bit files) with their labels and class names."""
    if n_images is not None:
        whole("n_images", n_images)
    require_finished_run(Path(run_dir))
    cfg = load_config(Path(run_dir) / CONFIG_FILE)
    x, y = evaluation_set(cfg.data, glyph_table(cfg.data))
    x, y = to_float(x[:n_images]), y[:n_images]  # an image folder's pixels are kept as uint8
    return from_tensor(x, y, class_names(cfg.data), describe=f"the test images of run {run_dir}")


def is_run_folder(path: str | Path) -> bool:
    """Whether `path` holds a run's meta.json and config.yaml (rather than a folder of images)."""
    return (Path(path) / META_FILE).is_file() and (Path(path) / CONFIG_FILE).is_file()
