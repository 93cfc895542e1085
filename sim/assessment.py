"""Assessment of self-care ability (生活自理能力评估): who qualifies for vouchers and subsidies.

The plan ties government-purchased services, subsidies and admission care to an assessment. A
resident is (re)assessed whenever they decide about care; the voucher rule is a policy lever:
assessed state >= voucher_min_state and (age >= voucher_min_age or income class <=
voucher_max_income_class).
"""

from __future__ import annotations

import numpy as np

from sim.population import Population


def assess(pop: Population, rows: np.ndarray, policy) -> None:
    """Record the assessed state and voucher eligibility of `rows`."""
    state = pop.health[rows]
    pop.assessed[rows] = state
    old_enough = pop.age_m[rows] >= policy.voucher_min_age * 12
    poor = pop.income[rows] <= policy.voucher_max_income_class
    pop.voucher[rows] = (state >= policy.voucher_min_state) & (old_enough | poor)
