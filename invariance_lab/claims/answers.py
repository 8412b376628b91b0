"""The question's claims answered: run configs/question_claims.yaml (or reuse its run), add the sweeps the claims
need (claims.SWEEPS: reused when the run folder already holds them), judge every claim (claims.py), and render
the answers page (docs/answers.md is one). `invlab claims` is write_answers, which makes these three calls and
writes the page:

    run_dir = claims_run(load_config("configs/question_claims.yaml"), results_dir=Path("results"), threads=1)
    answers = answer_claims(run_dir, threads=1)
    text = render_answers(answers, config="configs/question_claims.yaml", wall_s=312.0, load=(2.1, 3.4))
    answers = write_answers(Path("configs/question_claims.yaml"), threads=1)  # the page: <run folder>/answers.md
    answers = write_answers(Path("configs/question_claims.yaml"), out_file=Path("docs/answers.md"), threads=1)
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


from .claims import Claim, judge_all
from .evidence import Finding
from .part_focus import FOLDER, check_parts, current, load_part_focus, part_focus
from .protocol import protocol_words
from .rules import (AGREE_TV, ALPHA, APPROX_EQUIVARIANCE, APPROX_FLIP, CIRCULAR, EXACT_EQUIVARIANCE, EXACT_TV,
    MIN_REMOVAL, PART_SPAN, POWER, VERDICTS, check_claim_models)
from ..schema.config import Config, SweepConfig
from ..config.load import aliased_yaml, load_config, read_yaml, to_yaml
from ..report.display import CLIP_MARK
from ..report.protocol import protocol_lines
from ..core.errors import InvlabError
from ..run.executors import check_jobs
from ..run.experiment import run_experiment, sweep_experiment
from ..run.trust import check_config_trust
from ..store.results import Result, load_result
from ..store.layout import ANSWERS_FILE, CONFIG_FILE, SWEEP_DIR, SWEEP_FILE
from ..store.meta import read_meta, run_state
from ..run.writable import output_file, writable
from ..store.atomic import write_page
from ..store.find import config_digest, finished_runs, require_finished_run, same_config
from ..data.shifts import every_roll

Say = Callable[[str], None]
ANSWERS_MARK = "Written by `invlab claims`"  # in every page's intro: an existing page holding it may be replaced
TITLE = "# The question's claims, tested"  # every page's first line


@dataclass(frozen=True)
class SweepPlan:
    """An extra sweep of the run's checkpoints (experiment.sweep_experiment); span None = every roll."""

    key: str
    words: str  # what it measures, for the page
    models: tuple[str, ...]
    kind: str = "translation"
    mode: str = "circular"
    grid: str = "product"
    span: int | None = None
    engine: str = "auto"
    layers: bool = False
    layer_images: int = 100

    def settings(self, cfg: Config) -> SweepConfig:
        rng = every_roll(cfg.data.canvas) if self.span is None else [-float(self.span), float(self.span), 1.0]
        return SweepConfig(mode=self.mode, dx=rng, dy=rng, grid=self.grid, batch_size=cfg.sweep.batch_size)

    def command(self, cfg: Config, run: str = "RUN") -> str:
        """The `invlab sweep` line that makes the same folder (answers.py reuses it)."""
        s = self.settings(cfg)
        if self.span is None and self.grid == "product":
            shifts = "--all-shifts"
        else:
            shifts = " ".join(f"--{a} {v[0]:g}:{v[1]:g}" for a, v in (("dx", s.dx), ("dy", s.dy)))
            shifts = (f"--kind parts {shifts}" if self.kind == "parts" else
                      f"--mode {self.mode} {shifts} --grid {self.grid}")
        extra = (" --engine brute" if self.engine == "brute" else "") + \
            (f" --layers --layer-images {self.layer_images}" if self.layers else "")
        return f"invlab sweep {run} {shifts}{extra} --models {','.join(self.models)} --threads 1"


