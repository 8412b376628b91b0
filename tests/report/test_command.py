"""report/command.py: --html and --plot replace only what invlab made, never a run folder's files, a link, a
device, a FIFO or a folder; an existing file invlab did not write needs --force."""

import os
import stat

import numpy as np
import pandas as pd
import pytest
from conftest import write_fake_result
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.core.errors import ConfigError
from invariance_lab.report import command
from invariance_lab.report.command import make_report
from invariance_lab.report.html import GENERATOR
from invariance_lab.report.plots import PNG_MARK

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fake run that the tests only read (each checks that it is left as it was). These tests are about the files,
    not the figures: shifts along x only and no accuracy (as `invlab measure` writes for images without labels), so
    two line plots and no heatmap or accuracy-consistency plot to draw."""
    folder = write_fake_result(tmp_path_factory.mktemp("cmd") / "results" / "demo" / "20260101-000000",
                               dx=(-2, 2, 1), dy=(0, 0, 1))
    summary = pd.read_csv(folder / "summary.csv")
    summary["mean_accuracy"] = np.nan
    summary.to_csv(folder / "summary.csv", index=False)
    return folder


def _refused(args, *needles):
    res = runner.invoke(app, ["report", *map(str, args)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in said, said
    return said


@pytest.mark.parametrize("name", ["meta.json", "summary.csv", "report.html", "sweeps/s/page.html"])
def test_html_inside_a_run_folder_is_refused(run, name):
    target = run / name
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    _refused([run, "--html", target], f"--html {target} lies in the results folder {run.resolve()}")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # meta.json intact, nothing added


def test_html_to_a_fifo_a_device_a_link_or_a_folder_is_refused(run, tmp_path):
    fifo = tmp_path / "page.html"
    os.mkfifo(fifo)
    _refused([run, "--html", fifo], f"--html {fifo} is a device, FIFO or socket")
    _refused([run, "--html", "/dev/null"], "--html /dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    victim = tmp_path / "notes.txt"
    victim.write_text("precious\n")
    link = tmp_path / "link.html"
    link.symlink_to(victim)
    _refused([run, "--html", link], f"--html {link} is a symbolic link")
    assert victim.read_text() == "precious\n" and link.is_symlink()
    _refused([run, "--html", tmp_path], f"--html {tmp_path} is a folder")


def test_a_file_invlab_did_not_write_needs_force(run, tmp_path):
    page = tmp_path / "notes.html"
    page.write_text("<p>my own notes</p>\n")
    _refused([run, "--html", page], f"--html {page} exists and was not written by invlab", "--force")
    assert page.read_text() == "<p>my own notes</p>\n"
    res = runner.invoke(app, ["report", str(run), "--html", str(page), "--force"])
    assert res.exit_code == 0, res.output
    assert GENERATOR in page.read_text()
    res = runner.invoke(app, ["report", str(run), "--html", str(page)])  # invlab's own page now: replaced freely
    assert res.exit_code == 0, res.output


def test_plots_replace_only_invlabs_pngs(run, tmp_path, monkeypatch):
    figs = tmp_path / "figs"
    made = make_report([run], plot=figs)
    assert made.plots and all(PNG_MARK in p.read_bytes()[:1 << 16] for p in made.plots)
    assert sorted(os.listdir(figs)) == sorted(p.name for p in made.plots)  # no temporary folder left
    again = make_report([run], plot=figs)  # invlab's own plots: replaced without --force
    assert again.plots == made.plots
    foreign = made.plots[-1]  # the last one drawn: refused before any figure is drawn, not after the others
    foreign.write_bytes(b"\x89PNG my own figure")
    drawn = []
    monkeypatch.setattr(command, "save", lambda fig, folder, name: drawn.append(name))
    with pytest.raises(ConfigError, match=f"--plot {foreign} exists and was not written by invlab"):
        make_report([run], plot=figs)
    assert drawn == []
    monkeypatch.undo()
    assert foreign.read_bytes() == b"\x89PNG my own figure"
    assert sorted(os.listdir(figs)) == sorted(p.name for p in made.plots)
    make_report([run], plot=figs, force=True)
    assert PNG_MARK in foreign.read_bytes()


def test_plots_into_a_run_folder_are_refused(run):
    for folder in (run, run / "plots"):
        with pytest.raises(ConfigError, match="lies in the results folder"):
            make_report([run], plot=folder)
    assert not (run / "plots").exists() and not list(run.glob("*.png"))


def test_a_refused_page_creates_no_folder(run):
    _refused([run, "--html", run / "sweeps" / "s" / "page.html"], "lies in the results folder")
    assert not (run / "sweeps").exists()


def test_axis_without_by_shift_is_refused_not_ignored(run):
    _refused([run, "--axis", "dx"], "--axis dx picks the axis of --by shift; with --by model it would be ignored")
    res = runner.invoke(app, ["report", str(run), "--by", "shift", "--axis", "dx", "--format", "markdown"])
    assert res.exit_code == 0 and "along dx" in res.output, res.output


def test_metric_without_a_table_or_plot_that_reads_it_is_refused_not_ignored(run):
    """--metric picks the metric of --by shift, --plot and --html; with the model table alone it changed nothing
    (the same output as without it) and said nothing."""
    _refused([run, "--metric", "prob_change"], "--metric prob_change picks the metric of --by shift, --plot and "
             "--html; with --by model and neither --plot nor --html it would be ignored")
    res = runner.invoke(app, ["report", str(run), "--by", "shift", "--metric", "prob_change", "--format", "markdown"])
    assert res.exit_code == 0 and "prob_change along dx" in res.output, res.output


def test_by_layer_without_a_profile_names_both_commands_that_make_one(run):
    """A measure folder's user is pointed at `invlab measure --layers` too (it named `invlab sweep RUN_DIR` alone)."""
    _refused([run, "--by", "layer"], "no layer profile in these results", "invlab sweep RUN_DIR --layers",
             "invlab measure ... --layers")


