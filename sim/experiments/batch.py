"""Batches of runs (parameter sweeps x replications) and sensitivity analysis.

A batch file (TOML):

    name = "price sweep"
    scenario = "plan_2016_2020"     # a shipped scenario name or a path (relative to this file)
    replications = 5                # seeds = seed, seed+1, ... (the same for every point)
    seed = 1                        # optional, first seed (default 1)
    # or: seeds = [1, 7, 9]         # instead of replications and seed
    until = "2017-12"               # optional (default: the scenario's)
    scale = 100                     # optional (default: the scenario's)

    [sweep]
    method = "grid"                 # or "lhs"
    n = 8                           # lhs only: number of points
    seed = 1                        # lhs only: sampling seed
    [sweep.levers]
    "money.price_private_home" = [2000.0, 3000.0]   # grid: values; lhs: [lo, hi]

The runner takes any `concurrent.futures.Executor` (`open_executor`: this process, a process
pool or Dask). Each run is written atomically to runs/point=<i>_seed=<s>.parquet with its identity
(`results.RunIdentity`: resolved parameters, code, seed, scale, last month). A batch started again
skips the runs that read back whole as its own, redoes the others, and refuses a folder whose
manifest records other parameters or code; a worker checks that it would make the run the client
expects before making it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import re
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from sim.engine.calendar import month_index
from sim.engine.process import configure
from sim.experiments.results import (
    HOST,
    KEY_KPIS,
    IdentityError,
    OutputError,
    RunIdentity,
    code_digest,
    code_version,
    holds_output,
    interval_summary,
    missing_dirs,
    package_versions,
    params_hash,
    read_manifest,
    read_run_table,
    remove_stale_temps,
    simulate,
    undo,
    write_csv_atomic,
    write_json_atomic,
    write_run,
)
from sim.experiments.scenario import (
    Scenario,
    ScenarioError,
    apply_params,
    check_scale,
    check_seed,
    check_until,
    deep_merge,
    load_scenario,
    read_toml,
    resolve_path,
    unknown_key,
)
from sim.kpis.frame import CITY
from sim.params.declare import ParamInfo
from sim.params.sections import Params

BATCH_KEYS = ("name", "description", "scenario", "replications", "seed", "seeds", "until", "scale",
              "sweep")  # fmt: skip
SWEEP_KEYS = ("method", "levers", "n", "seed")
MAX_RUNS = 100_000
CONNECT_TIMEOUT_S = 10  # to reach a Dask scheduler
WATCH_S = 0.5  # how often a pool worker checks that the batch still wants it
DASK_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[\w.-]+):(\d{1,5})")


class ClusterError(RuntimeError):
    """Workers that cannot be started or reached (exit 2 in the CLI)."""


@dataclass(frozen=True)
class BatchSpec:
    name: str
    source: str
    scenario: Scenario
    seeds: tuple[int, ...]
    until: str
    scale: float
    method: str
    levers: tuple[str, ...]
    points: tuple[dict[str, Any], ...]  # lever path -> value
    overrides: tuple[dict[str, Any], ...] = field(default=())  # resolved, per point
    params_hashes: tuple[str, ...] = field(default=())  # of the resolved parameters, per point

    def identity(self, point: int, seed: int) -> RunIdentity:
        """The identity of a run of this batch made in this process's environment."""
        return RunIdentity(
            self.params_hashes[point], code_digest(), seed, float(self.scale), self.until
        )

    def manifest(self) -> dict[str, Any]:
        return {
            "kind": "batch",
            "name": self.name,
            "source": self.source,
            "scenario": self.scenario.manifest(),
            "seeds": list(self.seeds),
            "until": self.until,
            "scale": self.scale,
            "method": self.method,
            "levers": list(self.levers),
            "points": [dict(p) for p in self.points],
            "fingerprint": self.fingerprint(),
            "params_hashes": list(self.params_hashes),
            "params": Params().with_overrides(self.scenario.overrides).to_dict(),
            "versions": package_versions(),
            "code_version": code_version(),
            "code_digest": code_digest(),
        }

    def fingerprint(self) -> str:
        """Identity of the runs (not of names or descriptions), to refuse mixing batches."""
        key = {
            "overrides": list(self.overrides),
            "seeds": list(self.seeds),
            "until": self.until,
            "scale": self.scale,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def infos_by_path() -> dict[str, ParamInfo]:
    return {i.path: i for i in Params().describe()}


def nested(path: str, value: Any) -> dict[str, Any]:
    head, *rest = path.split(".")
    return {head: nested(".".join(rest), value)} if rest else {head: value}


def lever_info(source: str, field_name: str, path: Any, *, scalar: bool) -> ParamInfo:
    """The declared parameter behind a dotted lever path (ScenarioError if unknown)."""
    infos = infos_by_path()
    if not isinstance(path, str) or path not in infos:
        import difflib

        hint = difflib.get_close_matches(str(path), list(infos), n=1)
        tail = f"did you mean '{hint[0]}'?" if hint else "see Params().describe() for the paths"
        raise ScenarioError(source, f"{field_name}.{path}", f"unknown parameter; {tail}")
    info = infos[path]
    if scalar and (isinstance(info.default, (tuple, bool, str))):
        raise ScenarioError(
            source, f"{field_name}.{path}", "only scalar numeric parameters can be ranged"
        )
    return info


def lhs_points(ranges: list[tuple[float, float]], n: int, seed: int) -> np.ndarray:
    """Latin hypercube sample, deterministic in `seed`: shape (n, len(ranges))."""
    rng = np.random.default_rng(seed)
    k = len(ranges)
    u = (rng.permuted(np.tile(np.arange(n), (k, 1)), axis=1).T + rng.random((n, k))) / n
    lo = np.array([r[0] for r in ranges], dtype=float)
    hi = np.array([r[1] for r in ranges], dtype=float)
    return lo + u * (hi - lo)


def _cast(info: ParamInfo, value: float) -> Any:
    return round(float(value)) if isinstance(info.default, int) else float(value)


def load_batch(path: str | Path) -> BatchSpec:
    """Parse and validate a batch file; raises ScenarioError naming the file and field."""
    p = resolve_path(path, what="batch")
    src = str(p)
    data = read_toml(p)
    for key in data:
        if key not in BATCH_KEYS:
            unknown_key(src, key, BATCH_KEYS)
    if "scenario" not in data:
        raise ScenarioError(src, "scenario", "missing; name a shipped scenario or a .toml path")
    ref = data["scenario"]
    if not isinstance(ref, str) or not ref:
        raise ScenarioError(src, "scenario", "expected a scenario name or path")
    try:
        scenario = load_scenario(resolve_path(ref, p.parent))
    except ScenarioError as err:
        if err.file == ref:
            raise ScenarioError(src, "scenario", err.message) from None
        raise
    name = data.get("name", p.stem)
    if not isinstance(name, str):
        raise ScenarioError(src, "name", "expected a string")
    until = check_until(src, data.get("until", scenario.until))
    scale = check_scale(src, data.get("scale", scenario.scale))
    if "seeds" in data:
        if "replications" in data or "seed" in data:
            both = "replications" if "replications" in data else "seed"
            msg = f"give either seeds = [...] or replications and seed, not seeds and {both}"
            raise ScenarioError(src, "seeds", msg)
        seeds_raw = data["seeds"]
        if not isinstance(seeds_raw, list) or not seeds_raw:
            raise ScenarioError(src, "seeds", "expected a non-empty list of whole numbers >= 0")
        seeds = tuple(check_seed(src, s, "seeds") for s in seeds_raw)
        if len(set(seeds)) != len(seeds):
            raise ScenarioError(src, "seeds", "seeds must be distinct")
    else:
        reps = data.get("replications", 1)
        if isinstance(reps, bool) or not isinstance(reps, int) or not 1 <= reps <= 10_000:
            msg = f"expected a whole number in [1, 10000], got {reps!r}"
            raise ScenarioError(src, "replications", msg)
        first = check_seed(src, data.get("seed", scenario.seed))
        seeds = tuple(first + i for i in range(reps))
    method, levers, points = _sweep(src, data.get("sweep", {}), len(seeds))
    overrides, hashes = [], []
    for i, point in enumerate(points):
        over: dict[str, Any] = scenario.overrides
        for lever, value in point.items():
            over = deep_merge(over, nested(lever, value))
        hashes.append(params_hash(apply_params(src, over, prefix=f"sweep point {i}: params")))
        overrides.append(over)
    return BatchSpec(
        name, src, scenario, seeds, until, scale, method, levers, tuple(points), tuple(overrides),
        tuple(hashes),
    )  # fmt: skip


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _check_count(src: str, points: int, seeds: int) -> None:
    """Refuse more than MAX_RUNS runs (counted before any point is made)."""
    if points * seeds > MAX_RUNS:
        runs = f"{plural(points, 'point')} x {plural(seeds, 'seed')} = {points * seeds:,}"
        raise ScenarioError(src, "sweep", f"too many runs: {runs}; allowed at most {MAX_RUNS:,}")


def _sweep(src: str, sweep: Any, n_seeds: int) -> tuple[str, tuple[str, ...], list[dict[str, Any]]]:
    if not isinstance(sweep, dict):
        raise ScenarioError(src, "sweep", "expected a table [sweep]")
    for key in sweep:
        if key not in SWEEP_KEYS:
            unknown_key(src, key, SWEEP_KEYS, prefix="sweep.")
    if not sweep:
        _check_count(src, 1, n_seeds)
        return "none", (), [{}]
    method = sweep.get("method", "grid")
    if method not in ("grid", "lhs"):
        raise ScenarioError(src, "sweep.method", f"expected 'grid' or 'lhs', got {method!r}")
    levers = sweep.get("levers", {})
    if not isinstance(levers, dict) or not levers:
        raise ScenarioError(src, "sweep.levers", "expected a table of 'section.name' = values")
    names = tuple(levers)
    if method == "grid":
        if "n" in sweep:
            raise ScenarioError(src, "sweep.n", "only used with method = 'lhs'")
        values = []
        for lever in names:
            lever_info(src, "sweep.levers", lever, scalar=False)
            vals = levers[lever]
            if not isinstance(vals, list) or not vals:
                msg = "expected a non-empty list of values"
                raise ScenarioError(src, f"sweep.levers.{lever}", msg)
            values.append(vals)
        _check_count(src, math.prod(len(v) for v in values), n_seeds)
        points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
        return method, names, points
    n = sweep.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_RUNS:
        msg = f"expected the number of LHS points, a whole number >= 1, got {n!r}"
        raise ScenarioError(src, "sweep.n", msg)
    _check_count(src, n, n_seeds)
    seed = check_seed(src, sweep.get("seed", 1), "sweep.seed")
    ranges, infos = [], []
    for lever in names:
        info = lever_info(src, "sweep.levers", lever, scalar=True)
        rng = levers[lever]
        ok = isinstance(rng, list) and len(rng) == 2
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng)
        if not ok or not info.lo <= rng[0] <= rng[1] <= info.hi:
            raise ScenarioError(
                src, f"sweep.levers.{lever}", f"expected [lo, hi] within [{info.lo}, {info.hi}]"
            )
        ranges.append((float(rng[0]), float(rng[1])))
        infos.append(info)
    sample = lhs_points(ranges, n, seed)
    points = [
        {lv: _cast(inf, v) for lv, inf, v in zip(names, infos, row, strict=True)} for row in sample
    ]
    return method, names, points


