"""The care system's month: the context its subsystems share within one month.

The model opens a `CareMonth` from the population's month (who had an event, who is in need),
then each care subsystem steps in order (sim.core.model.CARE_ORDER), reading what the earlier
ones recorded here and adding its own: places freed and queues (`Places`), who decides and their
assessment (`Assessment`), choices (`Choice`), admissions (`Admission`), the columns of everyone
in need (`Delivery`). Their results go into `sums` [district, kpis.registry.CARE_SUMS].

Everything here is about the rows that matter this month (deciders, those in need, the few
thousand facilities), never all residents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.care.gather import Residents
from sim.engine.calendar import CARE_START
from sim.kpis.registry import CARE_SUM_NAMES

_NO_ROWS = np.zeros(0, dtype=np.int64)


def _rows() -> np.ndarray:
    return _NO_ROWS


@dataclass
class CareMonth:
    """One month of the care system (arrays of population rows are sorted unless noted)."""

    month: int
    events: np.ndarray  # rows with an event this month (deaths, need changes, widowhood, arrivals)
    bits: np.ndarray  # their event bits (population.kernel.EVENT_*), aligned with `events`
    needy: np.ndarray  # living rows needing care (state 2+)
    counts: np.ndarray  # [district, population.kernel.COUNTS]: the population's month
    sums: np.ndarray  # [district, CARE_SUMS]: the month's raw sums, filled by the results
    queued: np.ndarray = field(default_factory=_rows)  # in need and waiting for a bed, at start
    deciders: np.ndarray = field(default_factory=_rows)  # who decides (and is assessed)
    waiting: np.ndarray = field(default_factory=_rows)  # still waiting after admissions
    people: Residents | None = None  # the columns of `needy`, after admissions
    unmet_family_only: np.ndarray | None = None  # over `needy`: dependents with unmet need and
    # family care only (the delivered care's, for the diagnostics)

    @property
    def reported(self) -> bool:
        """A month of the results (2016-01 on); the care system's spin-up before it is not."""
        return self.month >= CARE_START

    @classmethod
    def open(cls, month: int, events: np.ndarray, event_bits: np.ndarray, needy: np.ndarray,
             counts: np.ndarray) -> CareMonth:  # fmt: skip
        """The month's context before any care subsystem has stepped (`counts`: the
        population's, [district, COUNTS])."""
        sums = np.zeros((counts.shape[0], len(CARE_SUM_NAMES)))
        return cls(month, events, event_bits[events], needy, counts, sums)
