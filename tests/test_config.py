import pytest

from invariance_lab.config import ConfigError, load_config, parse_config, to_yaml


def write(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults_are_valid():
    cfg = parse_config({})
    assert cfg.data.letters == ["A", "B"]
    assert cfg.sweep.dx == [-8.0, 8.0, 1.0]  # ranges are normalised to [start, stop, step]


def test_shipped_configs_load(quick_config_path):
    paths = sorted(quick_config_path.parent.glob("*.yaml"))
    assert len(paths) >= 5
    for path in paths:
        cfg = load_config(path)
        assert cfg.models and cfg.name == path.stem


def test_preset_with_overrides_resolves():
    cfg = parse_config({"models": {"m": {"arch": "conv_maxpool", "padding": "circular", "channels": [4]}}})
    f = cfg.resolved_models()["m"]
    assert (f["downsample"], f["head"], f["padding"], f["channels"]) == ("max", "flatten", "circular", [4])


def test_resolved_yaml_round_trips(tmp_path):
    cfg = parse_config({"models": {"m": {"arch": "strided_conv"}}})
    again = load_config(write(tmp_path, to_yaml(cfg)))
    assert again.resolved_models() == cfg.resolved_models()


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    p = write(tmp_path, "name: x\ndata:\n  canvas: [32\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and "line" in msg and "column" in msg


def test_unknown_key_gives_path_and_closest_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "data:\n  canvsa: 32\n"))
    msg = str(e.value)
    assert "[data.canvsa]" in msg and "did you mean 'canvas'" in msg


def test_unknown_key_inside_a_model(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, "models:\n  m: {arch: conv_gap, downsampl: max}\n"))
    assert "[models.m.downsampl]" in str(e.value) and "'downsample'" in str(e.value)


@pytest.mark.parametrize("text, needles", [
    ("train:\n  epochs: -1\n", ["[train.epochs]", "-1"]),
    ("sweep:\n  mode: wrap\n", ["[sweep.mode]", "canvas", "circular"]),
    ("sweep:\n  dx: [4, 2]\n", ["[sweep.dx]", "stop"]),
    ("sweep:\n  dx: [0, 4, 0]\n", ["[sweep.dx]", "step"]),
    ("sweep:\n  mode: circular\n  dx: [0, 2, 0.5]\n", ["whole pixels"]),
    ("data:\n  letters: [A, b]\n", ["[data.letters]", "A-Z"]),
    ("data:\n  fonts: [comic]\n", ["[data.fonts]", "futural"]),
    ("models:\n  m: {arch: resnet}\n", ["[models.m]", "resnet", "conv_maxpool"]),
    ("models:\n  m: {downsample: maxx}\n", ["[models.m]", "maxx", "blur_max"]),
    ("models:\n  m: {head: gap}\n", ["[models.m]", "global_avg"]),
    ("models:\n  m: {padding: valid, channels: [4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4], kernel: 3}\ndata: {canvas: 16}\n",
     ["[models.m]", "valid"]),
    ("seeds: []\n", ["[seeds]"]),
    ("name: 'a/b'\n", ["[name]"]),
])
def test_bad_values_are_named(tmp_path, text, needles):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))


def test_missing_file_is_said_plainly(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_dotted_overrides(quick_config_path):
    cfg = load_config(quick_config_path, overrides=["train.epochs=3", "seeds=[5, 6]", "models.extra.arch=conv_gap",
                                                     "sweep.dx=[-1, 1, 0.5]"])
    assert cfg.train.epochs == 3 and cfg.seeds == [5, 6] and "extra" in cfg.models and cfg.sweep.dx == [-1, 1, 0.5]
    with pytest.raises(ConfigError, match=r"\[train.epoch\]"):
        load_config(quick_config_path, overrides=["train.epoch=3"])
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        load_config(quick_config_path, overrides=["train.epochs"])
