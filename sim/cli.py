"""Command line: `eldercare` / `python -m sim`.

With no arguments: run the plan as written for the full city to 2020-12 and print the 2020
figures for the city and each district. Subcommands: run, batch, query, compare, sensitivity,
scenarios (see `eldercare SUBCOMMAND --help`).

Bad input (a malformed or invalid scenario / batch file, an unknown scenario or district, a
missing file, an unwritable output folder) exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from sim.engine.calendar import month_index, until_index
from sim.kpis.registry import PLAN_TARGETS

SUMMARY_COLUMNS = [
    "residents_60plus",
    "residents_65plus",
    "residents_80plus",
    "partially_dependent",
    "fully_dependent",
    "medical_need",
    "deaths",
    "entrants",
]
COMPARE_KPIS = (
    *(k.name for k in PLAN_TARGETS),
    "unmet_need_share",
    "empty_beds",
    "share_institution",
    "spending_total",
)


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


def _number(kind: type, minimum: float, what: str):
    """An argparse type: a `kind` number >= `minimum` (finite), with a one-line message."""

    def parse(value: str):
        try:
            x = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
        if not x >= minimum or x == float("inf"):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
        return x

    return parse


_scale = _number(float, 1, "a number >= 1 (persons per row)")
_seed = _number(int, 0, "a whole number >= 0")
_positive = _number(int, 1, "a whole number >= 1")


# -- summary (no subcommand) ---------------------------------------------------------------------
def _summary(args: argparse.Namespace) -> int:
    from sim import CareModel

    model = CareModel(seed=args.seed, scale=args.scale)
    model.run_until(args.until)
    frame = model.metrics()
    last = frame[frame["month"] == args.until].set_index("district")
    table = last[SUMMARY_COLUMNS].round(0).astype("int64")
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
        atomic_dir,
        check_writable,
        manifest,
        simulate,
        write_json_atomic,
    )
    from sim.experiments.scenario import load_scenario

    sc = load_scenario(args.scenario)
    seed = sc.seed if args.seed is None else args.seed
    scale = sc.scale if args.scale is None else args.scale
    until = args.until or sc.until
    check_writable(args.out)
    t0 = time.perf_counter()
    n_months = month_index(until) + 1
    with tqdm(total=n_months, desc=sc.name, unit="month", disable=args.quiet) as bar:
        frame = simulate(sc.params, seed, scale, until, progress=bar.update)
    man = manifest(sc, sc.params, seed, scale, until, wall_seconds=time.perf_counter() - t0)
    with atomic_dir(args.out) as tmp:
        frame.to_parquet(tmp / "metrics.parquet", index=False)
        write_json_atomic(tmp / "manifest.json", man)
        (tmp / "report.html").write_text(report.render(frame, man), encoding="utf-8")
    if not args.quiet:
        print(f"wrote {args.out}/metrics.parquet, manifest.json, report.html")
    return 0


# -- batch ---------------------------------------------------------------------------------------
def _batch(args: argparse.Namespace) -> int:
    from sim.experiments.batch import load_batch, make_executor, run_batch

    spec = load_batch(args.batch)
    t0 = time.perf_counter()
    from sim.experiments.batch import prepare

    prepare(spec, args.out)  # validate the folder before starting workers
    executor, close = make_executor(args.workers, args.dask)
    try:
        summary = run_batch(spec, args.out, executor, progress=not args.quiet)
    finally:
        close()
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
        pattern = str(folder / "runs" / "point=*_seed=*.parquet")
        if not list((folder / "runs").glob("point=*_seed=*.parquet")):
            raise UsageError(f"{folder}: batch folder has no finished runs")
    elif (folder / "metrics.parquet").is_file():
        pattern = str(folder / "metrics.parquet")
    else:
        raise UsageError(f"{folder}: not a run or batch folder (no runs/ nor metrics.parquet)")
    con = duckdb.connect()
    try:
        escaped = pattern.replace("'", "''")
        con.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet('{escaped}')")
        result = con.execute(args.sql).df()
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
    kpis = args.kpis.split(",") if args.kpis else list(COMPARE_KPIS)
    for k in kpis:
        if k not in a.columns or k not in b.columns:
            raise UsageError(f"{args.a}: --kpis: unknown KPI {k!r}")
    if args.month == "all":
        months = None
    elif args.month == "last":
        months = [min(a["month"].max(), b["month"].max())]
    else:
        months = [_until(args.month)]
    table = compare_frames(a, b, args.district, months, kpis)
    if table.empty:
        raise UsageError(f"{args.b}: no runs pair with {args.a} (same seeds and months needed)")
    print(f"B - A for {args.district}: A = {args.a}, B = {args.b}; 90% interval = 5%-95% of pairs")
    with pd.option_context("display.width", 200, "display.max_rows", 5000):
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.4g}"))
    return 0


# -- sensitivity ---------------------------------------------------------------------------------
def _sensitivity(args: argparse.Namespace) -> int:
    from sim.experiments.batch import make_executor, sensitivity, sensitivity_chart
    from sim.experiments.results import atomic_dir, check_writable, code_version, write_json_atomic
    from sim.experiments.scenario import ScenarioError, load_scenario

    sc = load_scenario(args.scenario)
    levers = [s.strip() for s in args.levers.split(",") if s.strip()]
    kpis = [s.strip() for s in args.kpis.split(",") if s.strip()]
    from sim.experiments.batch import lever_info

    for lv in levers:
        try:
            lever_info("--levers", "levers", lv, scalar=True)
        except ScenarioError as err:
            raise UsageError(f"sensitivity: --levers: {lv}: {err.message}") from None
    from sim.experiments.report import CITY  # noqa: F401  (keeps matplotlib Agg set up before workers)
    from sim.experiments.results import KEY_KPIS

    known = set(KEY_KPIS) | {
        "residents_60plus", "medical_need", "occupancy_public", "occupancy_medical",
        "share_family_only", "share_community", "share_medical_bed", "queue_length",
        "unmet_care_hours", "carers_overloaded", "team_utilisation", "beds_public",
        "beds_private", "coverage_community_centre", "coverage_day_care",
    }  # fmt: skip
    for k in kpis:
        if k not in known:
            import difflib

            hint = difflib.get_close_matches(k, sorted(known), n=1)
            tail = f"did you mean '{hint[0]}'?" if hint else "allowed: " + ", ".join(sorted(known))
            raise UsageError(f"sensitivity: --kpis: unknown KPI {k!r}; {tail}")
    if not levers or (len(levers) < 2 and args.method == "sobol"):
        raise UsageError("sensitivity: --levers: name at least one lever (two for sobol)")
    seed = sc.seed if args.seed is None else args.seed
    scale = sc.scale if args.scale is None else args.scale
    until = args.until or sc.until
    check_writable(args.out)
    executor, close = make_executor(args.workers, args.dask)
    try:
        table, samples = sensitivity(
            sc, levers, kpis, args.method, args.n, seed, scale, until, executor, not args.quiet
        )
    finally:
        close()
    with atomic_dir(args.out) as tmp:
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
                "code_version": code_version(),
            },
        )
    if not args.quiet:
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    from sim.experiments.scenario import available, load_scenario

    for name in available():
        sc = load_scenario(name)
        print(f"{name:28s} until {sc.until}  {sc.description}")
    return 0


# -- parser --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="eldercare",
        description="Taiyuan elderly-care model. With no subcommand: run the plan as written "
        "for the full city to 2020-12 (or --until) and print the figures for the city and each "
        "district.",
    )
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
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    common(p)
    p.set_defaults(func=_run)

    p = sub.add_parser("batch", help="run a batch file (sweep x replications) into a folder")
    p.add_argument("batch", help="batch .toml file")
    p.add_argument("--out", required=True, help="batch folder; finished runs are skipped")
    p.add_argument("--workers", type=_positive, default=1, help="worker processes (default 1)")
    p.add_argument("--dask", default=None, help="'local' (LocalCluster) or tcp://HOST:PORT")
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
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--workers", type=_positive, default=1, help="worker processes")
    p.add_argument("--dask", default=None, help="'local' or tcp://HOST:PORT")
    common(p)
    p.set_defaults(func=_sensitivity)

    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    p.set_defaults(func=_scenarios)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sim import configure
    from sim.experiments.results import OutputError
    from sim.experiments.scenario import ScenarioError

    try:
        args = build_parser().parse_args(argv)
        configure()
        if args.command is None:
            return _summary(args)
        return args.func(args)
    except (ScenarioError, UsageError) as err:
        print(f"eldercare: {err}", file=sys.stderr)
        return 2
    except OutputError as err:
        print(f"eldercare: {err.path}: {err.message}", file=sys.stderr)
        return 2
    except PermissionError as err:
        print(f"eldercare: {err.filename}: not writable ({err.strerror})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eldercare: interrupted", file=sys.stderr)
        return 130
