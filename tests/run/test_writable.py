"""run/writable.py: --results-dir is checked without being made (a command refused later leaves no empty folder
behind), and a path that cannot become a writable folder is refused naming the option."""

import os

import pytest

from invariance_lab.core.errors import ConfigError
from invariance_lab.run.writable import writable


def test_checking_a_new_folder_makes_nothing(tmp_path):
    path = tmp_path / "a" / "b"
    assert writable(path, "--results-dir", create=False) == path
    assert list(tmp_path.iterdir()) == []
    assert writable(path, "--results-dir") == path and path.is_dir()  # the default makes it


@pytest.mark.parametrize("create", [True, False])
def test_a_file_in_the_way_is_refused_naming_the_option(tmp_path, create):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for path in (blocker, blocker / "x" / "y"):
        with pytest.raises(ConfigError, match="--results-dir") as e:
            writable(path, "--results-dir", create=create)
        assert str(path) in str(e.value)
    assert blocker.read_text() == "" and sorted(tmp_path.iterdir()) == [blocker]


def test_a_dangling_link_is_not_a_folder(tmp_path):
    link = tmp_path / "gone"
    os.symlink(tmp_path / "nowhere", link)
    with pytest.raises(ConfigError, match="not a writable folder"):
        writable(link, "--results-dir", create=False)
    assert not (tmp_path / "nowhere").exists()


def _invlab_pages():
    """(option, the output_file arguments of each kind of file invlab replaces, how invlab writes one)."""
    from invariance_lab.claims.answers import ANSWERS_MARK, TITLE
    from invariance_lab.report.html import GENERATOR, PAGE_HEAD
    from invariance_lab.report.plots import PNG_MARK, PNG_SIGNATURE

    png = PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR" + bytes(17) + b"\x00\x00\x00\x19" + PNG_MARK + b"\x00" * 40
    return [("--html", dict(marker=GENERATOR.encode(), starts=PAGE_HEAD.encode()), (PAGE_HEAD + "\n<p>").encode()),
            ("--plot", dict(marker=PNG_MARK, starts=PNG_SIGNATURE), png),
            ("--out", dict(marker=ANSWERS_MARK.encode(), starts=TITLE.encode()),
             f"{TITLE}\n\nintro. {ANSWERS_MARK} from a run.\n".encode())]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_only_a_file_written_as_invlab_writes_it_is_replaced_without_force(tmp_path, index):
    """A file that merely holds invlab's mark (notes quoting it, a copy of invlab's own source, which defines it)
    was replaced without --force: the mark must sit where invlab puts it."""
    from invariance_lab.run.writable import output_file

    option, mark, ours = _invlab_pages()[index]
    mine = tmp_path / "mine.txt"
    for text in (b"notes " + mark["marker"] + b"\nIMPORTANT\n", b'"""module"""\nMARK = ' + mark["marker"] + b"\n"):
        mine.write_bytes(text)
        with pytest.raises(ConfigError, match="exists and was not written by invlab"):
            output_file(mine, option, "x", **mark)
        assert mine.read_bytes() == text
        assert output_file(mine, option, "x", **mark, force=True) == mine
    mine.write_bytes(ours)
    assert output_file(mine, option, "x", **mark) == mine
