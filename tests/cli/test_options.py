"""cli/options.py: a choice option lists its values in --help, completes them in the shell, and answers a wrong
value with the closest name (exit 2, one paragraph, before the command starts)."""

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app

runner = CliRunner()

# (command, option, a misspelt value, the name it is closest to, every allowed value)
CHOICES = [
    ("sweep", "--mode", "circ", "circular", ["canvas", "circular"]),
    ("sweep", "--grid", "axis", "axes", ["product", "axes"]),
    ("sweep", "--kind", "part", "parts", ["translation", "parts"]),
    ("sweep", "--engine", "brut", "brute", ["auto", "allshift", "brute"]),
    ("report", "--by", "shifts", "shift", ["model", "shift", "layer"]),
    ("report", "--format", "markdwn", "markdown", ["table", "markdown", "csv"]),
    ("run", "--executor", "process", "processes", ["processes", "slurm", "submitit-local"]),
    ("measure", "--mode", "circ", "circular", ["canvas", "circular"]),
    ("measure", "--fill", "edges", "edge", ["zeros", "edge", "reflect"]),
    ("measure", "--colour", "gray", "grey", ["grey", "rgb"]),
    ("measure", "--color", "rgbb", "rgb", ["grey", "rgb"]),  # the other spelling: the message names --colour
    ("measure", "--device", "gpu", "cpu", ["cpu", "cuda", "auto"]),
    ("measure", "--engine", "al", None, ["auto", "allshift", "brute"]),
]
REQUIRED = {"sweep": ["x"], "report": [], "run": ["x.yaml"], "measure": ["--images", "x"]}


@pytest.mark.parametrize("command, option, wrong, close, allowed", CHOICES)
def test_a_wrong_choice_names_the_closest_and_every_allowed_value(command, option, wrong, close, allowed):
    res = runner.invoke(app, [command, *REQUIRED[command], option, wrong])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    named = "--colour" if option == "--color" else option
    assert said.startswith(f"error: unknown {named} '{wrong}'") and said.count("error:") == 1, said
    assert (f"did you mean '{close}'?" in said) if close else "did you mean" not in said
    assert said.endswith("choose one of: " + ", ".join(allowed)), said


@pytest.mark.parametrize("command, option, allowed", sorted({(c, o, tuple(a)) for c, o, _, _, a in CHOICES
                                                             if o != "--color"}))
def test_help_lists_the_allowed_values(command, option, allowed):
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    rows = [r for r in res.output.splitlines() if r.startswith("  --") and r.split()[0].split(",")[0] == option]
    assert len(rows) == 1 and "|".join(allowed) in rows[0] and "<str>" not in rows[0], rows


def test_color_is_colour():
    res = runner.invoke(app, ["measure", "--help"])
    assert "--colour,--color" in res.output.replace(" ", "")


def test_the_shell_completes_commands_and_choices():
    # what bash's completion function (invlab --install-completion) asks the installed command
    def complete(words: str) -> list[str]:
        env = {"_INVLAB_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        res = runner.invoke(app, [], prog_name="invlab", env=env)
        assert res.exit_code == 0, res.output
        return res.output.split()

    assert complete("invlab sw") == ["sweep"]
    assert complete("invlab sweep --mode c") == ["canvas", "circular"]
    assert complete("invlab report --format m") == ["markdown"]


@pytest.mark.parametrize("args", [["sweep", "anywhere", "--models", ","], ["sweep", "anywhere", "--models", " , "],
                                  ["measure", "--images", "anywhere", "--layers", "--taps", ""]])
def test_a_list_option_that_names_nothing_is_refused(args):
    """`--models ,` was read as every model and `--taps ''` as the default taps, unsaid."""
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "names nothing" in res.output and args[-2] in res.output


@pytest.mark.parametrize("args", [["sweep", "anywhere", "--models", "aps,aps"],
                                  ["measure", "--images", "anywhere", "--layers", "--taps", "conv1, conv1"]])
def test_a_list_option_that_names_one_thing_twice_is_refused(args):
    """`--models aps,aps` swept aps twice and meta.json listed it twice."""
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "twice; give each name once" in res.output and args[-2] in res.output


@pytest.mark.parametrize("command", [["run", "configs/quick.yaml"], ["sweep", "results/quick/x"], ["report"],
                                     ["claims", "configs/question_claims.yaml"],
                                     ["measure", "--model", "m:f", "--images", "imgs"]])
def test_an_empty_results_dir_is_refused_not_read_as_the_working_directory(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*command, "--results-dir", ""])
    assert res.exit_code == 2 and "--results-dir is empty" in res.output, res.output
    assert list(tmp_path.iterdir()) == []  # nothing made in the working directory


