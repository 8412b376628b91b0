"""config/checks.py: a font that draws two of the chosen letters alike is refused when the config is read, naming
the font and the letters, before any folder is made (the classes would be a coin toss on its images)."""

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.config.load import parse_config
from invariance_lab.core.errors import ConfigError
from invariance_lab.data.outlines import outline_fonts

MODELS = {"m": {"arch": "conv_gap", "channels": [2]}}


def test_a_stroke_font_drawing_two_letters_alike_is_refused_naming_them():
    raw = {"name": "x", "data": {"letters": ["H", "I", "J"], "fonts": ["futural", "gothicger"]}, "models": MODELS}
    with pytest.raises(ConfigError, match=r"\[data\.fonts\] font 'gothicger' draws the letters I, J alike"):
        parse_config(raw)
    parse_config({**raw, "data": {**raw["data"], "fonts": ["futural"]}})  # futural draws them apart
    # task: position's classes are the halves of the canvas, whatever the letters
    parse_config({**raw, "data": {**raw["data"], "task": "position", "size": 8}, "sweep": {"mode": "circular"}})


def test_last_resort_is_refused_by_invlab_run_before_the_results_folder(tmp_path):
    font = next((f for f in outline_fonts() if f.startswith("Last Resort")), None)
    if font is None:
        pytest.skip("no Last Resort font on this machine")
    res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path / "r"),
                                   "--set", "data.glyphs=outline", "--set", f'data.fonts=["{font}"]', "--quiet"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    # its A is the glyph 'lastresortlatin', the box it draws for every letter: named by that, before the drawings
    assert f"[data.fonts] outline font '{font}' draws 'A' as the glyph 'lastresortlatin', not the letter" in said, said
    assert not (tmp_path / "r").exists()
