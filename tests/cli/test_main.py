import json
import signal
import subprocess
import sys
from importlib.metadata import version
from unittest import mock

import pandas as pd
import torch
import yaml
from typer.testing import CliRunner

import invariance_lab
from conftest import ROOT
from invariance_lab.cli.main import app

runner = CliRunner()

INV_COLUMNS = ["model", "seed", "downsample", "head", "padding", "mode", "dx", "dy", "n_images", "accuracy",
               "flip_rate", "prob_change", "neighbor_flip_rate", "max_prob_change", "flip_rate_correct"]


def run_quick(tmp_path, quick_config_path, *extra):
    return runner.invoke(app, ["run", str(quick_config_path), "--results-dir", str(tmp_path), "--quiet", *extra])


def test_run_end_to_end(tmp_path, quick_config_path):
    res = run_quick(tmp_path, quick_config_path)
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "quick").iterdir()
    assert str(run_dir.name) in res.output and "conv_gap" in res.output
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["seeds"] == [0, 1] and meta["environment"]["versions"]["torch"]
    assert meta["environment"]["threads_why"].startswith(("torch's default", "1 of torch's"))  # no --threads given
    inv = pd.read_csv(run_dir / "invariance.csv")
    assert list(inv.columns) == INV_COLUMNS
    # axes grid: dx -2..2 (dy 0) and dy -1..1 (dx 0) share (0, 0): 7 shifts per model x seed
    assert len(inv) == 2 * 2 * 7
    assert set(inv.model) == {"conv_only", "conv_gap"}
    assert inv[["accuracy", "flip_rate", "prob_change"]].stack().between(0, 1).all()
    summary = pd.read_csv(run_dir / "summary.csv")
    assert len(summary) == 4 and {"clean_accuracy", "mean_flip_rate", "worst_flip_rate"} <= set(summary.columns)
    assert list(summary.columns[-5:]) == ["max_prob_change", "mean_flip_rate_correct", "worst_flip_rate_correct",
                                          "robust_accuracy", "consistent_fraction"]
    train = pd.read_csv(run_dir / "train.csv")
    assert list(train.columns[:3]) == ["model", "seed", "epoch"] and len(train) == 4
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "conv_gap-seed0.pt", "conv_gap-seed1.pt", "conv_only-seed0.pt", "conv_only-seed1.pt"]
    assert (run_dir / "config.yaml").exists()
    assert not list(run_dir.rglob("*.tmp"))


