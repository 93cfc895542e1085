"""Age structure, mortality schedule and entrants, derived from UN WPP 2022 cohort progression.

No age-specific life table for Taiyuan, Shanxi or China 2020 was found (data/README). The
mortality schedule is therefore derived from 5-year cohort survival in UN WPP 2022 for China:
the people aged x..x+4 in year t who are aged x+5..x+9 in year t+5 give the mean hazard around
age x+5 in the period t..t+5 (migration is negligible at these ages). Hazards are interpolated
log-linearly in age and in calendar time, which also carries WPP's mortality decline to 2035.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

from sim.population.reference import wpp_china

AGE_MIN, AGE_MAX = 60, 110
AGES = np.arange(AGE_MIN, AGE_MAX + 1)
N_AGES = AGES.size
GROUPS = ["60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90-94", "95-99", "100+"]


@cache
def wpp_period_hazards(max_hazard: float) -> tuple[np.ndarray, np.ndarray]:
    """(period mid-years, annual hazard [period, age 60..110]) from WPP cohort survival, capped
    at `max_hazard` (cached per cap)."""
    wpp = wpp_china()
    years = [int(y) for y in wpp.columns]
    mids, rows = [], []
    for t0, t1 in itertools.pairwise(years):
        at_ages, hazard = [], []
        for g0, g1 in itertools.pairwise(GROUPS):
            survival = wpp.loc[g1, t1] / wpp.loc[g0, t0]
            at_ages.append(int(g0[:2]) + 5)
            hazard.append(-np.log(survival) / (t1 - t0))
        last = wpp.loc["100+", t1] / (wpp.loc["95-99", t0] + wpp.loc["100+", t0])
        at_ages.append(100)
        hazard.append(-np.log(last) / (t1 - t0))
        mids.append(t0 + 0.5 + (t1 - t0) / 2)  # WPP counts are at 1 July
        rows.append(_loglinear_ages(np.array(at_ages), np.array(hazard), max_hazard))
    return np.array(mids), np.array(rows)


def _loglinear_ages(at_ages: np.ndarray, hazard: np.ndarray, max_hazard: float) -> np.ndarray:
    """Hazard at ages 60..110: log-linear interpolation, Gompertz extrapolation at both ends,
    at most `max_hazard`."""
    log_h = np.log(hazard)
    out = np.interp(AGES, at_ages, log_h)
    low_slope = (log_h[1] - log_h[0]) / (at_ages[1] - at_ages[0])
    high_slope = (log_h[-1] - log_h[-3]) / (at_ages[-1] - at_ages[-3])
    out = np.where(at_ages[0] > AGES, log_h[0] + low_slope * (AGES - at_ages[0]), out)
    out = np.where(at_ages[-1] < AGES, log_h[-1] + high_slope * (AGES - at_ages[-1]), out)
    return np.minimum(np.exp(out), max_hazard)


def hazard_for_year(year: float, max_hazard: float) -> np.ndarray:
    """Annual all-state, both-sex hazard by age 60..110 in a calendar year (log-linear in time),
    capped at `max_hazard` in every WPP period."""
    mids, table = wpp_period_hazards(float(max_hazard))
    y = float(np.clip(year, mids[0], mids[-1]))
    k = int(np.clip(np.searchsorted(mids, y) - 1, 0, mids.size - 2))
    w = (y - mids[k]) / (mids[k + 1] - mids[k])
    return np.exp((1 - w) * np.log(table[k]) + w * np.log(table[k + 1]))


def initial_age_shares(at_year: float = 2016.0) -> np.ndarray:
    """Share of the 60+ population at each single age 60..110 at `at_year` (WPP China).

    Group counts are interpolated log-linearly between the WPP years around `at_year` and spread
    evenly over the five ages of each group (assumed; the 100+ group over ages 100-104).
    """
    wpp = wpp_china()
    years = np.array([int(y) + 0.5 for y in wpp.columns])
    k = int(np.clip(np.searchsorted(years, at_year) - 1, 0, years.size - 2))
    w = (at_year - years[k]) / (years[k + 1] - years[k])
    shares = np.zeros(N_AGES)
    for group in GROUPS:
        a, b = wpp.loc[group].iloc[k], wpp.loc[group].iloc[k + 1]
        count = np.exp((1 - w) * np.log(a) + w * np.log(b))
        start = int(group[:-1] if group.endswith("+") else group[:2]) - AGE_MIN
        shares[start : start + 5] += count / 5
    return shares / shares.sum()


@cache
def china_entrants_per_year() -> tuple[np.ndarray, np.ndarray]:
    """(mid-years, persons turning 60 per year in China), from the 60-64 group five years on.

    E = N_60-64(t+5) / (5 * s) where s is the survival of an entrant to the middle of the group,
    exp(-2.5 * hazard at 62).
    """
    wpp = wpp_china()
    years = [int(y) for y in wpp.columns]
    mids, counts = [], []
    for t0, t1 in itertools.pairwise(years):
        # the hazard at 62 is far below any cap (a cap binds only past 100): none applied
        s_within = np.exp(-2.5 * hazard_for_year(t0 + 3.0, np.inf)[2])
        mids.append(t0 + 0.5 + (t1 - t0) / 2)
        counts.append(wpp.loc["60-64", t1] * 1000.0 / ((t1 - t0) * s_within))
    return np.array(mids), np.array(counts)


def entrants_per_month(year: float, share_of_china: float) -> float:
    """Expected Taiyuan residents turning 60 in a month at calendar time `year`."""
    mids, counts = china_entrants_per_year()
    return share_of_china * float(np.interp(year, mids, counts)) / 12.0
