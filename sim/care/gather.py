"""Compact copies of some residents' columns, for the compiled passes that visit them.

The residents who decide (~36 k in 2030) and those in need (~250 k) are scattered over the
population, one row in ~8 to ~50. A pass that reads them there streams nearly whole columns from
memory and waits on every spouse's row. `gather` reads their columns and family care capacity
once into compact arrays (`Residents`, entry k for population row rows[k]) that the choice and
delivery passes then read in order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.engine.jit import AHEAD, kernel, prefetch, row_function
from sim.params.sections import Params
from sim.population.columns import Population
from sim.population.families import (
    CHILD_IN_CITY,
    Households,
    care_hours,
    households,
    lives_alone,
    prefetch_household,
    prefetch_partner,
)


class Residents(NamedTuple):
    """Population columns of the residents gathered (dtypes as there), and two household terms."""

    district: np.ndarray
    sex: np.ndarray
    age_m: np.ndarray
    health: np.ndarray
    medical: np.ndarray
    voucher: np.ndarray
    income: np.ndarray
    arrangement: np.ndarray
    facility: np.ndarray
    urban: np.ndarray
    n_children: np.ndarray
    neigh: np.ndarray
    child_in_city: np.ndarray  # the nearest child lives elsewhere in the city
    alone: np.ndarray  # lives alone (`families.lives_alone`)
    family: np.ndarray  # family care capacity, hours per month (`families.care_hours`)


class _Columns(NamedTuple):
    """The population columns `Residents` copies besides the household's (`Households`)."""

    district: np.ndarray
    sex: np.ndarray
    age_m: np.ndarray
    medical: np.ndarray
    voucher: np.ndarray
    income: np.ndarray
    arrangement: np.ndarray
    urban: np.ndarray
    neigh: np.ndarray


def gather(
    pop: Population, params: Params, residential_facility: np.ndarray, rows: np.ndarray
) -> Residents:
    """The columns of `rows` (increasing) and their family care capacity, in one pass
    (`residential_facility`: by facility, whether it is a bed)."""
    h = households(pop, params.family, params.policy, residential_facility)
    c = _Columns(*(getattr(pop, name) for name in _Columns._fields))
    out = Residents(
        *(np.empty(rows.size, dtype=getattr(pop, name).dtype) for name in Residents._fields[:-3]),
        np.empty(rows.size, dtype=np.bool_),
        np.empty(rows.size, dtype=np.bool_),
        np.empty(rows.size),
    )
    _gather(h, c, rows, out)
    return out


@row_function
def _prefetch_columns(c: _Columns, i: np.uintp) -> None:
    prefetch(c.district, i)
    prefetch(c.sex, i)
    prefetch(c.age_m, i)
    prefetch(c.medical, i)
    prefetch(c.voucher, i)
    prefetch(c.income, i)
    prefetch(c.arrangement, i)
    prefetch(c.urban, i)
    prefetch(c.neigh, i)


@kernel
def _gather(h: Households, c: _Columns, rows: np.ndarray, out: Residents) -> None:
    """Copy the residents' columns, prefetching their rows (and, later, their spouses' rows,
    which lie anywhere) ahead: reading them in the per-row arithmetic would wait on memory row
    by row."""
    n = rows.size
    for k in range(n):
        if k + 2 * AHEAD < n:
            ahead = np.uintp(rows[k + 2 * AHEAD])
            prefetch_household(h, ahead)
            _prefetch_columns(c, ahead)
        if k + AHEAD < n:
            prefetch_partner(h, np.uintp(rows[k + AHEAD]))
        i = np.uintp(rows[k])
        out.district[k] = c.district[i]
        out.sex[k] = c.sex[i]
        out.age_m[k] = c.age_m[i]
        out.health[k] = h.health[i]
        out.medical[k] = c.medical[i]
        out.voucher[k] = c.voucher[i]
        out.income[k] = c.income[i]
        out.arrangement[k] = c.arrangement[i]
        out.facility[k] = h.facility[i]
        out.urban[k] = c.urban[i]
        out.n_children[k] = h.n_children[i]
        out.neigh[k] = c.neigh[i]
        out.child_in_city[k] = h.child_place[i] == CHILD_IN_CITY
        out.alone[k] = lives_alone(h, i)
        out.family[k] = care_hours(h, i)


@row_function
def prefetch_resident(r: Residents, k: np.uintp) -> None:
    """Start loading entry k of the gathered columns, for passes that visit some entries only
    (the dependents among the residents in need, one in eight)."""
    prefetch(r.district, k)
    prefetch(r.sex, k)
    prefetch(r.age_m, k)
    prefetch(r.health, k)
    prefetch(r.medical, k)
    prefetch(r.voucher, k)
    prefetch(r.income, k)
    prefetch(r.facility, k)
    prefetch(r.urban, k)
    prefetch(r.n_children, k)
    prefetch(r.neigh, k)
    prefetch(r.child_in_city, k)
    prefetch(r.alone, k)
    prefetch(r.family, k)
