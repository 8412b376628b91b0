"""Property-based fuzz of run folders: any file damaged in any way gives exit 0 or 2, never a traceback or a hang.

Every file of a finished run (config.yaml, meta.json, the CSVs, each checkpoint) is truncated, emptied, replaced
by random bytes, by JSON or YAML of the wrong shape, or has one byte flipped (meta.json: or one of its keys, or
of its protocol's, set to a value of another shape); then `invlab sweep` and
`invlab report` run on the folder. A damage that does not matter to a command (train.csv for sweep) may pass.
"""

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import untrained_quick_run
from invariance_lab.cli.main import app

runner = CliRunner()

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=12)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    run_dir = untrained_quick_run(tmp_path_factory)
    res = runner.invoke(app, ["sweep", str(run_dir), "--dx", "0:1", "--quiet"])  # a sweep folder to damage too
    assert res.exit_code == 0, res.output
    files = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*") if p.is_file())
    return run_dir, files


def damage(data: bytes, how: str, draw) -> bytes:
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "empty":
        return b""
    if how == "random":
        return draw(st.binary(min_size=1, max_size=2000))
    if how == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1:]
    if how == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    # a valid meta.json with one key set to a value of another shape: a top-level key, or one of its protocol's
    # (the shifts, the engine, the images: what every printed table states)
    meta = json.loads(data) if data.startswith(b"{") else {}
    inner = meta.get("protocol") if how == "protocol_key" and isinstance(meta, dict) else meta
    if isinstance(inner, dict) and inner:
        inner[draw(st.sampled_from(sorted(inner)))] = draw(JSON_VALUES)
    return json.dumps(meta).encode()


def _no_traceback(res):
    assert res.exit_code in (0, 2), (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    if res.exit_code == 2:
        assert res.output.strip().startswith("error:") or "error:" in res.output, res.output


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_run_folders_never_give_a_traceback(pristine, tmp_path_factory, data):
    source, files = pristine
    run_dir = tmp_path_factory.mktemp("fuzz") / "quick" / source.name
    shutil.copytree(source, run_dir)
    target = data.draw(st.sampled_from(files), label="file")
    how = data.draw(st.sampled_from(["truncate", "empty", "random", "flip", "json", "meta_key", "protocol_key"]),
                    label="damage")
    path = run_dir / target
    path.write_bytes(damage(path.read_bytes(), how, data.draw))
    sweep_dir = next(p for p in files if p.parts[0] == "sweeps").parent
    _no_traceback(runner.invoke(app, ["sweep", str(run_dir), "--dx", "0:0", "--models", "conv_gap", "--quiet"]))
    _no_traceback(runner.invoke(app, ["report", str(run_dir), str(run_dir / sweep_dir), "--format", "csv"]))
    shutil.rmtree(run_dir.parent.parent)