SWEEPS = {p.key: p for p in (
    SweepPlan("every_roll", "every circular shift of the canvas (the whole translation group), all-shift engine",
              CIRCULAR),
    SweepPlan("layers", "circular shifts over the whole canvas along each axis, brute force (one forward pass per "
              "shift), with the layer profile", CIRCULAR + ("gap_zeros",), grid="axes", engine="brute", layers=True),
)}
# claim 2's experiment is no sweep: it keeps every image's change (part_focus.py), in <run>/part_focus/
PART_FOCUS_WORDS = (f"per glyph the stroke, or pair of strokes, whose removal changes the most predictions, removed "
                    f"(the control) and moved by -{PART_SPAN}..{PART_SPAN} px in x and y, the rest in place; every "
                    f"image's change")


def claims_run(cfg: Config, *, results_dir: Path, progress: bool = False, threads: int | None = None,
               on_event: Say | None = None, factory_dirs: list[Path] | None = None, jobs: int = 1) -> Path:
    """The newest finished run of exactly this config (the same digest), else run_experiment (which resumes an
    interrupted run and reuses every matching checkpoint). Whether the run was made earlier: its meta.json's
    "finished" time (render_answers says which)."""
    say = on_event or (lambda msg: None)
    check_claim_models(cfg)  # before any training: the claims read these models, and claim 2 their letters' parts
    check_parts(cfg.data)
    digests = (config_digest(to_yaml(cfg)), config_digest(aliased_yaml(cfg)))  # aliased: a run made before
    done = [f for f, m in finished_runs(Path(results_dir), cfg.name) if same_config(m, digests)]
    if done:
        say(f"using the finished run {done[-1]}")
        return done[-1]
    return run_experiment(cfg, results_dir=Path(results_dir), progress=progress and jobs == 1, threads=threads,
                          on_event=on_event, factory_dirs=factory_dirs, jobs=jobs)


def find_sweep(run_dir: Path, plan: SweepPlan, cfg: Config) -> Path | None:
    """The newest complete sweep folder of run_dir made with plan's settings (any superset of its models)."""
    want = plan.settings(cfg).model_dump(mode="json")
    for folder in sorted((Path(run_dir) / SWEEP_DIR).glob("*"), reverse=True):
        try:
            meta, spec = read_meta(folder), read_yaml(folder / SWEEP_FILE)  # a file, of a config's size, UTF-8 YAML
        except InvlabError:
            continue
        p = meta.get("protocol", {})
        if (run_state(meta) != "complete" or not isinstance(spec, dict) or spec.get("sweep") != want
                or spec.get("kind") != plan.kind or not set(plan.models) <= set(spec.get("models") or ())):
            continue
        if plan.layers and not (spec.get("layers") and (p.get("layers") or {}).get("n_images")
                                == min(plan.layer_images, p.get("test_images", 0))):
            continue
        if plan.engine == "brute" and p.get("engine") != "brute":
            continue
        return folder
    return None


@dataclass
class Answers:
    cfg: Config
    folders: dict[str, Path]  # "run" and the keys of claims.SWEEPS
    reused: dict[str, bool]  # per sweep: found in the run folder rather than made now
    results: dict[str, Result]
    findings: list[tuple[Claim, Finding]]


def answer_claims(run_dir: Path, *, threads: int | None = None, progress: bool = False,
                  on_event: Say | None = None, jobs: int = 1) -> Answers:
    """Every claim judged on a finished run of the claims config, its extra sweeps made (or reused) first (jobs > 1:
    each sweep's models in shares, in worker processes, with the same tables)."""
    say = on_event or (lambda msg: None)
    require_finished_run(run_dir)
    cfg = load_config(Path(run_dir) / CONFIG_FILE)
    check_claim_models(cfg)
    check_parts(cfg.data)
    folders, reused = {"run": Path(run_dir)}, {}
    for key, plan in SWEEPS.items():
        found = find_sweep(run_dir, plan, cfg)
        reused[key] = found is not None
        if found is not None:
            say(f"reusing sweep {found} ({key})")
        else:
            say(f"sweep {key}: {plan.words}")
            found = sweep_experiment(Path(run_dir), plan.settings(cfg), models=list(plan.models), kind=plan.kind,
                                     layers=plan.layers, layer_images=plan.layer_images, progress=progress,
                                     threads=threads, on_event=on_event, engine=plan.engine, jobs=jobs)
        folders[key] = found
    reused["part_focus"] = current(Path(run_dir) / FOLDER)
    say(("reusing claim 2's part experiment: " if reused["part_focus"] else "claim 2's part experiment: ")
        + PART_FOCUS_WORDS)
    folders["part_focus"] = part_focus(Path(run_dir), threads=threads)
    results = {k: load_result(f) for k, f in folders.items() if k in SWEEPS or k == "run"}
    results["part_focus"] = load_part_focus(folders["part_focus"])
    return Answers(cfg, folders, reused, results, judge_all(cfg, results))


