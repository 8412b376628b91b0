"""atomic.py: a file is written whole or not at all, and an unreadable one is a RunFolderError naming it."""

import os
import shutil

import pandas as pd
import pytest
from conftest import ROOT, untrained_quick_run
from typer.testing import CliRunner

from invariance_lab.cli.main import app

from invariance_lab.core.errors import RunFolderError
from invariance_lab.store.atomic import append_text, read_json, write_csv, write_file, write_json, write_text


def test_writes_leave_no_temporary_file(tmp_path):
    write_text(tmp_path / "a.txt", "é\n")
    write_json(tmp_path / "b.json", {"x": [1, 2]})
    write_csv(tmp_path / "c.csv", pd.DataFrame({"x": [1, 2]}))
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.json", "c.csv"]
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "é\n"
    assert read_json(tmp_path / "b.json") == {"x": [1, 2]}
    assert pd.read_csv(tmp_path / "c.csv")["x"].tolist() == [1, 2]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    write_json(tmp_path / "m.json", {"status": "running"})
    with pytest.raises(TypeError):
        write_text(tmp_path / "m.json", None)  # fails before the rename
    assert read_json(tmp_path / "m.json") == {"status": "running"}


@pytest.mark.parametrize("content", [b"{half", b"\xff\xfe\x00", None, b"[" * 100_000, "fifo"])
def test_an_unreadable_json_names_the_file(tmp_path, content):
    """Bad JSON or UTF-8, no file, nesting too deep for the decoder (a RecursionError), a FIFO (which would hang)."""
    path = tmp_path / "meta.json"
    if content == "fifo":
        os.mkfifo(path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(RunFolderError, match="cannot read") as e:
        read_json(path)
    assert str(path) in str(e.value)


# ------------------------------------------------------------------------------- links planted in a run folder
@pytest.fixture
def victim(tmp_path):
    """A file outside the run folder that a planted link points at: it must never change."""
    path = tmp_path / "home" / "notes.txt"
    path.parent.mkdir()
    path.write_text("precious\n")
    return path


@pytest.mark.parametrize("write", [lambda p: write_text(p, "x\n"), lambda p: write_json(p, {"x": 1}),
                                   lambda p: write_csv(p, pd.DataFrame({"x": [1]}))])
def test_a_link_at_the_old_temporary_name_is_never_written_through(tmp_path, victim, write):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".meta.json.tmp").symlink_to(victim)  # the name invlab used to write to before the rename
    write(run / "meta.json")
    assert victim.read_text() == "precious\n"
    assert (run / ".meta.json.tmp").is_symlink() and not (run / "meta.json").is_symlink()
    assert sorted(os.listdir(run)) == [".meta.json.tmp", "meta.json"]  # no temporary file left either


@pytest.mark.parametrize("write", [lambda p: write_text(p, "x\n"), lambda p: write_json(p, {"x": 1}),
                                   lambda p: write_csv(p, pd.DataFrame({"x": [1]})),
                                   lambda p: write_file(p, lambda f: f.write(b"x"), binary=True),
                                   lambda p: append_text(p, "x\n")])
def test_a_link_at_the_final_name_is_refused_naming_it(tmp_path, victim, write):
    link = tmp_path / "invariance.csv"
    link.symlink_to(victim)
    with pytest.raises(RunFolderError, match="is a symbolic link") as e:
        write(link)
    assert str(link) in str(e.value) and str(victim) in str(e.value)
    assert victim.read_text() == "precious\n" and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["home", "invariance.csv"]


def test_appends_go_to_a_regular_file_only(tmp_path):
    log = tmp_path / "units" / "a.log"
    log.parent.mkdir()
    append_text(log, "one\n")
    append_text(log, "two\n")
    assert log.read_text() == "one\ntwo\n"
    fifo = tmp_path / "units" / "b.log"
    os.mkfifo(fifo)
    with pytest.raises(RunFolderError, match="b.log is not a regular file"):  # and no hang waiting for a reader
        append_text(fifo, "x\n")  # it said "No such device or address ... run again", which failed the same way
    (tmp_path / "units" / "c.log").mkdir()
    with pytest.raises(RunFolderError, match="c.log is not a regular file"):
        append_text(tmp_path / "units" / "c.log", "x\n")


