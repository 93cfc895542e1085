"""Packaged reference tables (sim/data/*.csv), loaded once and checked for the columns we use.

Each CSV carries a `source` column on every row; see scripts/import_reference_data.py for where
the rows were copied from.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


class DataFileError(ValueError):
    """A packaged or user data file is missing or lacks a column."""


def read_table(name: str, columns: list[str]) -> pd.DataFrame:
    """Read `sim/data/<name>` and check that `columns` (and `source`) are present."""
    path = DATA_DIR / name
    if not path.exists():
        raise DataFileError(f"{path}: file not found (the package data is incomplete)")
    table = pd.read_csv(path)
    missing = [c for c in [*columns, "source"] if c not in table.columns]
    if missing:
        raise DataFileError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


@cache
def wpp_china() -> pd.DataFrame:
    """China population (thousands) by 5-year age group 60+ and year, UN WPP 2022 medium."""
    t = read_table("wpp_china_60plus.csv", ["year", "age_group", "population_thousands"])
    return t.pivot(index="age_group", columns="year", values="population_thousands")


@cache
def clhls_one_year() -> pd.DataFrame:
    """CLHLS one-year transition probabilities by age band, sex and state (1 best .. 3 worst)."""
    cols = ["age_band", "sex", "from_state", "to_state_1", "to_state_2", "to_state_3", "to_death"]
    return read_table("clhls_transitions_1yr.csv", cols)


@cache
def census_health() -> pd.DataFrame:
    """Census self-reported health of 60+: Shanghai 2010 by age and sex, Shaanxi 2020 level."""
    cols = ["geography", "year", "sex", "age_group", "category", "count", "share_pct"]
    return read_table("census_health_status.csv", cols)


@cache
def taiyuan_census() -> dict[tuple[int, str], float]:
    """Taiyuan census and survey figures keyed by (year, indicator)."""
    t = read_table("taiyuan_census.csv", ["year", "indicator", "value"])
    return {(int(r.year), str(r.indicator)): float(r.value) for r in t.itertuples()}
