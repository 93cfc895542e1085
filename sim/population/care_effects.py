"""How the care a person received changes their health: status codes, hazard multipliers, and
the record that carries each month's care to the population kernel two months later.

Each month the care system (`care.delivery`) records a status for everyone needing care: for a
dependent (state 3+), whether their needs for help with daily activities were met; for anyone
with a chronic condition (the medical flag), whether they received integrated care. The
population kernel applies it `LAG` months later: in a pipelined run the kernel of month m runs
while month m - 1's care does and before its deferred results, which compute who was left with
unmet need, so month m - 2's is the latest it can read in every run; serial runs read the same
month, so results do not depend on the runner (`CareStatus.for_kernel`, `Runner`).

Multipliers act on hazards (a monthly probability p becomes 1 - (1 - p)^m). The life table and
the transition rates describe a population in which a share `reference_unmet_share` of the
dependents went without enough help, so the met and unmet multipliers are normalised to average
1 at that share: a population of that mix dies at the table's rates, and one with less unmet
need, fewer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# status codes: the dependents' ADL status (others NO_STATUS), plus INTEGRATED for integrated care
NO_STATUS, MET, UNMET = 0, 1, 2
INTEGRATED = 3
N_STATUS = 6
DEPENDENT_STATE = 3  # partially dependent: the first state whose daily help can go unmet
LAG = 2  # months from the care received to the kernel month that applies it

_NO_ROWS = np.zeros(0, dtype=np.int64)
_NO_STATUS = np.zeros(0, dtype=np.uint8)


class CareEffects(NamedTuple):
    """Multipliers by status code: of the death hazard, of the hazard of becoming fully
    dependent (from partial dependency), of the hospital admission rate."""

    death: np.ndarray
    worsening: np.ndarray
    hospital: np.ndarray


def care_effects(health) -> CareEffects:
    """The multipliers of `HealthParams` `health`."""
    share = float(health.reference_unmet_share)

    def by_status(unmet_ratio: float, integrated_ratio: float) -> np.ndarray:
        norm = 1 + share * (unmet_ratio - 1)
        adl = np.array([1.0, 1.0 / norm, unmet_ratio / norm])
        return np.concatenate([adl, adl * integrated_ratio])

    return CareEffects(
        death=by_status(health.unmet_need_death_hr, health.integrated_care_death_hr),
        worsening=by_status(health.unmet_need_worsening_hr, 1.0),
        hospital=by_status(health.unmet_need_hospital_rr, health.integrated_care_hospital_rr),
    )


def scaled_probability(p: np.ndarray | float, multiplier: np.ndarray | float) -> np.ndarray:
    """The monthly probability of a hazard `multiplier` times that of probability `p`."""
    return 1.0 - np.power(1.0 - np.asarray(p, dtype=np.float64), multiplier)


class CareStatus:
    """The care each person needing care received, by month: `record` hands the care system an
    array to fill for a month's rows; `for_kernel` gives the kernel of a month the record of
    `LAG` months before (none before the care system's results begin: the table's averages)."""

    def __init__(self) -> None:
        self._months: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def record(self, month: int, rows: np.ndarray) -> np.ndarray:
        """A zeroed status array for `rows` (sorted) of `month`, kept for the kernel."""
        status = np.zeros(rows.size, dtype=np.uint8)
        self._months[month] = (rows, status)
        for old in [m for m in self._months if m < month - LAG]:
            del self._months[old]
        return status

    def for_kernel(self, month: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, status) recorded for month - LAG (empty if none)."""
        return self._months.get(month - LAG, (_NO_ROWS, _NO_STATUS))
