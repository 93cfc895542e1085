"""`eldercare optimise SPEC.toml --out DIR`: the search, the confirmation of the Pareto set on new
seeds, the plan's rule on the same runs, and the folder they are written to.

The folder holds manifest.json, evaluations.jsonl (the journal of finished runs: a search killed
at any moment resumes from it), and once the search is done trials.csv, summary.json,
pareto.png, optimise.html, chosen.toml, rule.toml and candidates/trial_<n>.toml (the Pareto set),
each replaced whole when a resumed or extended search finishes again.
"""

from __future__ import annotations

import html
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import asdict
from pathlib import Path

from sim.experiments.planning.output import Outcome, chart_png
from sim.experiments.planning.search import (
    RECHECK,
    RULE,
    RULE_TRIAL,
    SEARCH,
    VALIDATE,
    Candidate,
    Journal,
    Runner,
    estimate,
    open_folder,
    pareto,
    plan_line,
    progress_bar,
    rule_overrides,
    search,
    search_done,
    unreachable,
)
from sim.experiments.planning.section import optimise_section
from sim.experiments.planning.spec import OptimiseSpec, decision_overrides, with_rule_targets
from sim.experiments.results import (
    read_manifest,
    temp_path,
    undo,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)


def optimise(spec: OptimiseSpec, runner: Runner) -> Outcome:
    """Search, confirm the feasible Pareto candidates on the validation seeds (the chosen plan:
    the cheapest confirmed one), re-run the chosen plan at the recheck scale on new seeds (if no
    candidate met every constraint: the closest one, to see whether it misses them there too),
    and run the rule on the search's runs."""
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(phase: str) -> None:
        seconds[phase] = time.perf_counter() - t0 - sum(seconds.values())

    rule_runs = None
    if any(c.rule_target for c in spec.constraints):  # equal service: the rule's values first
        rule_runs = _rule(spec, runner)
        spec = runner.spec = with_rule_targets(spec, list(rule_runs.values()))
        lap(RULE)
    cands = search(spec, runner)
    lap(SEARCH)
    front = pareto(spec, cands)
    feasible = [c for c in front if c.feasible(spec)]
    if spec.validation_seeds and feasible:
        checks = [(v, s) for v, _ in spec.variants for s in spec.validation_seeds]
        runner.planned(len(feasible) * len(checks))
        jobs = [(c.number, c.values, decision_overrides(spec, c.values)) for c in feasible]
        done = runner.run(VALIDATE, jobs, checks)
        for c in feasible:
            c.runs[VALIDATE] = done[c.number]
        lap(VALIDATE)
    chosen = next(
        (c for c in feasible if VALIDATE not in c.runs or c.feasible(spec, VALIDATE)), None
    )
    closest = None
    if chosen is None and front and not feasible:
        closest = min(front, key=lambda c: (c.shortfall(spec), front.index(c)))
    again = chosen or closest
    if again is not None and spec.recheck_seeds:
        runs = [(v, s) for v, _ in spec.variants for s in spec.recheck_seeds]
        runner.planned(len(runs))
        job = [(again.number, again.values, decision_overrides(spec, again.values))]
        again.runs[RECHECK] = runner.run(RECHECK, job, runs, spec.recheck_scale)[again.number]
        lap(RECHECK)
    rule = None
    if spec.rule_beds_per_1000:
        if rule_runs is None:
            rule_runs = _rule(spec, runner)
            lap(RULE)
        rule = Candidate(RULE_TRIAL, {}, {SEARCH: rule_runs})
    return Outcome(
        spec, cands, front, chosen, rule, time.perf_counter() - t0, closest=closest,
        unreachable=unreachable(spec, cands), phase_seconds=seconds,
    )  # fmt: skip


def _rule(spec: OptimiseSpec, runner: Runner) -> dict:
    """The plan's rule on the search's runs: measures by (variant, seed)."""
    runner.planned(len(spec.evaluations))
    return runner.run(RULE, [(RULE_TRIAL, {}, rule_overrides(spec))], spec.evaluations)[RULE_TRIAL]


def run_optimise(
    spec: OptimiseSpec,
    out: str | Path,
    executor: Executor | None = None,
    progress: bool = True,
    workers: int = 1,
) -> Outcome:
    """Run (or resume) the optimisation into `out` and write its outputs. With `progress`,
    first prints the number of runs and an estimated time, then shows a progress bar. A new
    folder that gets no finished run is removed again."""
    out = Path(out)
    journal, created = open_folder(spec, out)
    try:
        if progress:
            done = search_done(spec, journal)
            seconds = estimate(spec) if done < spec.trials * len(spec.evaluations) else None
            print(plan_line(spec, done, workers, seconds), flush=True)
        with progress_bar(spec, journal, progress) as bar:

            def planned(n: int) -> None:
                bar.total += n
                bar.refresh()

            runner = Runner(spec, journal, executor, tick=lambda: bar.update(1), planned=planned)
            outcome = optimise(spec, runner)
    except BaseException:
        if created and not journal.records:
            undo([*created, out / "evaluations.jsonl"])
        raise
    write_outputs(outcome, out, rule_overrides(spec) if spec.rule_beds_per_1000 else None)
    return outcome