@pytest.mark.parametrize("command, said", [
    (["run", ""], "the config argument is empty"), (["sweep", ""], "the target argument is empty"),
    (["claims", ""], "the config argument is empty"), (["status", ""], "the path argument is empty"),
    (["report", "results/quick/x", " "], "the path argument is empty"),
    (["measure", "--images", ""], "--images is empty"), (["measure", "--images", "x", "--weights", ""], "--weights is"),
    (["measure", "--images", "x", "--run", ""], "--run is empty")])
def test_an_empty_path_argument_is_refused_not_read_as_the_working_directory(command, said, tmp_path, monkeypatch):
    """`invlab run "$CONFIG"` with CONFIG unset was read as `.`: the message named the working directory."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, command)
    assert res.exit_code == 2 and said in res.output and "(an unset shell variable?)" in res.output, res.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["run", "configs/quick.yaml"], ["sweep", "configs/quick.yaml"],
                                     ["claims", "configs/question_claims.yaml"],
                                     ["measure", "--model", "m:f", "--images", "imgs"]])
def test_a_results_dir_inside_a_run_folder_is_refused(command, tmp_path, monkeypatch):
    """--results-dir RUN made new runs inside the run folder (RUN/quick/<run id>); from inside a run folder the
    default results/ did the same."""
    run = tmp_path / "results" / "quick" / "20260101-000000"
    sweep = run / "sweeps" / "20260101-000100"
    sweep.mkdir(parents=True)
    (run / "meta.json").write_text('{"kind": "run"}')
    (sweep / "meta.json").write_text('{"kind": "sweep"}')
    monkeypatch.chdir(ROOT)
    for results, folder, where in ((run, run, "is the results folder"), (sweep, sweep, "is the results folder"),
                                   (run / "checkpoints" / "x", run, "lies in the results folder")):
        res = runner.invoke(app, [*command, "--results-dir", str(results)])
        said = " ".join(res.output.split())
        # the folder suggested lies outside every results folder (a sweep's run's parent's parent)
        assert res.exit_code == 2 and f"{where} {folder}" in said and f"--results-dir {tmp_path / 'results'}" in said
    assert sorted(p.name for p in run.iterdir()) == ["meta.json", "sweeps"]


def test_another_tools_meta_json_above_the_results_dir_is_not_a_results_folder(tmp_path, monkeypatch):
    """Every run was refused below a project folder holding a meta.json of its own (a dataset's description)."""
    (tmp_path / "meta.json").write_text('{"title": "my dataset"}')
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path / "r"),
                              "--set", "train.epochs=0", "--set", "data.test_images=12", "--quiet"])
    assert res.exit_code == 0 and "results folder" not in res.output, res.output


@pytest.mark.parametrize("command, flag", [(["report", "results/quick/x"], "--plot"),
                                           (["report", "results/quick/x"], "--html"),
                                           (["claims", "configs/question_claims.yaml"], "--out")])
def test_an_empty_output_path_is_refused_not_read_as_the_working_directory(command, flag, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*command, flag, ""])
    assert res.exit_code == 2 and f"{flag} is empty" in res.output, res.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["sweep", "measure"])
def test_layer_images_without_what_it_sizes_is_refused_not_ignored(command, tmp_path):
    """--layer-images only sizes --layers and --metric lie; alone it was dropped silently."""
    args = [command, str(tmp_path / "run")] if command == "sweep" else [command, "--images", str(tmp_path)]
    res = runner.invoke(app, [*args, "--layer-images", "5", "--quiet"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "--layer-images 5 sets how many images --layers or --metric lie use" in said, said


def test_an_error_keeps_its_line_breaks_and_tabs_and_writes_out_other_control_characters(capsys):
    """error() had escaped a message's line breaks (one unreadable line), or shown() its tabs as \\x09."""
    from invariance_lab.cli.options import error, shown

    assert shown("a\tb\x1b[2J\x9b") == "a\tb\\x1b[2J\\x9b"
    error("first line\nsecond \x1b]0;title\x07line")
    said = capsys.readouterr().err
    assert "error: first line\nsecond \\x1b]0;title\\x07line" in said and "\x1b]" not in said
