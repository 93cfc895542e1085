"""The search: Optuna proposes candidates (values of the decision variables), each is run on every
(variant, seed) of the spec with the same seeds for every candidate (common random numbers), and
told its objectives (means over the runs) and its constraint violations (see `violations`).

Why Optuna (5.1) and not the EMA Workbench's many-objective search: its ask-and-tell interface
lets the runs go to this package's own executors (a local process pool or Dask) with their
identity checks, and its samplers are deterministic given their seed and the results told, so a
search killed at any moment is resumed exactly: the journal (`evaluations.jsonl`, one line per
finished run) is replayed into a new study, which proposes the same candidates again, and only
the runs missing from the journal are made. TPE and NSGA-II both take the constraints
(`constraints_func`); candidates are proposed `batch` at a time (TPE with a constant liar), so
the candidates do not depend on the number of workers. The EMA Workbench's evaluators run the
model their own way (its multiprocessing evaluator hung on a model exception here, TOOLING.md)
and its search is not resumable.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.experiments.batch import duration, nested, plural, resolved_params, time_one_run
from sim.experiments.planning.spec import (
    CENTRAL,
    Measure,
    OptimiseSpec,
    decision_overrides,
    param_value,
)
from sim.experiments.results import (
    OutputError,
    RunIdentity,
    code_digest,
    code_version,
    holds_output,
    missing_dirs,
    package_versions,
    params_hash,
    read_manifest,
    remove_stale_temps,
    simulate,
    undo,
    write_json_atomic,
    write_text_atomic,
)
from sim.experiments.scenario import deep_merge
from sim.params.sections import Params
from sim.population.geography import allocate_largest_remainder

JOURNAL = "evaluations.jsonl"
KIND = "optimise"
SEARCH, VALIDATE, RULE, RECHECK = "search", "validate", "rule", "recheck"
RULE_TRIAL = -1  # the journal's trial number of the rule's runs
Key = tuple[str, int, str, int]  # phase, trial, variant, seed


# -- one run ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalTask:
    """One run of a candidate as sent to a worker (picklable)."""

    overrides: dict[str, Any]
    expected: RunIdentity
    measures: tuple[Measure, ...]


def evaluate(task: EvalTask) -> list[list[float]]:
    """Run the model; each measure's value in each of its districts. Executed in a worker."""
    want = task.expected
    frame = simulate(resolved_params(task.overrides, want), want.seed, want.scale, want.until)
    return measure_values(frame, task.measures)


def measure_values(frame: pd.DataFrame, measures: Iterable[Measure]) -> list[list[float]]:
    """Each measure's statistic over its months, per district named (NaN if a value is)."""
    out = []
    for m in measures:
        sel = frame[(frame["month"] >= m.first) & (frame["month"] <= m.last)]
        row = []
        for d in m.districts:
            values = sel.loc[sel["district"] == d, m.kpi].to_numpy(dtype=float)
            stat = {"sum": np.sum, "mean": np.mean, "min": np.min, "max": np.max}.get(m.stat)
            row.append(float(values[-1] if stat is None else stat(values)))
        out.append(row)
    return out


