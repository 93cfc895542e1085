"""Command line: `eldercare` / `python -m sim`.

With no arguments: run the plan as written for the full city to 2020-12 and print the 2020
figures for the city and each district.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from sim.calendar import month_index


def _summary(args: argparse.Namespace) -> int:
    from sim import CareModel

    model = CareModel(seed=args.seed, scale=args.scale)
    model.run_until(args.until)
    frame = model.metrics()
    last = frame[frame["month"] == args.until].set_index("district")
    cols = [
        "residents_60plus",
        "residents_65plus",
        "residents_80plus",
        "partially_dependent",
        "fully_dependent",
        "medical_need",
        "deaths",
        "entrants",
    ]
    table = last[cols].round(0).astype("int64")
    unable = (last["partially_dependent"] + last["fully_dependent"]) / last["residents_60plus"]
    table["unable_selfcare_pct"] = (100 * unable).round(2)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"Taiyuan elderly population, {args.until} (seed {args.seed}, scale {args.scale:g})")
        print(table.to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eldercare", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--scale", type=float, default=1.0, help="persons per row (default 1)")
    parser.add_argument("--until", default="2020-12", help="last month, YYYY-MM (default 2020-12)")
    args = parser.parse_args(argv)
    try:
        month_index(args.until)
    except ValueError as err:
        print(f"eldercare: --until: {err}", file=sys.stderr)
        return 2
    if args.scale < 1:
        print("eldercare: --scale: must be >= 1 (persons per row)", file=sys.stderr)
        return 2
    return _summary(args)
