"""Full city, 2016-01 to 2035-12: wall time and peak memory of the model run.

Usage: python benchmarks/bench_population.py [--until 2035-12] [--scale 1]
Prints the time to build the model, the time per simulated period, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until", default="2035-12")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from sim import CareModel

    t_import = time.perf_counter() - t0
    warm = CareModel(seed=args.seed, scale=1000)  # compile the numba kernels outside the timing
    warm.run_until("2016-02")

    t1 = time.perf_counter()
    model = CareModel(seed=args.seed, scale=args.scale)
    t_build = time.perf_counter() - t1
    t2 = time.perf_counter()
    model.run_until(args.until)
    t_run = time.perf_counter() - t2
    t3 = time.perf_counter()
    metrics = model.metrics()
    t_metrics = time.perf_counter() - t3

    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    city = metrics[metrics["district"] == "Taiyuan"].iloc[-1]
    print(f"import            {t_import:6.2f} s")
    print(f"build (end-2015)  {t_build:6.2f} s   {model.pop.size:,} rows")
    print(f"run to {args.until}    {t_run:6.2f} s   {model.month} months")
    print(f"metrics frame     {t_metrics:6.2f} s   {len(metrics):,} rows")
    print(f"total model time  {t_build + t_run + t_metrics:6.2f} s")
    print(f"peak memory       {peak_gib:6.2f} GiB (process max RSS)")
    print(f"60+ in {args.until}: {city['residents_60plus']:,.0f}; rows ever {model.pop.size:,}")


if __name__ == "__main__":
    main()
