"""`eldercare optimise SPEC.toml --out DIR`: the search, the confirmation of the Pareto set on new
seeds, the plan's rule on the same runs, and the folder they are written to.

The folder holds manifest.json, evaluations.jsonl (the journal of finished runs: a search killed
at any moment resumes from it), and once the search is done trials.csv, summary.json,
pareto.png, optimise.html, chosen.toml, rule.toml and candidates/trial_<n>.toml (the Pareto set),
each replaced whole when a resumed or extended search finishes again.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from sim.experiments.planning.output import Outcome, chart_png, render_page
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
)
from sim.experiments.planning.spec import OptimiseSpec, decision_overrides
from sim.experiments.results import (
    temp_path,
    undo,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)


def optimise(spec: OptimiseSpec, runner: Runner) -> Outcome:
    """Search, confirm the feasible Pareto candidates on the validation seeds (the chosen plan:
    the cheapest confirmed one), re-run the chosen plan at the recheck scale on new seeds, and
    run the rule on the search's runs."""
    t0 = time.perf_counter()
    cands = search(spec, runner)
    front = pareto(spec, cands)
    feasible = [c for c in front if c.feasible(spec)]
    if spec.validation_seeds and feasible:
        checks = [(v, s) for v, _ in spec.variants for s in spec.validation_seeds]
        runner.planned(len(feasible) * len(checks))
        jobs = [(c.number, c.values, decision_overrides(spec, c.values)) for c in feasible]
        done = runner.run(VALIDATE, jobs, checks)
        for c in feasible:
            c.runs[VALIDATE] = done[c.number]
    chosen = next(
        (c for c in feasible if VALIDATE not in c.runs or c.feasible(spec, VALIDATE)), None
    )
    if chosen is not None and spec.recheck_seeds:
        runs = [(v, s) for v, _ in spec.variants for s in spec.recheck_seeds]
        runner.planned(len(runs))
        job = [(chosen.number, chosen.values, decision_overrides(spec, chosen.values))]
        chosen.runs[RECHECK] = runner.run(RECHECK, job, runs, spec.recheck_scale)[chosen.number]
    rule = None
    if spec.rule_beds_per_1000:
        runner.planned(len(spec.evaluations))
        done = runner.run(RULE, [(RULE_TRIAL, {}, rule_overrides(spec))], spec.evaluations)
        rule = Candidate(RULE_TRIAL, {}, {SEARCH: done[RULE_TRIAL]})
    return Outcome(spec, cands, front, chosen, rule, time.perf_counter() - t0)


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
    png = chart_png(outcome)
    write_csv_atomic(outcome.table(), out / "trials.csv")
    _write_bytes(out / "pareto.png", png)
    write_text_atomic(out / "optimise.html", render_page(outcome, png))
    if outcome.chosen is not None:
        write_text_atomic(out / "chosen.toml", outcome.scenario_text(outcome.chosen))
    if rule is not None:
        write_text_atomic(out / "rule.toml", outcome.rule_text(rule))
    summary = {
        "chosen": outcome.chosen.number if outcome.chosen else None,
        "any_feasible": outcome.any_feasible,
        "pareto": [c.number for c in outcome.front],
        "rule": outcome.rule_comparison(),
        "recheck": outcome.recheck(),
        "seconds": outcome.seconds,
        "runs": len(outcome.spec.evaluations) * len(outcome.candidates),
    }
    write_json_atomic(out / "summary.json", summary)
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
        lines.append("no candidate met the constraints (the Pareto set shows the least violation)")
    if outcome.chosen is not None:
        values = ", ".join(f"{k} = {v:,.6g}" for k, v in outcome.chosen.values.items())
        cost = outcome.chosen.objectives(spec)[0]
        lines.append(f"chosen: trial {outcome.chosen.number}: {values}")
        lines.append(f"  {spec.objectives[0].label} = {cost:,.6g}")
    again = outcome.recheck()
    if again is not None:
        lines.append(
            f"  re-run at scale {again['scale']:g} on seeds {again['seeds']}: constraints held in "
            + ", ".join(f"{v:.0%}" for v in again["held"].values())
            + f" of the runs: {'meets' if again['feasible'] else 'does not meet'} them"
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
                f"({m['saving_share']:.1%} less)"
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
