"""Command line: `eldercare` / `python -m sim`.

With no arguments: run the plan as written for the full city to 2020-12 and print the 2020
figures for the city and each district. Subcommands: run, batch, query, compare, sensitivity,
validate, optimise, site, uncertainty, sobol, ranges, scenarios, levers, kpis (see
`eldercare SUBCOMMAND --help`).

Bad input (a malformed or invalid scenario / batch file, an unknown scenario or district, a
missing file, an output folder that cannot be written or holds something else, workers that
cannot be reached, a full disk) exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor
from pathlib import Path

import pandas as pd

from sim.engine.calendar import month_index, until_index
from sim.experiments.planning.siting import add_site_arguments
from sim.experiments.scenario import SCALE_MAX, SCALE_RULE, SEED_LIMIT, SEED_RULE
from sim.kpis.registry import BY_NAME, KPIS, in_view

SUMMARY_COLUMNS = in_view("summary")  # the population table printed with no subcommand


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _until(value: str) -> str:
    try:
        until_index(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def _dask(value: str) -> str:
    from sim.experiments.batch import check_dask_address

    try:
        return check_dask_address(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _number(kind: type, lo: float, hi: float, what: str) -> Callable[[str], float]:
    """An argparse type: a `kind` number in [lo, hi], with a one-line message."""

    def parse(value: str):
        try:
            x = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
        if not lo <= x <= hi:  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
        return x

    return parse


_scale = _number(float, 1, SCALE_MAX, SCALE_RULE)
_seed = _number(int, 0, SEED_LIMIT - 1, SEED_RULE)
_workers = _number(int, 1, 1024, "a whole number in [1, 1024]")
_positive = _number(int, 1, 10**6, "a whole number in [1, 1e6]")


# -- summary (no subcommand) ---------------------------------------------------------------------
def _summary(args: argparse.Namespace) -> int:
    from sim import CareModel

    model = CareModel(seed=args.seed, scale=args.scale)
    model.run_until(args.until)
    frame = model.metrics()
    last = frame[frame["month"] == args.until].set_index("district")
    table = last[list(SUMMARY_COLUMNS)].round(0).astype("int64")
    unable = (last["partially_dependent"] + last["fully_dependent"]) / last["residents_60plus"]
    table["unable_selfcare_pct"] = (100 * unable).round(2)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"Taiyuan elderly population, {args.until} (seed {args.seed}, scale {args.scale:g})")
        print(table.to_string())
    return 0


# -- run -----------------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sim.experiments import report
    from sim.experiments.results import (
        RunIdentity,
        atomic_dir,
        check_writable,
        manifest,
        simulate,
        write_json_atomic,
        write_run,
    )
    from sim.experiments.scenario import load_scenario

    sc = load_scenario(args.scenario)
    seed = sc.seed if args.seed is None else args.seed
    scale = sc.scale if args.scale is None else args.scale
    until = args.until or sc.until
    check_writable(args.out, "run")
    t0 = time.perf_counter()
    n_months = month_index(until) + 1
    with tqdm(total=n_months, desc=sc.name, unit="month", disable=args.quiet) as bar:
        frame = simulate(sc.params, seed, scale, until, progress=bar.update)
    man = manifest(sc, sc.params, seed, scale, until, wall_seconds=time.perf_counter() - t0)
    with atomic_dir(args.out, "run") as tmp:
        write_run(frame, tmp / "metrics.parquet", RunIdentity.of(sc.params, seed, scale, until))
        write_json_atomic(tmp / "manifest.json", man)
        (tmp / "report.html").write_text(report.render(frame, man), encoding="utf-8")
    if not args.quiet:
        print(f"wrote {args.out}/metrics.parquet, manifest.json, report.html")
    return 0


# -- batch ---------------------------------------------------------------------------------------
def _batch(args: argparse.Namespace) -> int:
    from sim.experiments.batch import check_folder, load_batch, open_executor, run_batch

    spec = load_batch(args.batch)
    t0 = time.perf_counter()
    check_folder(spec, args.out)  # refuse a folder it cannot use before starting workers
    with open_executor(args.workers, args.dask) as workers:
        summary = run_batch(spec, args.out, workers.executor, not args.quiet, workers.count)
    if not args.quiet:
        with pd.option_context("display.width", 200, "display.max_columns", 12):
            print(summary.to_string(index=False))
        n = len(spec.points) * len(spec.seeds)
        print(f"{n} runs in {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


# -- query ---------------------------------------------------------------------------------------
def _query(args: argparse.Namespace) -> int:
    import duckdb

    folder = Path(args.folder)
    if (folder / "runs").is_dir():
        # the folder's name may hold glob characters ('[', '*'): list the files, escaped
        files = sorted(glob.glob(glob.escape(str(folder / "runs")) + "/point=*_seed=*.parquet"))
        if not files:
            raise UsageError(f"{folder}: batch folder has no finished runs")
    elif (folder / "metrics.parquet").is_file():
        files = [str(folder / "metrics.parquet")]
    else:
        raise UsageError(f"{folder}: not a run or batch folder (no runs/ nor metrics.parquet)")
    if not args.sql.strip():
        raise UsageError('query: SQL: empty; e.g. "SELECT count(*) FROM runs"')
    con = duckdb.connect()
    try:
        con.read_parquet(files).create_view("runs")
        done = con.execute(args.sql)
        if done is None or done.description is None:
            raise UsageError("query: SQL: no statement that returns rows (only comments?)")
        result = done.df()
    except duckdb.Error as err:
        first = str(err).splitlines()[0]
        raise UsageError(f"query: SQL: {first}") from None
    finally:
        con.close()
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.max_rows", 500
    ):
        print(result.to_string(index=False))
    return 0


# -- compare -------------------------------------------------------------------------------------
def compare_frames(
    a: pd.DataFrame, b: pd.DataFrame, district: str, months: list[str] | None, kpis: list[str]
) -> pd.DataFrame:
    """Paired differences B - A by month (pairs by seed, and by point if both have points)."""
    key = ["point", "seed"] if a["point"].nunique() > 1 and b["point"].nunique() > 1 else ["seed"]
    cols = ["month", "district", *key, *kpis]
    a = a[a["district"] == district]
    b = b[b["district"] == district]
    if months:
        a, b = a[a["month"].isin(months)], b[b["month"].isin(months)]
    if key == ["seed"]:
        a = a.assign(point=0)
        b = b.assign(point=0)
    m = a[cols].merge(b[cols], on=["month", "district", *key], suffixes=("_a", "_b"))
    if m.empty:
        return pd.DataFrame()
    rows = []
    for month, g in m.groupby("month", sort=True):
        for k in kpis:
            d = g[f"{k}_b"] - g[f"{k}_a"]
            rows.append(
                {
                    "month": month,
                    "kpi": k,
                    "pairs": int(d.notna().sum()),
                    "a_mean": g[f"{k}_a"].mean(),
                    "b_mean": g[f"{k}_b"].mean(),
                    "diff_mean": d.mean(),
                    "diff_p05": d.quantile(0.05),
                    "diff_p95": d.quantile(0.95),
                }
            )
    return pd.DataFrame(rows)


def _compare(args: argparse.Namespace) -> int:
    from sim.experiments.results import load_runs

    if args.month not in ("last", "all"):
        try:
            until_index(args.month)
        except ValueError as err:
            raise UsageError(f"compare: --month: {err}; or 'last', 'all'") from None
    frames = []
    for folder in (args.a, args.b):
        if not Path(folder).is_dir():
            raise UsageError(f"{folder}: no such run folder")
        frames.append(load_runs(folder))
    a, b = frames
    districts = sorted(set(a["district"]))
    if args.district not in districts:
        import difflib

        hint = difflib.get_close_matches(args.district, districts, n=1)
        tail = f"did you mean '{hint[0]}'?" if hint else "allowed: " + ", ".join(districts)
        raise UsageError(f"{args.a}: --district: unknown district {args.district!r}; {tail}")
    kpis = args.kpis.split(",") if args.kpis else list(in_view("key"))
    for k in kpis:
        if k not in a.columns or k not in b.columns:
            raise UsageError(f"{args.a}: --kpis: unknown KPI {k!r}")
    if args.month == "all":
        months = None
    elif args.month == "last":
        months = [min(a["month"].max(), b["month"].max())]
    else:
        months = [args.month]
    table = compare_frames(a, b, args.district, months, kpis)
    if table.empty:
        raise UsageError(f"{args.b}: no runs pair with {args.a} (same seeds and months needed)")
    print(f"B - A for {args.district}: A = {args.a}, B = {args.b}; 90% interval = 5%-95% of pairs")
    with pd.option_context("display.width", 200, "display.max_rows", 5000):
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.4g}"))
    return 0


# -- sensitivity ---------------------------------------------------------------------------------
def _sensitivity(args: argparse.Namespace) -> int:
    from sim.experiments.batch import (
        MAX_RUNS,
        lever_info,
        open_executor,
        sensitivity,
        sensitivity_chart,
    )
    from sim.experiments.results import (
        atomic_dir,
        check_writable,
        code_digest,
        code_version,
        params_hash,
        write_json_atomic,
    )
    from sim.experiments.scenario import ScenarioError, load_scenario

    sc = load_scenario(args.scenario)
    levers = [s.strip() for s in args.levers.split(",") if s.strip()]
    kpis = [s.strip() for s in args.kpis.split(",") if s.strip()]
    twice = sorted({lv for lv in levers if levers.count(lv) > 1})
    if twice:
        raise UsageError(f"sensitivity: --levers: {twice[0]} is named twice; name each once")
    for lv in levers:
        try:
            lever_info("--levers", "levers", lv, scalar=True)
        except ScenarioError as err:
            raise UsageError(f"sensitivity: --levers: {lv}: {err.message}") from None
    from sim.experiments.report import CITY  # noqa: F401  (keeps matplotlib Agg set up before workers)

    known = set(BY_NAME)
    for k in kpis:
        if k not in known:
            import difflib

            hint = difflib.get_close_matches(k, sorted(known), n=1)
            tail = f"did you mean '{hint[0]}'?" if hint else "allowed: " + ", ".join(sorted(known))
            raise UsageError(f"sensitivity: --kpis: unknown KPI {k!r}; {tail}")
    if not levers or (len(levers) < 2 and args.method == "sobol"):
        raise UsageError("sensitivity: --levers: name at least one lever (two for sobol)")
    runs = args.n * (len(levers) + (1 if args.method == "morris" else 2))
    if runs > MAX_RUNS:
        msg = f"{runs:,} runs for {args.method} with {len(levers)} levers; at most {MAX_RUNS:,}"
        raise UsageError(f"sensitivity: --n: {msg}")
    seed = sc.seed if args.seed is None else args.seed
    scale = sc.scale if args.scale is None else args.scale
    until = args.until or sc.until
    check_writable(args.out, "sensitivity")
    with open_executor(args.workers, args.dask) as workers:
        table, samples = sensitivity(
            sc, levers, kpis, args.method, args.n, seed, scale, until, workers.executor,
            not args.quiet,
        )  # fmt: skip
    with atomic_dir(args.out, "sensitivity") as tmp:
        table.to_csv(tmp / "sensitivity.csv", index=False)
        samples.to_csv(tmp / "samples.csv", index=False)
        sensitivity_chart(table, args.method, tmp / "sensitivity.png")
        write_json_atomic(
            tmp / "manifest.json",
            {
                "kind": "sensitivity",
                "scenario": sc.manifest(),
                "method": args.method,
                "n": args.n,
                "levers": levers,
                "kpis": kpis,
                "seed": seed,
                "scale": scale,
                "until": until,
                "params_hash": params_hash(sc.params),
                "code_version": code_version(),
                "code_digest": code_digest(),
            },
        )
    if not args.quiet:
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


# -- optimise and site (issue 22) ------------------------------------------------------------------
def _planning_extra() -> None:
    """UsageError naming the extra to install if optuna, spopt or access is missing."""
    import importlib.util

    missing = [m for m in ("optuna", "spopt", "access") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"{missing[0]} is not installed; pip install -e '.[optimise]'")


def _optimise(args: argparse.Namespace) -> int:
    from sim.experiments.batch import open_executor
    from sim.experiments.planning.optimise import run_optimise, summary_lines
    from sim.experiments.planning.search import check_folder
    from sim.experiments.planning.spec import load_spec

    _planning_extra()
    spec = load_spec(args.spec)
    check_folder(spec, args.out)  # refuse a folder it cannot use before starting workers
    t0 = time.perf_counter()
    with open_executor(args.workers, args.dask) as workers:
        outcome = run_optimise(spec, args.out, workers.executor, not args.quiet, workers.count)
    if not args.quiet:
        print("\n".join(summary_lines(outcome)))
        print(f"wrote {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _site(args: argparse.Namespace) -> int:
    from sim.experiments.planning.siting import run_site, site_settings

    _planning_extra()
    t0 = time.perf_counter()
    lines = run_site(site_settings(args), args.out)
    if not args.quiet:
        print("\n".join(lines))
        print(f"wrote {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


# -- validate ------------------------------------------------------------------------------------
def _seeds(value: str) -> list[int]:
    """--seeds: comma-separated whole numbers, each a valid seed, none twice."""
    parts = [p.strip() for p in value.split(",")]
    seeds = []
    for part in parts:
        try:
            seeds.append(_seed(part))
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{err} in {value!r} (e.g. 1,2,3)") from None
    if len(set(seeds)) < len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is named twice in {value!r}")
    return seeds


def _validate(args: argparse.Namespace) -> int:
    import os

    from tqdm import tqdm

    from sim.experiments import validate
    from sim.params.sections import Params

    out = Path(args.out)
    if out.suffix != ".md":
        raise UsageError(f"validate: --out: {out}: expected a .md file (the figure and status "
                         "file are written beside it)")  # fmt: skip
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir() or out.is_dir():
        raise UsageError(f"validate: --out: {out}: its folder must exist and it must be a file")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"validate: --out: {folder}: folder is not writable")
    try:
        rows = validate.validation_rows()
    except validate.ValidationError as err:
        raise UsageError(f"validate: {err}") from None
    names = None
    if args.patterns is not None:
        names = [n.strip() for n in args.patterns.split(",") if n.strip()]
        for name in names:
            if name not in rows.index:
                import difflib

                hint = difflib.get_close_matches(name, list(rows.index), n=1)
                tail = f"did you mean '{hint[0]}'?" if hint else "see calibration/targets.csv"
                raise UsageError(f"validate: --patterns: unknown pattern {name!r}; {tail}")
        if not names:
            raise UsageError("validate: --patterns: name at least one pattern")
        rows = rows.loc[[n for n in rows.index if n in names]]
    seeds = args.seeds
    t0 = time.perf_counter()
    total = len(seeds) * validate.months_observed() if validate.needs_run(names) else None
    with tqdm(total=total, desc="validate", unit="month", disable=args.quiet) as bar:
        table = validate.run_suite(Params(), seeds, args.scale, names, progress=bar.update)
    wall = time.perf_counter() - t0
    seed_text = ",".join(str(s) for s in seeds)
    rows_are = "the full city, one row per person" if args.scale == 1 else "persons per row"
    note = (
        f"Generated by `eldercare validate --scale {args.scale:g} --seeds {seed_text}` (scale "
        f"{args.scale:g}: {rows_are}; seeds {seed_text}; {len(rows)} patterns; wall time "
        f"{wall:.0f} s)."
    )
    paths = validate.write_outputs(table, out, args.scale, seeds, note)
    print(validate.console_table(table))
    if not args.quiet:
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


# -- uncertainty, sobol, ranges ------------------------------------------------------------------
def _years(value: str) -> list[int]:
    """An argparse type: years 2016-2035 separated by commas."""
    year = _number(int, 2016, 2035, "years 2016-2035 separated by commas")
    return [year(p.strip()) for p in value.split(",")]


def _design(args: argparse.Namespace, draws: int, seeds: list[int], first=None):
    from sim.experiments.scenario import load_scenario
    from sim.experiments.uncertainty import make_design

    sc = load_scenario(args.scenario)
    if month_index(args.until) < month_index("2016-12"):
        raise UsageError(f"{args.command}: --until: {args.until}: the analysis needs a December")
    return make_design(
        sc, draws, seeds, args.scale, args.until, args.sample_seed, refit=not args.no_refit,
        first=first,
    )  # fmt: skip


def _uncertainty(args: argparse.Namespace) -> int:
    import datetime as dt
    import json
    import shlex

    from sim.experiments.batch import open_executor
    from sim.experiments.results import write_csv_atomic, write_json_atomic
    from sim.experiments.uncertainty import (
        HEADLINE,
        factor_kinds,
        includes_text,
        propagate,
        summarise,
    )

    design = _design(args, args.draws, args.seeds)
    out = Path(args.out)
    with open_executor(args.workers, args.dask) as workers:
        values, prepared, wall = propagate(
            design, out, "uncertainty", workers.executor, workers.count, not args.quiet
        )
    table = summarise(values, HEADLINE)
    draws = _draws_table(design, prepared)
    meta = {
        "command": "eldercare " + shlex.join(sys.argv[1:] if args.argv is None else args.argv),
        "scenario": design.scenario.name,
        "until": design.until,
        "scale": design.scale,
        "draws": int(design.u.shape[0]),
        "seeds": list(design.seeds),
        "sample_seed": design.sample_seed,
        "refit": design.refit,
        "factor_kinds": factor_kinds(design.factors),
        "refits_missed": _missed(draws),
        "wall_seconds": round(wall, 1),
        "date": dt.date.today().isoformat(),
        "quantiles": "5/50/95% over every draw x seed (December, city)",
        "param_share": "share of the variance from the parameters (one-way random-effects ANOVA "
        "of draws x seeds); the rest is the seeds' (at this scale)",
    }
    meta["includes"] = includes_text(meta)
    write_csv_atomic(table, out / "intervals.csv")
    write_json_atomic(out / "intervals.json", meta)
    write_csv_atomic(draws, out / "draws.csv")
    if args.ship:
        ship = Path(args.ship)
        write_csv_atomic(table, ship)
        write_json_atomic(ship.with_suffix(".json"), meta)
    if not args.quiet:
        years = sorted({2020, int(design.until[:4])} & set(table["year"]))
        show = table[table["year"].isin(years)]
        with pd.option_context("display.width", 200, "display.max_rows", 200):
            cols = ["kpi", "year", "p05", "p50", "p95", "param_share"]
            print(show[cols].to_string(index=False, float_format=lambda x: f"{x:,.4g}"))
        print(json.dumps({k: meta[k] for k in ("refits_missed", "wall_seconds")}))
        print(f"wrote {out}/intervals.csv, intervals.json, draws.csv")
    return 0


def _draws_table(design, prepared: list[dict]) -> pd.DataFrame:
    """One row per draw: the unit draws of each factor and what the refits reached."""
    u = pd.DataFrame(design.u, columns=[f"u:{f.name}" for f in design.factors])
    refit = pd.DataFrame([p["refit"] for p in prepared])
    return pd.concat([pd.DataFrame({"draw": range(len(u))}), refit, u], axis=1)


def _missed(draws: pd.DataFrame) -> dict[str, int]:
    """Draws whose refits missed the drawn target (`*_ok`) or the tolerance band (`*_within_*`)."""
    flags = [c for c in draws.columns if c.endswith("_ok") or c.endswith("_within_tolerance")]
    return {c: int((~draws[c].astype(bool)).sum()) for c in flags}


def _sobol(args: argparse.Namespace) -> int:
    import datetime as dt

    from sim.experiments.batch import open_executor
    from sim.experiments.global_sensitivity import sobol_chart, sobol_tables
    from sim.experiments.results import write_csv_atomic, write_json_atomic
    from sim.experiments.uncertainty import factor_kinds, propagate

    kpis = [k.strip() for k in args.kpis.split(",") if k.strip()]
    for k in kpis:
        if k not in BY_NAME:
            import difflib

            hint = difflib.get_close_matches(k, sorted(BY_NAME), n=1)
            tail = f"did you mean '{hint[0]}'?" if hint else "see `eldercare kpis`"
            raise UsageError(f"sobol: --kpis: unknown KPI {k!r}; {tail}")
    last = int(args.until[:4]) if args.until.endswith("-12") else int(args.until[:4]) - 1
    late = [y for y in args.years if y > last]
    if late:
        raise UsageError(f"sobol: --years: {late[0]} is after --until {args.until}")
    design = _design(args, args.design, [args.seed])
    reuse = None
    if args.reuse:
        from sim.experiments.uncertainty import reusable

        first = reusable(Path(args.reuse), design)
        design = _design(args, args.design, [args.seed], first)
        reuse = (Path(args.reuse), len(first))
    out = Path(args.out)
    t0 = time.perf_counter()
    with open_executor(args.workers, args.dask) as workers:
        values, _, run_wall = propagate(
            design, out, "sobol", workers.executor, workers.count, not args.quiet, kpis,
            args.years, reuse,
        )  # fmt: skip
    log = (lambda _m: None) if args.quiet else print
    table, fits = sobol_tables(
        values, design.u, design.factors, kpis, args.years, args.base, args.bootstrap,
        args.sample_seed, log,
    )  # fmt: skip
    write_csv_atomic(table, out / "sobol.csv")
    write_csv_atomic(fits, out / "emulators.csv")
    sobol_chart(table, out / "sobol_total.png")
    write_json_atomic(
        out / "sobol.json",
        {
            "scenario": design.scenario.name,
            "until": design.until,
            "scale": design.scale,
            "design_points": int(design.u.shape[0]),
            "reused_from": {"folder": str(reuse[0]), "points": reuse[1]} if reuse else None,
            "seed": args.seed,
            "sample_seed": design.sample_seed,
            "refit": design.refit,
            "factor_kinds": factor_kinds(design.factors),
            "saltelli_base": args.base,
            "bootstrap": args.bootstrap,
            "run_wall_seconds": round(run_wall, 1),
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "date": dt.date.today().isoformat(),
        },
    )
    if not args.quiet:
        from sim.experiments.global_sensitivity import ranked

        for kpi in kpis:
            for year in args.years:
                t = ranked(table, kpi, year, 5)
                if t.empty:
                    continue
                print(f"\n{kpi}, December {year}: top 5 by total index")
                cols = ["factor", "kind", "S1", "S1_conf", "ST", "ST_conf"]
                print(t[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        print(f"wrote {out}/sobol.csv, emulators.csv, sobol_total.png, sobol.json")
    return 0


def _ranges(args: argparse.Namespace) -> int:
    from sim.experiments.uncertainty import RANGES_PATH, load_factors, ranges_table, write_ranges

    if args.write:
        table = write_ranges(RANGES_PATH, seed=args.seed, scale=args.scale)
        print(f"wrote {RANGES_PATH}")
    else:
        table = ranges_table(load_factors())
    cols = ["factor", "kind", "how", "distribution", "default", "low", "high"]
    with pd.option_context("display.width", 250, "display.max_rows", 500,
                           "display.max_colwidth", 60):  # fmt: skip
        print(table[cols].to_string(index=False))
    counts = table["kind"].value_counts().to_dict()
    print("\n" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + " factors")
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    from sim.experiments.scenario import available, load_scenario

    for name in available():
        sc = load_scenario(name)
        print(f"{name:28s} until {sc.until}  {sc.description}")
    return 0


def _levers(args: argparse.Namespace) -> int:
    from sim.params.levers import group_label, levers

    group = None
    for info in levers():
        lever = info.lever
        if lever.group != group:
            group = lever.group
            print(f"\n{group_label(group, args.lang)}")
        label = lever.label_en if args.lang == "en" else lever.label_zh
        unit = f" {info.unit}" if info.unit else ""
        if isinstance(info.default, tuple):
            values = ", ".join(f"{v:g}" for v in info.default)
            default = f"{values}{unit} per year (sum {sum(info.default):g})"
        else:
            default = f"{info.default:g}{unit}"
        print(f"  {info.path}  {label}: {default}; range {info.lo:g}..{info.hi:g}")
        print(f"      acts on {lever.acts}; source: {info.source}")
    return 0


def _kpis(args: argparse.Namespace) -> int:
    rows = [
        {
            "kpi": k.name,
            "label": k.label(args.lang),
            "unit": k.unit,
            "what it is": k.role,
            "plan target": f"{k.comparison} {k.target:g}" if k.target is not None else "",
        }
        for k in KPIS
    ]
    with pd.option_context("display.width", 250, "display.max_rows", 500):
        print(pd.DataFrame(rows).to_string(index=False))
    print("\ninput: set by a schedule or lever; fitted: a calibration target; outcome: predicted")
    return 0


class _Version(argparse.Action):
    """--version: the package version, the source tree's git state and the code digest that run
    files record (computed only when asked)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata

        from sim.experiments.results import code_digest, code_version

        version = metadata.version("taiyuan-eldercare")
        print(f"eldercare {version} (source {code_version()}, code digest {code_digest()[:16]})")
        parser.exit()


