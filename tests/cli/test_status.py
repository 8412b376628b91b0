"""`invlab status` renders what a run folder holds as text: a failed unit's log is shown, never read as markup."""

from pathlib import Path

from typer.testing import CliRunner

import invariance_lab.cli.status as status_cli
from invariance_lab.cli.main import app
from invariance_lab.run.status import RunStatus, UnitStatus


def test_a_log_with_rich_markup_is_printed_as_it_is(monkeypatch):
    log = ["RuntimeError: [/] closes nothing", "[bold]not bold[/bold] [train.epochs] must be an integer"]
    unit = UnitStatus(key="m-seed0", state="failed", detail="exit code 1 [red]", log=log)
    monkeypatch.setattr(status_cli, "folder_status",
                        lambda path, lines: [RunStatus(values={}, folder=Path("r"), state="failed", units=[unit])])
    res = CliRunner().invoke(app, ["status", "anywhere"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and res.exception is None
    for text in ("[/] closes nothing", "[bold]not bold[/bold]", "[train.epochs]", "exit code 1 [red]"):
        assert text in res.output, res.output
