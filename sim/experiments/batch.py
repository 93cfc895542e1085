"""Batches of runs (parameter sweeps x replications) and sensitivity analysis.

A batch file (TOML):

    name = "price sweep"
    scenario = "plan_2016_2020"     # a shipped scenario name or a path (relative to this file)
    replications = 5                # seeds = seed, seed+1, ... (the same for every point)
    seed = 1                        # optional, first seed (default 1); or seeds = [..]
    until = "2017-12"               # optional (default: the scenario's)
    scale = 100                     # optional (default: the scenario's)

    [sweep]
    method = "grid"                 # or "lhs"
    n = 8                           # lhs only: number of points
    seed = 1                        # lhs only: sampling seed
    [sweep.levers]
    "money.price_private_home" = [2000.0, 3000.0]   # grid: values; lhs: [lo, hi]

The runner takes any `concurrent.futures.Executor`; each run is written atomically to
runs/point=<i>_seed=<s>.parquet, and finished runs are skipped when a batch is started again.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.experiments.results import (
    KEY_KPIS,
    OutputError,
    check_writable,
    code_version,
    interval_summary,
    package_versions,
    simulate,
    write_json_atomic,
    write_parquet_atomic,
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
    method, levers, points = _sweep(src, data.get("sweep", {}))
    if len(points) * len(seeds) > MAX_RUNS:
        raise ScenarioError(src, "sweep", f"too many runs (max {MAX_RUNS})")
    overrides = []
    for i, point in enumerate(points):
        over: dict[str, Any] = scenario.overrides
        for lever, value in point.items():
            over = deep_merge(over, nested(lever, value))
        apply_params(src, over, prefix=f"sweep point {i}: params")
        overrides.append(over)
    return BatchSpec(
        name, src, scenario, seeds, until, scale, method, levers, tuple(points), tuple(overrides)
    )


def _sweep(src: str, sweep: Any) -> tuple[str, tuple[str, ...], list[dict[str, Any]]]:
    if not isinstance(sweep, dict):
        raise ScenarioError(src, "sweep", "expected a table [sweep]")
    for key in sweep:
        if key not in SWEEP_KEYS:
            unknown_key(src, key, SWEEP_KEYS, prefix="sweep.")
    if not sweep:
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
        points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
        return method, names, points
    n = sweep.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_RUNS:
        msg = f"expected the number of LHS points, a whole number >= 1, got {n!r}"
        raise ScenarioError(src, "sweep.n", msg)
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


def run_task(
    overrides: dict, point: int, seed: int, scale: float, until: str, runs_dir: str,
    extra: dict[str, Any],
) -> str:  # fmt: skip
    """One run, written atomically; executed in a worker (must stay importable and picklable)."""
    params = Params().with_overrides(overrides)
    frame = simulate(params, seed, scale, until)
    frame.insert(0, "seed", seed)
    frame.insert(0, "point", point)
    for k, v in extra.items():
        frame[k] = v if not isinstance(v, (list, tuple)) else json.dumps(v)
    target = run_file(Path(runs_dir), point, seed)
    write_parquet_atomic(frame, target)
    return str(target)


def clean_temp_files(runs: Path) -> int:
    n = 0
    for f in runs.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            f.unlink()
            n += 1
    return n


def prepare(spec: BatchSpec, out: str | Path) -> Path:
    """Create or reopen the batch folder; refuse a folder that holds a different batch."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    man_path = out / "manifest.json"
    if out.is_dir() and any(out.iterdir()):
        if not man_path.is_file():
            raise OutputError(out, "exists, is not empty and is not an eldercare batch folder")
        try:
            old = json.loads(man_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise OutputError(out, "has an unreadable manifest.json") from None
        if old.get("kind") != "batch" or old.get("fingerprint") != spec.fingerprint():
            raise OutputError(out, "holds a different batch or run; choose another --out")
    else:
        check_writable(out, allow_existing_run=False)
    runs = out / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(out, f"cannot create the batch folder ({err.strerror})") from None
    if not os.access(runs, os.W_OK):
        raise OutputError(out, "batch folder is not writable")
    if not man_path.is_file():
        man = spec.manifest()
        man["fingerprint"] = spec.fingerprint()
        man["params"] = Params().with_overrides(spec.scenario.overrides).to_dict()
        man["versions"] = package_versions()
        man["code_version"] = code_version()
        write_json_atomic(man_path, man)
    clean_temp_files(runs)
    return runs


def pending(spec: BatchSpec, runs: Path) -> list[tuple[int, int]]:
    return [
        (i, s)
        for i in range(len(spec.points))
        for s in spec.seeds
        if not run_file(runs, i, s).is_file()
    ]


def make_executor(workers: int, dask: str | None = None) -> tuple[Executor | None, Any]:
    """(executor, closer). workers == 1 without Dask -> None (run in this process)."""
    if dask:
        from dask.distributed import Client, LocalCluster

        if dask == "local":
            cluster = LocalCluster(
                n_workers=max(workers, 1),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)

            def close() -> None:
                client.close()
                cluster.close()

        else:
            client = Client(dask)
            close = client.close
        return client.get_executor(), close
    if workers <= 1:
        return None, lambda: None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    return pool, lambda: pool.shutdown(wait=True, cancel_futures=True)


def run_batch(
    spec: BatchSpec,
    out: str | Path,
    executor: Executor | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every missing (point, seed), then write summary.csv; returns the summary."""
    from tqdm import tqdm

    out = Path(out)
    runs = prepare(spec, out)
    todo = pending(spec, runs)
    bar = tqdm(
        total=len(spec.points) * len(spec.seeds),
        initial=len(spec.points) * len(spec.seeds) - len(todo),
        desc=f"batch {spec.name}",
        unit="run",
        disable=not progress,
    )

    def args(i: int, s: int) -> tuple:
        extra = {"scenario": spec.scenario.name, **spec.points[i]}
        return (spec.overrides[i], i, s, spec.scale, spec.until, str(runs), extra)

    try:
        if executor is None:
            for i, s in todo:
                run_task(*args(i, s))
                bar.update(1)
        else:
            futures: list[Future] = [executor.submit(run_task, *args(i, s)) for i, s in todo]
            for fut in as_completed(futures):
                fut.result()
                bar.update(1)
    finally:
        bar.close()
    summary = summarise(spec, runs)
    tmp = out / f".summary.csv.tmp-{os.getpid()}"
    summary.to_csv(tmp, index=False)
    os.replace(tmp, out / "summary.csv")
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
def sensitivity_task(overrides: dict, seed: int, scale: float, until: str, kpis: list[str]) -> list:
    params = Params().with_overrides(overrides)
    frame = simulate(params, seed, scale, until)
    city = frame[(frame["district"] == CITY) & (frame["month"] == until)].iloc[0]
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
        tasks.append(over)
    y = np.zeros((len(tasks), len(kpis)))
    with tqdm(total=len(tasks), desc=f"{method}", unit="run", disable=not progress) as bar:
        if executor is None:
            for j, over in enumerate(tasks):
                y[j] = sensitivity_task(over, seed, scale, until, kpis)
                bar.update(1)
        else:
            futs = {
                executor.submit(sensitivity_task, over, seed, scale, until, kpis): j
                for j, over in enumerate(tasks)
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


def elapsed(t0: float) -> str:
    return f"{time.perf_counter() - t0:.1f} s"
