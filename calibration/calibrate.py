"""Fit the model to calibration/targets.csv and write calibration/fitted.toml and report.md (and,
with the population stage, the projection variants scenarios/demography_low.toml and _high.toml).

Usage (from the repository root, after the README's install):
    .venv/bin/python calibration/calibrate.py [--scale 10] [--seed 1]
        [--stages population,health,population,medical,choice] [--report-seeds 5] [--report-only]
Progress goes to the terminal and to calibration/calibrate.log.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=10.0, help="persons per row (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the common random numbers")
    parser.add_argument("--stages", default="population,health,population,medical,choice")
    parser.add_argument("--report-seeds", type=int, default=5)
    parser.add_argument("--report-only", action="store_true", help="only regenerate report.md")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for fitted.toml and report")
    parser.add_argument(
        "--abc",
        action="store_true",
        help="research run: ABC-SMC posterior (pyabc) over the stages' levers instead of the fit",
    )
    parser.add_argument("--abc-population", type=int, default=50, help="particles per generation")
    parser.add_argument("--abc-generations", type=int, default=4)
    args = parser.parse_args(argv)

    import numpy as np

    import sim
    from sim.experiments.calibrate import (
        CalibrationError,
        abc_posterior,
        demography_summary,
        fit,
        fitted_toml,
        load_targets,
        objective,
        replicate,
        report,
        variant_scenarios,
    )
    from sim.params.sections import Params

    sim.configure()
    log_file = (args.out / "calibrate.log").open("a", encoding="utf-8")

    def log(message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        log_file.write(line + "\n")

    try:
        targets = load_targets(HERE / "targets.csv")
        start = time.perf_counter()
        if args.abc:
            stages = [s for s in args.stages.split(",") if s]
            log(f"ABC-SMC over stages {stages} at scale {args.scale:g}")
            posterior = abc_posterior(
                targets,
                Params(),
                stages,
                args.scale,
                args.out / "abc.db",
                args.abc_population,
                args.abc_generations,
                args.seed,
            )
            posterior.to_csv(args.out / "abc_posterior.csv", index=False)
            for lever in posterior.columns[:-1]:
                w, v = posterior["weight"].to_numpy(), posterior[lever].to_numpy()
                order = np.argsort(v)
                cdf = np.cumsum(w[order])
                lo, hi = v[order][np.searchsorted(cdf, [0.05, 0.95])]
                mean = np.sum(w * v)
                log(f"{lever}: posterior mean {mean:.6g}, 90% interval [{lo:.6g}, {hi:.6g}]")
            log(f"wrote {args.out / 'abc_posterior.csv'}")
            return 0
        if args.report_only:
            params = Params()
        else:
            stages = [s for s in args.stages.split(",") if s]
            log(f"calibrating stages {stages} at scale {args.scale:g}, seed {args.seed}")
            params, _ = fit(targets, Params.declared(), stages, args.seed, args.scale, log)
            stats = replicate(params, [args.seed], args.scale).iloc[0].to_dict()
            value = objective(stats, targets)
            method = (
                f"staged simulated method of moments (scipy brentq), common random numbers, "
                f"seed {args.seed}, scale {args.scale:g}"
            )
            tmp = args.out / "fitted.toml.tmp"
            tmp.write_text(fitted_toml(params, HERE / "targets.csv", method, value), "utf-8")
            os.replace(tmp, args.out / "fitted.toml")
            if "population" in stages:
                for name, text in variant_scenarios(params, targets).items():
                    path = HERE.parent / "scenarios" / f"{name}.toml"
                    path.write_text(text, encoding="utf-8")
                    log(f"wrote {path}")
            log(
                f"wrote {args.out / 'fitted.toml'} (objective {value:.4g}) "
                f"in {time.perf_counter() - start:.0f} s"
            )
        seeds = list(range(1, args.report_seeds + 1))
        reps = replicate(params, seeds, args.scale)
        note = (
            f"Simulated at scale {args.scale:g} (persons per row) over seeds {seeds}; "
            f"interval = 5th-95th percentile across seeds. Regenerate with "
            f"`python calibration/calibrate.py --report-only`."
        )
        report(targets, reps, args.out, note, demography_summary(params, seeds, args.scale))
        log(f"wrote {args.out / 'report.md'} in {time.perf_counter() - start:.0f} s total")
    except CalibrationError as err:
        print(f"calibrate: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
