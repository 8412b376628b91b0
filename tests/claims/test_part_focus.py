"""claims/part_focus.py: a part_focus folder whose meta.json says it is complete is reused, and its tables are
checked when `invlab claims` reads them: an empty, header-only, re-columned, binary or cut-off images.csv or
parts.csv is refused (exit 2, the file named, how to measure it again, no traceback) and left as it was, never
read in part nor rewritten.

One claims run of untrained networks is made once for the module (test_claims.py's reduced config, 16 px canvas,
with 1 seed and 12 test images: about 2 s with one thread); each test damages a copy of it."""

import shutil

import pytest
from typer.testing import CliRunner

from invariance_lab.claims.part_focus import DISTANCES, FOLDER, IMAGES_CSV, PART_MODELS, PARTS_CSV, load_part_focus
from invariance_lab.cli.main import app

from .test_claims import reduced_config

runner = CliRunner()
SMALL = ["--set", "train.epochs=0", "--set", "seeds=[0]", "--set", "data.test_images=12",
         "--set", "data.train_images=20", "--threads", "1", "--quiet"]


def _claims(results):
    """`invlab claims` on the module's config (beside the results folder, so a copy of the folder finds it)."""
    return runner.invoke(app, ["claims", str(results.parent / "reduced_claims.yaml"), *SMALL, "--results-dir",
                               str(results)])


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, one_thread):
    results = tmp_path_factory.mktemp("part_focus") / "results"
    reduced_config(results.parent)
    res = _claims(results)
    assert res.exit_code == 0, res.output
    return results


@pytest.fixture
def run(pristine, tmp_path):
    """A copy of the module's claims run: (results folder, its part_focus folder)."""
    results = tmp_path / "results"
    shutil.copytree(pristine, results, symlinks=True)
    shutil.copy(pristine.parent / "reduced_claims.yaml", tmp_path)
    (run_dir,) = (results / "question_claims").iterdir()
    return results, run_dir / FOLDER


def _cut(text: str, keep: int) -> str:
    """The header and the first `keep` rows."""
    return "".join(text.splitlines(keepends=True)[:1 + keep])


DAMAGE = {  # name: (the file's text from its intact text, words the refusal says)
    "empty": (lambda t: "", "could not be read as CSV"),
    "header only": (lambda t: t.splitlines(keepends=True)[0], "no rows"),
    "wrong columns": (lambda t: "a,b,c\n1,2,3\n4,5,6\n", "lacks the column"),
    "garbage bytes": (lambda t: b"\x00\xff\xfe\x89PNG\r\n\x1a\n\x00\x00\xc3(\"\xff,\n\x00\xfe".decode("latin-1"),
                      None),
    "truncated rows": (lambda t: _cut(t, 3), "rows of the"),
}


@pytest.mark.parametrize("name", [IMAGES_CSV, PARTS_CSV])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_table_is_refused_and_left_as_it_was(run, name, damage):
    results, folder = run
    path = folder / name
    make, words = DAMAGE[damage]
    path.write_bytes(make(path.read_text()).encode("latin-1"))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    res = _claims(results)
    said = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit), res.output
    assert name in said and FOLDER in said and "delete the folder" in said, said
    if words:
        assert words in said, said
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing rewritten


def test_an_intact_folder_is_reused_whole_and_a_deleted_one_measured_again(run):
    results, folder = run
    intact = {p.name: p.read_bytes() for p in folder.iterdir()}
    res = _claims(results)
    assert res.exit_code == 0, res.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == intact  # reused, not made again
    found = load_part_focus(folder)
    assert len(found.images) == len(PART_MODELS) * 1 * 12 * (len(DISTANCES) + 1)
    assert len(found.parts) == 2 * 3 and found.parts["n_images"].sum() == 12  # letters A, B x 3 fonts
    (folder / PARTS_CSV).write_text(_cut((folder / PARTS_CSV).read_text(), 2))
    assert _claims(results).exit_code == 2
    shutil.rmtree(folder)  # what the refusal advises
    res = _claims(results)
    assert res.exit_code == 0, res.output
    assert (folder / PARTS_CSV).read_bytes() == intact[PARTS_CSV]  # measured again, the same


@pytest.mark.parametrize("edit, words", [
    (lambda t: t.replace("conv_only", "conv_onyl", 1), "conv_onyl"),       # a model this run does not have
    (lambda t: t + t.splitlines(keepends=True)[1], "two rows"),             # a row twice
    (lambda t: t.replace(",1.0\n", ",7.0\n", 1) if ",1.0\n" in t else t.replace(",0.0\n", ",7.0\n", 1), "from 0 to 1"),
])
def test_an_edited_images_table_is_refused(run, edit, words):
    results, folder = run
    path = folder / IMAGES_CSV
    path.write_text(edit(path.read_text()))
    res = _claims(results)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert IMAGES_CSV in said and words in said, said


def test_a_missing_table_is_refused(run):
    results, folder = run
    (folder / PARTS_CSV).unlink()
    res = _claims(results)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert PARTS_CSV in said and "missing" in said, said
    assert not (folder / PARTS_CSV).exists()  # refused, not measured again behind the user's back


def test_letters_without_a_part_to_move_are_refused_before_any_training(tmp_path):
    """C in futural is one stroke: claim 2 has no part of it to move. Refused up front (it used to train, write a
    parts.csv row with no strokes, then call its own file damaged on every run); so are outline letters."""
    reduced_config(tmp_path)
    results = tmp_path / "results"
    res = runner.invoke(app, ["claims", str(tmp_path / "reduced_claims.yaml"), *SMALL, "--results-dir", str(results),
                              "--set", "data.letters=[A,B,C]"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "'C' in font futural has none" in said and "Leave C out of data.letters" in said, said
    assert not results.exists()  # nothing trained, nothing written
    res = runner.invoke(app, ["claims", str(tmp_path / "reduced_claims.yaml"), *SMALL, "--results-dir", str(results),
                              "--set", "data.glyphs=outline", "--set", 'data.fonts=["DejaVu Sans"]'])
    assert res.exit_code == 2 and "the claims need stroke letters" in " ".join(res.output.split()), res.output
    assert not results.exists()
