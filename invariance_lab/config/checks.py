"""The schema's checks that need the glyphs, an image folder or the networks, bundled for its validators.

    cfg = Config.model_validate(raw, context=CHECKS)   # what config.load.parse_config does

schema/checks.py says why they are handed over as pydantic's validation context rather than imported there.
"""

from __future__ import annotations

from ..data.glyphs import same_drawings
from ..data.letters import load_glyphs
from ..data.outlines import font_file
from ..schema.checks import Checks
from ..schema.data import DataConfig
from ..schema.fields import _Problem
from .factorial import check_factorial, expand_into
from .limits import canvas_problem, folder_problem, shift_problem


def letters_problem(data: DataConfig) -> _Problem | None:
    """The letters fit the canvas (limits.canvas_problem), and no font draws two of them alike: the classes of a
    letter task would then be a coin toss on that font's images (a "Last Resort" font draws one box for all)."""
    problem = canvas_problem(data)  # it loads the glyphs, and words a font or letter they cannot be drawn in
    if problem or data.task != "letter" or data.source != "letters":  # task: position's classes are the halves
        return problem
    alike = same_drawings(load_glyphs(data.letters, data.fonts, data.glyphs))  # cached: loaded just now
    if not alike:
        return None
    font, letters = alike[0]
    return _Problem("fonts", f"font {font!r} draws the letters {', '.join(letters)} alike (the same "
                    f"{'outline' if data.glyphs == 'outline' else 'strokes'}), so no network can tell them apart "
                    f"and its images of them would be labelled at random; drop that font (`invlab fonts` lists "
                    f"the others), or keep only one of those letters", data.fonts)


CHECKS = Checks(canvas=letters_problem, folder=folder_problem, shifts=shift_problem, outline_font=font_file,
                factorial=check_factorial, expand=expand_into)