def test_csv_bytes_are_those_pandas_writes_to_a_path(tmp_path):
    df = pd.DataFrame({"model": ["a", "b"], "x": [0.1, 1 / 3], "s": ["é,\"q\"", "line\nbreak"]})
    df.to_csv(tmp_path / "ref.csv", index=False)
    write_csv(tmp_path / "new.csv", df)
    assert (tmp_path / "new.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


def test_new_files_get_the_usual_permissions(tmp_path):
    (tmp_path / "ref.txt").write_text("x")
    write_text(tmp_path / "new.txt", "x")
    assert (tmp_path / "new.txt").stat().st_mode == (tmp_path / "ref.txt").stat().st_mode


# ------------------------------------------------------------------------------- a resumed run meets the links
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    return untrained_quick_run(tmp_path_factory)  # configs/quick.yaml, untrained: seconds


def _interrupted_copy(finished_run, tmp_path, remove=()):
    """A copy of the finished run marked interrupted (as a killed run leaves it), with `remove` deleted."""
    results = tmp_path / "results"
    run_dir = results / "quick" / finished_run.name
    shutil.copytree(finished_run, run_dir)
    meta = read_json(run_dir / "meta.json")
    write_json(run_dir / "meta.json", dict(meta, status="interrupted"))
    for name in remove:
        (run_dir / name).unlink()
    return results, run_dir


def _rerun(results, *extra):
    return CliRunner().invoke(app, ["run", str(ROOT / "configs" / "quick.yaml"), "--results-dir", str(results),
                                    "--quiet", "--set", "train.epochs=0", "--set", "seeds=[0]",
                                    "--set", "data.test_images=12", *extra])


def test_a_resumed_run_does_not_write_through_a_link_at_a_temporary_name(finished_run, tmp_path, victim):
    results, run_dir = _interrupted_copy(finished_run, tmp_path, remove=["invariance.csv"])
    for name in (".meta.json.tmp", ".invariance.csv.tmp", "checkpoints/.conv_gap-seed0.pt.tmp"):
        (run_dir / name).symlink_to(victim)
    res = _rerun(results)
    assert res.exit_code == 0, res.output
    assert victim.read_text() == "precious\n"
    assert read_json(run_dir / "meta.json")["status"] == "complete" and (run_dir / "invariance.csv").is_file()


@pytest.mark.parametrize("name, remove", [("meta.json", ()), ("invariance.csv", ("invariance.csv",)),
                                          ("checkpoints/conv_gap-seed0.pt", ("checkpoints/conv_gap-seed0.pt",)),
                                          ("config.yaml", ())])
def test_a_resumed_run_refuses_a_link_at_a_final_name(finished_run, tmp_path, victim, name, remove):
    results, run_dir = _interrupted_copy(finished_run, tmp_path, remove=remove)
    link = run_dir / name
    if link.exists():
        if name == "meta.json":  # a link to a readable meta.json, so that the folder is resumed through it
            shutil.move(link, victim)
        else:
            link.unlink()
    before = victim.read_bytes()
    link.symlink_to(victim)
    res = _rerun(results)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{link} is a symbolic link" in said
    assert victim.read_bytes() == before and link.is_symlink()


def test_a_unit_log_that_is_a_link_is_refused(finished_run, tmp_path, victim):
    results, run_dir = _interrupted_copy(finished_run, tmp_path, remove=["checkpoints/conv_gap-seed0.pt"])
    link = run_dir / "units" / "conv_gap-seed0.log"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(victim)
    res = _rerun(results, "--jobs", "2")
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "conv_gap-seed0.log is a symbolic link" in said
    assert victim.read_text() == "precious\n" and link.is_symlink()


@pytest.mark.parametrize("folder", ["checkpoints", "units", "test_sets"])
def test_a_resumed_run_refuses_a_folder_that_is_a_link(finished_run, tmp_path, victim, folder):
    """A run's own folder standing for another (checkpoints -> ~/models) would take the new files there, over a
    file of the same name invlab did not make: refused, naming the link, before anything is written."""
    results, run_dir = _interrupted_copy(finished_run, tmp_path, remove=["checkpoints/conv_gap-seed0.pt"])
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run_dir / folder, elsewhere) if (run_dir / folder).exists() else elsewhere.mkdir()
    (elsewhere / "conv_gap-seed0.pt").write_text("my own file\n")
    (run_dir / folder).symlink_to(elsewhere)
    res = _rerun(results)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{run_dir / folder} is a symbolic link" in said
    assert (elsewhere / "conv_gap-seed0.pt").read_text() == "my own file\n"
    assert read_json(run_dir / "meta.json")["status"] == "interrupted"