def test_a_file_that_comes_to_the_html_name_while_the_page_is_made_is_not_replaced(run, tmp_path, monkeypatch):
    """The page was checked only before the work of making it: a file written there meanwhile was replaced."""
    page, real = tmp_path / "page.html", command.html_report

    def slow(*args, **kwargs):
        made = real(*args, **kwargs)
        page.write_text("<p>my notes, saved while the page was made</p>\n")
        return made

    monkeypatch.setattr(command, "html_report", slow)
    with pytest.raises(ConfigError, match=f"--html {page} exists and was not written by invlab"):
        make_report([run], html=page)
    assert page.read_text() == "<p>my notes, saved while the page was made</p>\n" and os.listdir(tmp_path) == [page.name]


def test_sigterm_while_plots_are_placed_leaves_no_temporary_folder(run, tmp_path, monkeypatch):
    """`invlab report --plot` killed (SIGTERM) once its PNGs were drawn into the temporary folder left that folder
    behind, exit -15: every command now runs under core/processes.terminate_as_interrupt (cli/main.main), which
    makes SIGTERM a KeyboardInterrupt, so the folder is removed on the way out."""
    import signal

    from invariance_lab.core.processes import terminate_as_interrupt

    figs = tmp_path / "figs"
    monkeypatch.setattr(command, "_place", lambda *a: os.kill(os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        make_report([run], plot=figs)
    assert os.listdir(figs) == [] and signal.getsignal(signal.SIGTERM) is before


def test_a_full_disk_while_plots_are_drawn_names_the_png_where_it_goes(run, tmp_path, monkeypatch):
    """The message named figs/.invlab-plots-qmpj4tts/flip_rate_vs_dx.png, a temporary folder the user never made."""
    from invariance_lab.core.errors import DiskFullError

    def full(fig, folder, name):  # what store/atomic.write_file raises on a full disk, naming the path it writes
        raise DiskFullError(f"cannot write {os.path.join(folder, name)}: the disk is full (No space left on device)")

    monkeypatch.setattr(command, "save", full)
    figs = tmp_path / "figs"
    with pytest.raises(DiskFullError) as e:
        make_report([run], plot=figs)
    assert str(e.value).startswith(f"cannot write {figs / 'flip_rate_vs_dx.png'}: the disk is full"), str(e.value)
    assert ".invlab-plots" not in str(e.value) and os.listdir(figs) == []
