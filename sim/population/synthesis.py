"""The synthetic population at the start (the 2010 census), and the residents who arrive each
month (turning 60, or moving in): every attribute of a new resident drawn from keyed uniforms
(one compiled pass over the new rows), then spouses paired.

The start reproduces the census' 60+ and 65+ counts (rows allocated to the age and sex cells of
`demography.start_cells` by largest remainder, then to rows in a keyed order); entrants are
`demography.entrants_per_month` (a deterministic count of rows: the carried sum of the expected,
floored); newcomers, when net migration is positive, arrive at the ages of the stock.

District age structure was not published (data/README). The 60+ population of a district is
estimated as its 2024 population times its crude death rate relative to the city's: deaths are
concentrated among the old, so the crude death rate is close to proportional to the old-age
share. The age mix within 60+ is assumed the same in every district.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np

from sim.engine.calendar import FIRST_MONTH, LAST_MONTH, decimal_year
from sim.engine.jit import kernel
from sim.engine.rng import (
    Stream,
    categorical,
    category,
    cumulative_shares,
    keyed_uniform,
    stable_order,
    uniforms,
)
from sim.params.sections import (
    DemographyParams,
    HealthParams,
    HouseholdParams,
    IncomeParams,
    Params,
)
from sim.population.columns import Population
from sim.population.demography import (
    AGE_MIN,
    AGE_MIN_M,
    N_AGES,
    N_CELLS,
    entrant_female_share,
    entrants_per_month,
    migration_rate_by_age,
    start_cells,
)
from sim.population.families import (
    HouseholdDraws,
    draw_children,
    draw_married,
    household_draws,
    pair_spouses,
)
from sim.population.geography import Geography, allocate_largest_remainder
from sim.population.health import HealthTables

AT_START = FIRST_MONTH - 1  # the entry month of the start population (before the first month)
_M65_CELL = (65 - AGE_MIN) * 12  # the first cell aged 65


@cache
def district_elderly_weights(geo: Geography) -> np.ndarray:
    """Estimated share of the city's 60+ in each district (population x relative death rate).

    Cached per geography (read every month), so the array is read-only.
    """
    d = geo.districts
    city_rate = d["deaths_2024"].sum() / d["pop_2024"].sum() * 1000
    weights = d["pop_2024"].to_numpy() * d["death_rate_permille_2024"].to_numpy() / city_rate
    weights = weights / weights.sum()
    weights.setflags(write=False)
    return weights


class NewRowDraws(NamedTuple):
    """What new residents' attributes are drawn from, in the flat form numba takes (cumulative
    tables as `rng.cumulative_shares` makes them, so the categories are those of `categorical`)."""

    urban_share: np.ndarray  # by district: chance of living in a community (1: no villages)
    neigh_start: np.ndarray  # by group district * 2 + urban: its first candidate; then the end
    neigh_cum: np.ndarray  # cumulative shares of each group's candidate neighbourhoods
    neigh_ids: np.ndarray  # the candidates' neighbourhood ids, in the same order
    medical_share: np.ndarray  # by health state
    income_cum: np.ndarray  # [urban, income class]
    households: HouseholdDraws


class NewRows(NamedTuple):
    """New residents to draw: their rows and, given, their age in months, sex and district."""

    rows: np.ndarray
    age_m: np.ndarray
    sex: np.ndarray
    district: np.ndarray


class NewRowColumns(NamedTuple):
    """The population columns `fill_new_rows` sets (all but the spouse), by row."""

    alive: np.ndarray
    age_m: np.ndarray
    sex: np.ndarray
    district: np.ndarray
    neigh: np.ndarray
    urban: np.ndarray
    income: np.ndarray
    health: np.ndarray
    medical: np.ndarray
    n_children: np.ndarray
    child_place: np.ndarray
    entry_month: np.ndarray


@lru_cache(maxsize=16)
def new_row_draws(
    demography: DemographyParams,
    health: HealthParams,
    income: IncomeParams,
    households: HouseholdParams,
    geo: Geography,
) -> NewRowDraws:
    """The constant part of every month's draws, per parameters and geography (cached, so the
    arrays are read-only). Urban residents are placed evenly over their district's communities,
    rural ones over its villages in proportion to registered village size."""
    nb = geo.neighbourhoods
    ids, cums = [], []
    for code in geo.districts.index:
        for kind in ("village", "community"):  # group district * 2 + urban
            in_group = nb.index[(nb["district"] == code) & (nb["kind"] == kind)].to_numpy()
            if kind == "village":
                weight = nb.loc[in_group, "registered_pop"].to_numpy()
            else:
                weight = np.ones(in_group.size)
            ids.append(in_group)
            cums.append(cumulative_shares(weight))
    has_villages = np.array([group.size > 0 for group in ids[0::2]])
    if not all(group.size > 0 for group in ids[1::2]):
        raise ValueError("every district needs a community for its urban residents")
    share = geo.districts["urban_share"].to_numpy() * demography.urban_elderly_factor
    draws = NewRowDraws(
        np.where(has_villages, np.clip(share, 0, 1), 1.0),
        np.cumsum([0] + [group.size for group in ids]),
        np.concatenate(cums),
        np.concatenate(ids).astype(np.int16),
        np.asarray(health.medical_need_prevalence, dtype=np.float64),
        cumulative_shares([income.rural_shares, income.urban_shares]),
        household_draws(households),
    )
    for table in (*draws[:-1], *draws.households):
        if isinstance(table, np.ndarray):
            table.setflags(write=False)
    return draws


_TWO_THREADS_FROM = 100_000  # new rows; below, a second thread costs more than it saves


def fill_new_rows(
    pop: Population,
    new: NewRows,
    month: int,
    params: Params,
    geo: Geography,
    tables: HealthTables,
    seed: int,
) -> None:
    """Draw every attribute of new residents (the start population, or this month's arrivals)
    but those given in `new` from keyed draws: one compiled pass over the rows with the cached
    tables of `new_row_draws`, then spouses. `month` keys the draws and is their entry month."""
    rows = new.rows
    married = np.empty(rows.size, dtype=np.bool_)
    draws = new_row_draws(params.demography, params.health, params.income, params.households, geo)
    health_cum = cumulative_shares(tables.prevalence)
    columns = NewRowColumns(*(getattr(pop, name) for name in NewRowColumns._fields))

    def draw(part: slice) -> None:
        _draw_new_rows(
            draws, health_cum, seed, month, rows[part], new.age_m[part], new.sex[part],
            new.district[part], columns, married[part],
        )  # fmt: skip

    if rows.size < _TWO_THREADS_FROM:
        draw(slice(None))
    else:  # the initial population: each row's draws are its own, so halves run side by side
        half = rows.size // 2
        with ThreadPoolExecutor(max_workers=1) as other:
            second = other.submit(draw, slice(half, None))
            draw(slice(0, half))
            second.result()
    pop.spouse[rows] = pair_spouses(rows, married, pop.sex[rows], pop.neigh[rows], new.age_m)


@kernel
def _draw_new_rows(
    c: NewRowDraws,
    health_cum: np.ndarray,
    seed: int,
    month: int,
    rows: np.ndarray,
    age_m: np.ndarray,
    sex_of: np.ndarray,
    district: np.ndarray,
    out: NewRowColumns,
    married: np.ndarray,
) -> None:
    """One pass over the new rows: each attribute from the row's own keyed uniform; `married`
    (aligned with `rows`) is left for the pairing of spouses."""
    month_key = month + 1  # the keys of a month's arrivals follow those of its start population
    for k in range(rows.size):
        row, d, sex = rows[k], district[k], sex_of[k]
        age_years = age_m[k] // 12
        urban = keyed_uniform(seed, Stream.INIT_URBAN, row, month_key) < c.urban_share[d]
        group = d * 2 + urban
        first, end = c.neigh_start[group], c.neigh_start[group + 1]
        u = keyed_uniform(seed, Stream.INIT_NEIGHBOURHOOD, row, month_key)
        neigh = c.neigh_ids[first + category(c.neigh_cum[first:end], u)]
        age_idx = min(age_years - AGE_MIN, N_AGES - 1)
        u = keyed_uniform(seed, Stream.INIT_HEALTH, row, month_key)
        health = category(health_cum[np.int64(sex), age_idx], u)
        u = keyed_uniform(seed, Stream.INIT_MEDICAL, row, month_key)
        medical = u < c.medical_share[health]
        u = keyed_uniform(seed, Stream.INIT_INCOME, row, month_key)
        income = category(c.income_cum[np.int64(urban)], u)
        u = keyed_uniform(seed, Stream.INIT_CHILDREN, row, month_key)
        u_place = keyed_uniform(seed, Stream.INIT_CHILD_PLACE, row, month_key)
        n_children, child_place = draw_children(c.households, age_years, u, u_place)
        u = keyed_uniform(seed, Stream.INIT_MARRIED, row, month_key)
        married[k] = draw_married(c.households, age_years, u)

        out.alive[row] = True
        out.age_m[row] = age_m[k]
        out.sex[row] = sex
        out.district[row] = d
        out.neigh[row] = neigh
        out.urban[row] = urban
        out.income[row] = income
        out.health[row] = health
        out.medical[row] = medical
        out.n_children[row] = n_children
        out.child_place[row] = child_place
        out.entry_month[row] = month


def synthesise(
    params: Params, geo: Geography, tables: HealthTables, seed: int, scale: float
) -> Population:
    """The resident population aged 60+ on 2010-11-01 (the 2010 census), one row per `scale`
    persons: 60+ and 65+ as the census counts them (to the nearest row), the age and sex
    structure of `demography.start_cells`."""
    d = params.demography
    n, n_old = round(d.census_2010_60plus / scale), round(d.census_2010_65plus / scale)
    pop = Population(capacity=_capacity(n, d, scale))
    rows = pop.append(n)
    cells = start_cells(d)  # [sex, cell]
    counts = np.zeros(cells.shape, dtype=np.int64)
    for part, in_part in ((slice(None, _M65_CELL), n - n_old), (slice(_M65_CELL, None), n_old)):
        weights = cells[:, part]
        counts[:, part] = allocate_largest_remainder(in_part, weights.ravel()).reshape(
            weights.shape
        )
    cell = np.empty(n, dtype=np.int64)
    cell[stable_order(uniforms(seed, Stream.INIT_AGE, rows, 0))] = np.repeat(
        np.arange(counts.size), counts.ravel()
    )
    sex, age_cell = np.divmod(cell, N_CELLS)
    by_district = allocate_largest_remainder(n, district_elderly_weights(geo))
    order = stable_order(uniforms(seed, Stream.INIT_DISTRICT, rows, 0))
    district = np.empty(n, dtype=np.int64)
    district[order] = np.repeat(np.arange(by_district.size), by_district)
    new = NewRows(rows, age_cell + AGE_MIN_M, sex.astype(np.int8), district)
    fill_new_rows(pop, new, AT_START, params, geo, tables, seed)
    return pop


def _capacity(n: int, demography: DemographyParams, scale: float) -> int:
    """Rows for the `n` start residents and the arrivals expected to 2035-12 (entrants, and
    newcomers at a positive migration rate), with 5% to spare: a run to 2035-12 then never grows
    the columns, each growth copying all of them (~70 ms at full city, on the main thread).
    Longer runs grow as needed."""
    months = range(FIRST_MONTH, LAST_MONTH + 1)
    entrants = sum(expected_entrant_rows(demography, scale, m) for m in months)
    newcomers = n * max(demography.net_migration_rate, 0.0) * len(months) / 12 * 1.5
    return int((n + entrants + newcomers) * 1.05) + 1024


def expected_entrant_rows(demography: DemographyParams, scale: float, month: int) -> float:
    """Rows of residents expected to turn 60 in `month` (one row per `scale` persons)."""
    return entrants_per_month(int(decimal_year(month)), demography) / scale


def newcomer_weights(pop: Population, demography: DemographyParams) -> np.ndarray:
    """Expected rows moving in per month by [sex, age 60..110]: the living rows there times the
    positive part of the net migration rate / 12 (zero at a negative rate, which works as a
    probability of moving out in the kernel)."""
    rate = np.maximum(migration_rate_by_age(demography), 0.0)
    if not rate.any():
        return np.zeros((2, N_AGES))
    return count_by_sex_and_age(pop) * rate[None, :] / 12


def count_by_sex_and_age(pop: Population) -> np.ndarray:
    """Living rows [sex, age in years 60..110 (the last holds everyone older)]."""
    out = np.zeros((2, N_AGES), dtype=np.int64)
    _count_sex_age(pop.alive_idx, pop.n_alive, pop.sex, pop.age_m, out)
    return out


@kernel
def _count_sex_age(alive_idx, n_alive, sex, age_m, out):
    for k in range(n_alive):
        r = alive_idx[k]
        out[sex[r], min(age_m[r] // 12 - AGE_MIN, N_AGES - 1)] += 1


def arrivals(
    n_entrants: int, newcomers: np.ndarray, n_newcomers: int, month: int, rows: np.ndarray,
    demography: DemographyParams, geo: Geography, seed: int,
) -> NewRows:  # fmt: skip
    """The given attributes of this month's arrivals in `rows` (appended already): first
    `n_entrants` turning 60 (sex by the year's female share), then `n_newcomers` moving in, of
    the sex and age drawn from `newcomers` [sex, age] weights (one month older than the stock
    they came with, as the kernel does not age a row in its first month). Districts as the
    elderly (`district_cum`)."""
    district = np.empty(rows.size, dtype=np.int64)
    _draw_districts(district_cum(geo), seed, month, rows, district)
    age_m = np.full(rows.size, AGE_MIN_M, dtype=np.int64)
    female = entrant_female_share(decimal_year(month), demography)
    sex = (uniforms(seed, Stream.INIT_SEX, rows[:n_entrants], month + 1) < female).astype(np.int8)
    if n_newcomers:
        moving = rows[n_entrants:]
        cell = categorical(uniforms(seed, Stream.NEWCOMER, moving, month), newcomers.ravel())
        within = np.floor(uniforms(seed, Stream.NEWCOMER, moving, month + 1) * 12).astype(int)
        new_sex, age = np.divmod(cell, N_AGES)
        sex = np.concatenate([sex, new_sex.astype(np.int8)])
        oldest = AGE_MIN_M + N_CELLS - 1
        age_m[n_entrants:] = np.minimum(AGE_MIN_M + age * 12 + within + 1, oldest)
    return NewRows(rows, age_m, sex, district)


@cache
def district_cum(geo: Geography) -> np.ndarray:
    """Cumulative shares of `district_elderly_weights`, for the entrants' districts (read-only)."""
    cum = cumulative_shares(district_elderly_weights(geo))
    cum.setflags(write=False)
    return cum


@kernel
def _draw_districts(
    cum: np.ndarray, seed: int, month: int, rows: np.ndarray, out: np.ndarray
) -> None:
    """District of each arriving row: `categorical` of its Stream.ENTRANT uniform."""
    for k in range(rows.size):
        out[k] = category(cum, keyed_uniform(seed, Stream.ENTRANT, rows[k], month))
