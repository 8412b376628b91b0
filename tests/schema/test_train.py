"""schema/train.py: the optimizer by name with its kwargs checked, select/patience, and old fingerprints kept."""

import pytest
import torch

from conftest import ROOT
from invariance_lab.config.load import load_config, parse_config
from invariance_lab.core.errors import ConfigError
from invariance_lab.schema.train import OPTIMIZERS, TrainConfig, make_optimizer
from invariance_lab.store.checkpoints import unit_fingerprints

# The fingerprints of every unit of these configs as earlier versions of invlab computed them (before
# train.optimizer took any torch.optim class and select/patience/val_fraction were added): new keys left at their
# defaults must not change them, or every earlier checkpoint would be trained again. A change here is noticed.
EARLIER_FINGERPRINTS = {
    "quick.yaml": {"conv_only-seed0": "8e848b0891c650a5", "conv_only-seed1": "d152c4690842a127",
                   "conv_gap-seed0": "5f566601b69a56b0", "conv_gap-seed1": "0f156c1d5b554f40"},
    "seed_question.yaml": {
        "conv_only-seed0": "e8be6bb38495179e", "conv_only-seed1": "1750ea98a182e68e",
        "conv_only-seed2": "2891df7375b8b6a0", "conv_maxpool-seed0": "599b61bc9294210b",
        "conv_maxpool-seed1": "2d21c95aa47d9eb9", "conv_maxpool-seed2": "3b7157caae373f39",
        "strided_conv-seed0": "5d6561c4b29963e9", "strided_conv-seed1": "766d2c3143ab1eeb",
        "strided_conv-seed2": "b9866a4c826c02d0", "conv_gap-seed0": "3e4dd1d1eb839681",
        "conv_gap-seed1": "c8646135411ac72b", "conv_gap-seed2": "e23bf544b4aa27df"}}


@pytest.mark.parametrize("name", sorted(EARLIER_FINGERPRINTS))
def test_fingerprints_of_existing_configs_are_unchanged(name):
    cfg = load_config(ROOT / "configs" / name)
    assert unit_fingerprints(cfg) == EARLIER_FINGERPRINTS[name]
    dumped = cfg.train.model_dump(mode="json")
    assert not {"optimizer_kwargs", "select", "patience"} & set(dumped)
    assert "val_fraction" not in cfg.data.model_dump(mode="json")


def test_optimizer_by_name_any_case_with_its_kwargs():
    cfg = TrainConfig(optimizer="AdaDelta", lr=1.0, weight_decay=5e-5, optimizer_kwargs={"rho": 0.9, "eps": 1e-6})
    assert cfg.optimizer == "adadelta" and cfg.model_dump()["optimizer_kwargs"] == {"rho": 0.9, "eps": 1e-6}
    opt = make_optimizer([torch.zeros(2, requires_grad=True)], cfg)
    group = opt.param_groups[0]
    assert type(opt) is torch.optim.Adadelta
    assert (group["lr"], group["rho"], group["eps"], group["weight_decay"]) == (1.0, 0.9, 1e-6, 5e-5)
    betas = make_optimizer([torch.zeros(1, requires_grad=True)],
                           TrainConfig(optimizer="adam", optimizer_kwargs={"betas": [0.8, 0.9]}))
    assert betas.param_groups[0]["betas"] == (0.8, 0.9)  # a YAML list becomes the tuple torch expects


def test_adam_adamw_sgd_are_built_as_before():
    p = [torch.zeros(1, requires_grad=True)]
    sgd = make_optimizer(p, TrainConfig(optimizer="sgd", lr=0.1, weight_decay=0.01))
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["momentum"] == 0.9  # as ever
    assert sgd.param_groups[0]["weight_decay"] == 0.01 and sgd.param_groups[0]["nesterov"] is False
    plain = make_optimizer(p, TrainConfig(optimizer="sgd", optimizer_kwargs={"momentum": 0.0}))
    assert plain.param_groups[0]["momentum"] == 0.0  # optimizer_kwargs overrides the 0.9
    for name, cls in [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]:
        opt = make_optimizer(p, TrainConfig(optimizer=name))
        assert type(opt) is cls and opt.param_groups[0]["weight_decay"] == 0.0  # adamw's own default is 1e-2


def test_every_registered_optimizer_trains_a_step():
    assert {"adam", "adamw", "sgd", "adadelta", "rmsprop", "adagrad"} <= set(OPTIMIZERS)
    assert not {"lbfgs", "sparseadam", "optimizer"} & set(OPTIMIZERS)
    for name in OPTIMIZERS:
        w = torch.ones(3, 3, 2, 2, requires_grad=True)  # a conv weight (4-D)
        opt = make_optimizer([w], TrainConfig(optimizer=name, lr=0.01))
        (w ** 2).sum().backward()
        opt.step()
        assert torch.isfinite(w).all() and not torch.equal(w, torch.ones_like(w)), name