# -- running ---------------------------------------------------------------------------------------
def run_file(runs: Path, point: int, seed: int) -> Path:
    return runs / f"point={point}_seed={seed}.parquet"


@dataclass(frozen=True)
class RunTask:
    """One run of a batch as sent to a worker (picklable)."""

    overrides: dict[str, Any]
    point: int
    expected: RunIdentity  # what the client expects; the worker checks it would make that run
    runs_dir: str
    extra: dict[str, Any]  # constant columns: the scenario's name and the point's lever values


def resolved_params(overrides: dict[str, Any], expected: RunIdentity) -> Params:
    """A run's parameters resolved here (declared defaults, fitted file, ELDERCARE_FITTED,
    overrides). In a worker not set up like the client they, or the code, would make another
    run than the client expects: IdentityError then, so that two models never mix."""
    params = Params().with_overrides(overrides)
    made = RunIdentity.of(params, expected.seed, expected.scale, expected.until)
    if made != expected:
        raise IdentityError(
            f"worker {HOST} (pid {os.getpid()}) would make another run than the client expects "
            f"({made.differences(expected)}); give the workers the client's code, "
            "calibration/fitted.toml and ELDERCARE_FITTED"
        )
    return params


def run_task(task: RunTask) -> str:
    """One run, written atomically; executed in a worker (must stay importable and picklable)."""
    want = task.expected
    frame = simulate(resolved_params(task.overrides, want), want.seed, want.scale, want.until)
    frame.insert(0, "seed", want.seed)
    frame.insert(0, "point", task.point)
    for k, v in task.extra.items():
        frame[k] = v if not isinstance(v, (list, tuple)) else json.dumps(v)
    target = run_file(Path(task.runs_dir), task.point, want.seed)
    write_run(frame, target, want)
    return str(target)


