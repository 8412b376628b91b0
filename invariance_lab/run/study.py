"""Studies: one config run for every combination of `--vary` overrides (report/study.py compares them).

    invlab run configs/factorial.yaml --vary data.train_shift=0,4 --vary train.epochs=3,6
    invlab report results/factorial/study-<time>            # a column per varied key
    invlab report results/factorial/study-<time> --plot figs   # a metric against each varied key, and the runs' plots

Each combination is an ordinary run (results/<name>/<run id>/: resumable, its checkpoints reused by the others
where the settings are the same, e.g. when only the sweep varies); the study folder beside them,
results/<name>/study-<time>/, holds study.json: the varied keys, and per combination its overrides and run
folder. Every combination's config (its keys, values and device) is checked before the first one starts; `name`
cannot vary (the runs are kept beside the study, in results/<name>/). Running the same command again resumes an
unfinished study in its own folder: a combination whose run finished is kept as it is, the others resume as
`invlab run` does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..config.load import aliased_yaml, load_config, to_yaml
from ..core.errors import ConfigError, InvlabError, RunFolderError, quote
from ..core.processes import process_gone, this_process
from ..core.runtime import resolve_device
from ..schema.config import Config
from ..store.layout import STUDY_FILE, is_study, new_study_folder
from ..store.atomic import write_json
from ..store.claim import Claim, claim
from ..store.find import read_study, studies
from ..store.meta import read_meta, run_state

Say = Callable[[str], None]
MAX_COMBINATIONS = 256  # runs in one study


# ------------------------------------------------------------------------------------------- --vary


def split_values(text: str) -> list[str]:
    """'0,4' -> ['0', '4']; commas inside brackets, braces or quotes stay: '[0,1],[2,3]' -> ['[0,1]', '[2,3]']."""
    parts, depth, quote_char, start = [], 0, None, 0
    for i, c in enumerate(text):
        if quote_char:
            quote_char = None if c == quote_char else quote_char
        elif c in "'\"":
            quote_char = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_vary(options: list[str]) -> dict[str, list[str]]:
    """--vary KEY.PATH=V1,V2,... (repeatable) -> {key: [value texts]}, in the order given; an InvlabError that
    names the option for anything else. Whether the key exists and takes the values is checked by the config."""
    vary: dict[str, list[str]] = {}
    example = "e.g. --vary data.train_shift=0,4 (a list value in brackets: --vary 'seeds=[0,1],[2,3]')"
    for option in options:
        key, eq, values = option.partition("=")
        key = key.strip()
        if not eq or not key or not values.strip():
            raise InvlabError(f"--vary {quote(option)}: expected KEY.PATH=V1,V2,... with at least one value, {example}")
        if any(not part.strip() for part in key.split(".")):
            raise InvlabError(f"--vary {quote(option)}: empty part in key path {quote(key)}; {example}")
        if key in vary:
            raise InvlabError(f"--vary {quote(option)}: {key} is varied twice; give all its values in one --vary, "
                              f"e.g. --vary {key}={','.join(vary[key] + split_values(values))}")
        parsed = split_values(values)
        if any(not v for v in parsed):
            raise InvlabError(f"--vary {quote(option)}: an empty value (two commas in a row, or one at the end); "
                              f"{example}")
        if len(set(parsed)) != len(parsed):
            raise InvlabError(f"--vary {quote(option)}: a value is listed twice; list each once")
        vary[key] = parsed
    n = 1
    for values in vary.values():
        n *= len(values)
    if n > MAX_COMBINATIONS:
        raise InvlabError(f"--vary makes {n} combinations (at most {MAX_COMBINATIONS} runs in one study); vary fewer "
                          "values, or split the study")
    return vary


def combinations(vary: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the varied values, the first key varying slowest."""
    return [dict(zip(vary, values)) for values in itertools.product(*vary.values())]


