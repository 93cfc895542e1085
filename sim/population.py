"""Resident columns (one numpy array per attribute), the end-2015 synthetic population, entrants.

Row index = stable person key: rows are only appended (entrants) and never reused, so a person's
key, and with it every keyed random draw, is the same in every scenario.

District age structure was not published (data/README). The 60+ population of a district is
estimated as its 2024 population times its crude death rate relative to the city's: deaths are
concentrated among the old, so the crude death rate is close to proportional to the old-age
share. The age mix within 60+ is assumed the same in every district.
"""

from __future__ import annotations

from functools import cache

import numba
import numpy as np

from sim.demography import AGE_MIN, N_AGES, initial_age_shares
from sim.families import draw_children, draw_married, pair_spouses
from sim.geography import Geography, allocate_largest_remainder
from sim.health import HealthTables
from sim.params import Params
from sim.rng import Stream, categorical, uniforms

COLUMNS: dict[str, tuple[type, int]] = {
    "alive": (np.bool_, False),
    "age_m": (np.int16, 0),  # age in completed months
    "sex": (np.int8, 0),  # 0 male, 1 female
    "district": (np.int8, 0),
    "neigh": (np.int16, 0),
    "urban": (np.bool_, False),
    "income": (np.int8, 0),  # 0 三无/五保, 1 低保, 2 low, 3 middle, 4 high
    "health": (np.int8, 0),  # 0..4, see health.STATE_NAMES
    "medical": (np.bool_, False),
    "spouse": (np.int32, -1),  # row of spouse, -1 none, -2 spouse outside the 60+ population
    "n_children": (np.int8, 0),
    "child_place": (np.int8, 0),  # families.CHILD_* codes
    "entry_month": (np.int16, -1),  # -1 = present at the end of 2015
    "death_month": (np.int16, -1),
    "event": (np.uint8, 0),  # this month's event bits (kernels.EVENT_*), cleared after decisions
    "arrangement": (np.int8, 0),  # choice_params.OPTIONS index; 0 = family care only
    "facility": (np.int32, -1),  # residential facility (bed) or day centre in use
    "queue_facility": (np.int32, -1),  # facility applied to, waiting
    "queue_since": (np.int16, -1),  # month the application was made
    "assessed": (np.int8, -1),  # health state at the last assessment (-1 never assessed)
    "voucher": (np.bool_, False),  # eligible for the home-care voucher
}


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


