"""Where a month's time goes on each thread of `CareModel.run_until`, at full city.

Usage: python benchmarks/bench_month.py [--from 2030-01] [--months 12] [--scale 1] [--seed 1]
Runs the model to the month before `--from`, then times `--months` months in one `run_until`,
wrapping the parts of the month: on the main thread each care subsystem's step and results, the
drawing of next month's entrants (`MonthAhead` set-up), its share of the kernel's chunks with the
wait for the worker's share and the merge; on the worker its chunks of the kernel (which copies
the kernel columns as it goes), the care delivered with its sums (`PersonSums.add_to`) and the
reasons (`diagnostics.add_reasons`). Prints milliseconds a month, wall and thread CPU. The
wrapping costs microseconds a call.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import sim.care.delivery
import sim.care.diagnostics
import sim.population.system
from sim import CareModel, configure
from sim.engine.calendar import month_index

WALL: defaultdict[str, float] = defaultdict(float)
CPU: defaultdict[str, float] = defaultdict(float)


def timed(owner: object, name: str, label: str) -> None:
    """Replace owner.name by a wrapper adding its wall and thread CPU time under `label`."""
    function = getattr(owner, name)

    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        result = function(*args, **kwargs)
        WALL[label] += time.perf_counter() - wall
        CPU[label] += time.thread_time() - cpu
        return result

    setattr(owner, name, wrapper)


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", default="2030-01")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    ahead = sim.population.system.MonthAhead
    timed(ahead, "__init__", "main: next month's entrants")
    timed(ahead, "result", "main: its kernel chunks, the wait, merge")
    timed(ahead, "_run", "worker: its kernel chunks (with the copy)")
    timed(sim.care.delivery.PersonSums, "add_to", "worker: care delivered, per-person sums")
    timed(sim.care.diagnostics, "add_reasons", "worker: reasons")
    model = CareModel(seed=args.seed, scale=args.scale)
    for subsystem in {type(s) for s in model.care}:
        timed(subsystem, "step", f"main: {subsystem.__name__}.step")
        timed(subsystem, "results", f"main: {subsystem.__name__}.results")
    model.run_until(month_index(args.start))
    WALL.clear()
    CPU.clear()
    t0 = time.perf_counter()
    model.run_until(month_index(args.start) + args.months)
    per_month = (time.perf_counter() - t0) * 1e3 / args.months
    print(f"{args.months} months from {args.start}: {per_month:.1f} ms a month (wall)")
    for label in sorted(WALL, key=WALL.get, reverse=True):
        print(
            f"  {label:40s} {WALL[label] * 1e3 / args.months:6.1f} ms "
            f"(cpu {CPU[label] * 1e3 / args.months:5.1f})"
        )


if __name__ == "__main__":
    main()
