"""Assessment of self-care ability (生活自理能力评估): who qualifies for vouchers and subsidies.

The plan ties government-purchased services, subsidies and admission care to an assessment. A
resident is (re)assessed whenever they decide about care; the voucher rule is a policy lever:
assessed state >= voucher_min_state and (age >= voucher_min_age or income class <=
voucher_max_income_class).
"""

from __future__ import annotations

import numpy as np

from sim.engine.jit import AHEAD, kernel, prefetch
from sim.population.columns import Population


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
