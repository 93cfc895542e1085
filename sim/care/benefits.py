"""Who receives the plan's cash benefits (四(二)): the nursing subsidy for the severely disabled
poor and the old-age allowance for the 80+ poor. One rule each, read both where the household's
budget counts them (`choice`) and where public spending adds them up (`delivery`).

The income cut-offs are assumed (the plan names the groups, not the classes): income classes are
0 三无/五保, 1 低保, 2 low, 3 middle, 4 high (`IncomeParams`).
"""

from __future__ import annotations

import numpy as np

from sim.engine.jit import row_function

NURSING_STATE = 4  # fully dependent (`health.STATE_NAMES`)
NURSING_MAX_INCOME = 1  # up to 低保
ALLOWANCE_AGE_M = 80 * 12
ALLOWANCE_MAX_INCOME = 2  # up to low income


@row_function
def nursing_subsidy_due(health: np.int8, income: np.int8) -> bool:
    return health == NURSING_STATE and income <= NURSING_MAX_INCOME


@row_function
def allowance_due(age_m: np.int16, income: np.int8) -> bool:
    return age_m >= ALLOWANCE_AGE_M and income <= ALLOWANCE_MAX_INCOME