# ----------------------------------------------------------------------------------------------- the page


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{seconds:.1f} s"


def _where(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):  # elsewhere, or the current folder was deleted while claims ran
        return str(path)


def _timing(a: Answers, wall_s: float | None, load: tuple[float, float] | None, since: str | None) -> str:
    """The invocation's wall time and what it spent it on: what was made now, what was reused from earlier."""
    meta = a.results["run"].meta
    timings, trained = meta.get("timings", {}), meta.get("trained", [])
    train_s = sum(v for k, v in timings.get("train_s", {}).items() if k in trained)
    run = (f"{len(trained)} networks trained ({train_s:.0f} s), {len(meta.get('reused', {}))} reused from earlier "
           f"runs, its own sweep {timings.get('sweep_s', 0):.0f} s")
    if since is not None and str(meta.get("started", "")) < since:
        run = f"made earlier and reused ({run}; {timings.get('total_s', 0):.0f} s in all)"
    sweeps = ", ".join(f"{k} {a.results[k].meta.get('timings', {}).get('total_s', 0):.0f} s"
                       + (" (made earlier, reused)" if a.reused[k] else "") for k in a.reused)
    head = f"**{_minutes(wall_s)}** wall time" if wall_s is not None else "wall time not measured"
    machine = f"{os.cpu_count()} CPU cores"
    if load:
        machine += f", load average {load[0]:.1f} at the start and {load[1]:.1f} at the end"
    return f"{head} (run: {run}; extra sweeps: {sweeps}) on {machine}"


def _environment(meta: dict) -> str:
    env = meta.get("environment") or {}
    v = env.get("versions") or {}
    return (f"{env.get('cpu', '?')} ({env.get('cpu_threads', '?')} threads), torch {v.get('torch', '?')} with "
            f"{env.get('torch_threads', '?')} thread(s), device {meta.get('device', '?')}, "
            f"Python {env.get('python', '?')}, git commit {str(env.get('git_commit', '?'))[:10]}")


def _commands(c: Claim, a: Answers, config: str) -> list[str]:
    run = _where(a.folders["run"])
    lines = [f"invlab claims {config} --threads 1    # the whole page"]
    for s in c.sources:
        if s == "run":
            lines += [f"invlab run {config} --threads 1", f"invlab report {run} --format markdown"]
        else:
            if s not in SWEEPS:  # claim 2's part experiment: made by `invlab claims` alone
                continue
            by = " --by layer" if SWEEPS[s].layers else ""
            lines += [SWEEPS[s].command(a.cfg, run), f"invlab report {_where(a.folders[s])}{by} --format markdown"]
    return list(dict.fromkeys(lines))


def _intro(a: Answers, config: str) -> str:
    shift = a.cfg.data.train_shift  # the run's own protocol, as it ran (not the default config's)
    trained = ("letters always centred in training, so whatever invariance a network shows comes from its "
               "architecture" if shift == 0 else f"letters moved by up to {shift:g} px in training, so some of a "
               "network's invariance may be learned from the data")
    return ("*How do max pooling, strides and global pooling make a CNN invariant to translation?* The question's "
            "author and its two answers made six claims; padding, the fourth part of invlab's question, is not among "
            "them (docs/results.md's position probe and docs/studies.md's factorial show what it does). Each claim is "
            "tested here by experiment on the lab's letters "
            f"({protocol_words(a.cfg)['letters']}, {a.cfg.data.canvas} px canvas, {trained}), "
            f"{len(a.cfg.seeds)} seeds per network; numbers are mean ± "
            "95% CI over seeds. TV is the total-variation change of the softmax output (for two classes, the change "
            "of the probability of the class predicted before the shift). Written by `invlab claims` from the run "
            f"`{a.results['run'].label}` ({len(a.cfg.models)} networks × {len(a.cfg.seeds)} seeds, config "
            f"`{config}`), not by hand: `tests/claims/test_claims.py` checks the direction of every verdict on a "
            "reduced run, and that this page states the same verdicts. The networks are this config's own (their "
            "widths, data and training are set there): a network of the same name in another config's run, such as "
            "the main run's conv_gap, is another network, and its numbers differ. docs/metrics.md defines the terms "
            "(flip rate, TV, tap, total stride, lattice, all-shift engine).")


