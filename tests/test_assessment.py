"""Assessment: the voucher rule applied to the deciders only."""

from __future__ import annotations

import numpy as np
import pytest

from sim.care.assessment import assess
from sim.params.policy import PolicyParams
from sim.population.columns import Population


@pytest.mark.parametrize(
    ("min_state", "min_age", "max_income"), [(3, 80, 1), (2, 60, 0), (4, 99, 4)]
)
def test_assessment_follows_the_voucher_rule(min_state: int, min_age: int, max_income: int) -> None:
    rng = np.random.default_rng(min_state)
    pop = Population(5_000)
    pop.append(5_000)
    pop.health[:] = rng.integers(0, 5, 5_000)
    pop.age_m[:] = rng.integers(60 * 12, 100 * 12, 5_000)
    pop.income[:] = rng.integers(0, 5, 5_000)
    policy = PolicyParams(
        voucher_min_state=min_state, voucher_min_age=min_age, voucher_max_income_class=max_income
    )
    rows = np.sort(rng.choice(5_000, 1_500, replace=False))
    assess(pop, rows, policy)

    others = np.setdiff1d(np.arange(5_000), rows)
    assert (pop.assessed[others] == -1).all() and not pop.voucher[others].any()
    np.testing.assert_array_equal(pop.assessed[rows], pop.health[rows])
    expected = (pop.health[rows] >= min_state) & (
        (pop.age_m[rows] >= min_age * 12) | (pop.income[rows] <= max_income)
    )
    np.testing.assert_array_equal(pop.voucher[rows], expected)
    assert expected.any() and not expected.all()
