"""Why dependents go without formal care, and why beds stand empty, by district.

For every dependent without formal care whose need goes unmet, the first reason that binds for
the formal option that would suit them best (`choice.REASONS`: not eligible, no vacancy, too
far, price, no medical service, else preference); for every empty bed, the reasons the
district's dependents outside that kind of bed do not use it. The tallies read the columns the
delivery gathered and a snapshot of the choice's scene taken after the month's admissions, so
they run on the worker thread with the delivery's sums.
"""

from __future__ import annotations

import numpy as np

from sim.care.choice import PREFERENCE, REASONS, Choice, ReasonInputs, reason_tallies
from sim.care.gather import Residents
from sim.care.month import CareMonth
from sim.care.places import Places
from sim.engine.subsystem import Deferred, Subsystem
from sim.kpis.registry import CARE_SUM_NAMES

_UNMET = [CARE_SUM_NAMES.index(f"unmet_reason_{name}") for name in REASONS]
_EMPTY = [CARE_SUM_NAMES.index(f"empty_reason_{name}") for name in REASONS]


class Diagnostics(Subsystem):
    """The reason tallies of the month (after the delivery's sums, which flag the unmet)."""

    def __init__(self, choice: Choice, places: Places):
        self.choice, self.places = choice, places

    def results(self, month: CareMonth) -> Deferred:
        inputs = self.choice.reason_inputs()
        empty_beds = self.places.empty_beds(month.month, month.sums.shape[0])

        def complete() -> None:
            add_reasons(month.sums, month.people, month.unmet_family_only, inputs, empty_beds)

        return complete


def add_reasons(
    out: np.ndarray,
    people: Residents,
    unmet_family_only: np.ndarray,
    inputs: ReasonInputs,
    empty_beds: np.ndarray,
) -> None:
    """Add the reason tallies to the sums `out`. A district's empty beds of a kind are shared
    out by the reasons its dependents outside that kind do not use it (all to 'preference'
    where there are none)."""
    dependent = np.flatnonzero(people.health >= 3)
    unmet, not_using = reason_tallies(inputs, people, dependent, unmet_family_only, out.shape[0])
    for r, column in enumerate(_UNMET):
        out[:, column] = unmet[:, r]
    for empty, tally in zip(empty_beds, not_using, strict=True):
        totals = tally.sum(axis=1, keepdims=True)
        shares = np.where(totals > 0, tally / np.maximum(totals, 1), 0.0)
        shares[totals[:, 0] == 0, PREFERENCE] = 1.0
        for r, column in enumerate(_EMPTY):
            out[:, column] += empty * shares[:, r]
