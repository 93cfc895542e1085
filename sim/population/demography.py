"""Demographic inputs: the 2010 census start, the cohorts turning 60, net migration at 60+.

Residents as the census counts them (常住) throughout; no registered (户籍) figure enters. The
same functions feed the stochastic model (`synthesis`, `system`) and its deterministic yardstick
(`projection`), so the two share every input:

- Start (2010 census, 2010-11-01): `census_2010_60plus` and `census_2010_65plus` residents. Within
  60-64 and within 65+ the single-age and sex structure is WPP 2024 China's at 1 July 2010 (5-year
  groups by sex split into single years: Sprague for 60-64 .. 85-89, geometric within 90-94,
  95-99 and 100+ at the ratio of adjacent groups), tilted within 65+ by
  exp(initial_old_age_tilt * (a - 65)) and scaled to the census counts; each year of age spread
  evenly over its 12 months. No 2010 age table for Taiyuan or Shanxi was found
  (validity_reference.csv, NOT FOUND), so the tilt and the sex shift are parameters with ranges.
- Entrants: the persons turning 60 in a month are `entry_share` (x `entry_share_after_2020` from
  2021) x China's persons reaching exact age 60 in that calendar year / 12 (`china_turning_60`,
  recovered from WPP 2022's annual 5-year groups; WPP single years were not found in a package).
  Their female share is WPP 2024 China's (the mean of the 55-59 and 60-64 groups, linear in time
  between its decadal years) + `female_share_shift`.
- Net migration at 60+: `net_migration_rate` per person-year at 60, falling by
  `migration_age_decline` per year of age; negative = net out-migration.

Mortality is in `lifetable` (WPP 2024 China by sex).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from sim.params.sections import DemographyParams
from sim.population.lifetable import AGE_MAX, AGE_MIN, AGES, N_AGES, SEXES
from sim.population.reference import read_table

__all__ = ["AGES", "AGE_MAX", "AGE_MIN", "N_AGES"]

AGE_MIN_M = AGE_MIN * 12  # age 60 in months
N_CELLS = N_AGES * 12  # ages 60y 0m .. 110y 11m (the last holds everyone older)

# Sprague's fifth-difference multipliers (middle panel): single years k = 0..4 of group i from
# groups i-2 .. i+2 (Shryock and Siegel, The Methods and Materials of Demography, table C-1).
SPRAGUE_MIDDLE = np.array(
    [
        [-0.0128, 0.0848, 0.1504, -0.0240, 0.0016],
        [-0.0016, 0.0144, 0.2224, -0.0416, 0.0064],
        [0.0064, -0.0336, 0.2544, -0.0336, 0.0064],
        [0.0064, -0.0416, 0.2224, 0.0144, -0.0016],
        [0.0016, -0.0240, 0.1504, 0.0848, -0.0128],
    ]
)
COHORT_GROUPS = (50, 55, 60, 65)  # WPP 2022 annual groups whose moving sums give the cohorts
COHORT_SMOOTHING = 1e-3  # weight of the second-difference penalty (relative units)


def sprague_split(groups: np.ndarray) -> np.ndarray:
    """Single-year counts [G - 4, 5] of the interior groups 2 .. G - 3 of 5-year `groups`."""
    g = np.asarray(groups, dtype=float)
    return np.array([SPRAGUE_MIDDLE @ g[i - 2 : i + 3] for i in range(2, g.size - 2)])


def _geometric_split(count: float, ratio: float, n: int) -> np.ndarray:
    w = ratio ** np.arange(n)
    return count * w / w.sum()


@cache
def _wpp_by_sex() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(years, group starts, persons [year, sex, group]) of WPP 2024 China by sex."""
    t = read_table("wpp_china_population_by_sex.csv", ["year", "sex", "age_start", "population"])
    years = np.array(sorted(t["year"].unique()))
    starts = np.array(sorted(t["age_start"].unique()))
    out = np.zeros((years.size, 2, starts.size))
    for s, sex in enumerate(SEXES):
        pivot = t[t["sex"] == sex].pivot(index="year", columns="age_start", values="population")
        out[:, s] = pivot.loc[years, starts].to_numpy()
    return years, starts, out


@cache
def single_ages_by_sex(year: int) -> np.ndarray:
    """WPP 2024 China persons [sex, age 60..110] at 1 July of a table year (derived split;
    read-only)."""
    years, starts, pop = _wpp_by_sex()
    out = np.zeros((2, N_AGES))
    idx = {a: i for i, a in enumerate(starts)}
    for s in range(2):
        g = pop[int(np.flatnonzero(years == year)[0]), s]
        sprague = sprague_split(g[idx[50] : idx[95] + 1])  # groups 60-64 .. 85-89
        n90, n95, n100 = g[idx[90]], g[idx[95]], g[idx[100]]
        r90 = (n95 / n90) ** 0.2  # yearly ratio between the 90-94 and 95-99 groups
        single = np.concatenate(
            [
                sprague.ravel(),  # ages 60..89
                _geometric_split(n90, r90, 5),
                _geometric_split(n95, r90, 5),
                _geometric_split(n100, (n100 / n95) ** 0.2, AGE_MAX - 100 + 1),
            ]
        )
        out[s] = np.maximum(single, 0.0)
    out.setflags(write=False)
    return out