@pytest.mark.parametrize("folder", ["checkpoints", "units"])
def test_a_resumed_run_refuses_a_file_where_its_folder_goes_before_training(finished_run, tmp_path, folder):
    """It trained a unit, then failed naming a temporary file that did not exist (Not a directory: .../checkpoints/
    .conv_gap-seed0.pt.5dc6159d.tmp), leaving the run failed."""
    results, run_dir = _interrupted_copy(finished_run, tmp_path, remove=["checkpoints/conv_gap-seed0.pt"])
    shutil.rmtree(run_dir / folder, ignore_errors=True)
    (run_dir / folder).write_text("x\n")
    res = _rerun(results)
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{run_dir / folder} is a file where invlab keeps a folder ({folder}/)" in said
    assert read_json(run_dir / "meta.json")["status"] == "interrupted" and (run_dir / folder).read_text() == "x\n"


def test_a_sweep_refuses_a_sweeps_folder_that_is_a_link(finished_run, tmp_path):
    run_dir = tmp_path / "quick" / finished_run.name
    shutil.copytree(finished_run, run_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run_dir / "sweeps").symlink_to(elsewhere)
    res = CliRunner().invoke(app, ["sweep", str(run_dir), "--dx", "0:1", "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"{run_dir / 'sweeps'} is a symbolic link" in " ".join(res.output.split())
    assert list(elsewhere.iterdir()) == []


def test_links_a_sweep_does_not_write_through_are_left_alone(finished_run, tmp_path):
    """A sweep writes a new folder under sweeps/ and nothing else: a link kept beside the sweeps (latest -> <id>),
    or checkpoints/ moved to another disk and linked back, does not stop it."""
    run_dir = tmp_path / "quick" / finished_run.name
    shutil.copytree(finished_run, run_dir)
    shutil.move(run_dir / "checkpoints", tmp_path / "big_disk")
    (run_dir / "checkpoints").symlink_to(tmp_path / "big_disk")
    (run_dir / "sweeps").mkdir()
    (run_dir / "sweeps" / "latest").symlink_to(tmp_path / "big_disk")
    res = CliRunner().invoke(app, ["sweep", str(run_dir), "--dx", "0:1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert len([p for p in (run_dir / "sweeps").iterdir() if not p.is_symlink()]) == 1


# ----------------------------------------------------------------------------------------------- a full disk


@pytest.fixture
def full_disk(monkeypatch):
    """Files whose name ends with one of the returned set's names are written to /dev/full: the kernel's own
    ENOSPC (errno 28) at the first write that reaches it; their temporary file is still made, to be removed."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    from invariance_lab.store import atomic

    names, real = set(), atomic._temporary

    def temporary(path):
        fd, tmp = real(path)
        if any(str(path).endswith(n) for n in names):
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return fd, tmp

    monkeypatch.setattr(atomic, "_temporary", temporary)
    return names


def test_a_full_disk_is_an_error_naming_the_file_which_is_left_as_it_was(tmp_path, full_disk):
    import torch

    from invariance_lab.core.errors import DiskFullError

    write_text(tmp_path / "a.csv", "old\n")
    full_disk.update({"a.csv", "b.pt"})
    with pytest.raises(DiskFullError, match=f"cannot write {tmp_path / 'a.csv'}: the disk is full"):
        write_csv(tmp_path / "a.csv", pd.DataFrame({"x": range(10000)}))
    with pytest.raises(DiskFullError, match="b.pt: the disk is full"):  # torch.save words it as a RuntimeError
        write_file(tmp_path / "b.pt", lambda f: torch.save({"w": torch.zeros(10000)}, f), binary=True)
    assert sorted(os.listdir(tmp_path)) == ["a.csv"] and (tmp_path / "a.csv").read_text() == "old\n"


def test_a_full_disk_while_appending_a_log_names_it(tmp_path, monkeypatch):
    import errno

    from invariance_lab.core.errors import DiskFullError

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m, pytest.raises(DiskFullError, match=f"cannot append to {tmp_path / 'u.log'}: "
                                                                     "the disk is full"):
        m.setattr(os, "write", full)  # os.write of every caller, for this call alone
        append_text(tmp_path / "u.log", "done\n")


def test_invlab_measure_on_a_full_disk_says_so_in_one_paragraph(tmp_path, full_disk):
    import torch

    from invariance_lab.data.write import write_folder

    pixels = (torch.rand(4, 1, 12, 12, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    write_folder(pixels, tmp_path / "imgs", torch.tensor([0, 1, 0, 1]), ["a", "b"])
    full_disk.add("invariance.csv")
    res = CliRunner().invoke(app, ["measure", "--images", str(tmp_path / "imgs"), "--model",
                                   "custom_models:circular_gap", "--dx", "-1:1", "--results-dir", str(tmp_path / "r"),
                                   "--quiet"])
    message = res.output.strip()
    assert res.exit_code == 2 and "Traceback" not in res.output and len(message.splitlines()) == 1, res.output
    (folder,) = (tmp_path / "r" / "measure").iterdir()
    assert message.startswith(f"error: cannot write {folder / 'invariance.csv'}: the disk is full"), message
    assert sorted(os.listdir(folder)) == ["measure.yaml", "meta.json"]  # no CSV, no temporary file
    assert read_json(folder / "meta.json")["status"] == "failed"


def test_a_folder_where_a_file_goes_is_refused_by_its_own_name(tmp_path):
    target = tmp_path / "conv_gap-seed0.pt"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(RunFolderError, match=r"conv_gap-seed0\.pt is a folder where invlab writes a file"):
        write_file(target, lambda f: f.write(b"x"), binary=True)
    assert (target / "inside").is_dir() and [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary


def test_a_json_file_of_gigabytes_is_refused_by_its_size_before_it_is_read(tmp_path):
    """A sparse meta.json of 3 GB (`truncate -s 3G`: nothing on disk) was read whole: 6.6 GB of memory, 17 s."""
    from invariance_lab.store.atomic import MAX_JSON_BYTES, read_json

    path = tmp_path / "meta.json"
    with open(path, "wb") as f:
        f.truncate(3 * 2**30)
    with pytest.raises(RunFolderError, match=f"3,221,225,472 bytes, .* \\(at most {MAX_JSON_BYTES:,}\\)"):
        read_json(path)


@pytest.fixture
def file_size_limit():
    """This process may write files of at most 4 KiB (`ulimit -f`; Python ignores SIGXFSZ, so a write past it is
    EFBIG); the limit before is put back."""
    resource = pytest.importorskip("resource")
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, before[1]))
    yield
    resource.setrlimit(resource.RLIMIT_FSIZE, before)


def test_a_file_size_limit_is_an_error_naming_the_file_not_a_traceback(tmp_path, file_size_limit):
    import torch

    from invariance_lab.core.errors import DiskFullError

    write_text(tmp_path / "a.csv", "old\n")
    with pytest.raises(DiskFullError, match=rf"cannot write {tmp_path / 'a.csv'}: File too large; no half-written"):
        write_csv(tmp_path / "a.csv", pd.DataFrame({"x": range(10000)}))
    # torch.save words the writer's EFBIG as a RuntimeError ("unexpected pos"), which ended `invlab run` in a traceback
    with pytest.raises(DiskFullError, match=r"b\.pt: File too large; .*`ulimit -f`"):
        write_file(tmp_path / "b.pt", lambda f: torch.save({"w": torch.zeros(10000)}, f), binary=True)
    assert sorted(os.listdir(tmp_path)) == ["a.csv"] and (tmp_path / "a.csv").read_text() == "old\n"


@pytest.mark.parametrize("code, advice", [(13, "make its folder writable"), (2, "its folder is gone"),
                                          (30, "read-only; write elsewhere"), (5, "run again when the cause")])
def test_an_error_writing_names_the_file_itself_not_its_temporary_name(tmp_path, code, advice):
    # the system names the temporary file (.a.json.1f2e3d4c.tmp), which the user never asked for
    def fail(f):
        raise OSError(code, os.strerror(code), str(tmp_path / ".a.json.1f2e3d4c.tmp"))

    with pytest.raises(RunFolderError) as e:
        write_file(tmp_path / "a.json", fail)
    said = str(e.value)
    assert said.startswith(f"cannot write {tmp_path / 'a.json'}: {os.strerror(code)}; ") and advice in said.lower(), said
    assert ".tmp" not in said.replace("a temporary file", "") and os.listdir(tmp_path) == []


def test_a_name_of_up_to_255_bytes_is_written_though_its_temporary_name_would_be_longer(tmp_path):
    for name in ["h" * 250 + ".html", "é" * 125 + ".md"]:  # 255 and 253 bytes: the temporary name is cut
        write_text(tmp_path / name, "page")
        assert (tmp_path / name).read_text() == "page"
    assert len(os.listdir(tmp_path)) == 2


def test_a_name_whose_bytes_are_not_utf8_is_escaped_in_a_page_and_refused_in_a_file_read_back(tmp_path):
    from invariance_lab.store.atomic import write_page

    folder = os.fsdecode(b"bad\xffname")  # how Python holds a folder name that is not UTF-8: "bad\udcffname"
    write_page(tmp_path / "page.html", f"<p>{folder}</p>")
    assert (tmp_path / "page.html").read_text(encoding="utf-8") == "<p>bad\\udcffname</p>"
    with pytest.raises(RunFolderError, match=r"config\.yaml: its text holds '\\udcff', which is not valid UTF-8"):
        write_text(tmp_path / "config.yaml", f"path: {folder}\n")
    assert sorted(os.listdir(tmp_path)) == ["page.html"]
