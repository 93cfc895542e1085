"""Who decides this month, and their assessment of self-care ability (生活自理能力评估).

A resident decides about care only when something that bears on the decision changed (so an
arrangement, above all a bed, persists until then): their need (state or medical need), a carer
lost (widowhood, or a spouse who moved away), arriving in need (an entrant or a newcomer), a wait
for a bed longer than `services.max_wait_months`, reaching the voucher age when that makes them
eligible (the one change of price or income within a run: prices and incomes are constant), or a
residential facility opening within `choice.new_place_radius_km` of a resident in need not in a
bed. In the care system's first month (2010-11, the start of its spin-up with the end-2015
supply, `CareModel`) everyone in need decides, as no one has an arrangement yet. Whoever decides
is (re)assessed, and the assessment sets voucher eligibility, a policy lever: assessed state >=
voucher_min_state and (age >= voucher_min_age or income class <= voucher_max_income_class).
"""

from __future__ import annotations

import numpy as np

from sim.care.month import CareMonth
from sim.care.places import Places
from sim.care.queues import union
from sim.engine.calendar import FIRST_MONTH
from sim.engine.jit import AHEAD, kernel, prefetch
from sim.engine.subsystem import Subsystem
from sim.params.sections import Params
from sim.population.columns import Population
from sim.population.kernel import EVENT_ARRIVED, EVENT_NEED, EVENT_SPOUSE_LEFT, EVENT_WIDOWED

_DECIDE = EVENT_NEED | EVENT_WIDOWED | EVENT_SPOUSE_LEFT | EVENT_ARRIVED


class Assessment(Subsystem):
    """Selects the month's deciders (`CareMonth.deciders`) and assesses them."""

    writes = frozenset(("assessed", "voucher"))

    def __init__(self, params: Params, pop: Population, places: Places):
        self.params, self.pop, self.places = params, pop, places

    def step(self, month: CareMonth) -> None:
        pop, needy = self.pop, month.needy
        if month.month == FIRST_MONTH:  # the care system's first month: no arrangement yet
            deciders = needy
        else:
            events = month.events
            deciding = events[((month.bits & _DECIDE) != 0) & pop.alive[events]]
            queued = month.queued
            waited = month.month - pop.queue_since[queued]
            deciders = union(deciding, queued[waited >= self.params.services.max_wait_months])
            deciders = union(deciders, self._voucher_age(needy))
            deciders = union(deciders, self._new_place_near(needy))
        month.deciders = deciders
        assess(pop, deciders, self.params.policy)

    def _voucher_age(self, needy: np.ndarray) -> np.ndarray:
        """Those in need who reached the voucher age this month and qualify by it alone."""
        pol, pop = self.params.policy, self.pop
        turned = needy[pop.age_m[needy] == int(pol.voucher_min_age) * 12]
        qualify = (pop.health[turned] >= pol.voucher_min_state) & (
            pop.income[turned] > pol.voucher_max_income_class
        )
        return turned[qualify]

    def _new_place_near(self, needy: np.ndarray) -> np.ndarray:
        """Those in need, not in a bed, near a residential facility that opened this month."""
        near = self.places.market.opened_near
        if not near.any():
            return needy[:0]
        pop = self.pop
        rows = needy[near[pop.neigh[needy]]]
        held = pop.facility[rows]
        return rows[(held < 0) | ~self.places.residential[np.maximum(held, 0)]]


def assess(pop: Population, rows: np.ndarray, policy) -> None:
    """Record the assessed state and voucher eligibility of `rows`."""
    _assess(
        rows,
        pop.health,
        pop.age_m,
        pop.income,
        pop.assessed,
        pop.voucher,
        int(policy.voucher_min_state),
        int(policy.voucher_min_age) * 12,
        int(policy.voucher_max_income_class),
    )


@kernel
def _assess(rows, health, age_m, income, assessed, voucher, min_state, min_age_m, max_income):
    """One pass over the deciders, who are scattered over the population (rows ahead are
    prefetched)."""
    n = rows.size
    for k in range(n):
        if k + AHEAD < n:
            ahead = np.uintp(rows[k + AHEAD])
            prefetch(health, ahead)
            prefetch(age_m, ahead)
            prefetch(income, ahead)
        i = np.uintp(rows[k])
        state = health[i]
        assessed[i] = state
        voucher[i] = state >= min_state and (age_m[i] >= min_age_m or income[i] <= max_income)