def check_folder(spec: BatchSpec, out: str | Path) -> bool:
    """Whether `out` holds this batch already (True: resume) or can take it (False: missing or
    empty); OutputError (nothing changed) for a folder that holds anything else, or this batch
    made with other resolved parameters or another version of the code."""
    out = Path(out)
    if not holds_output(out):
        return False
    old = read_manifest(out)
    tail = "; choose another --out (nothing was changed)"
    if old is None:
        raise OutputError(out, f"exists, is not empty and is not an eldercare batch folder{tail}")
    if old.get("kind") != "batch":
        raise OutputError(out, f"holds an eldercare {old.get('kind')} output, not a batch{tail}")
    if old.get("fingerprint") != spec.fingerprint():
        raise OutputError(out, f"holds a different batch{tail}")
    if old.get("code_digest") != code_digest():
        raise OutputError(
            out,
            f"holds runs made by other code (code digest {old.get('code_digest')}, here "
            f"{code_digest()}); resume it with that code{tail}",
        )
    here = list(spec.params_hashes)
    there = old.get("params_hashes")
    if there != here:
        there = there if isinstance(there, list) and len(there) == len(here) else [None] * len(here)
        point = next(i for i, (a, b) in enumerate(zip(there, here, strict=True)) if a != b)
        raise OutputError(
            out,
            f"holds runs made with other resolved parameters (point {point}: params hash "
            f"{there[point]}, here {here[point]}; see ELDERCARE_FITTED and "
            f"calibration/fitted.toml){tail}",
        )
    return True


