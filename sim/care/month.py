"""The care system's month: free places of the dead, decisions, admissions, home-care dispatch,
care delivered, and the raw sums behind the plan's KPIs (DESIGN.md sections 5-8).

Everything here works on the rows that matter this month: the residents with an event (deciders),
those in need (state 2+ or medical need) and the few thousand facilities; never on all residents.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numba
import numpy as np

from sim.care.assessment import assess
from sim.care.choice import (
    COMMUNITY,
    FAMILY,
    OPTION_KIND,
    PREFERENCE,
    PUBLIC_HOME,
    REASONS,
    RESIDENTIAL_OPTIONS,
    ReasonInputs,
    choose,
    reason_inputs,
    reason_tallies,
)
from sim.care.delivery import IDX, PersonSums, deliver_and_measure
from sim.care.facilities import PUBLIC, admit
from sim.care.gather import Residents, gather
from sim.engine.jit import AHEAD, kernel, prefetch
from sim.population.kernel import EVENT_DIED, EVENT_NEED, EVENT_REVIEW, EVENT_WIDOWED

if TYPE_CHECKING:
    from sim.core.model import CareModel

# the residential option each facility kind provides (-1: a day place, not a residential option)
_OPTION_OF_KIND = np.full(max(OPTION_KIND.values()) + 1, -1, dtype=np.int8)
_OPTION_OF_KIND[list(OPTION_KIND.values())] = list(OPTION_KIND.keys())


def care_month(model: CareModel) -> tuple[np.ndarray, Callable[[], None]]:
    """Run the care system for the current month. Returns the raw sums [district, SUMS] and
    `finish`, which works out the care each person in need receives (team dispatch included)
    and adds the sums over them and the reasons: it reads only what this month took for it, so
    it may run on another thread while the next month runs (model.step)."""
    pop, fac, month = model.pop, model.facilities, model.month
    events = model.event_rows
    bits = pop.event[events]
    dead = events[(bits & EVENT_DIED) != 0]
    _release(model, dead)
    pop.queue_facility[dead] = -1
    pop.queue_since[dead] = -1
    needy = model.needy_rows
    queued = _waiting(pop, needy)
    model.refresh_facility_state(queued)

    deciding = events[
        ((bits & (EVENT_NEED | EVENT_WIDOWED | EVENT_REVIEW)) != 0) & pop.alive[events]
    ]
    too_long = queued[month - pop.queue_since[queued] >= model.params.services.max_wait_months]
    deciders = _union(deciding, too_long)
    if month == 0:  # the end-2015 population has no recorded arrangement: everyone in need decides
        deciders = _union(deciders, needy)
    model.set_deciders(deciders)
    assess(pop, deciders, model.params.policy)
    choice, option_facility = choose(model, deciders)
    _apply_choices(model, deciders, choice, option_facility)

    applicants = _still_waiting(pop, queued, deciders)
    target = pop.queue_facility[applicants].astype(np.int64)
    kind = fac.kind[target]
    priority = np.where(kind == PUBLIC, np.minimum(pop.income[applicants], 3), 0)
    admitted = admit(
        fac, month, applicants, target, priority, pop.queue_since[applicants], model.seed
    )
    rows_in = applicants[admitted]
    pop.facility[rows_in] = target[admitted]
    pop.arrangement[rows_in] = _OPTION_OF_KIND[fac.kind[target[admitted]]]
    pop.queue_facility[rows_in] = -1
    pop.queue_since[rows_in] = -1
    people = gather(model, needy)  # facilities, arrangements and queues are final now
    out, per_person = deliver_and_measure(model, needy, people, applicants[~admitted])
    inputs, empty_beds = reason_inputs(model), _empty_beds(model, out.shape[0])
    return out, partial(_finish, out, people, per_person, inputs, empty_beds)


def _finish(
    out: np.ndarray,
    people: Residents,
    per_person: PersonSums,
    inputs: ReasonInputs,
    empty_beds: np.ndarray,
) -> None:
    _add_reasons(out, people, per_person.add_to(out), inputs, empty_beds)


def _waiting(pop, rows: np.ndarray) -> np.ndarray:
    """Those of `rows` in a queue for a bed, in the same order."""
    out = np.empty(rows.size, dtype=np.int64)
    return out[: _select_queued(rows, pop.queue_facility, out)]


@kernel
def _select_queued(rows: np.ndarray, queue_facility: np.ndarray, out: np.ndarray) -> int:
    n = 0
    for k in range(rows.size):
        row = rows[k]
        out[n] = row
        n += queue_facility[row] >= 0
    return n


def _still_waiting(pop, queued: np.ndarray, deciders: np.ndarray) -> np.ndarray:
    """The residents in need in a queue after the choices, from those queued before and the
    deciders (both sorted rows), instead of a pass over everyone in need: only deciders join or
    leave queues, and a decider not in need (the only kind outside the needy) can choose family
    care only, which leaves any queue. One merge of the two sorted lists."""
    out = np.empty(queued.size + deciders.size, dtype=np.int64)
    return out[: _merge_waiting(queued, deciders, pop.queue_facility, out)]


@kernel
def _merge_waiting(
    queued: np.ndarray, deciders: np.ndarray, queue_facility: np.ndarray, out: np.ndarray
) -> int:
    """Sorted: the queued who did not decide, and the deciders now in a queue."""
    n = i = j = 0
    while i < queued.size or j < deciders.size:
        if j == deciders.size or (i < queued.size and queued[i] < deciders[j]):
            out[n] = queued[i]
            n += 1
            i += 1
            continue
        if i < queued.size and queued[i] == deciders[j]:
            i += 1  # decided: in a queue now only if the decider is
        if j + AHEAD < deciders.size:  # the deciders' rows are scattered: load them ahead
            prefetch(queue_facility, np.uintp(deciders[j + AHEAD]))
        row = deciders[j]
        out[n] = row
        n += queue_facility[row] >= 0
        j += 1
    return n


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted union of two arrays of rows (np.union1d's hash-based unique is ~10x slower). The
    arrays come nearly sorted, which the stable sort (a merge of runs) turns to account."""
    rows = np.sort(np.concatenate([a, b]), kind="stable")
    return rows[np.r_[True, rows[1:] != rows[:-1]]] if rows.size else rows