def _refused(train: dict, data: dict | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config({"data": data or {}, "train": train, "models": {"g": {"arch": "conv_gap"}}}, "c.yaml")
    return str(e.value)


@pytest.mark.parametrize("train, needles", [
    ({"optimizer": "adadelt"}, ["[train.optimizer]", "did you mean 'adadelta'?", "rmsprop, rprop, sgd"]),
    ({"optimizer": "LBFGS"}, ["[train.optimizer]", "needs a closure", "choose one of: adadelta"]),
    ({"optimizer": "adadelta", "optimizer_kwargs": {"rhoo": 0.9}},
     ["[train.optimizer_kwargs.rhoo]", "unknown torch.optim.Adadelta argument 'rhoo'; did you mean 'rho'?"]),
    ({"optimizer_kwargs": {"lr": 0.1}}, ["[train.optimizer_kwargs.lr]", "use train.lr"]),
    ({"optimizer_kwargs": {"params": 1}}, ["[train.optimizer_kwargs.params]", "not an optimizer_kwargs key"]),
    ({"optimizer_kwargs": {"weight_decay": 0.1}}, ["[train.optimizer_kwargs.weight_decay]", "train.weight_decay"]),
    ({"optimizer": "adadelta", "optimizer_kwargs": {"rho": "high"}}, ["numbers, booleans or lists of numbers"]),
    ({"optimizer": "adadelta", "optimizer_kwargs": {"rho": 1.5}},
     ["[train.optimizer_kwargs]", "torch.optim.Adadelta refuses", "Invalid rho value: 1.5"]),
    ({"optimizer": "rprop", "weight_decay": 0.1}, ["[train.weight_decay]", "Rprop has no weight decay"]),
    # accepted when the optimizer was built, then a traceback at the first training step (the run folder made)
    ({"optimizer_kwargs": {"capturable": True}}, ["[train.optimizer_kwargs]", "torch.optim.Adam refuses", "capturable"]),
    ({"optimizer_kwargs": {"differentiable": True}}, ["[train.optimizer_kwargs]", "torch.optim.Adam refuses"]),
    ({"select": "best_val"}, ["[train.select]", "needs a validation set", "data.val_fraction"]),
    ({"patience": 3}, ["[train.patience]", "needs a validation set"]),
    ({"select": "best"}, ["[train.select]", "'last' or 'best_val'"]),
])
def test_bad_train_settings_are_refused_by_name(train, needles):
    message = _refused(train)
    for needle in needles:
        assert needle in message, (needle, message)


def test_a_validation_set_makes_best_val_and_patience_valid():
    cfg = parse_config({"data": {"val_fraction": 0.2}, "train": {"select": "best_val", "patience": 2},
                        "models": {"g": {"arch": "conv_gap"}}})
    assert cfg.train.validates and cfg.train.model_dump()["select"] == "best_val"
    assert "[data.val_fraction]" in _refused({}, {"val_fraction": 1.0})


@pytest.mark.parametrize("optimizer, key, value, given", [
    (name, "betas", value, given) for name in ("adam", "adamw", "nadam", "radam", "adamax")
    for value, given in (([0.9], "a list of 1"), ([0.9, 0.9, 0.9], "a list of 3"), (0.9, "one value"))] + [
    ("rprop", "step_sizes", [1], "a list of 1"), ("rprop", "etas", [0.5, 1.2, 2.0], "a list of 3")])
def test_tuple_arguments_take_a_list_as_long_as_torchs_default(optimizer, key, value, given):
    message = _refused({"optimizer": optimizer, "optimizer_kwargs": {key: value}})
    for needle in (f"[train.optimizer_kwargs.{key}]", "is a list of 2 numbers", f"got {given}: {value!r}"):
        assert needle in message, (needle, message)
    assert message.count("\n") == 1  # the file, then one line naming the key


def test_every_tuple_argument_of_every_optimizer_is_checked_by_its_default_length():
    import inspect
    checked = set()
    for name, cls in OPTIMIZERS.items():
        for key, p in inspect.signature(cls).parameters.items():
            if not isinstance(p.default, tuple):
                continue
            good = [1e-30 if v is None else float(v) for v in p.default]  # adafactor's eps is (None, 1e-3)
            assert TrainConfig(optimizer=name, optimizer_kwargs={key: good}).optimizer_kwargs[key] == good
            for bad in (good[:1], good + [1.0]):
                refused = _refused({"optimizer": name, "optimizer_kwargs": {key: bad}})
                assert f"[train.optimizer_kwargs.{key}]" in refused, refused
            checked.add((name, key))
    assert {("adam", "betas"), ("adamw", "betas"), ("rprop", "etas"), ("rprop", "step_sizes")} <= checked
    assert "one value (its default: 1e-08), not a list" in _refused({"optimizer_kwargs": {"eps": [1e-8]}})


def test_cli_refuses_betas_of_the_wrong_length_before_any_folder(tmp_path):
    from typer.testing import CliRunner

    from invariance_lab.cli.main import app
    res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(tmp_path / "r"),
                                   "--quiet", "--threads", "1",
                                   "--set", "train.optimizer_kwargs={betas: [0.9, 0.9, 0.9]}"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "[train.optimizer_kwargs.betas]" in res.output and "[0.9, 0.9, 0.9]" in res.output, res.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("key, fine, beyond", [("test_every", 0, -1), ("weight_decay", 0.0, -0.1),
                                               ("patience", None, 0), ("epochs", 0, -1)])
def test_train_bounds_accept_the_edge_and_refuse_past_it(key, fine, beyond):
    """Catches an off-by-one bound: test_every 0 means "the last epoch only"; patience 0 or a negative decay is no
    setting."""
    from pydantic import ValidationError
    assert getattr(TrainConfig.model_validate({key: fine}), key) == fine
    with pytest.raises(ValidationError) as e:
        TrainConfig.model_validate({key: beyond})
    assert e.value.errors()[0]["loc"] == (key,)