def start_cells(p: DemographyParams) -> np.ndarray:
    """Persons [sex, cell] on 2010-11-01 (cell = age in months - 720) reproducing the census
    60+ and 65+ exactly."""
    wpp = single_ages_by_sex(2010)
    total = wpp.sum(axis=0)
    female = np.clip(wpp[1] / total + p.female_share_shift, 0.05, 0.95)
    old = AGES >= 65
    shape = total * np.where(old, np.exp(p.initial_old_age_tilt * (AGES - 65)), 1.0)
    shape[~old] *= (p.census_2010_60plus - p.census_2010_65plus) / shape[~old].sum()
    shape[old] *= p.census_2010_65plus / shape[old].sum()
    by_sex = np.stack([shape * (1 - female), shape * female])
    return np.repeat(by_sex / 12.0, 12, axis=1)


def _both_sex_group_mx(year: float) -> dict[int, float]:
    """WPP 2024 both-sex mx by group start (50 ..), log-linear in time between table years."""
    t = read_table("wpp_china_life_table.csv", ["year", "sex", "age_start", "mx"])
    tb = t[t["sex"] == "both"].pivot(index="year", columns="age_start", values="mx")
    mids = tb.index.to_numpy() + 0.5
    log_mx = np.log(tb.to_numpy())
    return {
        int(a): float(np.exp(np.interp(year, mids, log_mx[:, j]))) for j, a in enumerate(tb.columns)
    }


def _cumulative_hazard(a0: float, a1: float, mx: dict[int, float]) -> float:
    """Integral of the hazard from age a0 to a1 (a0 <= a1), constant mx within each group."""
    total = 0.0
    for g, m in mx.items():
        lo, hi = max(a0, g), min(a1, g + 5 if g < 100 else np.inf)
        total += m * max(hi - lo, 0.0)
    return total


@cache
def china_turning_60() -> tuple[np.ndarray, np.ndarray]:
    """(calendar years Y, persons reaching exact age 60 in China during Y), both sexes.

    WPP 2022 gives, every year T, 5-year groups at 1 July: each is a moving sum of five (six,
    with two halves) yearly flows X(Y) through exact age 60, survived from 60 to the group's ages
    (or discounted back to them from 60) with WPP 2024 both-sex mx. The groups 50-54 .. 65-69 of
    2000-2040 give 164 such sums of X(1986 .. 2050). Moving sums leave a 5-periodic component
    undetermined; the solution is the least-squares fit (relative errors) with a small penalty
    on second differences of X (COHORT_SMOOTHING), which fills that component smoothly. It keeps
    the single-year dips that Sprague interpolation blurs: the 1959-1961 famine births turning 60
    in 2019-2021 and the 1962-1963 boom turning 60 from 2022 (derived; WPP single years were not
    found in a package). Fit residuals are below 0.5% of every group.
    """
    t = read_table("wpp_china_annual_groups.csv", ["year", "age_group", "population_thousands"])
    pivot = t.pivot(index="year", columns="age_group", values="population_thousands")
    years = pivot.index.to_numpy()
    flow_years = np.arange(years[0] - 14, years[-1] + 11)
    rows, groups = [], []
    for T in years:
        mx = _both_sex_group_mx(T + 0.5)
        for low in COHORT_GROUPS:
            u = 60 - low  # persons aged low .. low+4 at T + 0.5 reach 60 during (T+u-4.5, T+u+0.5]
            row = np.zeros(flow_years.size)
            parts = [(T + u - 5, 0.5)] + [(T + u - k, 1.0) for k in (4, 3, 2, 1)] + [(T + u, 0.5)]
            for y, frac in parts:
                age = 60 - (y - T)  # at T + 0.5, of those reaching 60 at mid-year y + 0.5
                if age >= 60:
                    survival = np.exp(-_cumulative_hazard(60, age, mx))
                else:
                    survival = np.exp(_cumulative_hazard(age, 60, mx))
                row[np.searchsorted(flow_years, y)] += frac * survival
            rows.append(row)
            groups.append(pivot.loc[T, f"{low}-{low + 4}"] * 1000.0)
    a, g = np.array(rows), np.array(groups)
    d2 = np.diff(np.eye(flow_years.size), 2, axis=0) / (g.mean() / 5)
    lhs = np.vstack([a / g[:, None], np.sqrt(COHORT_SMOOTHING) * d2])
    rhs = np.concatenate([np.ones(g.size), np.zeros(d2.shape[0])])
    flows = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    flow_years.setflags(write=False)
    flows.setflags(write=False)
    return flow_years, flows


def entrants_per_month(year: int, p: DemographyParams) -> float:
    """Expected Taiyuan residents turning 60 in a month of calendar `year`."""
    years, counts = china_turning_60()
    share = p.entry_share * (p.entry_share_after_2020 if year > 2020 else 1.0)
    return share * float(counts[np.searchsorted(years, year)]) / 12


@cache
def _entrant_female_share() -> tuple[np.ndarray, np.ndarray]:
    years, starts, pop = _wpp_by_sex()
    sel = (starts == 55) | (starts == 60)
    share = (pop[:, 1, sel] / pop[:, :, sel].sum(axis=1)).mean(axis=1)
    return years + 0.5, share


def entrant_female_share(time: float, p: DemographyParams) -> float:
    """Female share of those turning 60 at calendar time `time`."""
    years, share = _entrant_female_share()
    return float(np.clip(np.interp(time, years, share) + p.female_share_shift, 0.0, 1.0))


def migration_rate_by_age(p: DemographyParams) -> np.ndarray:
    """Net migration per person-year [age 60..110] (negative = net out-migration)."""
    return p.net_migration_rate * np.exp(-p.migration_age_decline * (AGES - AGE_MIN))
