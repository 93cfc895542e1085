"""The synthetic population at the start, and entrants: every attribute of a new resident drawn
from keyed uniforms (one compiled pass over the new rows), then spouses paired.

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

from sim.engine.calendar import decimal_year
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
from sim.population.demography import AGE_MIN, N_AGES, entrants_per_month, initial_age_shares
from sim.population.families import (
    HouseholdDraws,
    draw_children,
    draw_married,
    household_draws,
    pair_spouses,
)
from sim.population.geography import Geography, allocate_largest_remainder
from sim.population.health import HealthTables

PLAN_MONTHS = 240  # 2016-01..2035-12, the period of the long runs (the app runs to 2035-12)


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

    female_share: np.ndarray  # by age band 60-64, 65-69, 70-74, 75+
    urban_share: np.ndarray  # by district: chance of living in a community (1: no villages)
    neigh_start: np.ndarray  # by group district * 2 + urban: its first candidate; then the end
    neigh_cum: np.ndarray  # cumulative shares of each group's candidate neighbourhoods
    neigh_ids: np.ndarray  # the candidates' neighbourhood ids, in the same order
    medical_share: np.ndarray  # by health state
    income_cum: np.ndarray  # [urban, income class]
    households: HouseholdDraws


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
        np.asarray(demography.female_share_by_age, dtype=np.float64),
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
    rows: np.ndarray,
    age_m: np.ndarray,
    month: int,
    params: Params,
    geo: Geography,
    tables: HealthTables,
    seed: int,
    district: np.ndarray,
) -> None:
    """Draw every attribute of new residents (initial population or entrants) from keyed draws:
    one compiled pass over the rows with the cached tables of `new_row_draws`, then spouses."""
    married = np.empty(rows.size, dtype=np.bool_)
    draws = new_row_draws(params.demography, params.health, params.income, params.households, geo)
    health_cum = cumulative_shares(tables.prevalence)
    columns = NewRowColumns(*(getattr(pop, name) for name in NewRowColumns._fields))

    def draw(part: slice) -> None:
        _draw_new_rows(
            draws, health_cum, seed, month, rows[part], age_m[part], district[part], columns,
            married[part],
        )  # fmt: skip

    if rows.size < _TWO_THREADS_FROM:
        draw(slice(None))
    else:  # the initial population: each row's draws are its own, so halves run side by side
        half = rows.size // 2
        with ThreadPoolExecutor(max_workers=1) as other:
            second = other.submit(draw, slice(half, None))
            draw(slice(0, half))
            second.result()
    pop.spouse[rows] = pair_spouses(rows, married, pop.sex[rows], pop.neigh[rows], age_m)


@kernel
def _draw_new_rows(
    c: NewRowDraws,
    health_cum: np.ndarray,
    seed: int,
    month: int,
    rows: np.ndarray,
    age_m: np.ndarray,
    district: np.ndarray,
    out: NewRowColumns,
    married: np.ndarray,
) -> None:
    """One pass over the new rows: each attribute from the row's own keyed uniform; `married`
    (aligned with `rows`) is left for the pairing of spouses."""
    month_key = month + 1  # draws key on month + 1 so the initial population (-1) keys on 0
    for k in range(rows.size):
        row, d = rows[k], district[k]
        age_years = age_m[k] // 12
        band = min((age_years - AGE_MIN) // 5, 3)
        sex = keyed_uniform(seed, Stream.INIT_SEX, row, month_key) < c.female_share[band]
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
    """The resident population aged 60+ at the end of 2015, one row per `scale` persons."""
    n = round(params.demography.initial_60plus / scale)
    pop = Population(capacity=_capacity(n, params.demography, scale))
    rows = pop.append(n)
    u_age = uniforms(seed, Stream.INIT_AGE, rows, 0)
    years = AGE_MIN + categorical(u_age, initial_age_shares(2016.0))
    months = np.floor(uniforms(seed, Stream.INIT_AGE, rows, 1) * 12).astype(np.int64)
    counts = allocate_largest_remainder(n, district_elderly_weights(geo))
    order = stable_order(uniforms(seed, Stream.INIT_DISTRICT, rows, 0))
    district = np.empty(n, dtype=np.int64)
    district[order] = np.repeat(np.arange(counts.size), counts)
    fill_new_rows(pop, rows, years * 12 + months, -1, params, geo, tables, seed, district)
    return pop


def _capacity(n: int, demography: DemographyParams, scale: float) -> int:
    """Rows for the `n` initial residents and the entrants expected in the plan period
    (PLAN_MONTHS), with 5% to spare: a run to 2035-12 then never grows the columns, each growth
    copying all of them (~70 ms at full city, on the main thread). Longer runs grow as needed."""
    entrants = sum(expected_entrant_rows(demography, scale, m) for m in range(PLAN_MONTHS))
    return int((n + entrants) * 1.05) + 1024


def expected_entrant_rows(demography: DemographyParams, scale: float, month: int) -> float:
    """Rows of residents expected to turn 60 in `month` (one row per `scale` persons)."""
    return entrants_per_month(decimal_year(month), demography.entrant_share_of_china) / scale


def add_entrants(
    pop: Population,
    n: int,
    month: int,
    params: Params,
    geo: Geography,
    tables: HealthTables,
    seed: int,
) -> np.ndarray:
    """Append `n` residents turning 60 this month; returns their rows."""
    rows = pop.append(n)
    fill_entrants(pop, rows, month, params, geo, tables, seed)
    return rows


def fill_entrants(
    pop: Population,
    rows: np.ndarray,
    month: int,
    params: Params,
    geo: Geography,
    tables: HealthTables,
    seed: int,
) -> None:
    """Draw the attributes of this month's entrants in `rows` (appended already)."""
    district = np.empty(rows.size, dtype=np.int64)
    _draw_districts(district_cum(geo), seed, month, rows, district)
    age_m = np.full(rows.size, AGE_MIN * 12)
    fill_new_rows(pop, rows, age_m, month, params, geo, tables, seed, district)


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
    """District of each entrant row: `categorical` of its Stream.ENTRANT uniform."""
    for k in range(rows.size):
        out[k] = category(cum, keyed_uniform(seed, Stream.ENTRANT, rows[k], month))
