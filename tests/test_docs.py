"""The docs cannot drift from the code: the generated pages (docs/gen_reference.py) equal what the code gives now,
the README keeps the test command CI runs, and every `invlab` example in a bash block of the README or docs/ is
run here, or says on its line or in its block why it is not (training takes minutes; a run folder is needed);
the files and the tests the pages name exist."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from invariance_lab.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
MARKER = "# not run by the tests:"
SHELL_FENCES = ("bash", "sh", "shell", "console")
TEST_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e '.[test]' && "
                ".venv/bin/python -m pytest -q")

# Examples run by this file: quick, and they need no run folder.
RUN_HERE = ["invlab --help", "invlab models", "invlab fonts"]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _examples(text: str) -> list[tuple[str, str]]:
    """(command, its block) for each line of a shell block whose command is invlab (after `$ ` and VAR=value)."""
    found = []
    for lang, block in re.findall(r"^ *```(\w+)\n(.*?)^ *```", text, flags=re.M | re.S):
        if lang not in SHELL_FENCES:
            continue
        lines = block.replace("\\\n", " ").splitlines()  # continuation lines: one command
        for line in lines:
            command = line.strip().removeprefix("$ ")
            while re.match(r"[A-Za-z_]+=\S+ ", command):  # PYTHONPATH=examples invlab ...
                command = command.split(" ", 1)[1]
            if command.startswith("invlab"):
                found.append((" ".join(command.split()), block))
    return found


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", ["configuration.md", "commands.md"])
def test_generated_pages_equal_what_the_code_gives(page):
    made = _generator().PAGES[page]()
    assert (ROOT / "docs" / page).read_text(encoding="utf-8") == made, \
        f"docs/{page} is stale: run python docs/gen_reference.py"


def test_the_configuration_page_names_every_field_of_the_schema():
    from invariance_lab.schema.config import Config, DataConfig, ModelSpec, SweepConfig, TrainConfig

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for cls in (Config, DataConfig, ModelSpec, TrainConfig, SweepConfig):
        for name in cls.model_fields:
            assert f"| `{name}` |" in text, (cls.__name__, name)


def test_a_fields_comment_stays_in_its_row_and_only_notes_after_a_blank_line_are_paragraphs():
    """A comment continued on the lines under a field (ink, sweep.batch_size) is that field's, not a paragraph
    between the rows; a comment block after a blank line introduces the fields below it."""
    from invariance_lab.schema.config import DataConfig, SweepConfig

    notes = {cls: {name: (comment, note) for name, comment, note in _generator()._field_notes(cls)}
             for cls in (DataConfig, SweepConfig)}
    assert notes[DataConfig]["ink"][0].endswith("invariant: the invariant statistics matched too (total, spread, "
                                                 "peak, mean and area of the ink; data/ink.py)")
    assert notes[DataConfig]["gain"][1] == "" and notes[SweepConfig]["subpixel"][1] == ""
    assert "larger batches run no faster" in notes[SweepConfig]["batch_size"][0]
    assert {name for name, (_, note) in notes[DataConfig].items() if note} == {
        "val_fraction", "path", "test_set", "test_sets"}
    assert notes[DataConfig]["path"][1].startswith("source: folder")


def test_the_readme_keeps_the_command_ci_runs():
    assert TEST_COMMAND in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_invlab_example_is_run_or_says_why_not():
    unaccounted = []
    for page in _pages():
        for command, block in _examples(page.read_text(encoding="utf-8")):
            line = next(x for x in block.replace("\\\n", " ").splitlines() if " ".join(x.split()).endswith(command)
                        or command in " ".join(x.split()))
            reason = (line.split(MARKER, 1)[1] if MARKER in line else
                      block.split(MARKER, 1)[1].splitlines()[0] if MARKER in block else "")
            if command not in RUN_HERE and len(reason.strip()) < 10:  # a marker must say why
                unaccounted.append(f"{page.name}: {command}")
    assert not unaccounted, unaccounted
    assert set(RUN_HERE) <= {c for page in _pages() for c, _ in _examples(page.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("command", RUN_HERE)
def test_the_quick_examples_run(command):
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0 and result.output.strip(), result.output


def test_the_readmes_relative_links_resolve():
    """mkdocs --strict checks the links between pages of the site; the README is outside it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"\w+://", t)]
    assert targets and not [t for t in targets if t and not (ROOT / t).exists()]


def _text() -> str:
    """The README, CONTRIBUTING.md and every page of docs/, as one text."""
    return "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "CONTRIBUTING.md", *_pages()])


def test_the_files_the_docs_name_exist():
    """A path in the docs (invariance_lab/..., tests/..., bench/..., configs/...) names a file of the checkout: a
    moved or renamed module fails here, not in a reader's hands."""
    named = set(re.findall(r"\b((?:invariance_lab|tests|bench|configs)/[\w/.-]*\w\.(?:py|yaml))\b", _text()))
    assert len(named) > 50
    assert not sorted(p for p in named if not (ROOT / p).is_file())


def test_the_tests_the_docs_cite_exist():
    """docs/bad_inputs.md and the other pages cite the test that checks each case: every `test_...` name they
    quote is a test function or test module of the suite, or a name of the code (a key such as train.test_every)."""
    tests = [p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py")]
    known = {n for t in tests for n in re.findall(r"^\s*def (test_\w+)", t, flags=re.M)}
    known |= {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "invariance_lab").rglob("*.py"))
    cited = set(re.findall(r"`(test_\w+)(?:\[[^\]`]*\])?", _text()))
    assert len(cited) > 50
    assert not sorted(n for n in cited if n not in known and not re.search(rf"\b{n}\b", code))
