"""One-off: copy the reference rows the model uses from ../shared/data into sim/data.

The package must run without ../shared, so the rows it needs are copied with their `source`
column. Re-run after the shared data changes: `python scripts/import_reference_data.py`.
"""

from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "sim" / "data"


def main() -> None:
    wpp = pd.read_csv(SHARED / "projections.csv")
    wpp = wpp[wpp["series"].str.startswith("WPP2022")]
    wpp[["series", "year", "age_group", "population_thousands", "source"]].to_csv(
        OUT / "wpp_china_60plus.csv", index=False
    )

    clhls = pd.read_csv(SHARED / "clhls_transitions.csv")
    clhls[clhls["horizon_years"] == 1].drop(columns=["note"]).to_csv(
        OUT / "clhls_transitions_1yr.csv", index=False
    )

    health = pd.read_csv(SHARED / "health_status.csv")
    keep = (health["geography"] == "Shanghai") | health["geography"].str.startswith("Shaanxi")
    health = health[keep & (health["category"] != "qualitative")]
    cols = ["geography", "year", "sex", "age_group", "category", "count", "share_pct", "source"]
    health[cols].to_csv(OUT / "census_health_status.csv", index=False)

    ctx = pd.read_csv(SHARED / "population_context.csv")
    ctx = ctx[(ctx["geography"] == "Taiyuan") & ctx["value"].notna()]
    ctx[["year", "reference_date", "indicator", "value", "unit", "source"]].to_csv(
        OUT / "taiyuan_census.csv", index=False
    )


if __name__ == "__main__":
    main()
