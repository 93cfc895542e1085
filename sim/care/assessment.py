"""Who decides this month, and their assessment of self-care ability (生活自理能力评估).

A resident decides about care when something changed: their need (state or medical need), a
carer lost (widowhood, or a spouse who moved away), the yearly review of those in need, or a
wait for a bed longer than `services.max_wait_months`; at the start of the care system (2016-01)
everyone in need decides, as the population has no recorded arrangement. Whoever decides is
(re)assessed, and the assessment sets voucher eligibility, a policy lever: assessed state >=
voucher_min_state and (age >= voucher_min_age or income class <= voucher_max_income_class).
"""

from __future__ import annotations

import numpy as np

from sim.care.month import CareMonth
from sim.care.queues import union
from sim.engine.jit import AHEAD, kernel, prefetch
from sim.engine.subsystem import Subsystem
from sim.params.sections import Params
from sim.population.columns import Population
from sim.population.kernel import EVENT_NEED, EVENT_REVIEW, EVENT_SPOUSE_LEFT, EVENT_WIDOWED

_DECIDE = EVENT_NEED | EVENT_WIDOWED | EVENT_SPOUSE_LEFT | EVENT_REVIEW


class Assessment(Subsystem):
    """Selects the month's deciders (`CareMonth.deciders`) and assesses them."""

    writes = frozenset(("assessed", "voucher"))

    def __init__(self, params: Params, pop: Population):
        self.params, self.pop = params, pop

    def step(self, month: CareMonth) -> None:
        pop = self.pop
        events = month.events
        deciding = events[((month.bits & _DECIDE) != 0) & pop.alive[events]]
        queued = month.queued
        waited = month.month - pop.queue_since[queued]
        deciders = union(deciding, queued[waited >= self.params.services.max_wait_months])
        if month.month == 0:  # the end-2015 population has no recorded arrangement
            deciders = union(deciders, month.needy)
        month.deciders = deciders
        assess(pop, deciders, self.params.policy)


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