def write_outputs(outcome: Outcome, out: Path, rule: dict | None) -> None:
    """Write (replace) every output of the search; the candidates folder as a whole."""
    write_csv_atomic(outcome.table(), out / "trials.csv")
    _write_bytes(out / "pareto.png", chart_png(outcome))
    if outcome.chosen is not None:
        write_text_atomic(out / "chosen.toml", outcome.scenario_text(outcome.chosen))
    if rule is not None:
        write_text_atomic(out / "rule.toml", outcome.rule_text(rule))
    summary = {
        "chosen": outcome.chosen.number if outcome.chosen else None,
        "any_feasible": outcome.any_feasible,
        "pareto": [c.number for c in outcome.front],
        "rule": outcome.rule_comparison(),
        "closest": outcome.closest.number if outcome.closest else None,
        "unreachable": [outcome.spec.constraints[j].label for j in outcome.unreachable],
        "constraints": [asdict(m) for m in outcome.spec.constraints],  # targets resolved
        "recheck": outcome.recheck(),
        "seconds": outcome.seconds,
        "phase_seconds": outcome.phase_seconds,
        "runs": len(outcome.spec.evaluations) * len(outcome.candidates),
    }
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "optimise.html", render_page(out, "en"))
    folder = out / "candidates"
    tmp = temp_path(folder)
    tmp.mkdir()
    try:
        for c in outcome.front:
            (tmp / f"trial_{c.number}.toml").write_text(outcome.scenario_text(c), "utf-8")
        old = temp_path(folder, "old")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render_page(out: Path, lang: str = "en") -> str:
    """The optimisation in `out` as one self-contained HTML page (optimise.html): the report
    section (`section.optimise_section`) on its own."""
    style = (
        "body{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC',sans-serif;max-width:1200px;"
        "margin:auto;padding:0 16px}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}img{max-width:100%}"
        ".note{color:#555;font-size:13px}"
    )
    name = read_manifest(out)["name"]
    title = f"Taiyuan elderly care: {name}" if lang == "en" else f"太原市养老服务：{name}"
    return (
        f"<!doctype html><html lang='{'en' if lang == 'en' else 'zh-CN'}'><head>"
        f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body>{optimise_section(out, lang)}</body></html>"
    )


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = temp_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def summary_lines(outcome: Outcome) -> list[str]:
    """What the command prints at the end."""
    spec = outcome.spec
    lines = [
        f"{len(outcome.candidates)} candidates, Pareto set: "
        f"{', '.join(str(c.number) for c in outcome.front)}"
    ]
    if not outcome.any_feasible:
        lines.append("no candidate met every constraint")
        if outcome.unreachable:
            names = "; ".join(spec.constraints[j].label for j in outcome.unreachable)
            lines.append(
                f"  none met: {names} (infeasible within the levers' bounds, as far as the search "
                "saw); the Pareto set is of the candidates meeting the other constraints"
            )
        else:
            lines.append("  the Pareto set shows the least violation")
    shown = outcome.chosen or outcome.closest
    if shown is not None:
        values = ", ".join(f"{k} = {v:,.6g}" for k, v in shown.values.items())
        what = "chosen" if shown is outcome.chosen else "closest to the constraints"
        lines.append(f"{what}: trial {shown.number}: {values}")
        for m, v in zip(spec.objectives, shown.objectives(spec), strict=True):
            lines.append(f"  {m.label} = {v:,.6g}")
    again = outcome.recheck()
    if again is not None:
        lines.append(
            f"  re-run at scale {again['scale']:g} on seeds {again['seeds']}: constraints held in "
            + ", ".join(f"{v:.0%}" for v in again["held"].values())
            + f" of the runs: {'meets' if again['feasible'] else 'does not meet'} them ("
            + "; ".join(f"{k}: mean {v['mean']:,.4g}" for k, v in again["values"].items())
            + ")"
        )
    cmp = outcome.rule_comparison()
    if cmp is not None:
        lines.append(
            f"rule {cmp['ratio']:g} beds per 1,000: {cmp['cost_label']} = "
            f"{cmp['rule_cost']:,.6g}, feasible: {cmp['rule_feasible']}"
        )
        if cmp["match"]:
            m = cmp["match"]
            lines.append(
                f"  at equal service trial {m['trial']}: {m['cost']:,.6g} "
                f"({abs(m['saving_share']):.1%} {'less' if m['saving'] >= 0 else 'more'})"
            )
    return lines


def in_memory(
    spec: OptimiseSpec,
    tick: Callable[[], None],
    planned: Callable[[int], None],
    cancelled: Callable[[], bool],
) -> Outcome:
    """The search without a folder, in this process (the app)."""
    runner = Runner(spec, Journal(None), None, tick, planned, cancelled)
    return optimise(spec, runner)
