"""Life table: death hazard by single age 60..110, sex and calendar time, and life expectancy.

Source: China's central death rates mx by 5-year age group and sex, UN WPP 2024 medium variant,
calendar years 2000, 2010, ..., 2050 (`sim/data/wpp_china_life_table.csv`, copied by
`scripts/import_life_table.py` from the PyPI package starsim-data 2.0.0). It is the only
sex-specific WPP mortality found in a package (see docs in the import script); WPP 2022 by sex
was not found. The package keeps decadal years only, so the yearly path between them is an
interpolation (below), not WPP's own yearly tables (which carry, e.g., the 2022-2023 excess).

Method, chosen so that the single-age schedule reproduces the table:
- Age: log-hazard is piecewise linear between knots at the group mid-ages 57.5, 62.5, ... 97.5,
  each knot adjusted (fixed-point iteration) so that the group's central death rate under the
  single-year schedule (deaths / person-years within the group, hazards read at x + 0.5 and
  constant within each year of age) equals the group's mx, WPP's own definition of mx. Past 97.5
  the line of the last two knots continues (Gompertz), capped at `max_hazard`; WPP's open 100+
  rate is not used for the shape (it is irregular between years, e.g. men 0.87 in 2020, 0.58 in
  2030) and only enters `table_life_expectancy`.
- Time: log-linear between the tables, each read at mid-year (year + 0.5); constant before 2000.5
  and after 2050.5. `improvement` scales the log-change after `improvement_from` (1 = WPP's
  medium path), the mortality-improvement variants.
- Life expectancy: hazards piecewise constant within each age interval, l(x + n) = l(x) e^{-n h},
  L = l (1 - e^{-n h}) / h, and the last (open) interval closed with L = l / h.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from sim.population.reference import read_table

AGE_MIN, AGE_MAX = 60, 110
AGES = np.arange(AGE_MIN, AGE_MAX + 1)
N_AGES = AGES.size
SEXES = ("male", "female")  # index 0, 1 as in sim.population.health
_FIRST_GROUP = 55  # the 55-59 group anchors the knot below 60
_LAST_CLOSED = 95  # the 95-99 group is the last closed one
_GRID = np.arange(_FIRST_GROUP, AGE_MAX + 1)  # internal single ages


@cache
def wpp_mx() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(years [Y], group starts [G], mx [Y, sex 0 male / 1 female / 2 both, G]) from the CSV."""
    t = read_table("wpp_china_life_table.csv", ["year", "sex", "age_start", "mx"])
    t = t[t["age_start"] >= _FIRST_GROUP]
    years = np.array(sorted(t["year"].unique()))
    starts = np.array(sorted(t["age_start"].unique()))
    mx = np.zeros((years.size, 3, starts.size))
    for s, sex in enumerate((*SEXES, "both")):
        pivot = t[t["sex"] == sex].pivot(index="year", columns="age_start", values="mx")
        mx[:, s, :] = pivot.loc[years, starts].to_numpy()
    return years, starts, mx


def single_age_hazard(mx: np.ndarray, starts: np.ndarray, max_hazard: float) -> np.ndarray:
    """Annual hazard at ages 60..110 from 5-year mx (closed groups 55-59 .. 95-99 used).

    Log-linear between group mid-ages, knots iterated so each group's central death rate
    (deaths / person-years of the single-year schedule within the group) equals its mx;
    Gompertz continuation past the last knot, capped at `max_hazard`.
    """
    closed = (starts >= _FIRST_GROUP) & (starts <= _LAST_CLOSED)
    mids = starts[closed] + 2.5
    target = np.log(np.asarray(mx, dtype=float)[closed])
    group = np.searchsorted(starts[closed], _GRID, side="right") - 1
    inside = _GRID < _LAST_CLOSED + 5
    knots = target.copy()
    for _ in range(100):
        h = _loglinear(knots, mids, max_hazard=np.inf)
        rate = np.array([_central_rate(h[inside & (group == g)]) for g in range(mids.size)])
        step = target - np.log(rate)
        knots += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return _loglinear(knots, mids, max_hazard)[_GRID >= AGE_MIN]


def _central_rate(h: np.ndarray) -> float:
    """Deaths / person-years over consecutive single-year intervals with hazards `h`."""
    survive = np.exp(-h)
    lx = np.concatenate([[1.0], np.cumprod(survive)])
    return float((1 - lx[-1]) / (lx[:-1] * (1 - survive) / h).sum())


