"""The monthly population kernel alone: milliseconds per month and nanoseconds per living row.

Usage: python benchmarks/bench_kernel.py [--month 2030-01] [--scale 1] [--repeat 7] [--threads 1,2]
Runs the population (no care system) up to the month before `--month`, then times the kernel
step of that month (`kernel.step_population`) several times on the same state, restoring
the columns it changes after each call; prints the median and the best for each numba thread
count, and for the kernel as the month ahead runs it (`alone`: one thread, without the GIL).
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np


def prepared_model(month: str, scale: float, seed: int):
    """A population-only model whose next step is `month`, with last month's events cleared."""
    from sim import CareModel, configure
    from sim.engine.calendar import month_index

    configure()
    model = CareModel(seed=seed, scale=scale, care=False)
    model.run_for(month_index(month))
    model.pop.event[model.event_rows] = 0
    return model


def time_kernel(model, repeat: int, alone: bool = False) -> list[float]:
    """Seconds per call of the kernel step, each on the same starting state."""
    from sim.population.columns import KERNEL_COLUMNS  # every column the kernel writes
    from sim.population.kernel import kernel_columns, step_population

    pop, system = model.pop, model.population
    saved = {name: getattr(pop, name).copy() for name in KERNEL_COLUMNS}
    n_alive, stock = pop.n_alive, system.stock.copy()
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        outputs = system._outputs(pop, stock.copy())
        rates = system._rates(model.month)
        pop.n_alive = step_population(kernel_columns(pop), pop.n_alive, rates, outputs, alone)[0]
        seconds.append(time.perf_counter() - t0)
        for name, column in saved.items():
            getattr(pop, name)[:] = column
        pop.n_alive = n_alive
    return seconds


def threading_layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        return "none (serial kernel)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", default="2030-01")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", default="1,2", help="numba thread counts, comma-separated")
    args = parser.parse_args()
    t0 = time.perf_counter()
    model = prepared_model(args.month, args.scale, args.seed)
    build_s = time.perf_counter() - t0
    time_kernel(model, 1)  # compile or load the kernels, start the thread pool
    print(
        f"population to {args.month} in {build_s:.1f} s; {model.pop.n_alive:,} living rows; "
        f"threading layer: {threading_layer()}"
    )
    runs = [(f"{t} thread(s)", int(t), False) for t in args.threads.split(",")]
    for label, threads, alone in [*runs, ("alone (month ahead)", 1, True)]:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        seconds = np.array(time_kernel(model, args.repeat, alone))
        per_row = seconds / model.pop.n_alive * 1e9
        print(
            f"{label}: {np.median(seconds) * 1e3:6.1f} ms/month "
            f"(best {seconds.min() * 1e3:.1f}), {np.median(per_row):5.1f} ns/row "
            f"(best {per_row.min():.1f})"
        )


if __name__ == "__main__":
    main()