# -- the journal -----------------------------------------------------------------------------------
class Journal:
    """The finished runs of a search, one JSON line each (phase, trial, variant, seed, the
    candidate's values, the run's identity, the measures); appended and flushed to disk per run,
    so a kill loses at most the run being written (a torn last line is dropped on reading).
    `path` None: kept in memory only (the app)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.records: dict[Key, dict[str, Any]] = {}
        if path is None or not path.exists():
            return
        good = b""
        for line in path.read_bytes().splitlines(keepends=True):
            try:
                rec = json.loads(line) if line.endswith(b"\n") else None
            except ValueError:
                rec = None
            if not isinstance(rec, dict):
                break  # a torn last write
            self.records[_key(rec)] = rec
            good += line
        if len(good) != path.stat().st_size:
            write_text_atomic(path, good.decode())

    def get(self, key: Key, values: dict[str, float], expected: RunIdentity) -> list | None:
        """The measures of a finished run, if the journal has it; OutputError if it has that run
        made with other values, parameters or code (never mixed in)."""
        rec = self.records.get(key)
        if rec is None:
            return None
        if rec.get("values") != values or rec.get("identity") != asdict(expected):
            phase, trial, variant, seed = key
            raise OutputError(
                self.path or "journal",
                f"holds trial {trial} ({phase}, {variant}, seed {seed}) made with other values, "
                "parameters or code; choose another --out",
            )
        return rec["measures"]

    def add(self, key: Key, values: dict[str, float], identity: RunIdentity, measures) -> None:
        phase, trial, variant, seed = key
        rec = {
            "phase": phase,
            "trial": trial,
            "variant": variant,
            "seed": seed,
            "values": values,
            "identity": asdict(identity),
            "measures": measures,
        }
        self.records[key] = rec
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, allow_nan=True) + "\n")
                f.flush()
                os.fsync(f.fileno())


def _key(rec: dict[str, Any]) -> Key:
    return rec["phase"], rec["trial"], rec["variant"], rec["seed"]


# -- candidates ------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """A proposed mix of levers and its runs: measures by (variant, seed), per phase."""

    number: int
    values: dict[str, float]
    runs: dict[str, dict[tuple[str, int], list]] = field(default_factory=dict)

    def objectives(self, spec: OptimiseSpec, phase: str = SEARCH) -> list[float]:
        """Each objective's mean over the runs of `phase`."""
        runs = list(self.runs[phase].values())
        return [float(np.mean([r[i][0] for r in runs])) for i in range(len(spec.objectives))]

    def margins(self, spec: OptimiseSpec, phase: str = SEARCH) -> np.ndarray:
        """[constraint, run]: the margin in the worst of its districts (>= 0: it holds)."""
        n = len(spec.objectives)
        runs = list(self.runs[phase].values())
        return np.array(
            [
                [c.margin(np.asarray(r[n + j])).min() for r in runs]
                for j, c in enumerate(spec.constraints)
            ]
        ).reshape(len(spec.constraints), len(runs))

    def violations(self, spec: OptimiseSpec, phase: str = SEARCH) -> list[float]:
        """Per constraint: minus the margin of the run that decides whether it holds in its
        share of runs (the ceil(p n)-th best), so <= 0 exactly when it does; a continuous
        measure the sampler can follow towards feasibility."""
        out = []
        for c, m in zip(spec.constraints, self.margins(spec, phase), strict=True):
            need = math.ceil(c.probability * m.size - 1e-9)
            out.append(float(-np.sort(m)[m.size - need]))
        return out

    def feasible(self, spec: OptimiseSpec, phase: str = SEARCH, ignore: Iterable[int] = ()) -> bool:
        """Whether every constraint (but those indexed in `ignore`) holds in its share of runs."""
        skip = set(ignore)
        return all(v <= 0 for j, v in enumerate(self.violations(spec, phase)) if j not in skip)

    def shortfall(self, spec: OptimiseSpec, phase: str = SEARCH) -> float:
        """The total violation (0 when feasible): how far the candidate is from its constraints."""
        return sum(max(v, 0.0) for v in self.violations(spec, phase))

    def decisive_values(self, spec: OptimiseSpec, phase: str = SEARCH) -> list[list[float]]:
        """Per constraint, per run: the value in its worst district (the one that decides)."""
        n = len(spec.objectives)
        out = []
        for j, c in enumerate(spec.constraints):
            row = []
            for r in self.runs[phase].values():
                values = np.asarray(r[n + j], dtype=float)
                row.append(float(values[int(np.argmin(c.margin(values)))]))
            out.append(row)
        return out

    def held(self, spec: OptimiseSpec, phase: str = SEARCH) -> list[float]:
        """Per constraint: the share of runs in which it holds."""
        return [float((m >= 0).mean()) for m in self.margins(spec, phase)]


