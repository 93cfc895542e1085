"""Admission from the queues: each month facilities admit applicants into their free places by
priority (public homes first take the special-hardship 三无/五保 and low-income elderly), then
application month, then a keyed tie-break; never above capacity.
"""

from __future__ import annotations

import numpy as np

from sim.care.facilities import FacilityTable
from sim.care.kinds import OPTION_OF_KIND, PUBLIC
from sim.care.month import CareMonth
from sim.care.places import Places
from sim.care.queues import still_waiting
from sim.engine.districts import DISTRICT_KEYS
from sim.engine.rng import Stream, stable_order, uniforms
from sim.engine.subsystem import Subsystem
from sim.kpis.registry import CARE_SUM_NAMES
from sim.population.columns import NO_MONTH, Population

_QUEUE, _WAIT_SUM = CARE_SUM_NAMES.index("queue"), CARE_SUM_NAMES.index("wait_sum")
_EMPTY_BESIDE = CARE_SUM_NAMES.index("empty_beside_queues")
_ADMISSIONS, _ADMISSIONS_65 = (CARE_SUM_NAMES.index(n) for n in ("admissions", "admissions_65plus"))
_FROM = [CARE_SUM_NAMES.index(f"admitted_from_{key}") for key in DISTRICT_KEYS]
_M65 = 65 * 12
_PRIORITY_CLASSES = 3  # income classes 0..2 ranked at public homes; the rest share the last


class Admission(Subsystem):
    """Admits the applicants the facilities have room for (`CareMonth.waiting`: those left)."""

    writes = frozenset(("facility", "arrangement", "queue_facility", "queue_since", "bed_since"))

    def __init__(self, pop: Population, places: Places, seed: int):
        self.pop, self.places, self.seed = pop, places, seed
        self._admitted = np.zeros(0, dtype=np.int64)  # this month's admissions to a bed

    def step(self, month: CareMonth) -> None:
        pop, fac = self.pop, self.places.table
        applicants = still_waiting(pop.queue_facility, month.queued, month.deciders)
        target = pop.queue_facility[applicants].astype(np.int64)
        kind = fac.kind[target]
        priority = np.where(
            kind == PUBLIC, np.minimum(pop.income[applicants], _PRIORITY_CLASSES), 0
        )
        since = pop.queue_since[applicants]
        admitted = admit(fac, month.month, applicants, target, priority, since, self.seed)
        rows_in = applicants[admitted]
        pop.facility[rows_in] = target[admitted]
        pop.arrangement[rows_in] = OPTION_OF_KIND[fac.kind[target[admitted]]]
        pop.queue_facility[rows_in] = -1
        pop.queue_since[rows_in] = NO_MONTH
        bed = self.places.residential[target[admitted]]
        pop.bed_since[rows_in[bed]] = month.month
        self._admitted = rows_in[bed]
        month.waiting = applicants[~admitted]

    def results(self, month: CareMonth) -> None:
        """Residents waiting for a bed and the months they have waited so far, by district: from
        the few thousand rows in a queue, not a column of everyone in need (whole numbers, so
        the sums do not depend on the order)."""
        pop, out, waiting = self.pop, month.sums, month.waiting
        district = pop.district[waiting].astype(np.int64)
        waited = month.month - pop.queue_since[waiting].astype(np.int64)
        n_d = out.shape[0]
        out[:, _QUEUE] = np.bincount(district, minlength=n_d)
        out[:, _WAIT_SUM] = np.bincount(district, weights=waited, minlength=n_d)
        empty = self.places.empty_beds(month.month, n_d).sum(axis=0)
        queue = out[:, _QUEUE]
        out[:, _EMPTY_BESIDE] = np.where((queue == 0) & (queue.sum() > 0), empty, 0.0)
        rows = self._admitted
        home = pop.district[rows].astype(np.int64)
        bed_district = self.places.table.district[pop.facility[rows]].astype(np.int64)
        out[:, _ADMISSIONS] = np.bincount(bed_district, minlength=n_d)
        out[:, _ADMISSIONS_65] = np.bincount(home[pop.age_m[rows] >= _M65], minlength=n_d)
        out[:, _FROM] = np.bincount(bed_district * n_d + home, minlength=n_d * n_d).reshape(
            n_d, n_d
        )


def admit(
    table: FacilityTable,
    month: int,
    applicant_rows: np.ndarray,
    applicant_facility: np.ndarray,
    priority: np.ndarray,
    since: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Admit applicants by (priority, application month, keyed tie-break) into free places.

    Returns a boolean mask over the applicants: admitted this month. Never exceeds capacity.
    """
    if applicant_rows.size == 0:
        return np.zeros(0, dtype=bool)
    free = np.where(table.is_open(month), table.capacity_rows - table.occupancy, 0).clip(0)
    tie = uniforms(seed, Stream.QUEUE_TIE, applicant_rows, month)
    order = _admission_order(applicant_facility, priority, since, tie)
    fac_sorted = applicant_facility[order]
    starts = np.r_[0, np.flatnonzero(np.diff(fac_sorted)) + 1]
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    admitted = np.zeros(applicant_rows.size, dtype=bool)
    admitted[order] = rank < free[fac_sorted]
    table.occupancy += np.bincount(applicant_facility[admitted], minlength=table.size)
    return admitted


def _admission_order(
    facility: np.ndarray, priority: np.ndarray, since: np.ndarray, tie: np.ndarray
) -> np.ndarray:
    """np.lexsort((tie, since, priority, facility)): by facility, priority, application month,
    then the keyed tie-break. The first three are whole numbers (an index, a class, a month),
    packed into one integer key, so it takes two stable sorts instead of four."""
    keys = [np.asarray(k).astype(np.int64) for k in (facility, priority, since)]
    keys = [k - k.min() for k in keys]
    priority_span, since_span = (int(k.max()) + 1 for k in keys[1:])
    packed = (keys[0] * priority_span + keys[1]) * since_span + keys[2]
    order = stable_order(tie)
    return order[np.argsort(packed[order], kind="stable")]