def _thresholds() -> list[str]:
    return [(f"- *Exact invariance*: no image of any seed changes its softmax output by more than {EXACT_TV:g} in "
            "total variation (float32 round-off; the `--all-shifts` certificate's rule)."),
            ("- *Exact equivariance*: relative error ||F(Tx) − T′F(x)|| / ||F(x)|| at most "
            f"{EXACT_EQUIVARIANCE:g} at every tap, shift and seed; at most {APPROX_EQUIVARIANCE:g}: approximately."),
            f"- *Approximately invariant*: mean flip rate over the shifts at most {APPROX_FLIP:g}.",
            ("- *Clearly lower / higher*: the two 95% intervals over seeds (cut to [0, 1]) do not overlap; otherwise "
            "the difference is within the seed spread."),
            ("- A claim whose deciding networks have a seed at chance is *undecided*: a network that answers one "
            "class for every image never changes its mind."),
            ("- Exactness under every circular shift comes from the all-shift engine and is checked by brute force "
            "(one forward pass per shift) on the shifts along both axes; they must agree within "
            f"{AGREE_TV:g}, or the verdict is undecided. Verdicts: {', '.join(VERDICTS)}."),
            (f"- *A displaced part* (claim 2): a paired t-test over the test images at p < {ALPHA:g} (two-sided), each "
             f"image's change averaged over the seeds; its power is stated as the difference it detects with "
             f"{POWER:.0%} power. Its units are the images, which share their networks, so its p speaks of these "
             "trained networks, not of every network of the architecture: the seeds are also read one by one. "
             "The part must be one the networks use: removing it changes at least "
             f"{MIN_REMOVAL:.0%} of both networks' predictions, or the pair *cannot be tested here*."),
            ("- Where the networks that decide a claim differ, the verdict says so per network (*holds for some "
             "networks only*), and the verdict table carries each verdict's conditions: networks outside them "
             "(zero padding or stride 2 for claims 1 and 4) are reported there, not counted against the claim.")]


def render_answers(a: Answers, *, config: str = "configs/question_claims.yaml", wall_s: float | None = None,
                   load: tuple[float, float] | None = None, since: str | None = None) -> str:
    """docs/answers.md: the verdict table, then per claim the experiment, the numbers, the verdict, the rule and
    the commands that reproduce it; the thresholds; where every number came from. wall_s, load (1-minute load
    averages at the start and the end) and since (the invocation's start, ISO time: a run started before it was
    reused) describe the invocation that made the page."""
    time = (f"Time: {_timing(a, wall_s, load, since)}. Reproduce: `invlab claims {config} --threads 1` (it reuses "
            "a finished run of the same config and the sweeps already in its folder).")
    out = [TITLE, "", _intro(a, config), "", time, "", "## Verdicts", "",
           "| # | claim | verdict | when, and the numbers that say so |", "|---:|---|---|---|"]
    out += [f"| {c.number} | {c.text} | **{f.verdict}**{f' {f.scope}' if f.scope else ''} | {f.condition} |"
            for c, f in a.findings]
    words = protocol_words(a.cfg)  # the experiments name the run's own letters, canvas and shifts
    out += ["", "## Thresholds", "", *_thresholds(), ""]
    for c, f in a.findings:
        out += [f"## {c.number}. “{c.text}”", "", f"**Experiment.** {c.experiment.format_map(words)}", "",
                "| quantity | model | value |", "|---|---|---:|", *(f"| {q} | {m} | {v} |" for q, m, v in f.numbers),
                "", f"**Verdict: {f.verdict}.** {f.condition[:1].upper()}{f.condition[1:]}.", "",
                f"**Rule.** {c.rule}", "",
                "**Reproduce.**", "", "```", *_commands(c, a, config), "```", ""]
    out += ["## Where the numbers come from", ""]
    for key, r in a.results.items():
        if key == "part_focus":
            out.append(f"- `{_where(a.folders[key])}` ({PART_FOCUS_WORDS}): {r.meta['n_images']} test images × "
                       f"{len(r.meta['seeds'])} seeds × {len(r.meta['settings']['models'])} networks; parts.csv "
                       "(the part chosen per glyph), images.csv (every image's change)")
            continue
        what = "the run's own sweep" if key == "run" else SWEEPS[key].words
        out.append(f"- `{_where(a.folders[key])}` ({what}): {protocol_lines([r])[0]}")
    clipped = (f"{CLIP_MARK} the 95% interval reaches outside the range [0, 1] of the quantity, so it is cut there "
               "and shown as mean [low, high].")
    out += ["", clipped, "", f"Environment of the run: {_environment(a.results['run'].meta)}.", ""]
    return "\n".join(out)


