"""Households of the elderly: spouse (paired rows where both are 60+) and children by location.

Marital status and children are drawn per person with keyed random numbers; married men and
women of the same neighbourhood are then paired by age rank, so a couple shares a household and
each spouse's health and death affect the other. A married person left without a partner in the
population has an 'external' spouse (under 60 or living outside the modelled population).

The care hours a household can give (`care_hours`, `family_care_capacity`) are recomputed each
month for every resident in need, in compiled loops (`sim.jit`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import poisson

from sim.jit import AHEAD, kernel, prefetch, row_function
from sim.rng import Stream, categorical, uniforms

NO_SPOUSE = -1
EXTERNAL_SPOUSE = -2
CHILD_NONE, CHILD_CORESIDENT, CHILD_SAME_DISTRICT, CHILD_IN_CITY, CHILD_AWAY = range(5)
AGE_GROUP_EDGES = np.array([65, 70, 75, 80, 85])  # -> groups 60-64 ... 85+


def age_group6(age_years: np.ndarray) -> np.ndarray:
    """Index 0..5 of the household age groups 60-64, 65-69, 70-74, 75-79, 80-84, 85+."""
    return np.searchsorted(AGE_GROUP_EDGES, age_years, side="right")


def draw_children(keys: np.ndarray, age_years: np.ndarray, seed: int, month: int, hh) -> tuple:
    """(number of living children, place of the nearest child) per person."""
    group = age_group6(age_years)
    mean = np.asarray(hh.mean_children_by_age)[group]
    u = uniforms(seed, Stream.INIT_CHILDREN, keys, month)
    childless = u < hh.childless_share
    u_rest = np.clip((u - hh.childless_share) / (1 - hh.childless_share), 0, 1 - 1e-12)
    n = np.where(childless, 0, 1 + _poisson_quantile(u_rest, mean - 1)).astype(np.int8)
    u_place = uniforms(seed, Stream.INIT_CHILD_PLACE, keys, month)
    coresident = u_place < hh.coresident_child_share
    u_away = np.clip((u_place - hh.coresident_child_share) / (1 - hh.coresident_child_share), 0, 1)
    place = CHILD_SAME_DISTRICT + categorical(u_away, np.asarray(hh.child_place_if_not_coresident))
    place = np.where(coresident, CHILD_CORESIDENT, place)
    return n, np.where(n == 0, CHILD_NONE, place).astype(np.int8)


def _poisson_quantile(u: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Poisson inverse CDF for a few distinct means (a table per mean; scipy's ppf is slow)."""
    out = np.zeros(u.size, dtype=np.int64)
    support = np.arange(21)
    for value in np.unique(mean):
        sel = mean == value
        cdf = poisson.cdf(support, max(value, 1e-6))
        out[sel] = np.searchsorted(cdf, u[sel], side="right").clip(0, support[-1])
    return out


def draw_married(keys: np.ndarray, age_years: np.ndarray, seed: int, month: int, hh) -> np.ndarray:
    """Whether each person has a living spouse."""
    share = np.asarray(hh.married_share_by_age)[age_group6(age_years)]
    return uniforms(seed, Stream.INIT_MARRIED, keys, month) < share


def pair_spouses(
    rows: np.ndarray, married: np.ndarray, sex: np.ndarray, neigh: np.ndarray, age_m: np.ndarray
) -> np.ndarray:
    """Spouse row for each of `rows`: married men and women paired by age rank per neighbourhood.

    Returns an array aligned with `rows`: the partner's row, EXTERNAL_SPOUSE for a married person
    without a partner in the group, NO_SPOUSE for the unmarried. Ties are broken by row (the
    stable person key), so the result does not depend on array order.
    """
    spouse = np.full(rows.size, NO_SPOUSE, dtype=np.int32)
    spouse[married] = EXTERNAL_SPOUSE
    ranked = {}
    for s in (0, 1):
        idx = np.flatnonzero(married & (sex == s))
        order = np.lexsort((rows[idx], age_m[idx], neigh[idx]))
        idx = idx[order]
        nb = neigh[idx]
        starts = np.r_[0, np.flatnonzero(np.diff(nb)) + 1]
        rank = np.arange(idx.size) - np.repeat(starts, np.diff(np.r_[starts, idx.size]))
        ranked[s] = (idx, nb.astype(np.int64) << 32 | rank)
    men, men_key = ranked[0]
    women, women_key = ranked[1]
    _common, im, iw = np.intersect1d(men_key, women_key, return_indices=True)
    spouse[men[im]] = rows[women[iw]]
    spouse[women[iw]] = rows[men[im]]
    return spouse


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