def test_runs_are_deterministic_and_never_overwrite(tmp_path, quick_config_path):
    # the least training (64 images, two batches of 32): bit-for-bit determinism does not depend on the sizes
    least = ["--set", "seeds=[3]", "--set", "data.train_images=64", "--threads", "1"]
    a = run_quick(tmp_path, quick_config_path, *least)
    # --fresh: the second run trains every network again (without it, it would reuse the first run's checkpoints)
    b = run_quick(tmp_path, quick_config_path, *least, "--fresh")
    assert a.exit_code == b.exit_code == 0, a.output + b.output
    runs = sorted((tmp_path / "quick").iterdir())
    assert len(runs) == 2
    meta = [json.loads((r / "meta.json").read_text()) for r in runs]
    assert all(m["reused"] == {} and len(m["trained"]) == 2 for m in meta)  # both trained, nothing reused
    for name in ("invariance.csv", "summary.csv"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    t1, t2 = (pd.read_csv(r / "train.csv").drop(columns="seconds") for r in runs)  # all but the wall time
    pd.testing.assert_frame_equal(t1, t2)
    for ckpt in (runs[0] / "checkpoints").iterdir():  # the same weights, bit for bit
        w1, w2 = (torch.load(r / "checkpoints" / ckpt.name, weights_only=True)["state_dict"] for r in runs)
        assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_bad_config_exits_2_without_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: bad\ntrain:\n  epoch: 2\n")
    res = runner.invoke(app, ["run", str(cfg), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "[train.epoch]" in res.output and "epochs" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()  # nothing written for a refused config


def test_missing_config_exits_2(tmp_path):
    res = runner.invoke(app, ["run", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "not found" in res.output


def test_an_error_prints_names_as_they_are_with_control_characters_escaped(tmp_path):
    """A file named notes:x:draft was printed as notes❌draft (rich's emoji codes), and an escape sequence in a
    name reached the terminal raw (it can clear the screen and hide the message)."""
    res = runner.invoke(app, ["run", str(tmp_path / "notes:x:draft.yaml")])
    assert res.exit_code == 2 and "notes:x:draft.yaml" in res.output and "❌" not in res.output, res.output
    res = runner.invoke(app, ["run", str(tmp_path / "a\x1b[2Jb.yaml")])
    assert res.exit_code == 2 and "\x1b" not in res.output and "a\\x1b[2Jb.yaml" in res.output, res.output


def test_an_option_of_one_value_given_twice_is_refused_before_any_work(tmp_path):
    """click keeps the last value silently: `invlab sweep RUN --dx 0:1 --dx 0:2` measured 0:2 alone."""
    for args in (["run", str(ROOT / "configs" / "quick.yaml"), "--threads", "1", "--threads", "2"],
                 ["sweep", str(tmp_path), "--dx", "0:1", "--dy", "0:0", "--dx=0:2"],
                 ["measure", "--images", str(tmp_path), "--size", "8", "--size=16"]):
        res = runner.invoke(app, [*args, "--results-dir", str(tmp_path / "r")])
        option = args[-1].split("=")[0] if "=" in args[-1] else args[-2]
        assert res.exit_code == 2 and f"{option} is given twice; it takes one value" in res.output, res.output
        assert not (tmp_path / "r").exists()
    res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--set", "seeds=[0]", "--set", "train.epochs=0", "--quiet",
                              "--quiet", "--results-dir", str(tmp_path / "r"), "--threads", "1"])  # many values, flags
    assert res.exit_code == 0, res.output


def test_models_lists_presets():
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0 and "conv_maxpool" in res.output and "strided_conv" in res.output


def test_unwritable_results_dir_exits_2(tmp_path, quick_config_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    res = runner.invoke(app, ["run", str(quick_config_path), "--results-dir", str(blocker / "x"), "--quiet"])
    assert res.exit_code == 2 and "is a file, not a folder" in res.output and "Traceback" not in res.output
    assert "--results-dir" in res.output  # the message names the option the path came from


def test_override_errors_say_they_came_from_set(quick_config_path):
    res = runner.invoke(app, ["run", str(quick_config_path), "--set", "train.epochs=-1"])
    assert res.exit_code == 2 and "with --set train.epochs=-1" in res.output and "[train.epochs]" in res.output


def test_debug_shows_the_traceback_of_an_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: bad\ntrain:\n  epoch: 2\n")
    res = runner.invoke(app, ["--debug", "run", str(cfg), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback (most recent call last)" in res.output and "[train.epoch]" in res.output


def test_help_lists_every_command_and_the_debug_option():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for command in ("run", "status", "sweep", "report", "models", "fonts", "measure", "claims", "--debug"):
        assert command in res.output


def test_help_is_the_plain_layout_the_docs_show_with_flags_taking_no_value():
    """--help as docs/commands.md prints it (click's layout, no panels): a flag such as --fresh shows no value
    placeholder (rich's panels printed `--fresh <bool>`, as if it took one)."""
    res = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "120"})
    assert res.exit_code == 0 and "╭" not in res.output and "<bool>" not in res.output, res.output
    assert any(line.split()[:2] == ["--fresh", "Train"] for line in res.output.splitlines()), res.output


def test_debug_keeps_the_traceback_of_a_factorys_own_error(tmp_path, quick_config_path):
    """A user factory that raises: one paragraph without --debug, its own traceback (file, line) with it."""
    cfg = yaml.safe_load(quick_config_path.read_text())
    cfg["models"] = {"bad": {"factory": "custom_models:raises"}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    plain = runner.invoke(app, ["run", str(path), "--results-dir", str(tmp_path / "r"), "--quiet"])
    assert plain.exit_code == 2 and "this factory always fails" in plain.output and "Traceback" not in plain.output
    debug = runner.invoke(app, ["--debug", "run", str(path), "--results-dir", str(tmp_path / "r"), "--quiet"])
    assert debug.exit_code == 2 and "Traceback (most recent call last)" in debug.output
    assert "custom_models.py" in debug.output and 'raise RuntimeError("this factory always fails")' in debug.output



def test_memory_running_out_in_training_is_one_paragraph_naming_what_to_lower(tmp_path, quick_config_path,
                                                                              monkeypatch):
    """torch's CPU allocator running out while a preset network trains (an afc network on 128 px, which the
    estimate let through) ended in a traceback, exit 1; --debug still shows it."""
    from invariance_lab.nn import block

    plain_forward = block.ConvBlock.forward

    def forward(self, x):
        if len(x) > 2:  # not on the 2-image check before training: in a training batch
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 7516192768 bytes. Error code 12 (Cannot allocate memory)")
        return plain_forward(self, x)

    monkeypatch.setattr(block.ConvBlock, "forward", forward)
    args = ["run", str(quick_config_path), "--results-dir", str(tmp_path / "r"), "--quiet"]
    plain = runner.invoke(app, args)
    said = " ".join(plain.output.split())
    assert plain.exit_code == 2 and "Traceback" not in plain.output, plain.output
    assert said.startswith("error: out of memory ([enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator"), said
    assert "Lower what grows with it: data.canvas" in said and "--jobs" in said
    (run_dir,) = (tmp_path / "r" / "quick").iterdir()
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "failed"
    debug = runner.invoke(app, ["--debug", *args])
    assert debug.exit_code != 0 and "DefaultCPUAllocator" in str(debug.exception), debug.output


def test_the_listed_help_of_every_command_is_its_docstring():
    """`invlab --help` lists the commands from cli/main.COMMANDS without importing them; the text must be the
    command's own (the first paragraph of its docstring), and each name must load."""
    import importlib
    import inspect

    from invariance_lab.cli.main import COMMANDS, load_command

    for name, entry in COMMANDS.items():
        function = getattr(importlib.import_module(f"invariance_lab.cli.{entry.module}"), entry.function)
        assert entry.help == inspect.getdoc(function).split("\n\n")[0], name
        assert load_command(name).name == name


def test_a_command_is_built_once_and_keeps_nothing_of_an_earlier_call(tmp_path):
    """load_command is cached per process: the same object serves every call, and an option given to one call
    (--format csv) is not the next call's default."""
    from conftest import write_fake_result
    from invariance_lab.cli.main import load_command

    folder = write_fake_result(tmp_path / "demo" / "20260101-000000")
    as_csv = runner.invoke(app, ["report", str(folder), "--format", "csv"])
    as_table = runner.invoke(app, ["report", str(folder)])
    assert as_csv.exit_code == 0 and as_table.exit_code == 0, (as_csv.output, as_table.output)
    assert as_csv.output.startswith("model,") and not as_table.output.startswith("model,")
    assert runner.invoke(app, ["report", str(folder), "--format", "csv"]).output == as_csv.output
    assert load_command("report") is load_command("report") and load_command("models") is not load_command("fonts")


def test_help_imports_neither_torch_nor_pandas():
    """`invlab --help` answers at once: the commands' modules (and torch, pandas, matplotlib) load when one runs."""
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from invariance_lab.cli.main import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0 and 'measure' in r.output; "
            "print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_a_stream_that_is_not_utf8_prints_question_marks_where_it_raised():
    """`PYTHONIOENCODING=ascii invlab report RUN` printed the run's table up to its first ± and ended in a
    UnicodeEncodeError traceback, exit 1 (`invlab run` did so after finishing the run)."""
    import io

    from invariance_lab.cli.main import replace_unencodable

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    replace_unencodable(stream, object())  # an object that is no text stream is passed over
    stream.write("0.500 ± 0.000, Δp")
    stream.flush()
    assert raw.getvalue() == b"0.500 ? 0.000, ?p"


def test_version_is_the_installed_packages_and_the_citations():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output == f"invlab {version('invariance_lab')}\n"
    assert invariance_lab.__version__ == version("invariance_lab")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(citation["version"]) == invariance_lab.__version__
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


# A Ctrl-C that comes while the interpreter exits: what a second Ctrl-C, or one just as a run finishes, does
# `invlab`'s own entry point (pyproject's console script), as the installed command calls it
CTRL_C_AT_EXIT = """
import atexit, os, signal, sys, time
from importlib.metadata import entry_points
(invlab,) = [e for e in entry_points(group="console_scripts") if e.name == "invlab"]
atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2)))
sys.argv = ["invlab", "--version"]
invlab.load()()
"""


def test_a_ctrl_c_while_the_command_exits_prints_no_traceback():
    """torch's atexit handlers ran under a Ctrl-C that came after the command had ended: 'Exception ignored in
    atexit callback ... KeyboardInterrupt' (2 runs in 12 with two Ctrl-C 10 ms apart)."""
    before = signal.getsignal(signal.SIGINT)  # Python's own handler; ignored when the tests were started in the
    # background by a non-interactive shell, which the command in its own process handles all the same
    res = subprocess.run([sys.executable, "-c", CTRL_C_AT_EXIT], capture_output=True, text=True, timeout=60)
    assert res.returncode == 130 and "invlab" in res.stdout, res.stderr  # ended at once by the Ctrl-C
    assert "KeyboardInterrupt" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert signal.getsignal(signal.SIGINT) is before  # in this process: left alone


def test_commands_run_in_another_program_leave_its_ctrl_c_alone(tmp_path):
    """Ctrl-C ends a command run in a caller's process (CliRunner here, a notebook) with exit 130, and the caller's
    own Ctrl-C handling is as before."""
    before = signal.getsignal(signal.SIGINT)
    with mock.patch("invariance_lab.cli.run.launch", side_effect=KeyboardInterrupt):
        res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path)])
    assert res.exit_code == 130 and "interrupted" in res.output, res.output
    assert "run the same command again to resume" in res.output  # what to do next, where the user sees it
    assert signal.getsignal(signal.SIGINT) is before
    with mock.patch("invariance_lab.cli.run.launch", side_effect=KeyboardInterrupt):  # --fresh: a new folder each time
        res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path),
                                  "--fresh"])
    assert res.exit_code == 130 and "run the same command without --fresh to resume" in res.output, res.output
    with mock.patch("invariance_lab.cli.sweep.sweep_target", side_effect=KeyboardInterrupt):  # it said "interrupted"
        res = runner.invoke(app, ["sweep", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path)])
    assert res.exit_code == 130 and "the sweep folder is left unfinished; run the same command again" in res.output


def test_a_deleted_current_folder_is_named_before_torch_loads(tmp_path):
    """torch's MKL ended every command run from a deleted folder with "Intel oneMKL FATAL ERROR: Cannot load
    libtorch_cpu.so", whatever the command."""
    gone = tmp_path / "gone"
    gone.mkdir()
    code = "import sys; from invariance_lab.cli.main import main; sys.argv = ['invlab', 'models']; main()"
    res = subprocess.run(["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "$0" -c "$1"', sys.executable, code],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.startswith("error: the current folder no longer exists"), res.stderr
    assert "cd to a folder that exists" in res.stderr and "FATAL" not in res.stderr + res.stdout


def test_every_command_takes_sigterm_as_ctrl_c():
    """invlab's own process runs the app under terminate_as_interrupt: a `kill` ends any command through its
    Ctrl-C path (polite's "interrupted", exit 130, what it was writing cleaned up), not at once mid-write."""
    code = ("import os, signal, sys, time\n"
            "import invariance_lab.cli.main as m\n"
            "m.app = lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(30))\n"
            "try:\n    m.main()\nexcept KeyboardInterrupt:\n    print('interrupted'); sys.exit(130)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 130 and res.stdout.strip() == "interrupted", (res.returncode, res.stdout, res.stderr)
