"""atomic.py: a file is written whole or not at all, and an unreadable one is a RunFolderError naming it."""

import os

import pandas as pd
import pytest

from invariance_lab.core.errors import RunFolderError
from invariance_lab.store.atomic import read_json, write_csv, write_json, write_text


def test_writes_leave_no_temporary_file(tmp_path):
    write_text(tmp_path / "a.txt", "é\n")
    write_json(tmp_path / "b.json", {"x": [1, 2]})
    write_csv(tmp_path / "c.csv", pd.DataFrame({"x": [1, 2]}))
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.json", "c.csv"]
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "é\n"
    assert read_json(tmp_path / "b.json") == {"x": [1, 2]}
    assert pd.read_csv(tmp_path / "c.csv")["x"].tolist() == [1, 2]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    write_json(tmp_path / "m.json", {"status": "running"})
    with pytest.raises(TypeError):
        write_text(tmp_path / "m.json", None)  # fails before the rename
    assert read_json(tmp_path / "m.json") == {"status": "running"}


@pytest.mark.parametrize("content", [b"{half", b"\xff\xfe\x00", None])
def test_an_unreadable_json_names_the_file(tmp_path, content):
    path = tmp_path / "meta.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RunFolderError, match="cannot read") as e:
        read_json(path)
    assert str(path) in str(e.value)