def prepare(spec: BatchSpec, out: str | Path) -> list[Path]:
    """Create or reopen the batch folder (see check_folder) and remove the temporaries of killed
    writers; returns what this call created (to undo if the batch never writes a run)."""
    out = Path(out)
    runs = out / "runs"
    if check_folder(spec, out):
        runs.mkdir(exist_ok=True)
        remove_stale_temps(out)
        remove_stale_temps(runs)
        return []
    created = [*missing_dirs(runs), out / "manifest.json"]
    try:
        runs.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "manifest.json", spec.manifest())
    except BaseException:
        undo(created)
        raise
    return created


def pending(spec: BatchSpec, runs: Path) -> list[tuple[int, int]]:
    """The (point, seed) runs to make: missing, or not reading back whole as this batch's run."""
    todo = []
    for i in range(len(spec.points)):
        for s in spec.seeds:
            try:
                read_run_table(run_file(runs, i, s), spec.identity(i, s))
            except OutputError:
                todo.append((i, s))
    return todo


class Workers(NamedTuple):
    """Where a batch's runs go, and how many run at once (for the estimated time)."""

    executor: Executor | None  # None: run in this process
    count: int


def check_dask_address(value: str) -> str:
    """'local' or tcp://HOST:PORT (tls:// too); ValueError with the allowed forms otherwise."""
    match = DASK_ADDRESS.fullmatch(value)
    if value != "local" and not (match and 1 <= int(match.group(3)) <= 65535):
        raise ValueError(f"expected 'local' or tcp://HOST:PORT (port 1-65535), got {value!r}")
    return value


