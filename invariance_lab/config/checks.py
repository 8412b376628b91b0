"""The schema's checks that need the glyphs, an image folder or the networks, bundled for its validators.

    cfg = Config.model_validate(raw, context=CHECKS)   # what config.load.parse_config does

schema/checks.py says why they are handed over as pydantic's validation context rather than imported there.
"""

from __future__ import annotations

from ..data.outlines import font_file
from ..schema.checks import Checks
from .factorial import check_factorial, expand_into
from .limits import canvas_problem, folder_problem, shift_problem

CHECKS = Checks(canvas=canvas_problem, folder=folder_problem, shifts=shift_problem, outline_font=font_file,
                factorial=check_factorial, expand=expand_into)
