"""config/memory.py: each downsampling kind is charged what it keeps (bench/memory_factors.py measures each kind
against the rule). An afc network of three 32-channel blocks on a 128 px canvas was estimated at 1.09 GiB and
accepted, then took 7 GB and died in training's backward pass; a plain network that fits was refused. The limit
is INVLAB_MEMORY_LIMIT's where it is set."""

import pytest
import yaml
from custom_models import circular_gap

from invariance_lab.config.load import parse_config
from invariance_lab.config.memory import (LIMIT_VARIABLE, MEMORY_CAP, check_resources, memory_estimate,
                                         memory_limit, workers)
from invariance_lab.config.models import resolved_models
from invariance_lab.config.sweep_memory import check_sweep_jobs, sweep_estimate
from invariance_lab.core.errors import ConfigError
from invariance_lab.cli.main import app
from invariance_lab.nn.factory import check_models
from typer.testing import CliRunner
from conftest import ROOT

NET = dict(name="net", seeds=[0], data=dict(letters=["A", "B"], canvas=128, size=64, train_images=64, test_images=64),
           train=dict(epochs=1, batch_size=64), sweep=dict(dx=[0, 0]))


def config(downsample: str, canvas: int = 128):
    raw = {**NET, "data": {**NET["data"], "canvas": canvas, "size": canvas // 2},
           "models": {"g": dict(arch="conv_gap", downsample=downsample, padding="circular", channels=[32, 32, 32])}}
    return parse_config(raw)


def test_afc_on_a_big_canvas_is_refused_where_a_plain_network_is_not():
    assert config("none") is not None  # a stride-1 network of the same channels fits
    with pytest.raises(ConfigError, match="too big to run"):
        config("afc")


@pytest.mark.parametrize("kind", ["blur_max", "aps_max", "lps", "tips", "afc"])
def test_kinds_that_keep_more_are_charged_more_than_max_pooling(kind):
    """Each of these keeps stride-1 maps (or afc's 2x ones) that max pooling does not: measured 1.10-5.24x the
    rule in training, 2.52-16.07x in evaluation, where max pooling is 0.57x and 1.09x."""
    def networks(kind):
        return memory_estimate(config(kind, canvas=32))["networks"][0]

    assert networks(kind) > 1.2 * networks("max")


def test_a_plain_network_that_fits_is_not_refused(monkeypatch):
    """Three 64-channel stride-1 blocks on 128 px, trained in batches of 64 and swept 256 images at a time: `invlab
    run` peaked at 2.43 GiB (resident, one epoch, two threads). The rule's six maps a block in training had put it
    at 4.91 GiB, over a 4 GiB limit; a plain block is charged its measured share of them now."""
    monkeypatch.setenv(LIMIT_VARIABLE, "4")
    raw = {**NET, "data": {**NET["data"], "train_images": 256, "test_images": 256},
           "sweep": dict(dx=[-2, 2], batch_size=256), "models": {"g": dict(arch="conv_gap", channels=[64, 64, 64])}}
    cfg = parse_config(raw)
    assert 2.43 * 2**30 < sum(b for b, _ in memory_estimate(cfg).values()) < 4 * 2**30


def test_the_limit_is_the_variables_where_it_is_set(monkeypatch):
    monkeypatch.delenv(LIMIT_VARIABLE, raising=False)
    limit, rule = memory_limit()
    assert limit <= MEMORY_CAP and f"set {LIMIT_VARIABLE} (GiB) for another" in rule
    monkeypatch.setenv(LIMIT_VARIABLE, "0.5")
    assert memory_limit() == (2**29, memory_limit()[1]) and memory_limit()[1].startswith(f"{LIMIT_VARIABLE}=0.5")
    with pytest.raises(ConfigError, match=f"over the limit of 512 MiB \\({LIMIT_VARIABLE}=0.5"):
        config("none")  # 128 px: about 1 GiB


# 1e-10 (0 B) was taken, then blamed on the config ("grows with data.size: lower it")
@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "1e300", "4 GiB", "1e-10", "0.0009"])
def test_a_limit_that_is_no_size_is_refused_by_the_command(monkeypatch, tmp_path, value):
    monkeypatch.setenv(LIMIT_VARIABLE, value)
    res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    said = " ".join(res.output.split())
    assert f"{LIMIT_VARIABLE}='{value}'" in said and "a number from 0.001 (about 1 MiB) to the physical" in said
    assert not any(tmp_path.iterdir())