# -- running ---------------------------------------------------------------------------------------
@dataclass
class Runner:
    """Runs candidates' (variant, seed) runs: from the journal when there, else on the executor
    (None: this process), recording each in the journal as it finishes."""

    spec: OptimiseSpec
    journal: Journal
    executor: Executor | None = None
    tick: Callable[[], None] = lambda: None  # a run finished
    planned: Callable[[int], None] = lambda n: None  # n runs beyond the search's are coming
    cancelled: Callable[[], bool] = lambda: False

    def run(
        self,
        phase: str,
        jobs: list[tuple[int, dict[str, float], dict[str, Any]]],
        runs: Iterable[tuple[str, int]],
        scale: float | None = None,
    ) -> dict[int, dict[tuple[str, int], list]]:
        """Results by trial and (variant, seed) of jobs (trial, values, decision overrides), at
        `scale` (default: the spec's)."""
        spec = self.spec
        measures = (*spec.objectives, *spec.constraints)
        out: dict[int, dict[tuple[str, int], list]] = {t: {} for t, _, _ in jobs}
        todo = []
        for trial, values, over in jobs:
            resolved: dict[str, tuple[dict[str, Any], Params]] = {}
            for variant, seed in runs:
                if variant not in resolved:
                    overrides = deep_merge(spec.variant_overrides(variant), over)
                    resolved[variant] = overrides, Params().with_overrides(overrides)
                overrides, params = resolved[variant]
                identity = RunIdentity.of(params, seed, scale or spec.scale, spec.until)
                key = (phase, trial, variant, seed)
                found = self.journal.get(key, values, identity)
                if found is None:
                    todo.append((key, values, identity, EvalTask(overrides, identity, measures)))
                else:
                    out[trial][variant, seed] = found
        for (key, values, identity), measured in self._results(todo):
            self.journal.add(key, values, identity, measured)
            out[key[1]][key[2], key[3]] = measured
            self.tick()
        return out

    def _results(self, todo: list) -> Iterable[tuple[tuple, list]]:
        if self.executor is None:
            for key, values, identity, task in todo:
                if self.cancelled():
                    raise Cancelled
                yield (key, values, identity), evaluate(task)
            return
        futures: dict[Future, tuple] = {
            self.executor.submit(evaluate, task): (key, values, identity)
            for key, values, identity, task in todo
        }
        try:
            for fut in as_completed(futures):
                if self.cancelled():
                    raise Cancelled
                yield futures[fut], fut.result()
        finally:
            for fut in futures:
                fut.cancel()


class Cancelled(Exception):
    """The app's user cancelled the search."""


