"""Households of the elderly: spouse (paired rows where both are 60+) and children by location.

Marital status and children are drawn per person with keyed random numbers; married men and
women of the same neighbourhood are then paired by age rank, so a couple shares a household and
each spouse's health and death affect the other. A married person left without a partner in the
population has an 'external' spouse (under 60 or living outside the modelled population).

The care hours a household can give (`care_hours`, `family_care_capacity`) are recomputed each
month for every resident in need, in compiled loops (`sim.engine.jit`).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from scipy.stats import poisson

from sim.engine.jit import AHEAD, kernel, prefetch, row_function
from sim.engine.rng import category, cumulative_shares

NO_SPOUSE = -1
EXTERNAL_SPOUSE = -2
CHILD_NONE, CHILD_CORESIDENT, CHILD_SAME_DISTRICT, CHILD_IN_CITY, CHILD_AWAY = range(5)
AGE_GROUP_EDGES = np.array([65, 70, 75, 80, 85])  # -> groups 60-64 ... 85+
CHILDREN_BEYOND_FIRST = 21  # entries 0..20 of their Poisson CDF table; more are drawn as 20


class HouseholdDraws(NamedTuple):
    """The household parameters of new residents, in the flat form numba takes."""

    married_share: np.ndarray  # by household age group
    childless_share: float
    children_cdf: np.ndarray  # [age group, k]: Poisson CDF of the children beyond the first
    coresident_share: float
    child_place_cum: np.ndarray  # cumulative shares of CHILD_SAME_DISTRICT.. (not coresident)


def household_draws(hh) -> HouseholdDraws:
    """`HouseholdDraws` of the household parameters `hh`."""
    beyond_first = np.asarray(hh.mean_children_by_age) - 1
    support = np.arange(CHILDREN_BEYOND_FIRST)
    return HouseholdDraws(
        np.asarray(hh.married_share_by_age, dtype=np.float64),
        float(hh.childless_share),
        poisson.cdf(support[None, :], np.maximum(beyond_first, 1e-6)[:, None]),
        float(hh.coresident_child_share),
        cumulative_shares(hh.child_place_if_not_coresident),
    )


@row_function
def age_group6(age_years: int) -> int:
    """Index 0..5 of the household age groups 60-64, 65-69, 70-74, 75-79, 80-84, 85+."""
    group = 0
    for edge in AGE_GROUP_EDGES:
        group += edge <= age_years
    return group


@row_function
def draw_married(h: HouseholdDraws, age_years: int, u: float) -> bool:
    """Whether a person has a living spouse, given their uniform of Stream.INIT_MARRIED."""
    return u < h.married_share[age_group6(age_years)]


@row_function
def draw_children(h: HouseholdDraws, age_years: int, u: float, u_place: float) -> tuple[int, int]:
    """(number of living children, place of the nearest child) of a person, given their
    uniforms of Stream.INIT_CHILDREN and Stream.INIT_CHILD_PLACE. A parent has one child plus a
    Poisson number more (inverse CDF of the uniform left after the childless share)."""
    if u < h.childless_share:
        return 0, CHILD_NONE
    u_rest = min(max((u - h.childless_share) / (1 - h.childless_share), 0.0), 1 - 1e-12)
    n = 1 + category(h.children_cdf[age_group6(age_years)], u_rest)
    if u_place < h.coresident_share:
        return n, CHILD_CORESIDENT
    u_away = min(max((u_place - h.coresident_share) / (1 - h.coresident_share), 0.0), 1.0)
    return n, CHILD_SAME_DISTRICT + category(h.child_place_cum, u_away)


def pair_spouses(
    rows: np.ndarray, married: np.ndarray, sex: np.ndarray, neigh: np.ndarray, age_m: np.ndarray
) -> np.ndarray:
    """Spouse row for each of `rows`: married men and women paired by age rank per neighbourhood.

    Returns an array aligned with `rows`: the partner's row, EXTERNAL_SPOUSE for a married person
    without a partner in the group, NO_SPOUSE for the unmarried. Ties are broken by row (the
    stable person key), so `rows` must increase, as `Population.append` gives them.
    """
    spouse = np.empty(rows.size, dtype=np.int32)
    _pair_by_rank(rows, married, sex, neigh, age_m, spouse)
    return spouse


@numba.njit(cache=True, nogil=True)
def _pair_by_rank(
    rows: np.ndarray,
    married: np.ndarray,
    sex: np.ndarray,
    neigh: np.ndarray,
    age_m: np.ndarray,
    spouse: np.ndarray,
) -> None:
    """`pair_spouses`: the k-th man and the k-th woman of each neighbourhood are paired (both
    lists sorted by neighbourhood, then age rank)."""
    for k in range(rows.size):
        if k > 0 and rows[k] <= rows[k - 1]:
            raise ValueError("pair_spouses: rows must increase")
        spouse[k] = EXTERNAL_SPOUSE if married[k] else NO_SPOUSE
    men = _ranked(married & (sex == 0), neigh, age_m)
    women = _ranked(married & (sex == 1), neigh, age_m)
    a, b = 0, 0
    while a < men.size and b < women.size:
        man, woman = men[a], women[b]
        if neigh[man] < neigh[woman]:
            a += 1
        elif neigh[man] > neigh[woman]:
            b += 1
        else:
            spouse[man] = rows[woman]
            spouse[woman] = rows[man]
            a += 1
            b += 1


@numba.njit(cache=True, nogil=True)
def _ranked(chosen: np.ndarray, neigh: np.ndarray, age_m: np.ndarray) -> np.ndarray:
    """Indices of the `chosen`, ordered by (neighbourhood, age, index): stable counting sorts by
    age, then by neighbourhood (a comparison sort of random keys mispredicts most branches)."""
    return _stable_by(neigh, _stable_by(age_m, np.flatnonzero(chosen)))


@numba.njit(cache=True, nogil=True)
def _stable_by(value: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """`idx` ordered by `value[idx]` (small non-negative integers), ties kept in their order."""
    top = 0
    for i in idx:
        top = max(top, value[i])
    start = np.zeros(top + 2, dtype=np.int64)
    for i in idx:
        start[value[i] + 1] += 1
    for v in range(top + 1):
        start[v + 1] += start[v]
    out = np.empty_like(idx)
    for i in idx:
        out[start[value[i]]] = i
        start[value[i]] += 1
    return out


class Households(NamedTuple):
    """The columns and parameters family care capacity reads, in the flat form numba takes."""

    spouse: np.ndarray  # population columns, by row
    health: np.ndarray
    facility: np.ndarray
    n_children: np.ndarray
    child_place: np.ndarray
    residential_facility: np.ndarray  # by facility: a bed (a spouse there gives no care)
    spouse_hours: float
    external_spouse_hours: float
    spouse_health_factor: np.ndarray  # by the spouse's health state
    child_hours_by_place: np.ndarray  # by CHILD_* place of the nearest child
    extra_child_factor: float
    allowance_hours: float  # bought by the carer allowance where a carer exists


def households(pop, fam, policy, residential_facility: np.ndarray) -> Households:
    """The population's households and the family parameters (`residential_facility` says, per
    facility, whether it is a bed)."""
    return Households(
        pop.spouse,
        pop.health,
        pop.facility,
        pop.n_children,
        pop.child_place,
        residential_facility,
        float(fam.spouse_hours),
        float(fam.external_spouse_hours),
        np.asarray(fam.spouse_health_factor, dtype=np.float64),
        np.asarray(fam.child_hours_by_place, dtype=np.float64),
        float(fam.extra_child_factor),
        policy.carer_allowance / 100 * policy.carer_hours_per_100_yuan,
    )


@row_function
def care_hours(h: Households, i: np.uintp) -> float:
    """Informal care hours per month the household can give resident row `i`.

    A resident spouse gives hours scaled by their own health (none while they live in a bed); an
    external (working-age) spouse fewer; the nearest child by where they live, plus a share for
    up to two more children; a carer allowance buys extra hours where a carer exists.
    """
    partner = h.spouse[i]
    hours = 0.0
    if partner == EXTERNAL_SPOUSE:
        hours = h.external_spouse_hours
    elif partner >= 0:
        p = np.uintp(partner)
        f = h.facility[p]
        if f < 0 or not h.residential_facility[np.uintp(f)]:
            hours = h.spouse_hours * h.spouse_health_factor[np.uintp(h.health[p])]
    extra = min(max(h.n_children[i] - 1.0, 0.0), 2.0) * h.extra_child_factor
    hours += h.child_hours_by_place[np.uintp(h.child_place[i])] * (1 + extra)
    return hours + h.allowance_hours if hours > 0 else hours


@row_function
def lives_alone(h: Households, i: np.uintp) -> bool:
    """No spouse and no co-resident child."""
    return h.spouse[i] == NO_SPOUSE and h.child_place[i] != CHILD_CORESIDENT


@row_function
def prefetch_household(h: Households, i: np.uintp) -> None:
    """Start loading what `care_hours` and `lives_alone` read of row `i` itself."""
    prefetch(h.spouse, i)
    prefetch(h.health, i)
    prefetch(h.n_children, i)
    prefetch(h.child_place, i)


@row_function
def prefetch_partner(h: Households, i: np.uintp) -> None:
    """Start loading what `care_hours` reads of row `i`'s resident spouse (a scattered row)."""
    partner = h.spouse[i]
    if partner >= 0:
        prefetch(h.health, np.uintp(partner))
        prefetch(h.facility, np.uintp(partner))


@kernel
def _care_hours_of(h: Households, rows: np.ndarray, out: np.ndarray) -> None:
    n = rows.size
    for k in range(n):
        if k + 2 * AHEAD < n:
            prefetch_household(h, np.uintp(rows[k + 2 * AHEAD]))
        if k + AHEAD < n:
            prefetch_partner(h, np.uintp(rows[k + AHEAD]))
        out[k] = care_hours(h, np.uintp(rows[k]))


def family_care_capacity(
    pop, rows: np.ndarray, fam, policy, residential_facility: np.ndarray
) -> np.ndarray:
    """Informal care hours per month the household can give each of `rows` (`care_hours`)."""
    out = np.empty(rows.size)
    _care_hours_of(households(pop, fam, policy, residential_facility), rows, out)
    return out
