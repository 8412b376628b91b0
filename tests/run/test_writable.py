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