@contextlib.contextmanager
def open_executor(workers: int, dask: str | None = None) -> Iterator[Workers]:
    """Where the runs go: this process (one worker, no Dask), a process pool, or Dask ('local'
    starts a LocalCluster, tcp://HOST:PORT joins a running scheduler). On an error or Ctrl-C
    inside the block the workers stop at once; ClusterError if Dask cannot be reached."""
    if dask:
        with _dask(workers, check_dask_address(dask)) as pool:
            yield pool
    elif workers <= 1:
        yield Workers(None, 1)
    else:
        with _process_pool(workers) as pool:
            yield pool


@contextlib.contextmanager
def _process_pool(workers: int) -> Iterator[Workers]:
    """Worker processes started by a forkserver: this process already runs numba's and the
    model's threads, and a fork would copy their locks in whatever state they are in."""
    ctx = multiprocessing.get_context("forkserver")
    stop = ctx.Event()
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker, initargs=(stop,))
    try:
        yield Workers(pool, workers)
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _start_worker(stop: Any) -> None:
    """In each pool worker: leave Ctrl-C to the client, and exit at once when the client stops
    the batch (`stop`) or dies, so that no worker outlives it or finishes a run nobody waits for
    (an interrupted write leaves only a temporary, removed by the next start)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure()
    # A worker starts no process. With the client's forkserver as its default, the lock numba
    # makes when it starts its threads would be registered with the resource tracker, which
    # then warns of a leak when the worker exits at once; with "fork" it is never registered.
    multiprocessing.set_start_method("fork", force=True)
    client = multiprocessing.parent_process()  # the client, also under forkserver

    def watch() -> None:
        while not stop.wait(WATCH_S) and client.is_alive():
            pass
        os._exit(1)

    threading.Thread(target=watch, name="eldercare-watch", daemon=True).start()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C in this process while it starts processes that should inherit that (a
    process started with SIGINT ignored keeps it so, also across exec); only the main thread
    can change signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@contextlib.contextmanager
def _dask(workers: int, address: str) -> Iterator[Workers]:
    from dask.distributed import Client, LocalCluster

    quiet = logging.CRITICAL  # the CLI reports errors in one line; Dask's logs would bury it
    cluster = None
    try:
        if address == "local":
            with _sigint_ignored():  # inherited by the worker processes: Ctrl-C is the client's
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=quiet,
                )
            client = Client(cluster)
        else:
            logging.getLogger("distributed").setLevel(quiet)
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as err:
        if cluster is not None:
            cluster.close()
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ClusterError(
            f"--dask {address}: cannot start or reach the workers ({first})"
        ) from None
    try:
        count = workers if cluster else max(1, sum(client.nthreads().values()))
        yield Workers(client.get_executor(), count)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def time_run(spec: BatchSpec) -> float:
    """Seconds one run of the batch takes (see time_one_run)."""
    params = Params().with_overrides(spec.overrides[0])
    return time_one_run(params, spec.seeds[0], spec.scale, spec.until)


def time_one_run(params: Params, seed: int, scale: float, until: str) -> float:
    """Seconds one run takes, from a quick timing here: a model built and stepped once (which
    loads the compiled kernels, once per worker), then another built and three months timed,
    scaled to the run's months."""
    from sim import CareModel

    CareModel(seed=seed, scale=scale, params=params).step()
    t0 = time.perf_counter()
    model = CareModel(seed=seed, scale=scale, params=params)
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in range(3):
        model.step()
    per_month = (time.perf_counter() - t1) / 3
    return built + per_month * (month_index(until) + 1)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan_line(spec: BatchSpec, todo: int, workers: int, seconds_per_run: float | None) -> str:
    """e.g. '12 runs (2 points x 6 seeds), about 3 min with 2 workers'."""
    total = len(spec.points) * len(spec.seeds)
    line = f"{plural(total, 'run')} ({plural(len(spec.points), 'point')} x "
    line += f"{plural(len(spec.seeds), 'seed')})"
    if todo < total:
        line += f", {todo:,} to do"
    if todo and seconds_per_run is not None:
        rounds = math.ceil(todo / workers)
        line += f", about {duration(rounds * seconds_per_run)} with {plural(workers, 'worker')}"
    return line


