"""layout.py: the run folder's paths (one owner for every file name) and new folders named by time."""

import pytest

from invariance_lab.core.errors import RunFolderError
from invariance_lab.store.layout import (CHECKPOINT_DIR, CONFIG_FILE, checkpoint_file, checkpoint_path, is_study,
    new_folder, new_run_folder, new_study_folder, unit_key, unit_log_path, unit_state_path)


def test_a_units_files_share_its_key(tmp_path):
    key = unit_key("conv_gap", 3)
    assert key == "conv_gap-seed3"
    assert checkpoint_path(tmp_path, "conv_gap", 3) == checkpoint_file(tmp_path, key) == \
        tmp_path / CHECKPOINT_DIR / "conv_gap-seed3.pt"
    assert unit_state_path(tmp_path, key).stem == unit_log_path(tmp_path, key).stem == key


def test_new_folders_in_the_same_second_stay_apart(tmp_path):
    made = [new_folder(tmp_path / "x") for _ in range(3)]
    assert len(set(made)) == 3 and all(p.is_dir() for p in made)


def test_a_file_where_the_results_folder_goes_is_named(tmp_path):
    """It said "could not create a new folder under res/quick: [Errno 17] File exists"."""
    (tmp_path / "quick").write_text("mine\n")
    with pytest.raises(RunFolderError, match=r"quick is a file, not a folder; move it away, or give another"):
        new_folder(tmp_path / "quick" / "sub")
    assert (tmp_path / "quick").read_text() == "mine\n"


def test_a_new_run_folder_holds_its_config(tmp_path):
    run_dir = new_run_folder(tmp_path, "quick", "seeds: [0]\n")
    assert (run_dir / CONFIG_FILE).read_text() == "seeds: [0]\n" and (run_dir / CHECKPOINT_DIR).is_dir()
    assert run_dir.parent == tmp_path / "quick"
    assert not is_study(run_dir)


def test_a_study_folder_sits_beside_the_runs_of_its_name(tmp_path):
    folder = new_study_folder(tmp_path, "quick")
    assert folder.parent == tmp_path / "quick" and folder.name.startswith("study-")


def test_a_file_in_the_way_is_a_run_folder_error(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(RunFolderError, match="could not create a new folder under"):
        new_run_folder(tmp_path / "results", "quick", "")