def _loglinear(knots: np.ndarray, mids: np.ndarray, max_hazard: float) -> np.ndarray:
    x = _GRID + 0.5
    out = np.interp(x, mids, knots)
    lo = (knots[1] - knots[0]) / (mids[1] - mids[0])
    hi = (knots[-1] - knots[-2]) / (mids[-1] - mids[-2])
    out = np.where(x < mids[0], knots[0] + lo * (x - mids[0]), out)
    out = np.where(x > mids[-1], knots[-1] + hi * (x - mids[-1]), out)
    return np.minimum(np.exp(out), max_hazard)


@cache
def _snapshot_hazards(max_hazard: float) -> tuple[np.ndarray, np.ndarray]:
    """(mid-years [Y], log hazard [Y, sex 0/1/2, age 60..110]) of every table (cached per cap)."""
    years, starts, mx = wpp_mx()
    out = np.zeros((years.size, 3, N_AGES))
    for y in range(years.size):
        for s in range(3):
            out[y, s] = np.log(single_age_hazard(mx[y, s], starts, max_hazard))
    return years + 0.5, out


def _log_hazard_at(year: float, max_hazard: float) -> np.ndarray:
    mids, table = _snapshot_hazards(float(max_hazard))
    y = float(np.clip(year, mids[0], mids[-1]))
    k = int(np.clip(np.searchsorted(mids, y) - 1, 0, mids.size - 2))
    w = (y - mids[k]) / (mids[k + 1] - mids[k])
    return (1 - w) * table[k] + w * table[k + 1]


def hazard_table(
    year: float,
    max_hazard: float = 1.2,
    improvement: float = 1.0,
    improvement_from: float = 2021.0,
) -> np.ndarray:
    """Annual death hazard [sex 0 male / 1 female / 2 both, age 60..110] at calendar time `year`.

    After `improvement_from` the log-change of WPP's path is multiplied by `improvement`
    (1 = WPP 2024 medium; 0 = mortality frozen at its `improvement_from` level).
    """
    log_h = _log_hazard_at(year, max_hazard)
    if improvement != 1.0 and year > improvement_from:
        base = _log_hazard_at(improvement_from, max_hazard)
        log_h = base + improvement * (log_h - base)
    return np.minimum(np.exp(log_h), max_hazard)


def life_expectancy(hazard: np.ndarray, widths: np.ndarray | float = 1.0) -> float:
    """Life expectancy at the first age of `hazard`, hazards constant within each interval.

    `widths` are the interval lengths (scalar or per interval); the last interval is open
    whatever its width: its person-years are l / h. A single constant hazard h gives 1 / h.
    """
    h = np.asarray(hazard, dtype=float)
    n = np.broadcast_to(np.asarray(widths, dtype=float), h.shape)
    if np.any(h <= 0):
        raise ValueError("hazards must be positive")
    survive = np.exp(-n[:-1] * h[:-1])
    lx = np.concatenate([[1.0], np.cumprod(survive)])
    person_years = lx[:-1] * (1 - survive) / h[:-1]
    return float(person_years.sum() + lx[-1] / h[-1])


def e60(year: float, sex: int, max_hazard: float = 1.2, improvement: float = 1.0) -> float:
    """Period life expectancy at 60 from the single-age schedule (sex 0 male, 1 female, 2 both)."""
    return life_expectancy(hazard_table(year, max_hazard, improvement)[sex])


def table_life_expectancy(year: float, sex: int, age: int = 60) -> float:
    """e(age) straight from the WPP 5-year mx of table year `year`: constant hazard within each
    group, 100+ closed with L = l / m. The reference the single-age schedule is checked against
    (WPP publishes its own ex with other within-group assumptions; they are not in the package).
    Between table years (e.g. 2015) the mx are log-linear in time, as in `hazard_table`.
    """
    years, starts, mx = wpp_mx()
    log_mx = np.log(mx[:, sex])
    row = np.exp([np.interp(year, years, log_mx[:, g]) for g in range(starts.size)])
    keep = starts >= age
    return life_expectancy(row[keep], 5.0)


def normalised_relative_risks(rr: np.ndarray, prevalence: np.ndarray) -> np.ndarray:
    """Relative risks by state [sex, age, state] scaled so that, for each sex and age, the
    prevalence-weighted mean is 1.

    Then `hazard_table(...)[sex, age] * result[sex, age, state]` is the death hazard of a person
    in a state, and the population-average hazard at each sex and age equals the table's when
    the states are at `prevalence` (rows of `prevalence` are normalised to sum to 1 here).
    """
    rr = np.asarray(rr, dtype=float)
    p = np.asarray(prevalence, dtype=float)
    if rr.shape != p.shape:
        raise ValueError(f"rr {rr.shape} and prevalence {p.shape} differ in shape")
    if np.any(rr < 0) or np.any(p < 0):
        raise ValueError("relative risks and prevalences must be non-negative")
    p = p / p.sum(axis=-1, keepdims=True)
    return rr / (rr * p).sum(axis=-1, keepdims=True)