def invocation(config: Path | str, overrides: list[str] | None = None) -> str:
    """The config as the page's commands must name it: its path, then each --set it was given (shell-quoted), so
    that `invlab claims <this>` and `invlab run <this>` make the same run again."""
    return shlex.join([str(config), *(w for o in overrides or [] for w in ("--set", o))])


def answers_page(run_dir: Path, out_file: Path | None = None) -> Path:
    """Where `invlab claims` writes its page: out_file (--out) if given, else <run folder>/answers.md."""
    return Path(out_file) if out_file is not None else Path(run_dir) / ANSWERS_FILE


def write_answers(config: Path, *, overrides: list[str] | None = None, out_file: Path | None = None,
                  results_dir: Path = Path("results"), threads: int | None = None, progress: bool = False,
                  on_event: Say | None = None, force: bool = False, trust_factory: bool = False,
                  jobs: int = 1) -> Answers:
    """`invlab claims`: run `config` (or reuse its finished run), make or reuse the sweeps, judge every claim and
    write the answers page (atomically) to out_file, or by default into the run folder (answers_page); returns the
    Answers (answers.folders["run"]: the run). An existing page is replaced only when invlab wrote it (it holds
    ANSWERS_MARK) or with `force`; never a link, device, FIFO or folder, nor a file of another results folder.
    jobs > 1: the run's units and each sweep's models in worker processes (the same numbers as jobs 1)."""
    t0, load0, since = time.perf_counter(), os.getloadavg()[0], datetime.now().isoformat(timespec="seconds")
    check_jobs(jobs, "processes")  # jobs > 1: the run's units and each sweep's models in worker processes
    if out_file is not None:  # refused before the work of making it
        output_file(out_file, "--out", "answers.md", marker=ANSWERS_MARK.encode(), starts=TITLE.encode(), force=force)
    cfg = load_config(config, list(overrides or []))
    check_config_trust(cfg, config, trusted=trust_factory)  # a run folder's config: its factories on your word only
    run_dir = claims_run(cfg, results_dir=writable(results_dir, "--results-dir", create=False), progress=progress,
                         threads=threads, on_event=on_event, factory_dirs=[config.parent], jobs=jobs)
    answers = answer_claims(run_dir, threads=threads, progress=progress, on_event=on_event, jobs=jobs)
    text = render_answers(answers, config=invocation(config, overrides), wall_s=time.perf_counter() - t0,
                          load=(load0, os.getloadavg()[0]), since=since)
    page = answers_page(run_dir, out_file)
    if out_file is not None:  # checked again: a file of someone else's may have come to that name meanwhile
        output_file(out_file, "--out", "answers.md", marker=ANSWERS_MARK.encode(), starts=TITLE.encode(), force=force)
    else:  # the run folder's own page
        # no --out was given: the message names the page itself (--force replaces it, --out writes elsewhere)
        output_file(page, "the run's answers page", "answers.md", marker=ANSWERS_MARK.encode(), starts=TITLE.encode(),
                    force=force, inside=run_dir, instead="remove the link and run the same command again (the run "
                    "and its sweeps are kept and reused), or write the page elsewhere with --out FILE")
    write_page(page, text)  # a temporary file renamed: a half-written page never looks complete
    return answers