def run_batch(
    spec: BatchSpec,
    out: str | Path,
    executor: Executor | None = None,
    progress: bool = True,
    workers: int = 1,
) -> pd.DataFrame:
    """Run every missing (point, seed), then write summary.csv; returns the summary. With
    `progress`, first prints the run count and an estimated time, then shows a progress bar.

    If the folder is new and the batch stops before its first run is written, the folder is
    removed again (only what this call created)."""
    from tqdm import tqdm

    out = Path(out)
    runs = out / "runs"
    created = prepare(spec, out)
    try:
        todo = pending(spec, runs)
        if progress:
            timing = time_run(spec) if todo else None
            print(plan_line(spec, len(todo), workers, timing), flush=True)
        total = len(spec.points) * len(spec.seeds)
        bar = tqdm(
            total=total,
            initial=total - len(todo),
            desc=f"batch {spec.name}",
            unit="run",
            disable=not progress,
        )

        def task(i: int, s: int) -> RunTask:
            extra = {"scenario": spec.scenario.name, **spec.points[i]}
            return RunTask(spec.overrides[i], i, spec.identity(i, s), str(runs), extra)

        with bar:
            if executor is None:
                for i, s in todo:
                    run_task(task(i, s))
                    bar.update(1)
            else:
                futures: list[Future] = [executor.submit(run_task, task(i, s)) for i, s in todo]
                try:
                    for fut in as_completed(futures):
                        fut.result()
                        bar.update(1)
                finally:
                    for fut in futures:
                        fut.cancel()
    except BaseException:
        if created and not any(runs.glob("point=*_seed=*.parquet")):
            undo(created)
        raise
    summary = summarise(spec, runs)
    write_csv_atomic(summary, out / "summary.csv")
    return summary


def summarise(spec: BatchSpec, runs: Path, kpis: Iterable[str] = KEY_KPIS) -> pd.DataFrame:
    """Means and 90% intervals across replications of the city KPIs in the last month."""
    rows = []
    for i in range(len(spec.points)):
        for s in spec.seeds:
            f = pd.read_parquet(run_file(runs, i, s))
            rows.append(f[(f["district"] == CITY) & (f["month"] == spec.until)])
    last = pd.concat(rows, ignore_index=True)
    kpis = [k for k in kpis if k in last]
    table = interval_summary(last, ["point"], kpis)
    levers = pd.DataFrame([{"point": i, **p} for i, p in enumerate(spec.points)])
    return levers.merge(table, on="point")


