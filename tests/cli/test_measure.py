"""`invlab measure` through the command line: a bad checkpoint is one paragraph and exit code 2 (no traceback),
and --debug shows the traceback instead."""

import json

import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT
from typer.testing import CliRunner

from invariance_lab.cli.main import app
from invariance_lab.data.write import write_folder
from invariance_lab.nn.models import create_model
from invariance_lab.store.checkpoints import save_checkpoint

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def unfit_checkpoint(tmp_path):
    """An invlab checkpoint (fingerprint and all fields valid) whose preset cannot be built on its recorded canvas:
    three 2x2 max-pooling blocks on a 4 px canvas leave no feature map."""
    path = tmp_path / "unfit.pt"
    model = create_model("conv_maxpool", num_classes=2, canvas=32)
    save_checkpoint(path, model, name="conv_maxpool", seed=0, data={"canvas": 4}, train={}, classes=["a", "b"],
                    history=pd.DataFrame({"epoch": [0]}))
    return path


def image_folder(tmp_path):
    path = tmp_path / "imgs"
    pixels = (torch.rand(4, 1, 12, 12, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    if not path.exists():  # a test may ask twice: the folder is written once (write_folder wants a new one)
        write_folder(pixels, path, torch.tensor([0, 1, 0, 1]), ["a", "b"])
    return path


def test_a_checkpoint_that_does_not_fit_its_canvas_is_one_paragraph_and_exit_2(tmp_path):
    weights, images = unfit_checkpoint(tmp_path), image_folder(tmp_path)
    res = invoke("measure", "--weights", weights, "--images", images, "--results-dir", tmp_path / "r", "--quiet")
    assert res.exit_code == 2, res.output
    message = res.output.strip()
    assert message.startswith("error:") and "Traceback" not in res.output
    assert len(message.splitlines()) == 1  # one paragraph: the soft-wrapped message is a single line
    assert "4px canvas" in message or "4 px" in message, message  # it names the canvas that does not fit
    assert not (tmp_path / "r").exists()  # refused before any folder is made, --results-dir included


@pytest.mark.parametrize("change, words", [(dict(seed=2**40), "[seed] 1099511627776 is out of range"),
                                           (dict(downsample="zzz"), "the network its settings describe cannot be "
                                                                    "built (block 1 of 3 on a 12px canvas: unknown "
                                                                    "downsample 'zzz'")])
def test_a_checkpoints_own_settings_that_build_nothing_are_blamed_on_the_file(tmp_path, change, words):
    """Its seed or factors (fingerprint made to match) were refused in words that read as the user's own options."""
    path = tmp_path / "edited.pt"
    model = create_model("conv_gap", num_classes=2, canvas=12)
    factors = {**model.factors, **{k: v for k, v in change.items() if k != "seed"}}
    save_checkpoint(path, model, name="edited", seed=change.get("seed", 0), data={"canvas": 12}, train={},
                    classes=["a", "b"], history=pd.DataFrame({"epoch": [0]}), factors=factors)
    res = invoke("measure", "--weights", path, "--images", image_folder(tmp_path), "--results-dir", tmp_path / "r",
                 "--dx", "0:1", "--quiet")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in said and said.startswith(f"error: {path}: {words}"), said
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["", "../../elsewhere", "x" * 101])
def test_a_checkpoint_name_that_cannot_name_a_folder_is_blamed_on_the_file_not_on_name(tmp_path, name):
    path = tmp_path / "named.pt"
    model = create_model("conv_gap", num_classes=2, canvas=12)
    save_checkpoint(path, model, name=name, seed=0, data={"canvas": 12}, train={}, classes=["a", "b"],
                    history=pd.DataFrame({"epoch": [0]}))
    args = ["measure", "--weights", path, "--images", image_folder(tmp_path), "--results-dir", tmp_path / "r",
            "--dx", "0:1", "--quiet"]
    res = invoke(*args)
    assert res.exit_code == 2 and f"{path}: its [name]" in res.output and "give --name" in res.output, res.output
    assert invoke(*args, "--name", "mine").exit_code == 0


@pytest.mark.parametrize("model, kwargs", [("custom_models:raises", "{}"), ("custom_models:flatten_head",
                                                                           '{"side": 24}')])
def test_a_models_own_error_says_how_to_see_its_traceback(tmp_path, model, kwargs):
    """A factory that raises, a forward pass that raises at the first check (built for 24 px, given 16 px): each
    said nothing of --debug (the errors were raised `from None`), and `invlab measure ... --debug` is refused."""
    res = invoke("measure", "--images", image_folder(tmp_path), "--model", model, "--model-kwargs", kwargs,
                 "--results-dir", tmp_path / "r", "--quiet")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "(`invlab --debug measure ...` shows its traceback)" in said, said


def test_debug_shows_the_traceback_instead(tmp_path):
    weights, images = unfit_checkpoint(tmp_path), image_folder(tmp_path)
    res = invoke("--debug", "measure", "--weights", weights, "--images", images, "--results-dir", tmp_path / "r",
                 "--quiet")
    assert res.exit_code == 2
    assert "Traceback (most recent call last)" in res.output and "check_model" in res.output


# ------------------------------------------------------------------- inputs that would make every number NaN


def _refused_before_any_folder(tmp_path, *args):
    """The command's message (one paragraph, exit 2, no traceback), checked to come before any folder is made."""
    res = invoke("measure", "--images", image_folder(tmp_path), "--model", "custom_models:circular_gap",
                 "--results-dir", tmp_path / "r", "--quiet", *args)
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    message = res.output.strip()
    assert message.startswith("error:") and len(message.splitlines()) == 1, message
    assert not (tmp_path / "r").exists()  # not even --results-dir: it is made when the first file is written
    return message


def test_a_std_too_small_to_divide_by_is_refused_naming_the_option(tmp_path):
    for std in ("1e-45", "0", "-0.5"):  # 1e-45 is a subnormal float32: every pixel / std overflows to infinity
        message = _refused_before_any_folder(tmp_path, "--std", std)
        assert message.startswith("error: --std [") and "at least 1.18e-38" in message, message


def test_weights_holding_nan_are_refused_naming_the_file_and_the_parameter(tmp_path):
    from custom_models import circular_gap

    state = circular_gap().state_dict()
    state["0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    message = _refused_before_any_folder(tmp_path, "--weights", tmp_path / "nan.pt")
    assert f"--weights {tmp_path / 'nan.pt'}: parameter '0.weight' holds 1 NaN value (of 36)" in message, message


def test_inputs_that_overflow_the_network_are_refused_before_the_folder(tmp_path):
    torch.manual_seed(0)  # the factory's weights: with some, 9 inputs of -3e38 summed stay just finite
    message = _refused_before_any_folder(tmp_path, "--mean", "3e38")  # (x - 3e38): finite, but not the logits
    assert "model circular_gap gives NaN or infinite logits" in message and "--mean" in message, message


def test_model_kwargs_with_a_key_given_twice_are_refused(tmp_path):
    message = _refused_before_any_folder(tmp_path, "--model-kwargs", '{"n": 2, "n": 3}')
    assert "--model-kwargs" in message and "gives the key 'n' twice" in message, message


def test_model_kwargs_nested_too_deep_to_parse_are_one_paragraph(tmp_path):
    # deeper than any recursion limit a process runs with: Python's JSON parser recurses once per [
    message = _refused_before_any_folder(tmp_path, "--model-kwargs", '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert "--model-kwargs" in message and "nested too deep" in message and len(message) < 400, message


# ------------------------------------------ a model of your own that passes the first check and fails on a later batch


@pytest.mark.parametrize("how, words", [("oom", "failed on a batch of shape (4, 1, 12, 12) (OutOfMemoryError"),
                                        ("batch2", "returned a tensor of shape (2, 4)"),
                                        ("nan", "gave NaN or infinite logits"),
                                        ("exit", "failed on a batch of shape (4, 1, 12, 12) (SystemExit: 0)"),
                                        ("one_class", "returned a tensor of shape (4, 1)")])
def test_a_model_that_fails_after_the_first_check_is_one_paragraph(tmp_path, how, words):
    res = invoke("measure", "--images", image_folder(tmp_path), "--model", "custom_models:later", "--model-kwargs",
                 f'{{"how": "{how}"}}', "--dx", "-1:1", "--results-dir", tmp_path / "r", "--quiet")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output and said.startswith("error:"), res.output
    assert "model later" in said and words in said
    (folder,) = (tmp_path / "r" / "measure").iterdir()
    assert json.loads((folder / "meta.json").read_text())["status"] == "failed"  # not a complete-looking folder
    assert not (folder / "summary.csv").exists()
    # the model's own exception caused it: the way to its traceback, with --debug where the app takes it (it said
    # "--debug shows the model's traceback", and `invlab measure ... --debug` is refused)
    assert ("`invlab --debug measure ...` shows its traceback" in said) == (how in ("oom", "exit")), said
    if how == "oom":  # --debug: the model's own traceback, where it raised
        res = invoke("--debug", "measure", "--images", image_folder(tmp_path), "--model", "custom_models:later",
                     "--results-dir", tmp_path / "r", "--quiet")
        assert res.exit_code == 2 and "raise torch.cuda.OutOfMemoryError" in res.output


def test_a_factory_that_fails_on_a_training_batch_is_one_paragraph(tmp_path):
    res = invoke("run", ROOT / "configs" / "quick.yaml", "--results-dir", tmp_path, "--quiet", "--set",
                 'models={mine: {factory: "custom_models:later", kwargs: {how: oom}}}', "--set", "seeds=[0]",
                 "--set", "train.epochs=1", "--threads", "1")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "model mine seed 0 failed on a batch of shape" in said and "CUDA out of memory" in said


@pytest.mark.parametrize("command", ["measure", "run"])
def test_a_model_built_on_the_meta_device_is_one_paragraph(tmp_path, command):
    """It ended `invlab measure` in a traceback (NotImplementedError: Cannot copy out of meta tensor; no data!) and
    `invlab run` in "Tensor on device meta is not on the expected device cpu"."""
    if command == "measure":
        res = invoke("measure", "--images", image_folder(tmp_path), "--model", "custom_models:on_meta", "--dx", "-1:1",
                     "--results-dir", tmp_path / "r", "--quiet")
    else:
        res = invoke("run", ROOT / "configs" / "quick.yaml", "--results-dir", tmp_path / "r", "--quiet", "--set",
                     'models={mine: {factory: "custom_models:on_meta"}}', "--set", "seeds=[0]")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output and said.startswith("error:"), res.output
    assert "factory 'custom_models:on_meta' holds '0.weight' on torch's meta device" in said
    assert not (tmp_path / "r").exists()


def test_a_model_with_more_outputs_than_class_folders_is_measured_with_their_output_indices(tmp_path):
    images = image_folder(tmp_path)  # class folders a, b
    args = ["measure", "--model", "custom_models:circular_gap", "--model-kwargs", '{"classes": 10}', "--images",
            images, "--dx", "-1:1", "--results-dir", tmp_path / "r", "--quiet"]
    res = invoke(*args)
    assert res.exit_code == 2 and "--class-index" in res.output and not (tmp_path / "r").exists(), res.output
    res = invoke(*args, "--class-index", "a=3,b=7")
    assert res.exit_code == 0, res.output
    (folder,) = (tmp_path / "r" / "measure").iterdir()
    table = pd.read_csv(folder / "invariance.csv")
    assert table["accuracy"].notna().all()  # labelled by the model's own indices, so accuracy is measured
    assert yaml.safe_load((folder / "measure.yaml").read_text())["class_index"] == {"a": 3, "b": 7}
    res = invoke(*args, "--class-index", "a=3,b=12")
    assert res.exit_code == 2 and "a label is 12" in res.output, res.output


def test_numbers_grouped_by_underscores_are_refused_not_read_as_others(tmp_path):
    """float() reads --mean 0_5 as 5 (Python's digit grouping), where --dx refuses it."""
    for option, value in (("--mean", "0_5"), ("--std", "0.2,0_3,0.4")):
        message = _refused_before_any_folder(tmp_path, option, value)
        assert f"{option} '{value}': expected numbers separated by commas" in message, message


def test_a_lazy_layer_is_drawn_from_the_seed_so_an_untrained_model_measures_the_same_each_time(tmp_path):
    """Without --weights a model is measured as --seed draws it; a lazy layer draws at the first forward pass (the
    first check's), which is seeded too: two runs agree whatever the process's random state was before."""
    tables = []
    for noise in (1, 2):
        torch.manual_seed(noise)
        res = invoke("measure", "--images", image_folder(tmp_path), "--model", "custom_models:lazy", "--dx", "-2:2",
                     "--results-dir", tmp_path / f"r{noise}", "--threads", "1", "--quiet")
        assert res.exit_code == 0, res.output
        (folder,) = (tmp_path / f"r{noise}" / "measure").iterdir()
        tables.append(pd.read_csv(folder / "invariance.csv").prob_change)
    assert tables[0].equals(tables[1]) and tables[0].sum() > 0