def _release(model: CareModel, rows: np.ndarray) -> None:
    """Free the bed or day place of `rows`."""
    pop, fac = model.pop, model.facilities
    holding = rows[pop.facility[rows] >= 0]
    f = pop.facility[holding]
    fac.occupancy -= np.bincount(f, minlength=fac.size)
    model.record_exits(f)
    pop.facility[holding] = -1


def _apply_choices(
    model: CareModel, rows: np.ndarray, choice: np.ndarray, option_facility: np.ndarray
) -> None:
    """Move residents to their chosen arrangement (`option_facility` [n, 6]: the facility of
    each option); residential choices join a queue."""
    pop, fac = model.pop, model.facilities
    released = _move(
        rows,
        choice,
        option_facility,
        model.month,
        pop.facility,
        pop.queue_facility,
        pop.queue_since,
        pop.arrangement,
        model.residential_facility,
        fac.occupancy,
        fac.capacity_rows,
    )
    model.record_exits(released)


@numba.njit(cache=True, nogil=True)
def _move(
    rows, choice, option_facility, month, facility, queue_facility, queue_since, arrangement,
    residential_facility, occupancy, capacity_rows,
):  # fmt: skip
    """Apply each decider's choice in row order; returns the facilities whose place was freed.

    First every decider leaves a place they no longer use and joins, keeps or leaves a queue
    (while queueing for a bed a resident keeps the arrangement they had); then, once every
    place is freed, those choosing community care take a free place at their centre in row
    order, or stay with family care if it is full.
    """
    released = np.empty(rows.size, dtype=np.int64)
    n_released = 0
    for k in range(rows.size):
        if k + AHEAD < rows.size:  # the deciders' rows are scattered: load them ahead
            ahead = np.uintp(rows[k + AHEAD])
            prefetch(facility, ahead)
            prefetch(queue_facility, ahead)
            prefetch(queue_since, ahead)
            prefetch(arrangement, ahead)
        i, c = rows[k], choice[k]
        f = facility[i]
        residential_choice = c >= PUBLIC_HOME  # options 3-5 are the residential ones
        stay = residential_choice and f >= 0 and residential_facility[f]
        same_centre = c == COMMUNITY and f == option_facility[k, COMMUNITY]
        if f >= 0 and not stay and not same_centre:
            occupancy[f] -= 1
            released[n_released] = f
            n_released += 1
            facility[i] = -1
        if residential_choice and not stay:
            if queue_facility[i] != option_facility[k, c]:
                queue_facility[i] = option_facility[k, c]
                queue_since[i] = month
        else:
            queue_facility[i] = -1
            queue_since[i] = -1
        if not residential_choice:
            arrangement[i] = c
    for k in range(rows.size):
        i = rows[k]
        if choice[k] == COMMUNITY and facility[i] < 0:
            centre = option_facility[k, COMMUNITY]
            if capacity_rows[centre] - occupancy[centre] > 0:
                occupancy[centre] += 1
                facility[i] = centre
            else:
                arrangement[i] = FAMILY
    return released[:n_released]


def _empty_beds(model: CareModel, n_districts: int) -> np.ndarray:
    """Empty beds [residential option, district] of the facilities open this month."""
    fac = model.facilities
    open_now = fac.is_open(model.month)
    empty = np.empty((len(RESIDENTIAL_OPTIONS), n_districts))
    for n, option in enumerate(RESIDENTIAL_OPTIONS):
        sel = open_now & (fac.kind == OPTION_KIND[option])
        empty[n] = np.bincount(
            fac.district[sel].astype(np.int64),
            weights=(fac.capacity_rows - fac.occupancy)[sel],
            minlength=n_districts,
        )
    return empty


def _add_reasons(
    out: np.ndarray,
    people: Residents,
    unmet_family_only: np.ndarray,
    inputs: ReasonInputs,
    empty_beds: np.ndarray,
) -> None:
    """Why dependents go without formal care, and why beds stand empty, by district.

    A district's empty beds of a kind are shared out by the reasons its dependents outside
    that kind do not use it (all to 'preference' where there are none).
    """
    dependent = np.flatnonzero(people.health >= 3)
    unmet, not_using = reason_tallies(inputs, people, dependent, unmet_family_only, out.shape[0])
    for r, name in enumerate(REASONS):
        out[:, IDX[f"unmet_reason_{name}"]] = unmet[:, r]
    for empty, tally in zip(empty_beds, not_using, strict=True):
        totals = tally.sum(axis=1, keepdims=True)
        shares = np.where(totals > 0, tally / np.maximum(totals, 1), 0.0)
        shares[totals[:, 0] == 0, PREFERENCE] = 1.0
        for r, name in enumerate(REASONS):
            out[:, IDX[f"empty_reason_{name}"]] += empty * shares[:, r]
