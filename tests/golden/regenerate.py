"""Regenerate the golden metrics (tests/golden/*.parquet) when a change is meant to change results.

    .venv/bin/python tests/golden/regenerate.py

The golden files are the plan scenario at scale 10 through 2020-12 for seeds 1 and 2
(`tests/test_golden.py` compares every metric exactly). Regenerate them only in a commit whose
message says which mechanism moved the results and by how much.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SCENARIO, SCALE, UNTIL, SEEDS = "plan_2016_2020", 10, "2020-12", (1, 2)


def golden_path(seed: int) -> Path:
    return HERE / f"{SCENARIO}_scale{SCALE}_seed{seed}.parquet"


def golden_metrics(seed: int) -> pd.DataFrame:
    """The metrics the golden file of `seed` records, computed by the current code."""
    from sim import CareModel
    from sim.experiments.scenario import load_scenario

    model = CareModel(seed=seed, scale=SCALE, params=load_scenario(SCENARIO).params)
    model.run_until(UNTIL)
    return model.metrics()


def main() -> int:
    for seed in SEEDS:
        path = golden_path(seed)
        golden_metrics(seed).to_parquet(path, index=False)
        print(f"wrote {path.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    sys.exit(main())
