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
                        lambda path, lines, **_: [RunStatus(values={}, folder=Path("r"), state="failed", units=[unit])])
    res = CliRunner().invoke(app, ["status", "anywhere"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and res.exception is None
    for text in ("[/] closes nothing", "[bold]not bold[/bold]", "[train.epochs]", "exit code 1 [red]"):
        assert text in res.output, res.output


def test_terminal_escapes_in_a_log_are_written_out_not_sent(monkeypatch):
    """A log from someone else's run folder cannot retitle the window or clear the screen."""
    log = ["\x1b]0;PWNED TITLE\x07\x1b[2J after", "csi \x9b31m"]
    unit = UnitStatus(key="m\x1b[1m-seed0", state="failed", detail="\x1b[31mred", log=log)
    monkeypatch.setattr(status_cli, "folder_status",
                        lambda path, lines, **_: [RunStatus(values={}, folder=Path("r"), state="failed\x1b]0;T\x07",
                                                       units=[unit], sweeps=[("s\x1b[2J", "complete\x1b[31m")])])
    res = CliRunner().invoke(app, ["status", "anywhere"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert not any(c in res.output for c in "\x1b\x07\x9b")
    for text in (r"\x1b]0;PWNED TITLE\x07\x1b[2J after", r"csi \x9b31m", r"m\x1b[1m-seed0", r"\x1b[31mred",
                 r"s\x1b[2J (complete\x1b[31m)", r"(failed\x1b]0;T\x07)"):
        assert text in res.output, res.output


def test_lines_below_zero_is_refused():
    res = CliRunner().invoke(app, ["status", "anywhere", "--lines", "-2"])
    assert res.exit_code == 2 and "--lines" in res.output