def test_large_letters_are_charged_the_scratch_of_the_renderers_chunk(monkeypatch):
    """The renderer draws RENDER_CHUNK (32) letters at a time; the estimate charged 256 at a time: gothicger at
    200 px on a 256 px canvas was refused at 8.05 GiB (letter drawing 7.11 GiB) and peaked at 3.10 GiB. Drawing
    512 of them grew the process by 1.68 GiB beyond the images (the command's allocator settings, core/speed.py;
    1.35 GiB without)."""
    monkeypatch.setenv(LIMIT_VARIABLE, "4")
    cfg = parse_config(dict(name="big", data=dict(canvas=256, size=200, fonts=["gothicger"]),
                            models={"m": dict(arch="conv_gap", channels=[2])}, sweep=dict(batch_size=10)))
    assert 1.68 * 2**30 < memory_estimate(cfg)["letter drawing"][0] < 2.5 * 2**30


def test_a_model_of_your_own_is_charged_its_feature_maps_once_built(monkeypatch, tmp_path):
    """Your own models were left out of a run's estimate (their size is unknown until your code runs): a VGG-like
    factory of 64 channels on a 64 px canvas, trained in batches of 64, was estimated at 13.5 MiB (the images
    alone) and used 0.53-0.61 GiB. run_experiment estimates again once check_models has measured their maps
    (nn/maps.py): training charges every operation's output and the forward pass's peak per image, 0.98-1.45 times
    what five such runs grew by (`python bench/measure_memory.py --runs`)."""
    raw = {**NET, "data": {**NET["data"], "canvas": 24, "size": 12, "train_images": 64},
           "models": {"mine": {"factory": "custom_models:circular_gap", "kwargs": {"channels": 64}}}}
    cfg = parse_config(raw)
    _, own = check_models(resolved_models(cfg), num_classes=2, canvas=24, train=True)
    peak, made, params = own["mine"]
    # per image, every operation's new output (4 bytes a value): the circular padding's copies of the input and of
    # the first block's output (26 x 26), five 64-channel maps of 24 x 24 (conv, bn, relu, conv, relu), the pooled
    # 64 values and 2 logits (flatten is a view of the pooled values)
    assert made == 4 * (26 * 26 + 64 * 26 * 26 + 5 * 64 * 24 * 24 + 64 + 2)
    assert params == sum(p.numel() for p in circular_gap(64).parameters())
    without, with_own = memory_estimate(cfg)["networks"], memory_estimate(cfg, own)["networks"]
    assert without[0] == 0  # nothing was charged for it
    weights = 4 * (params + 3 * params)
    assert with_own == (weights + (made + peak) // 4 * 4 * 64, "models.mine.kwargs and train.batch_size")
    assert memory_estimate(cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 0})}), own)[
        "networks"][0] < with_own[0] / 2  # train.epochs: 0: no backward pass, no Adam

    monkeypatch.setenv(LIMIT_VARIABLE, "0.02")  # 20 MiB: the images fit, the network's training does not
    config_file = tmp_path / "mine.yaml"
    config_file.write_text(yaml.safe_dump({**raw, "name": "mine"}))
    res = CliRunner().invoke(app, ["run", str(config_file), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    said = " ".join(res.output.split())
    assert "config mine: too big to run. [models.mine.kwargs]" in said and "networks" in said, said
    assert ("grows with models.mine.kwargs = {'channels': 64} and train.batch_size = 64: make your model smaller "
            "(through its kwargs) or lower train.batch_size." in said), said
    assert not (tmp_path / "r").exists()  # refused before the run folder is made


JOBS_NET = dict(name="jobs", seeds=[0, 1], data=dict(letters=["A", "B"], canvas=64, size=32, train_images=256,
                                                      test_images=256),
                train=dict(epochs=1, batch_size=64), sweep=dict(dx=[0, 0]),
                models={"g": dict(arch="conv_gap", channels=[32, 32, 32])})


def test_jobs_are_charged_a_training_and_a_copy_of_the_images_each_up_to_one_per_unit_left(monkeypatch, tmp_path):
    """Each --jobs worker trains a unit with the run's images of its own: this config's summed PSS (every
    process, shared pages split) peaked at 1.34-1.36 GiB with --jobs 1 and 1.62-1.72 GiB with --jobs 2, a
    growth of 260-380 MiB, charged 362 MiB here. A unit already trained (a rerun, a resumed run) is not charged;
    its one model is swept in the command's own process."""
    cfg = parse_config(JOBS_NET)
    assert [tuple(workers(cfg, j, units)) for j, units in ((1, None), (2, None), (8, None), (2, 1), (2, 0))] == [
        (1, 1, 0), (2, 1, 2), (2, 1, 2), (1, 1, 1), (1, 1, 0)]  # (training, sweep shares, copies of the images)
    assert tuple(workers(cfg, 1, executor="submitit-local")) == (1, 1, 1)  # a worker even with one job
    assert tuple(workers(cfg, 4, executor="slurm")) == (1, 1, 0)  # on machines of their own
    one, two = (memory_estimate(cfg, jobs=workers(cfg, j)) for j in (1, 2))
    assert "workers' images" not in one
    images = one["training images"][0] + one["test images"][0]
    assert two["workers' images"] == (2 * images, "--jobs")
    assert 1.9 * one["networks"][0] < two["networks"][0] < 2 * one["networks"][0]  # the weights held once
    assert two["networks"][1] == "models.g.channels and train.batch_size and --jobs"
    monkeypatch.setenv(LIMIT_VARIABLE, "0.5")
    check_resources(cfg, "config jobs", jobs=2, units=1)  # one unit left: one worker
    two_models = parse_config({**JOBS_NET, "seeds": [0], "sweep": dict(dx=[0, 0], batch_size=256),
                               "models": {"g": JOBS_NET["models"]["g"], "h": JOBS_NET["models"]["g"]}})
    assert tuple(workers(two_models, 2)) == (2, 2, 2) and tuple(workers(two_models, 2, cpu=False)) == (2, 1, 2)
    assert tuple(workers(two_models, 2, executor="submitit-local")) == (2, 1, 2)  # its sweep: this process
    # training and the sweep each charged with their own workers: two sweep shares of 256-image batches
    one_left = memory_estimate(two_models, jobs=workers(two_models, 2, units=1))
    assert one_left["networks"][1].endswith("sweep.batch_size and --jobs")
    (tmp_path / "jobs.yaml").write_text(yaml.safe_dump(JOBS_NET))
    res = CliRunner().invoke(app, ["run", str(tmp_path / "jobs.yaml"), "--results-dir", str(tmp_path / "r"),
                                   "--quiet", "--jobs", "2"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    said = " ".join(res.output.split())
    assert "too big to run with --jobs 2" in said and "with --jobs 1 it needs about 385 MiB: give --jobs 1" in said
    assert not list((tmp_path / "r").glob("jobs/*/checkpoints/*.pt"))  # refused before any unit trains


def test_sweep_jobs_are_charged_each_workers_images_and_refused_past_the_largest_that_fits(monkeypatch):
    """invlab sweep --jobs N deals the models to min(N, models) workers (run/sweep_jobs.py), each drawing the test
    set and its shifted inputs again and loading its models: a run of 3000 96 px test images swept over 17 canvas
    shifts by two models peaked at 606-617 MiB of summed PSS with --jobs 1 and 1169-1243 MiB with --jobs 2, a
    growth of 552-637 MiB, charged 568 MiB. It is told the largest --jobs that fits, and a sweep run in the
    command's own process (one model, a GPU) starts no worker to refuse."""
    cfg = parse_config({**JOBS_NET, "seeds": [0], "models": {m: JOBS_NET["models"]["g"] for m in "ghk"}})
    one, two, three = (sweep_estimate(cfg, cfg.sweep, "translation", list(cfg.models), s) for s in (1, 2, 3))
    assert "training images" not in one and "workers' images" not in one  # a sweep trains nothing
    drawn = sum(one[p][0] for p in ("test images", "sweep inputs", "letter drawing"))
    assert two["workers' images"] == (2 * drawn, "--jobs") and three["workers' images"] == (3 * drawn, "--jobs")
    assert 1.9 * one["networks"][0] < two["networks"][0] < 2 * one["networks"][0]  # a sweep batch in each worker
    total = [sum(b for b, _ in e.values()) for e in (one, two, three)]
    monkeypatch.setenv(LIMIT_VARIABLE, str((total[1] + total[2]) / 2 / 2**30))  # two workers fit, three do not
    for jobs in (3, 8):  # eight jobs still start three workers: one a model
        with pytest.raises(ConfigError) as e:
            check_sweep_jobs(cfg, cfg.sweep, "translation", list(cfg.models), jobs, True, "invlab sweep r")
        said = str(e.value)
        assert said.startswith(f"invlab sweep r: too big to sweep with --jobs {jobs}: its workers") and (
            "give --jobs 2." in said), said
    check_sweep_jobs(cfg, cfg.sweep, "translation", list(cfg.models), 2, True, "r")
    monkeypatch.setenv(LIMIT_VARIABLE, str(total[0] / 2 / 2**30))  # not even one process fits: no --jobs to give
    with pytest.raises(ConfigError) as e:
        check_sweep_jobs(cfg, cfg.sweep, "translation", list(cfg.models), 2, True, "r")
    said = str(e.value)
    assert "even one process needs about" in said and "leave --jobs out" in said and "give --jobs" not in said, said
    check_sweep_jobs(cfg, cfg.sweep, "translation", ["g", "g"], 2, True, "r")  # one model, named twice: no worker
    for models, cpu in ((["g"], True), (list(cfg.models), False)):  # swept in the command's own process
        check_sweep_jobs(cfg, cfg.sweep, "translation", models, 8, cpu, "r")


def test_the_default_limit_is_half_the_physical_memory_when_that_is_under_the_cap(monkeypatch):
    """Catches the limit taken as the whole physical memory instead of the smaller of 4 GiB and half of it."""
    import os
    monkeypatch.delenv(LIMIT_VARIABLE, raising=False)
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**30 // 4096 * 3}  # a 3 GiB machine
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert memory_limit()[0] == 3 * 2**29  # 1.5 GiB
    pages["SC_PHYS_PAGES"] = 2**30 // 4096 * 64  # 64 GiB: the cap
    assert memory_limit()[0] == MEMORY_CAP


def test_a_run_needing_exactly_the_limit_is_accepted(monkeypatch):
    """Catches a run refused when its estimate equals the limit (only more than the limit is too big)."""
    from invariance_lab.config import memory
    monkeypatch.setattr(memory, "memory_limit", lambda: (1000, "a test's limit"))
    memory._refuse_if_over({"a": (600, "data.canvas"), "b": (400, "data.size")}, "x", lambda key: 1)
    with pytest.raises(ConfigError, match=r"x: too big to run. \[data.canvas\]"):
        memory._refuse_if_over({"a": (601, "data.canvas"), "b": (400, "data.size")}, "x", lambda key: 1)


def test_circular_training_and_the_position_task_are_charged_their_extra_copies():
    """Catches the copy circular training rolls, or the position task's 4 test sets, left out of the estimate."""
    from invariance_lab.config.memory import _data_memory
    base = {**NET, "models": {"g": dict(arch="conv_gap")}, "data": {**NET["data"], "canvas": 32, "size": 12}}
    plain = parse_config(base)
    rolled = parse_config({**base, "data": {**base["data"], "train_mode": "circular"}, "sweep": {"mode": "circular"}})
    pair = parse_config({**base, "data": {**base["data"], "task": "position", "size": 8},
                         "sweep": {"mode": "circular"}})
    image = 4 * 32 * 32
    assert _data_memory(plain.data, plain.sweep)["training images"][0] == 64 * image
    assert _data_memory(rolled.data, rolled.sweep)["training images"][0] == 2 * 64 * image
    assert _data_memory(plain.data, plain.sweep)["test images"][0] == 64 * image
    assert _data_memory(pair.data, pair.sweep)["test images"][0] == 4 * 64 * image


def test_sizes_change_unit_at_each_power_of_1024():
    """Catches a size of exactly 1 KiB or 1 GiB written in the smaller unit ("1.02e+03 B")."""
    from invariance_lab.config.memory import _size
    assert (_size(1023), _size(1024), _size(1536), _size(2**30)) == ("1.02e+03 B", "1 KiB", "1.5 KiB", "1 GiB")
