"""Full city, 2016-01 to 2035-12: wall time and peak memory, population alone and whole model.

Usage: python benchmarks/bench_population.py [--until 2035-12] [--scale 1] [--only population|model]
                                            [--profile N] [--repeat N]
Each part runs in a fresh process so its peak memory is its own; numba kernels are compiled (and
cached) by a tiny warm-up run first, outside the timing. --profile N runs the model under cProfile
and prints the N functions with the most own time (the timings then include profiling overhead).
--repeat N runs each part N times and adds the median and best total: on a shared virtual machine
one run can be 10-20% off.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def measure(care: bool, until: str, scale: float, seed: int, profile: int = 0) -> dict:
    """Build and run one model in this process; returns timings and peak memory."""
    import cProfile
    import pstats

    from sim import CareModel, configure

    configure()
    warm = CareModel(seed=seed, scale=1000, care=care)
    warm.run_until("2016-03")
    t0 = time.perf_counter()
    model = CareModel(seed=seed, scale=scale, care=care)
    t1 = time.perf_counter()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    model.run_until(until)
    t2 = time.perf_counter()
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(profile)
    frame = model.metrics()
    t3 = time.perf_counter()
    city = frame[frame["district"] == "Taiyuan"].iloc[-1]
    return {
        "build_s": t1 - t0,
        "run_s": t2 - t1,
        "metrics_s": t3 - t2,
        "total_s": t3 - t0,
        "months": model.month,
        "rows_ever": model.pop.size,
        "residents_60plus_last": float(city["residents_60plus"]),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until", default="2035-12")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=["population", "model"])
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--repeat", type=int, default=1, metavar="N")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure(args.only == "model", args.until, args.scale, args.seed, args.profile)
        print(json.dumps(result))
        return
    parts = [args.only] if args.only else ["population", "model"]
    for part in parts:
        totals = [_run_part(part, args) for _ in range(max(args.repeat, 1))]
        if len(totals) > 1:
            print(
                f"{part:10s} {len(totals)} runs: median total {np.median(totals):6.2f} s, "
                f"best {min(totals):6.2f} s"
            )


def _run_part(part: str, args: argparse.Namespace) -> float:
    """One fresh process measuring `part`; prints its line and returns its total seconds."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--only",
        part,
        "--until",
        args.until,
        "--scale",
        str(args.scale),
        "--seed",
        str(args.seed),
        "--profile",
        str(args.profile),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out = done.stdout
    if args.profile:
        print(done.stderr)
    r = json.loads(out.strip().splitlines()[-1])
    print(
        f"{part:10s} build {r['build_s']:5.2f} s  run {r['run_s']:6.2f} s "
        f"({r['months']} months)  metrics {r['metrics_s']:4.2f} s  "
        f"total {r['total_s']:6.2f} s  peak {r['peak_rss_gib']:.2f} GiB  "
        f"60+ at {args.until}: {r['residents_60plus_last']:,.0f}  rows ever {r['rows_ever']:,}"
    )
    return r["total_s"]


if __name__ == "__main__":
    main()