# -- parser --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="eldercare",
        description="Taiyuan elderly-care model. With no subcommand: run the plan as written "
        "for the full city to 2020-12 (or --until) and print the figures for the city and each "
        "district.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    parser.add_argument("--scale", type=_scale, default=1.0, help="persons per row (default 1)")
    parser.add_argument("--until", type=_until, default="2020-12", help="last month, YYYY-MM")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)

    def common(p: argparse.ArgumentParser, *, seed: bool = True) -> None:
        if seed:
            p.add_argument("--seed", type=_seed, default=None, help="seed (default: scenario's)")
        p.add_argument("--scale", type=_scale, default=None, help="persons per row")
        p.add_argument("--until", type=_until, default=None, help="last month YYYY-MM")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")

    p = sub.add_parser("run", help="run one scenario; write metrics, manifest and an HTML report")
    p.add_argument("scenario", help="scenario name in scenarios/ or a path to a .toml file")
    p.add_argument(
        "--out", required=True, help="output folder (new, or an earlier `run` output: replaced)"
    )
    common(p)
    p.set_defaults(func=_run)

    p = sub.add_parser("batch", help="run a batch file (sweep x replications) into a folder")
    p.add_argument("batch", help="batch .toml file")
    p.add_argument("--out", required=True, help="batch folder; finished runs are skipped")
    p.add_argument("--workers", type=_workers, default=1, help="worker processes (default 1)")
    p.add_argument("--dask", type=_dask, help="'local' (LocalCluster) or tcp://HOST:PORT")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_batch)

    p = sub.add_parser("query", help="SQL (DuckDB) over a folder's runs; the view is 'runs'")
    p.add_argument("folder", help="batch or run folder")
    p.add_argument("sql", help='e.g. "SELECT point, avg(beds_per_1000) FROM runs GROUP BY 1"')
    p.set_defaults(func=_query)

    p = sub.add_parser("compare", help="paired differences B - A of KPIs between two folders")
    p.add_argument("a", help="run or batch folder A")
    p.add_argument("b", help="run or batch folder B")
    p.add_argument("--district", default="Taiyuan", help="district (default: Taiyuan = city)")
    p.add_argument("--month", default="last", help="'last' (default), 'all' or YYYY-MM")
    p.add_argument("--kpis", default=None, help="comma-separated KPI columns")
    p.set_defaults(func=_compare)

    p = sub.add_parser("sensitivity", help="Morris or Sobol indices over parameter ranges")
    p.add_argument("--scenario", default="plan_2016_2020", help="base scenario")
    p.add_argument("--levers", required=True, help="comma-separated dotted parameter paths")
    p.add_argument("--kpis", required=True, help="comma-separated KPIs (last month, city)")
    p.add_argument("--method", choices=("morris", "sobol"), default="morris")
    p.add_argument("--n", type=_positive, default=4, help="trajectories (morris) / base N (sobol)")
    p.add_argument(
        "--out", required=True, help="output folder (new, or an earlier `sensitivity` output)"
    )
    p.add_argument("--workers", type=_workers, default=1, help="worker processes")
    p.add_argument("--dask", type=_dask, help="'local' or tcp://HOST:PORT")
    common(p)
    p.set_defaults(func=_sensitivity)

    p = sub.add_parser("optimise", help="least-cost mix of levers under uncertainty (Optuna)")
    p.add_argument("spec", help="optimisation spec .toml (see scenarios/optimise/)")
    p.add_argument("--out", required=True, help="folder; a killed search resumes from it")
    p.add_argument("--workers", type=_workers, default=1, help="worker processes (default 1)")
    p.add_argument("--dask", type=_dask, help="'local' (LocalCluster) or tcp://HOST:PORT")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_optimise)

    p = sub.add_parser("site", help="where to put new community and day-care centres (spopt)")
    add_site_arguments(p, _number)
    p.add_argument("--out", required=True, help="output folder (new, or an earlier `site`)")
    p.add_argument("--seed", type=_seed, default=None, help="seed (default: scenario's)")
    p.add_argument("--scale", type=_scale, default=None, help="persons per row")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=_site)

    p = sub.add_parser(
        "validate",
        help="run the validation patterns; print pass / miss, write calibration/validation.md",
    )
    p.add_argument("--scale", type=_scale, default=1.0, help="persons per row (default 1)")
    p.add_argument("--seeds", type=_seeds, default=[1, 2, 3], help="seeds (default 1,2,3)")
    p.add_argument(
        "--out",
        default="calibration/validation.md",
        help="report (.md); the figure (.png) and status file (.csv) go beside it "
        "(default calibration/validation.md)",
    )
    p.add_argument("--patterns", default=None, help="comma-separated patterns (default: every one)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_validate)

    def analysis(p: argparse.ArgumentParser, sample_seed: int) -> None:
        p.add_argument("--scenario", default="plan_2016_2020", help="scenario (default: the plan)")
        p.add_argument("--scale", type=_scale, default=10.0, help="persons per row (default 10)")
        p.add_argument("--until", type=_until, default="2035-12", help="last month (2035-12)")
        p.add_argument(
            "--sample-seed", type=_seed, default=sample_seed, help=f"draws seed ({sample_seed})"
        )
        p.add_argument(
            "--no-refit", action="store_true", help="do not refit the fitted parameters per draw"
        )
        p.add_argument("--out", required=True, help="folder (resumed if it holds this analysis)")
        p.add_argument("--workers", type=_workers, default=1, help="worker processes")
        p.add_argument("--dask", type=_dask, help="'local' or tcp://HOST:PORT")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")

    p = sub.add_parser(
        "uncertainty",
        help="90%% intervals of the headline KPIs: parameter draws x seeds (Latin hypercube)",
    )
    p.add_argument("--draws", type=_positive, default=50, help="parameter draws (default 50)")
    p.add_argument("--seeds", type=_seeds, default=[1, 2, 3], help="seeds (default 1,2,3)")
    p.add_argument("--ship", help="also write the intervals to this .csv (and its .json)")
    analysis(p, 1)
    p.set_defaults(func=_uncertainty)

    p = sub.add_parser(
        "sobol", help="Sobol indices of KPIs over every uncertain parameter (GP emulator)"
    )
    p.add_argument("--design", type=_positive, default=200, help="new model runs (default 200)")
    p.add_argument(
        "--reuse", help="an `uncertainty` folder: its draws at --seed join the design (no rerun)"
    )
    p.add_argument("--seed", type=_seed, default=1, help="the one seed of every run (CRN)")
    p.add_argument(
        "--kpis",
        default="medical_care_demand_met,unmet_need_share,deaths_attributable_unmet",
        help="comma-separated KPIs (city, December)",
    )
    p.add_argument("--years", type=_years, default=[2020, 2035], help="years (2020,2035)")
    p.add_argument("--base", type=_positive, default=2048, help="Saltelli N on the emulator")
    p.add_argument("--bootstrap", type=_positive, default=20, help="design bootstraps for CIs")
    analysis(p, 2)  # not the uncertainty analysis' draws, which --reuse adds
    p.set_defaults(func=_sobol)

    p = sub.add_parser("ranges", help="list the uncertain parameters and their ranges")
    p.add_argument(
        "--write", action="store_true", help="recompute the fitted ends; write the ranges file"
    )
    p.add_argument("--seed", type=_seed, default=1, help="seed of the profile runs (--write)")
    p.add_argument("--scale", type=_scale, default=10.0, help="scale of the profile runs")
    p.set_defaults(func=_ranges)

    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    p.set_defaults(func=_scenarios)

    for name, func, what in (
        ("levers", _levers, "the policy levers: path, label, default, range, source"),
        ("kpis", _kpis, "the reported figures: unit, input/fitted/outcome, the plan's target"),
    ):
        p = sub.add_parser(name, help=f"list {what}")
        p.add_argument("--lang", choices=("en", "zh"), default="en", help="labels' language")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sim import configure
    from sim.experiments.batch import ClusterError
    from sim.experiments.results import IdentityError, OutputError
    from sim.experiments.scenario import ScenarioError
    from sim.experiments.uncertainty import UncertaintyError

    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        configure()
        if args.command is None:
            return _summary(args)
        return args.func(args)
    except (
        ScenarioError, UsageError, OutputError, ClusterError, IdentityError, UncertaintyError,
    ) as err:  # fmt: skip
        print(f"eldercare: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a full disk or a folder made read-only while running
        where = f"{err.filename}: " if err.filename else ""
        what = err.strerror or str(err).splitlines()[0]
        print(f"eldercare: {where}{what}", file=sys.stderr)
        return 2
    except BrokenExecutor:
        msg = "a worker process died (killed, or out of memory?); run again to resume"
        print(f"eldercare: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("eldercare: interrupted", file=sys.stderr)
        return 130