def study_configs(config: Path, overrides: list[str], vary: dict[str, list[str]]) -> list[tuple[dict, Config]]:
    """(values, Config) per combination, each checked now: a bad key or value names the --vary it came from."""
    if "name" in vary:
        raise ConfigError(f"--vary name={','.join(vary['name'])}: a study's runs are kept beside it, in "
                          "results/<name>/, so the name cannot vary; vary another key, or run each name as a study "
                          "of its own")
    out = []
    for values in combinations(vary):
        extra = [f"{k}={v}" for k, v in values.items()]
        try:
            cfg = load_config(config, list(overrides) + extra)
            resolve_device(cfg.device)  # a device this machine lacks is refused now, not after the runs before it
        except InvlabError as e:
            given = ", ".join(f"{k}={v}" for k, v in values.items())
            source = " ".join(f"--vary {k}={','.join(map(str, vary[k]))}" for k in values)
            raise ConfigError(f"in the study's combination {given} (of {source}): {e}") from None
        same = next((v for v, c in out if to_yaml(c) == to_yaml(cfg)), None)
        if same is not None:  # values written two ways (0 and 0.0, 1e-3 and 0.001): one run twice
            pair = " and ".join(", ".join(f"{k}={v}" for k, v in d.items()) for d in (same, values))
            raise ConfigError(f"--vary: the combinations {pair} give the same config (the same value written two "
                              "ways); list each value once")
        out.append((values, cfg))
    return out


# ------------------------------------------------------------------------------------------- the study


def _digest(configs: list[tuple[dict, Config]]) -> str:
    text = json.dumps([[values, aliased_yaml(cfg)] for values, cfg in configs], sort_keys=True)  # as studies had
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_study(config: Path, *, overrides: list[str], vary: list[str], results_dir: Path,
              run: Callable[[Config], Path], on_event: Say | None = None) -> Path:
    """Run every combination of `vary` (--vary options) over `config` with `run` (cfg -> its run folder, e.g.
    experiment.run_experiment with the command's options); returns the study folder. An unfinished study of the
    same combinations is resumed in its own folder."""
    say = on_event or (lambda msg: None)
    parsed = parse_vary(vary)
    if not parsed:
        raise InvlabError("a study needs at least one --vary KEY=V1,V2")
    configs = study_configs(config, overrides, parsed)
    digest = _digest(configs)
    name = configs[0][1].name
    folder, held = _resumable_study(results_dir, name, digest)
    if folder is None:
        folder = new_study_folder(results_dir, name)
        held = claim(folder)
        say(f"study folder: {folder} ({len(configs)} runs)")
    else:
        say(f"resuming study {folder}")
    study = dict(kind="study", name=name, digest=digest, config=str(config), overrides=list(overrides),
                 vary=parsed, status="running", started=_now(), **this_process(),
                 runs=[dict(values=values, overrides=[f"{k}={v}" for k, v in values.items()], run=None,
                            status="missing") for values, _ in configs])
    with held or Claim(None):  # held until the study ends: no other process resumes it meanwhile
        return _run_combinations(folder, study, configs, run, say)


def _resumable_study(results_dir: Path, name: str, digest: str) -> tuple[Path | None, Claim | None]:
    """The newest unfinished study of these combinations whose process is gone (or on another host: no process
    there holds its lock), claimed (store/claim.py), or (None, None). A study whose process on this host is alive
    (the same command started twice) is left to it."""
    def stopped(spec: dict) -> bool:  # said so; or "running" with its process gone, or unknown (another host)
        status = spec.get("status")
        return spec.get("digest") == digest and status != "complete" and (
            status != "running" or process_gone(spec) is not False)

    for folder, spec in reversed(studies(results_dir, name)):
        held = claim(folder) if stopped(spec) else None
        if held is None:
            continue
        try:
            if stopped(read_study(folder)):  # read again, now that it is ours
                return folder, held
        except BaseException:
            held.release()
            raise
        held.release()
    return None, None