def _sampler(spec: OptimiseSpec):
    """The sampler, seeded; both read the constraints each trial records (`set_constraint`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(
            population_size=max(spec.batch, 4), seed=spec.sampler_seed
        )
    return optuna.samplers.TPESampler(seed=spec.sampler_seed, multivariate=True, constant_liar=True)


def _suggest(trial, spec: OptimiseSpec) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in spec.decisions:
        if d.integer:
            out[d.name] = trial.suggest_int(d.name, math.ceil(d.lo), math.floor(d.hi))
        else:
            out[d.name] = trial.suggest_float(d.name, d.lo, d.hi)
    return out


def search(spec: OptimiseSpec, runner: Runner) -> list[Candidate]:
    """Propose and evaluate `spec.trials` candidates, `spec.batch` at a time, in order."""
    import optuna

    directions = ["minimize" if m.goal == "minimise" else "maximize" for m in spec.objectives]
    study = optuna.create_study(directions=directions, sampler=_sampler(spec))
    found: list[Candidate] = []
    for start in range(0, spec.trials, spec.batch):
        trials = [study.ask() for _ in range(min(spec.batch, spec.trials - start))]
        batch = [Candidate(t.number, _suggest(t, spec)) for t in trials]
        jobs = [(c.number, c.values, decision_overrides(spec, c.values)) for c in batch]
        results = runner.run(SEARCH, jobs, spec.evaluations)
        for trial, cand in zip(trials, batch, strict=True):
            cand.runs[SEARCH] = results[cand.number]
            values = cand.objectives(spec)
            if any(v != v for v in values):  # a KPI without a value (e.g. no one in need)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            for j, v in enumerate(cand.violations(spec)):
                trial.set_constraint(f"c{j}", v)
            study.tell(trial, values)
            found.append(cand)
    return found


def unreachable(spec: OptimiseSpec, cands: list[Candidate]) -> list[int]:
    """The constraints (indices) that no candidate meets: infeasible within the levers' bounds as
    far as the search saw (empty if a candidate meets them all)."""
    if not cands or any(c.feasible(spec) for c in cands):
        return []
    every = range(len(spec.constraints))
    return [j for j in every if all(c.violations(spec)[j] > 0 for c in cands)]


def pareto(spec: OptimiseSpec, cands: list[Candidate]) -> list[Candidate]:
    """The non-dominated feasible candidates (all objectives, in their directions). If none is
    feasible: the non-dominated candidates that meet every constraint some candidate meets (those
    no candidate meets, `unreachable`, set aside and reported); if none does either, the
    candidates with the least total violation."""
    pool = [c for c in cands if c.feasible(spec)]
    if not pool:
        skip = unreachable(spec, cands)
        pool = [c for c in cands if skip and c.feasible(spec, ignore=skip)]
    if not pool:
        least = min((c.shortfall(spec) for c in cands), default=0)
        return [c for c in cands if c.shortfall(spec) == least]
    sign = np.array([1 if m.goal == "minimise" else -1 for m in spec.objectives])
    points = np.array([c.objectives(spec) for c in pool]) * sign
    keep = [
        i for i, p in enumerate(points) if not any((q <= p).all() and (q < p).any() for q in points)
    ]
    return sorted((pool[i] for i in keep), key=lambda c: c.objectives(spec)[0] * sign[0])


# -- the plan's rule -------------------------------------------------------------------------------
_RULE_ADDED = ("policy.public_beds_added", "policy.private_beds_added", "policy.medical_beds_added")
_RULE_STOCK = ("policy.public_beds_2015", "policy.private_beds_2015", "policy.medical_beds_2015")
_RULE_AFTER = "policy.beds_added_per_year_after_2020"  # public, private, integrated


def rule_overrides(spec: OptimiseSpec) -> dict[str, Any]:
    """The plan's rule as a schedule: beds grow evenly from the end-2015 stock to `ratio` per
    1,000 projected residents 60+ at the end of 2020, then each year by the same number to keep
    the ratio at the end of the run's last year; split among public, private and integrated beds
    as the base scenario splits its 2016-2020 additions (the plan: 3,600 / 13,752 / 5,734).
    Residents 60+ from the deterministic projection of the central variant."""
    from sim.population.projection import project

    params = spec.scenario.params
    ratio = float(spec.rule_beds_per_1000 or 0.0) / 1000
    proj = project(params)
    added = [param_value(params, p) for p in _RULE_ADDED]
    shares = np.array([sum(a) for a in added], dtype=float)
    shares = shares if shares.sum() > 0 else np.ones(3)
    stock = sum(param_value(params, p) for p in _RULE_STOCK)
    at_2020 = ratio * proj.on(2021)["60+"]
    years = len(added[0])
    per_year = allocate_largest_remainder(max(round(at_2020 - stock), 0), np.ones(years))
    by_kind = [allocate_largest_remainder(int(n), shares) for n in per_year]
    out: dict[str, Any] = {}
    for k, path in enumerate(_RULE_ADDED):
        out = deep_merge(out, nested(path, [int(b[k]) for b in by_kind]))
    last = int(spec.until[:4])
    after = 0
    if last > 2020:
        after = max(round((ratio * proj.on(last + 1)["60+"] - at_2020) / (last - 2020)), 0)
    return deep_merge(out, nested(_RULE_AFTER, allocate_largest_remainder(after, shares).tolist()))


# -- the folder ------------------------------------------------------------------------------------
def spec_manifest(spec: OptimiseSpec) -> dict[str, Any]:
    base = Params().with_overrides(spec.scenario.overrides)
    return {
        "kind": KIND,
        "name": spec.name,
        "description": spec.description,
        "source": spec.source,
        "scenario": spec.scenario.manifest(),
        "variants": [name for name, _ in spec.variants],
        "seeds": list(spec.seeds),
        "validation_seeds": list(spec.validation_seeds),
        "until": spec.until,
        "scale": spec.scale,
        "trials": spec.trials,
        "batch": spec.batch,
        "sampler": spec.sampler,
        "sampler_seed": spec.sampler_seed,
        "decisions": [asdict(d) for d in spec.decisions],
        "objectives": [asdict(m) for m in spec.objectives],
        "constraints": [asdict(m) for m in spec.constraints],
        "rule_beds_per_1000": spec.rule_beds_per_1000,
        "recheck": {"scale": spec.recheck_scale, "seeds": list(spec.recheck_seeds)},
        "fingerprint": spec.fingerprint(),
        "params_hash": params_hash(base),
        "versions": package_versions(),
        "code_version": code_version(),
        "code_digest": code_digest(),
    }


def check_folder(spec: OptimiseSpec, out: str | Path) -> bool:
    """Whether `out` holds this search already (True: resume) or can take it (False: missing or
    empty); OutputError, nothing changed, for a folder holding anything else, another search, or
    this one made by other code or with other resolved parameters."""
    out = Path(out)
    if not holds_output(out):
        return False
    tail = "; choose another --out (nothing was changed)"
    old = read_manifest(out)
    if old is None or old.get("kind") != KIND:
        what = f"an eldercare {old['kind']} output" if old and "kind" in old else "other files"
        raise OutputError(out, f"holds {what}{tail}")
    here = spec_manifest(spec)
    for key, what in (
        ("fingerprint", "a different optimisation"),
        ("code_digest", "evaluations made by other code (resume with that code)"),
        ("params_hash", "evaluations made with other resolved parameters (see "
                        "ELDERCARE_FITTED and calibration/fitted.toml)"),
    ):  # fmt: skip
        if old.get(key) != here[key]:
            raise OutputError(out, f"holds {what}{tail}")
    return True


def open_folder(spec: OptimiseSpec, out: str | Path) -> tuple[Journal, list[Path]]:
    """Create the folder or reopen this search's (see check_folder); returns the journal and
    what this call created (to undo if the search never finishes a run)."""
    out = Path(out)
    here = spec_manifest(spec)
    if not check_folder(spec, out):
        created = [*missing_dirs(out), out / "manifest.json"]
        try:
            out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(out / "manifest.json", here)
        except BaseException:
            undo(created)
            raise
        return Journal(out / JOURNAL), created
    remove_stale_temps(out)
    if read_manifest(out) != here:  # e.g. more trials: the manifest says what it now holds
        write_json_atomic(out / "manifest.json", here)
    return Journal(out / JOURNAL), []


def plan_line(spec: OptimiseSpec, done: int, workers: int, seconds: float | None) -> str:
    """e.g. '120 candidates x 6 runs (3 variants x 2 seeds) = 720 runs, about 7 min with 2
    workers; then the best on 2 new seeds, and the rule'."""
    per = len(spec.evaluations)
    total = spec.trials * per
    line = (
        f"{plural(spec.trials, 'candidate')} x {plural(per, 'run')} "
        f"({plural(len(spec.variants), 'variant')} x {plural(len(spec.seeds), 'seed')}) = "
        f"{plural(total, 'run')}"
    )
    todo = total - done
    if done:
        line += f", {todo:,} to do"
    if todo and seconds is not None:
        line += f", about {duration(math.ceil(todo / workers) * seconds)} with "
        line += plural(workers, "worker")
    after = []
    if spec.validation_seeds:
        after.append(f"the Pareto set on {plural(len(spec.validation_seeds), 'new seed')}")
    if spec.rule_beds_per_1000:
        after.append(f"the {spec.rule_beds_per_1000:g}-beds-per-1,000 rule")
    return line + (f"; then {' and '.join(after)}" if after else "")


def estimate(spec: OptimiseSpec) -> float:
    """Seconds one run takes here (the base scenario, central variant, first seed)."""
    params = Params().with_overrides(spec.variant_overrides(CENTRAL))
    return time_one_run(params, spec.seeds[0], spec.scale, spec.until)


def search_done(spec: OptimiseSpec, journal: Journal) -> int:
    """The search's runs already in the journal."""
    return sum(1 for k in journal.records if k[0] == SEARCH and k[1] < spec.trials)


@contextlib.contextmanager
def progress_bar(spec: OptimiseSpec, journal: Journal, show: bool):
    """A tqdm bar over the search's runs (started at those in the journal)."""
    from tqdm import tqdm

    total = spec.trials * len(spec.evaluations)
    done = search_done(spec, journal)
    with tqdm(
        total=total,
        initial=min(done, total),
        desc=f"optimise {spec.name}",
        unit="run",
        disable=not show,
    ) as bar:
        yield bar
