"""run/trust.py: a config inside a run folder (beside a meta.json, or linked from there) came with the folder, so
its factories need --trust-factory; a config of yours, or one of presets only, passes untouched."""

import pytest
import yaml

from invariance_lab.config.load import load_config
from invariance_lab.core.errors import FactoryError
from invariance_lab.run.trust import check_config_trust, in_run_folder

CONFIG = {"name": "t", "seeds": [0], "device": "cpu",
          "data": {"letters": ["A", "B"], "fonts": ["futural"], "canvas": 16, "size": 8},
          "models": {"evil": {"factory": "os:system", "kwargs": {"command": "true"}},
                     "plain": {"arch": "conv_gap", "channels": [4]}}}


def test_a_config_beside_meta_json_or_linked_from_there_is_from_a_run_folder(tmp_path):
    run, mine = tmp_path / "run", tmp_path / "mine"
    run.mkdir(), mine.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (mine / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    assert not in_run_folder(run / "config.yaml")
    (run / "meta.json").write_text("not even JSON")  # any meta.json: nothing of the folder is read before trust
    assert in_run_folder(run / "config.yaml") and not in_run_folder(mine / "config.yaml")
    (mine / "linked.yaml").symlink_to(run / "config.yaml")
    assert in_run_folder(mine / "linked.yaml")
    with pytest.raises(FactoryError, match="model 'evil' names factory os:system"):
        check_config_trust(load_config(mine / "linked.yaml"), mine / "linked.yaml", trusted=False)
    check_config_trust(load_config(mine / "config.yaml"), mine / "config.yaml", trusted=False)  # yours
    check_config_trust(load_config(run / "config.yaml"), run / "config.yaml", trusted=True)  # your word


def test_presets_alone_need_no_trust(tmp_path):
    (tmp_path / "meta.json").write_text("{}")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**CONFIG, "models": {"plain": CONFIG["models"]["plain"]}}))
    check_config_trust(load_config(tmp_path / "config.yaml"), tmp_path / "config.yaml", trusted=False)