# -- sensitivity -----------------------------------------------------------------------------------
def sensitivity_task(overrides: dict, expected: RunIdentity, kpis: list[str]) -> list[float]:
    """The city's KPIs in the last month of one run; executed in a worker."""
    want = expected
    frame = simulate(resolved_params(overrides, want), want.seed, want.scale, want.until)
    city = frame[(frame["district"] == CITY) & (frame["month"] == want.until)].iloc[0]
    return [float(city[k]) for k in kpis]


def sensitivity(
    scenario: Scenario,
    levers: list[str],
    kpis: list[str],
    method: str,
    n: int,
    seed: int,
    scale: float,
    until: str,
    executor: Executor | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(indices table, samples with outputs) of Morris or Sobol over the levers' declared ranges."""
    from SALib.analyze import morris as morris_a
    from SALib.analyze import sobol as sobol_a
    from SALib.sample import morris as morris_s
    from SALib.sample import sobol as sobol_s
    from tqdm import tqdm

    infos = [lever_info("--levers", "levers", lv, scalar=True) for lv in levers]
    problem = {
        "num_vars": len(levers),
        "names": list(levers),
        "bounds": [[float(i.lo), float(i.hi)] for i in infos],
    }
    if method == "morris":
        x = morris_s.sample(problem, n, num_levels=4, seed=seed)
    else:
        x = sobol_s.sample(problem, n, calc_second_order=False, seed=seed)
    tasks = []
    for row in x:
        over = scenario.overrides
        for lv, inf, v in zip(levers, infos, row, strict=True):
            over = deep_merge(over, nested(lv, _cast(inf, v)))
        tasks.append((over, RunIdentity.of(Params().with_overrides(over), seed, scale, until)))
    y = np.zeros((len(tasks), len(kpis)))
    with tqdm(total=len(tasks), desc=f"{method}", unit="run", disable=not progress) as bar:
        if executor is None:
            for j, (over, identity) in enumerate(tasks):
                y[j] = sensitivity_task(over, identity, kpis)
                bar.update(1)
        else:
            futs = {
                executor.submit(sensitivity_task, over, identity, kpis): j
                for j, (over, identity) in enumerate(tasks)
            }
            for fut in as_completed(futs):
                y[futs[fut]] = fut.result()
                bar.update(1)
    rows = []
    for k, kpi in enumerate(kpis):
        yk = np.nan_to_num(y[:, k])
        if method == "morris":
            res = morris_a.analyze(problem, x, yk, num_levels=4, seed=seed)
            keys = ("mu", "mu_star", "sigma", "mu_star_conf")
        else:
            res = sobol_a.analyze(problem, yk, calc_second_order=False, seed=seed)
            keys = ("S1", "S1_conf", "ST", "ST_conf")
        for j, lv in enumerate(levers):
            rows.append({"kpi": kpi, "lever": lv, **{key: res[key][j] for key in keys}})
    samples = pd.DataFrame(x, columns=levers)
    for k, kpi in enumerate(kpis):
        samples[kpi] = y[:, k]
    return pd.DataFrame(rows), samples


def sensitivity_chart(table: pd.DataFrame, method: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kpis = list(dict.fromkeys(table["kpi"]))
    value = "mu_star" if method == "morris" else "ST"
    fig, axes = plt.subplots(1, len(kpis), figsize=(5 * len(kpis), 3.5), squeeze=False)
    for ax, kpi in zip(axes[0], kpis, strict=True):
        t = table[table["kpi"] == kpi]
        ax.barh(t["lever"], t[value].fillna(0.0), color="C0", label=value)
        if method == "sobol":
            ax.barh(t["lever"], t["S1"].fillna(0.0), color="C1", height=0.4, label="S1")
            ax.legend(fontsize=8)
        ax.set_title(kpi, fontsize=10)
        ax.set_xlabel(value)
    fig.suptitle(f"{method} sensitivity (last month, city)")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
