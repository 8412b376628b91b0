import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Tests run in one worker process per core (pytest-xdist, pyproject's addopts): one torch thread each, since
    two workers of two threads on two cores fight for them (a test that needs more threads sets them itself).
    The memory limit is the default rule's (the documented messages quote it), whatever the shell sets."""
    os.environ.pop("INVLAB_MEMORY_LIMIT", None)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch  # here, not above: xdist's controller process runs no test and need not import torch

        torch.set_num_threads(1)


def pytest_collection(session):
    """Collecting imports every test module, and with them torch, pandas, matplotlib and hypothesis: each of the
    garbage collector's full collections on the way walked everything imported so far, about 20 of them for 2.5 s
    of CPU per process, to find next to nothing (imports make little cyclic garbage). Off until the tests run."""
    import gc

    gc.disable()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    import gc

    gc.enable()


def pytest_unconfigure(config):
    """The process is ending: its interpreter's last garbage collection would walk every object the tests left
    (torch, pandas, matplotlib, fixtures), a second or so of CPU per worker after the last test; frozen, they are
    skipped (the operating system takes the memory back with the process), as `invlab` does (cli/main._exiting)."""
    import gc

    gc.freeze()


# The slowest files (10 to 30 s each, summed over their tests), started first: with --dist loadfile a worker takes
# a whole file at a time, so a long file started last keeps one worker busy after the other has finished.
SLOW_FILES = ["run/test_units.py", "claims/test_claims.py", "report/test_html.py", "run/test_experiment.py",
              "store/test_run_folder_fuzz.py"]


def pytest_collection_modifyitems(config, items):
    rank = {f"tests/{name}": i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order


@pytest.fixture
def quick_config_path():
    return ROOT / "configs" / "quick.yaml"


@pytest.fixture(scope="module")
def one_thread():
    """Small convs on a busy 2-core machine: one thread is several times faster than two fighting for cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_UNTRAINED: dict[str, pathlib.Path] = {}  # seeds -> the pristine run folder, made once per test process


def untrained_quick_run(tmp_path_factory, seeds: str = "[0]") -> pathlib.Path:
    """A finished run folder of configs/quick.yaml with untrained networks and 12 test images: a copy of its own
    (results/quick/<run id>) of one run made once per process for each `seeds`, since five test files use it."""
    from typer.testing import CliRunner

    from invariance_lab.cli.main import app

    if seeds not in _UNTRAINED:
        results = tmp_path_factory.mktemp("pristine")
        res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results),
                                       "--quiet", "--set", "train.epochs=0", "--set", f"seeds={seeds}",
                                       "--set", "data.test_images=12"])
        assert res.exit_code == 0, res.output
        (_UNTRAINED[seeds],) = (results / "quick").iterdir()
    pristine = _UNTRAINED[seeds]
    run_dir = tmp_path_factory.mktemp("results") / "quick" / pristine.name
    shutil.copytree(pristine, run_dir)
    return run_dir


# configs/quick.yaml made a little bigger: four units of a fraction of a second each, enough to stop a run between
# two of them (tests/run/test_experiment.py, test_units.py)
SMALL_RUN = ["--set", "data.train_images=400", "--set", "train.epochs=2", "--set", "data.test_images=20",
             "--threads", "1", "--quiet"]


@pytest.fixture(scope="session")
def small_quick_run(tmp_path_factory) -> pathlib.Path:
    """A finished run folder of configs/quick.yaml with SMALL_RUN, made once (--jobs 1, in this process): the
    reference the interrupted, resumed and --jobs 2 runs must reproduce. Tests may add sweeps to it, nothing else."""
    from typer.testing import CliRunner

    from invariance_lab.cli.main import app

    results = tmp_path_factory.mktemp("small")
    res = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results),
                                   *SMALL_RUN])
    assert res.exit_code == 0, res.output
    (run_dir,) = (results / "quick").iterdir()
    return run_dir


def _axis_values(spec):
    import numpy as np

    start, stop, step = spec
    return np.round(np.arange(start, stop + step / 2, step), 6) if step else np.array([float(start)])


def write_fake_result(folder: pathlib.Path, *, name="demo", run_id="20260101-000000", models=("plain", "blur"),
                      seeds=(0, 1, 2), dx=(-4, 4, 1), dy=(-4, 4, 1), grid="product", mode="canvas",
                      status="complete", kind="run", chance=(), n_classes=2, legacy=False,
                      config_letters=None, layers=False) -> pathlib.Path:
    """A result folder (meta.json, invariance.csv, summary.csv) with known, seed-dependent values; summary.csv is
    made by the real sweep.summarize, so it cannot drift from what runs write.

    "plain" aliases on odd shifts, "blur" is smoother; clean accuracy = 0.9 + 0.01 * seed. Each (model, seed) in
    `chance` is stuck at one class: accuracy 0.5 at every shift and nothing ever flips. legacy=True writes a
    summary.csv without the n_classes/at_chance columns (folders made before they existed); config_letters
    writes a config.yaml whose data.letters say how many classes there are. layers=True adds a
    layers_summary.csv (taps block1.conv, block1.down, head) whose errors are 0, 0, 0.3 over seeds 0, 1, 2 at
    block1.down: a mean of 0.1 whose t interval reaches below 0."""
    import json
    import math

    import numpy as np
    import pandas as pd
    import yaml

    from invariance_lab.core.columns import CHANCE_COLUMNS
    from invariance_lab.eval.tables import summarize

    folder.mkdir(parents=True, exist_ok=True)
    rows, clean = [], {}
    for k, model in enumerate(models):
        for s in seeds:
            stuck = (model, s) in set(chance)
            clean[(model, s)] = 0.5 if stuck else 0.9 + 0.01 * s
            xs, ys = _axis_values(dx), _axis_values(dy)
            pairs = [(x, y) for y in ys for x in xs if grid == "product" or x == 0 or y == 0]
            first_dx = {}
            for x, y in pairs:
                first_dx.setdefault(y, x)
                d = abs(x) + abs(y)
                odd = (x % 2 != 0) or (y % 2 != 0)
                flip = 0.0 if d == 0 or stuck else ((0.35, 0.12, 0.05)[k % 3] * (1 - math.exp(-d / 3))
                                                    + (0.1 if k == 0 and odd else 0.0) + 0.01 * s)
                rows.append(dict(model=model, seed=s, downsample="max" if k == 0 else "blur", head="gap",
                                 padding="zeros", mode=mode, dx=float(x), dy=float(y), n_images=100,
                                 accuracy=clean[(model, s)] - 0.5 * flip, flip_rate=flip, prob_change=0.6 * flip,
                                 neighbor_flip_rate=np.nan if x == first_dx[y] else 0.5 * flip + 0.02 * (not stuck)))
    inv = pd.DataFrame(rows)
    summary = summarize(inv, clean, n_classes=n_classes)
    if legacy:
        summary = summary.drop(columns=CHANCE_COLUMNS)
    summary.to_csv(folder / "summary.csv", index=False)
    inv.to_csv(folder / "invariance.csv", index=False)
    meta = dict(kind=kind, status=status, name=name, run_id=run_id, seeds=list(seeds),
                protocol=dict(mode=mode, grid=grid, dx=list(dx), dy=list(dy), test_images=100,
                              seeds=list(seeds), models=list(models), kind="translation",
                              n_shifts=int(inv[["dx", "dy"]].drop_duplicates().shape[0])))
    (folder / "meta.json").write_text(json.dumps(meta))
    if layers:
        taps = [("block1.conv", 1), ("block1.down", 2), ("head", 2)]
        lay = [dict(model=model, seed=s, downsample="max", head="gap", padding="zeros", mode=mode, layer=j,
                    layer_name=tap, stride=stride, n_images=8, n_shifts=4,
                    mean_equivariance_error=(0.3 * (s == 2) if tap == "block1.down" else 0.01 * (j + 1) + 0.001 * s),
                    mean_pooled_invariance_error=0.02 * (j + 1), normalized_variance=0.05 * (j + 1) + 0.01 * s)
               for model in models for s in seeds for j, (tap, stride) in enumerate(taps)]
        pd.DataFrame(lay).to_csv(folder / "layers_summary.csv", index=False)
    if config_letters is not None:
        (folder / "config.yaml").write_text(yaml.safe_dump({"name": name, "data": {"letters": list(config_letters)}}))
    return folder


@pytest.fixture
def fake_result():
    """write_fake_result(folder, **options) -> folder: a hand-made result folder (see write_fake_result)."""
    return write_fake_result


class RunsCode:
    """Pickled, it makes unpickling run `touch PWNED` in the working directory: the file a loader that runs code
    would obey (checkpoints and --weights files are loaded with weights_only and must refuse it)."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


# ---------------------------------------------------------------- run folders' meta.json, written by hand

# a protocol meta.json accepts (store/meta.Protocol)
PROTOCOL = dict(kind="translation", mode="canvas", grid="product", dx=[-1, 1, 1], dy=[0, 0, 1], test_images=4,
                seeds=[0], models=["m"], n_shifts=3)


def stopped_or_finished_run(folder: pathlib.Path, **fields) -> dict:
    """A run folder holding only meta.json (run x, model m, seed 0; complete unless `fields` say otherwise)."""
    from invariance_lab.store.atomic import write_json
    from invariance_lab.store.layout import META_FILE

    folder.mkdir(parents=True, exist_ok=True)
    m = dict(kind="run", status="complete", name="x", run_id=folder.name, protocol=PROTOCOL, seeds=[0],
             fingerprints={"m-seed0": "abc"}, started="2026-01-01T00:00:00", finished="2026-01-01T00:01:00")
    m.update(fields)
    if m["status"] == "running":
        del m["finished"]
    write_json(folder / META_FILE, m)
    return m


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------- the garbage collector's walks, per test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Every test, its fixtures' setup and teardown included (a module's trained run): what the process holds when
    it starts (torch's, pandas' and hypothesis's modules, module fixtures, earlier tests' objects) kept out of the
    garbage collector's full collections (gc.freeze), and given back to it after the test (gc.unfreeze): each full
    collection walked every one of those objects, 0.03 to 0.1 s each, a dozen times in a test of hundreds of
    hypothesis cases or CLI calls. Left alone when something else froze objects already."""
    import gc

    if gc.get_freeze_count():
        return (yield)
    gc.freeze()
    try:
        return (yield)
    finally:
        gc.unfreeze()


# ---------------------------------------------------------------- scripts that need a new python process of their own
# tests/test_compiler_stack.py (what training and loading import) and tests/core/test_runtime.py (torch's TF32
# settings, which are the process's) each started a python process that imports torch (~1.7 s of CPU) for a script.
# A test module registers its script with fresh_script when it is imported; the fixture fresh_process runs every
# registered script in one new process, once per session (the pytest-xdist workers of a session share it), each in a
# namespace of its own with its own stdout and a folder of its own (FOLDER), the one marked `first` before the others.

_FRESH_SCRIPTS: dict[str, tuple[bool, str]] = {}  # name -> (first?, code), in the order registered

_FRESH_RUNNER = r'''
import contextlib, io, json, os, sys, traceback
scripts, folder = json.loads(sys.stdin.read())
for name, code in scripts:
    where = os.path.join(folder, name)
    os.makedirs(where, exist_ok=True)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(code, name, "exec"), {"__name__": "__main__", "FOLDER": where})
        out = [0, buf.getvalue(), ""]
    except BaseException:
        out = [1, buf.getvalue(), traceback.format_exc()]
    with open(where + ".json", "w") as f:  # each script's own result, the moment it ends
        json.dump(out, f)
'''


def fresh_script(name: str, code: str, *, first: bool = False) -> None:
    """Run `code` in the new process of fresh_process, under `name`; `first`: before every other script (one that
    checks what an interpreter that has run nothing else imports)."""
    assert not (first and any(f for f, _ in _FRESH_SCRIPTS.values())), "one script only can run first"
    _FRESH_SCRIPTS[name] = (first, code)


@pytest.fixture(scope="session")
def fresh_process(tmp_path_factory) -> dict:
    """name -> (0, or 1 if it raised; what it printed; its traceback) of every script registered with
    fresh_script, run in one new python process."""
    import hashlib
    import json
    import subprocess
    import sys

    from filelock import FileLock

    scripts = [(name, code) for name, (_, code) in sorted(_FRESH_SCRIPTS.items(), key=lambda kv: not kv[1][0])]
    key = hashlib.sha256(json.dumps(scripts).encode()).hexdigest()[:16]
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this session's folder, above its workers' own
    folder = base / f"fresh-{key}"
    done = folder / "results.json"
    with FileLock(f"{folder}.lock"):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            res = subprocess.run([sys.executable, "-c", _FRESH_RUNNER], input=json.dumps([scripts, str(folder)]),
                                 capture_output=True, text=True, timeout=300)
            results, ended = {}, False
            for name, _ in scripts:  # a process that died (os._exit, a crash) fails the script it was running
                own = folder / f"{name}.json"
                if own.exists():
                    results[name] = json.loads(own.read_text())
                else:
                    why = "was not run: the process had ended" if ended else \
                        f"did not finish: the process ended with code {res.returncode}"
                    results[name], ended = [1, "", f"{name} {why}\n{res.stdout[-2000:]}{res.stderr[-4000:]}"], True
            done.write_text(json.dumps(results))
    return json.loads(done.read_text())


# ---------------------------------------------------------------- one hand-made run's HTML page, read by several files


@pytest.fixture(scope="session")
def fake_line_page(tmp_path_factory) -> tuple[pathlib.Path, str]:
    """(folder, page): write_fake_result's run over dx -2..2 at dy 0 (two line plots and the accuracy-consistency
    plot, no heatmaps: fast) and its html_report page, made once per process, since tests/report/test_html.py and
    test_papers.py each drew it. Tests only read them."""
    from invariance_lab.report.html import html_report

    folder = write_fake_result(tmp_path_factory.mktemp("line_page") / "demo" / "r1", dx=(-2, 2, 1), dy=(0, 0, 1))
    return folder, html_report([folder])