def _run_combinations(folder: Path, study: dict, configs: list[tuple[dict, Config]], run: Callable[[Config], Path],
                      say: Say) -> Path:
    """Run each combination of a study not finished before, recording each in study.json as it goes."""
    if is_study(folder):  # resumed: keep the run folders found so far
        old = read_study(folder)
        for new, was in zip(study["runs"], old.get("runs", [])):
            if was.get("values") == new["values"]:
                new.update(run=was.get("run"), status=was.get("status", "missing"))
    write_json(folder / STUDY_FILE, study)
    try:
        for i, (values, cfg) in enumerate(configs):
            entry = study["runs"][i]
            words = f"study run {i + 1}/{len(configs)}: {', '.join(f'{k}={v}' for k, v in values.items())}"
            if entry["status"] == "complete" and _finished(folder, entry["run"]):  # resumed: kept as it is
                say(f"{words}: finished before ({entry['run']})")
                continue
            say(words)
            entry["status"] = "running"
            write_json(folder / STUDY_FILE, study)
            run_dir = run(cfg)
            entry.update(run=_run_entry(Path(run_dir), folder), status="complete")
            write_json(folder / STUDY_FILE, study)
    except BaseException as e:
        study["status"] = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        for entry in study["runs"]:
            if entry["status"] == "running":
                entry["status"] = study["status"]
        write_json(folder / STUDY_FILE, study)
        raise
    study.update(status="complete", finished=_now())
    write_json(folder / STUDY_FILE, study)
    return folder


def _finished(folder: Path, run: str | None) -> bool:
    """Whether study.json's `run` (<name>/<run id>) is a finished run folder beside the study folder."""
    try:
        path = _run_folder(folder, run)
        return path is not None and run_state(read_meta(path)) == "complete"
    except InvlabError:  # gone, damaged, or no run folder named: run it again
        return False


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _run_entry(run_dir: Path, folder: Path) -> str:
    """study.json's `run` of a run folder: <name>/<run id>, the path from the results folder. Run folders lie beside
    the study folder in results/<name>/, which may be a link to another disk (as `invlab run` allows): the path is
    taken as named, never resolved (a resolved run folder is not inside the results folder given)."""
    if not os.path.samefile(run_dir.parent, folder.parent):
        raise InvlabError(f"the run folder {run_dir} is not beside the study folder {folder}; a study's runs are "
                          f"kept in {folder.parent}")
    return str(Path(folder.parent.name) / run_dir.name)


def _beside(folder: Path) -> Path:
    """results/<name>/ holding the study folder and its runs: the folder above it as named (a linked results/<name>
    stays as named), or where a study folder that is itself a link leads."""
    named = Path(os.path.abspath(folder)).parent
    if named.is_dir() and os.path.samefile(named, Path(folder) / os.pardir):
        return named
    return (Path(folder) / os.pardir).resolve()


def study_state(study: dict) -> str:
    """study.json's status, or "interrupted (process gone)" for a study marked running whose process on this host
    is gone (killed without a chance to say so)."""
    status = str(study.get("status"))
    return "interrupted (process gone)" if status == "running" and process_gone(study) else status


def study_runs(folder: Path) -> list[tuple[dict, Path | None]]:
    """(values, run folder or None when not run yet) per combination of a study folder (read_study refuses one
    that lists no runs): study.json's <name>/<run id>, found beside the study folder."""
    return [(r.get("values", {}), _run_folder(folder, r.get("run"))) for r in read_study(folder)["runs"]]


def _run_folder(folder: Path, run: str | None) -> Path | None:
    """The run folder study.json's `run` (<name>/<run id>) names, beside the study folder; None until run."""
    if not run:
        return None
    run_id = Path(run).name
    if run_id in ("", ".", ".."):
        raise RunFolderError(f"{Path(folder) / STUDY_FILE}: run {quote(run)} names no run folder; each run is "
                             "<name>/<run id>, a folder beside the study folder (or null until run)")
    return _beside(folder) / run_id
