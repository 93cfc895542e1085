"""Deterministic cohort-component projection of Taiyuan's residents aged 60+, 2010-11 to 2035-12.

Expected values only, no draws: the yardstick the stochastic model must match within sampling
error. Residents as the census counts them (常住), throughout; no registered (户籍) figure enters.

Conventions (make the stochastic model follow them, or say where it differs):
- State: persons by sex (0 male, 1 female) and age in completed months, 720 (60y 0m) to 1331
  (110y 11m); the last cell also holds everyone older.
- Month m (m = 0 is 2010-11) runs from its first day t_m = 2010 + 10/12 + m/12 to t_{m+1};
  rates are read at its middle, t_m + 1/24. `stock[m]` is the stock on the first day of month m,
  so stock[0] is the 2010 census (2010-11-01) and stock[120] the 2020 census (2020-11-01).
- State: persons by sex, age in months and health state (the model's five), so that mortality
  is the model's own: the life table's hazard by sex and age times the state's relative risk
  (`rates.death_probabilities`), the states moving by the model's monthly transitions
  (`rates.transitions_cum`). The start and the arrivals take the target prevalence of their
  sex and age, as the model draws them.
- Within month m, from the stock S on its first day:
  1. deaths D = S * q(sex, age in completed years, state, calendar year of m), q the model's
     monthly death probability;
  2. net migration M = S * r(age) / 12, r(a) = net_migration_rate * exp(-migration_age_decline
     * (a - 60)) per person-year, a in completed years (M < 0 is net out-migration);
  3. the remaining S - D + M move between health states and age by one month (the last cell
     keeps its people);
  4. entrants E, the persons turning 60 during the month, join at 720 months: they neither die
     nor migrate in the month they enter (their risk then is ~0.0003 at most).
  So, exactly, total(stock[m + 1]) = total(stock[m]) - D_m + M_m + E_m.
- Entrants E_m (`demography.entrants_per_month` of the calendar year of month m, by sex with
  `demography.entrant_female_share`), the start (`demography.start_cells`: the 2010 census) and
  the migration rates (`demography.migration_rate_by_age`) are the stochastic model's own
  inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.params.sections import Params
from sim.population import demography
from sim.population.demography import AGE_MIN_M, N_CELLS
from sim.population.health import build_tables
from sim.population.rates import death_probabilities, transitions_cum

START_YEAR, START_MONTH = 2010, 11  # first month: 2010-11, the 2010 census on its first day
END_YEAR, END_MONTH = 2035, 12
N_MONTHS = (END_YEAR - START_YEAR) * 12 + END_MONTH - START_MONTH + 1  # months 2010-11..2035-12
M65, M80 = 780 - AGE_MIN_M, 960 - AGE_MIN_M  # first cell aged 65, 80


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


def _month_start(m: int | np.ndarray) -> float | np.ndarray:
    return START_YEAR + (START_MONTH - 1) / 12 + np.asarray(m) / 12


def project(params: Params) -> Projection:
    """Run the projection month by month from the 2010 census to the end of 2035-12."""
    d, hp = params.demography, params.health
    tables = build_tables(hp.settings(d.max_hazard))
    cell_age = np.repeat(np.arange(N_CELLS // 12), 12)  # age index of each cell
    prevalence = tables.prevalence[:, cell_age]  # [sex, cell, state]: how new rows are drawn
    arrival_mix = prevalence[:, 0]  # [sex, state] at 60
    stock = demography.start_cells(d)[:, :, None] * prevalence
    mig_rate = np.repeat(demography.migration_rate_by_age(d), 12)[None, :, None] / 12
    t0 = _month_start(np.arange(N_MONTHS + 1))
    stocks = np.zeros((N_MONTHS + 1, 3, 3))  # [month, 60/65/80, sex]
    flows = np.zeros((N_MONTHS, 3, 2))  # [month, deaths/entrants/migration, sex]
    by_year: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def snapshot(m: int) -> None:
        persons = stock.sum(axis=2)
        stocks[m, 0, :2] = persons.sum(axis=1)
        stocks[m, 1, :2] = persons[:, M65:].sum(axis=1)
        stocks[m, 2, :2] = persons[:, M80:].sum(axis=1)

    snapshot(0)
    for m in range(N_MONTHS):
        mid = t0[m] + 1 / 24
        year = int(mid)
        if year not in by_year:
            q = death_probabilities(d, tables, year)[:, cell_age]  # [sex, cell, state]
            monthly = np.diff(transitions_cum(hp, d, year), axis=3, prepend=0.0)[:, cell_age]
            by_year[year] = q, monthly
        q, monthly = by_year[year]
        deaths = stock * q
        migration = stock * mig_rate
        leaving = np.minimum(migration, 0.0)
        survivors = stock - deaths + leaving  # moving out from the month's starting stock
        arriving = np.maximum(migration, 0.0).sum(axis=2, keepdims=True)  # newcomers, drawn
        after = np.einsum("xci,xcij->xcj", survivors, monthly) + arriving * prevalence  # as new
        # rows are: health by the target prevalence of their sex and age
        stock = np.empty_like(after)
        stock[:, 1:] = after[:, :-1]
        stock[:, -1] += after[:, -1]
        entrants = demography.entrants_per_month(year, d)
        female = demography.entrant_female_share(mid, d)
        stock[:, 0] = entrants * np.array([1 - female, female])[:, None] * arrival_mix
        flows[m, 0] = deaths.sum(axis=(1, 2))
        flows[m, 1] = stock[:, 0].sum(axis=1)
        flows[m, 2] = migration.sum(axis=(1, 2))
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
        final=stock.sum(axis=2),
    )