class Population:
    """Resident state as numpy columns with amortised growth for entrants."""

    def __init__(self, capacity: int):
        self.size = 0
        self.n_alive = 0
        self.alive_idx = np.zeros(capacity, dtype=np.int64)  # living rows in key order
        for name, (dtype, fill) in COLUMNS.items():
            setattr(self, name, np.full(capacity, fill, dtype=dtype))

    @property
    def capacity(self) -> int:
        return self.alive.size

    def append(self, n: int) -> np.ndarray:
        """Reserve `n` new rows and return their indices (= person keys)."""
        if self.size + n > self.capacity:
            new_cap = max(self.capacity * 3 // 2, self.size + n)
            for name, (dtype, fill) in COLUMNS.items():
                old = getattr(self, name)
                grown = np.full(new_cap, fill, dtype=dtype)
                grown[: old.size] = old
                setattr(self, name, grown)
            grown_idx = np.zeros(new_cap, dtype=np.int64)
            grown_idx[: self.n_alive] = self.alive_idx[: self.n_alive]
            self.alive_idx = grown_idx
        rows = np.arange(self.size, self.size + n)
        self.alive_idx[self.n_alive : self.n_alive + n] = rows
        self.n_alive += n
        self.size += n
        return rows

    def alive_rows(self) -> np.ndarray:
        """Rows of the living residents, in key order."""
        return self.alive_idx[: self.n_alive]

    def count_living(self, where: np.ndarray, by: np.ndarray, n: int) -> np.ndarray:
        """Living residents whose `where` column is set, counted by the value of the `by` column
        (0..n-1); one compiled pass over the living rows instead of gathering them."""
        return _count_living(self.alive_idx, self.n_alive, where, by, n)


@numba.njit(cache=True)
def _count_living(
    alive_idx: np.ndarray, n_alive: int, where: np.ndarray, by: np.ndarray, n: int
) -> np.ndarray:
    counts = np.zeros(n, dtype=np.int64)
    for k in range(n_alive):
        row = alive_idx[k]
        if where[row]:
            value = by[row]
            if value < 0 or value >= n:
                raise IndexError("count_living: a value of `by` is outside 0..n-1")
            counts[value] += 1
    return counts


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
    """Draw every attribute of new residents (initial population or entrants) from keyed draws."""
    keys = rows
    month_key = month + 1  # draws key on month + 1 so the initial population (-1) keys on 0
    age_years = age_m // 12
    age_idx = np.minimum(age_years - AGE_MIN, N_AGES - 1)
    female_share = np.asarray(params.demography.female_share_by_age)[
        np.minimum((age_years - AGE_MIN) // 5, 3)
    ]
    sex = (uniforms(seed, Stream.INIT_SEX, keys, month_key) < female_share).astype(np.int8)

    _, has_villages, district_urban_share = _placement(geo)
    urban_share = np.clip(district_urban_share * params.demography.urban_elderly_factor, 0, 1)
    urban = (uniforms(seed, Stream.INIT_URBAN, keys, month_key) < urban_share[district]) | (
        ~has_villages[district]
    )
    neigh = _draw_neighbourhood(
        geo, district, urban, uniforms(seed, Stream.INIT_NEIGHBOURHOOD, keys, month_key)
    )

    n_sexes, n_ages, n_states = tables.prevalence.shape
    health = _categorical_by(
        sex.astype(np.int64) * n_ages + age_idx,
        uniforms(seed, Stream.INIT_HEALTH, keys, month_key),
        tables.prevalence.reshape(n_sexes * n_ages, n_states),
    ).astype(np.int8)
    med_prev = np.asarray(params.health.medical_need_prevalence)[health]
    medical = uniforms(seed, Stream.INIT_MEDICAL, keys, month_key) < med_prev
    income = _categorical_by(
        urban.astype(np.int64),
        uniforms(seed, Stream.INIT_INCOME, keys, month_key),
        np.array([params.income.rural_shares, params.income.urban_shares]),
    )

    married = draw_married(keys, age_years, seed, month_key, params.households)
    n_children, child_place = draw_children(keys, age_years, seed, month_key, params.households)

    pop.alive[rows] = True
    pop.age_m[rows] = age_m
    pop.sex[rows] = sex
    pop.district[rows] = district
    pop.neigh[rows] = neigh
    pop.urban[rows] = urban
    pop.income[rows] = income
    pop.health[rows] = health
    pop.medical[rows] = medical
    pop.n_children[rows] = n_children
    pop.child_place[rows] = child_place
    pop.entry_month[rows] = month
    pop.spouse[rows] = pair_spouses(rows, married, sex, neigh, age_m)


@cache
def _placement(geo: Geography) -> tuple[dict, np.ndarray, np.ndarray]:
    """Candidate neighbourhoods and weights per (district, urban?); districts with villages; the
    districts' urban shares."""
    nb = geo.neighbourhoods
    candidates = {}
    for code in geo.districts.index:
        for is_urban, kind in ((True, "community"), (False, "village")):
            ids = nb.index[(nb["district"] == code) & (nb["kind"] == kind)].to_numpy()
            weight = np.ones(ids.size) if is_urban else nb.loc[ids, "registered_pop"].to_numpy()
            candidates[(int(code), is_urban)] = (ids, weight)
    has_villages = np.array([candidates[(int(c), False)][0].size > 0 for c in geo.districts.index])
    return candidates, has_villages, geo.districts["urban_share"].to_numpy()


def _draw_neighbourhood(
    geo: Geography, district: np.ndarray, urban: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Neighbourhood id: urban residents over their district's communities (evenly), rural ones
    over its villages in proportion to registered village size."""
    candidates = _placement(geo)[0]
    out = np.empty(district.size, dtype=np.int16)
    for group, idx in _groups(district * 2 + urban):
        ids, weight = candidates[(group // 2, bool(group % 2))]
        out[idx] = ids[categorical(u[idx], weight)]
    return out


def _categorical_by(group: np.ndarray, u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """`categorical(u, probs[group])`, drawn group by group: the same categories, without a
    cumulative sum per row."""
    out = np.empty(u.size, dtype=np.int64)
    for g, idx in _groups(group):
        out[idx] = categorical(u[idx], probs[g])
    return out


def _groups(key: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(value, indices having it) for each distinct value of a non-negative integer `key`, from one
    sort rather than a mask per value (keys are small, so the narrowest dtype sorts by radix)."""
    if key.size == 0:
        return []
    order = np.argsort(key.astype(np.min_scalar_type(int(key.max()))), kind="stable")
    sorted_key = key[order]
    cuts = np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1
    starts = np.r_[0, cuts]
    return [(int(sorted_key[s]), idx) for s, idx in zip(starts, np.split(order, cuts), strict=True)]


def synthesise(
    params: Params, geo: Geography, tables: HealthTables, seed: int, scale: float
) -> Population:
    """The resident population aged 60+ at the end of 2015, one row per `scale` persons."""
    n = round(params.demography.initial_60plus / scale)
    pop = Population(capacity=int(n * 2.2) + 1024)
    rows = pop.append(n)
    u_age = uniforms(seed, Stream.INIT_AGE, rows, 0)
    years = AGE_MIN + categorical(u_age, initial_age_shares(2016.0))
    months = np.floor(uniforms(seed, Stream.INIT_AGE, rows, 1) * 12).astype(np.int64)
    counts = allocate_largest_remainder(n, district_elderly_weights(geo))
    order = np.argsort(uniforms(seed, Stream.INIT_DISTRICT, rows, 0), kind="stable")
    district = np.empty(n, dtype=np.int64)
    district[order] = np.repeat(np.arange(counts.size), counts)
    fill_new_rows(pop, rows, years * 12 + months, -1, params, geo, tables, seed, district)
    return pop


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
    u = uniforms(seed, Stream.ENTRANT, rows, month)
    district = categorical(u, district_elderly_weights(geo))
    fill_new_rows(pop, rows, np.full(n, AGE_MIN * 12), month, params, geo, tables, seed, district)
    return rows
