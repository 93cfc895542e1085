"""The care system's month: free places of the dead, decisions, admissions, home-care dispatch,
care delivered, and the raw sums behind the plan's KPIs (DESIGN.md sections 5-8).

Everything here works on the rows that matter this month: the residents with an event (deciders),
those in need (state 2+ or medical need) and the few thousand facilities; never on all residents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.assessment import assess
from sim.choice import (
    COMMUNITY,
    FAMILY,
    HOME,
    MEDICAL_BED,
    OPTION_KIND,
    PRIVATE_HOME,
    PUBLIC_HOME,
    REASONS,
    binding_reasons,
    choose,
    option_features,
    option_reason,
)
from sim.facilities import MEDICAL, PRIVATE, PUBLIC, RESIDENTIAL, admit
from sim.families import family_care_capacity
from sim.kernels import EVENT_DIED, EVENT_NEED, EVENT_REVIEW, EVENT_WIDOWED
from sim.services import dispatch

if TYPE_CHECKING:
    from sim.model import CareModel

SPENDING = (
    "construction",
    "operating",
    "public_homes",
    "vouchers",
    "nursing_subsidy",
    "old_age_allowance",
    "carer_allowance",
)
SUMS = (
    "med_need",
    "med_met",
    "med_met_beds",
    "beds_public",
    "beds_private",
    "beds_medical",
    "occ_public",
    "occ_private",
    "occ_medical",
    "cap_public",
    "cap_private",
    "cap_medical",
    "queue",
    "wait_sum",
    "in_need",
    "n_family",
    "n_home",
    "n_community",
    "n_institution",
    "n_medical_bed",
    "dependents",
    "dependents_unmet",
    "unmet_hours",
    "family_hours",
    "overloaded",
    "team_used",
    "team_capacity",
    "cov_centre",
    "cov_day",
    "urban_elderly",
    *(f"spend_{s}" for s in SPENDING),
    *(f"unmet_reason_{r}" for r in REASONS),
    *(f"empty_reason_{r}" for r in REASONS),
)
IDX = {name: i for i, name in enumerate(SUMS)}
_KIND_SUM = {PUBLIC: "public", PRIVATE: "private", MEDICAL: "medical"}
_OPTION_OF_KIND = {kind: option for option, kind in OPTION_KIND.items()}


def care_month(model: CareModel) -> np.ndarray:
    """Run the care system for the current month; returns the raw sums [district, SUMS]."""
    pop, fac, month = model.pop, model.facilities, model.month
    events = model.event_rows
    bits = pop.event[events]
    dead = events[(bits & EVENT_DIED) != 0]
    _release(model, dead)
    pop.queue_facility[dead] = -1
    pop.queue_since[dead] = -1
    needy = model.needy_rows
    model.refresh_facility_state()

    deciding = events[
        ((bits & (EVENT_NEED | EVENT_WIDOWED | EVENT_REVIEW)) != 0) & pop.alive[events]
    ]
    queued = needy[pop.queue_facility[needy] >= 0]
    too_long = queued[month - pop.queue_since[queued] >= model.params.services.max_wait_months]
    deciders = np.union1d(deciding, too_long)
    if month == 0:  # the end-2015 population has no recorded arrangement: everyone in need decides
        deciders = np.union1d(deciders, needy)
    model.set_deciders(deciders)
    assess(pop, deciders, model.params.policy)
    choice, features = choose(model, deciders)
    _apply_choices(model, deciders, choice, features)

    applicants = needy[pop.queue_facility[needy] >= 0]
    target = pop.queue_facility[applicants].astype(np.int64)
    kind = fac.kind[target]
    priority = np.where(kind == PUBLIC, np.minimum(pop.income[applicants], 3), 0)
    admitted = admit(
        fac, month, applicants, target, priority, pop.queue_since[applicants], model.seed
    )
    rows_in = applicants[admitted]
    model.record_admissions(target[admitted])
    pop.facility[rows_in] = target[admitted]
    pop.arrangement[rows_in] = [_OPTION_OF_KIND[int(k)] for k in fac.kind[target[admitted]]]
    pop.queue_facility[rows_in] = -1
    pop.queue_since[rows_in] = -1
    return _deliver_and_measure(model, needy)


def _release(model: CareModel, rows: np.ndarray) -> None:
    """Free the bed or day place of `rows`."""
    pop, fac = model.pop, model.facilities
    holding = rows[pop.facility[rows] >= 0]
    f = pop.facility[holding]
    np.subtract.at(fac.occupancy, f, 1)
    model.record_exits(f)
    pop.facility[holding] = -1


def _apply_choices(model: CareModel, rows: np.ndarray, choice: np.ndarray, feat) -> None:
    """Move residents to their chosen arrangement; residential choices join a queue."""
    pop, fac = model.pop, model.facilities
    current = pop.facility[rows]
    in_residence = (current >= 0) & np.isin(fac.kind[np.maximum(current, 0)], RESIDENTIAL)
    residential_choice = np.isin(choice, (PUBLIC_HOME, PRIVATE_HOME, MEDICAL_BED))
    stay = in_residence & residential_choice
    leave = (
        (current >= 0) & ~stay & ~((choice == COMMUNITY) & (current == feat.facility[:, COMMUNITY]))
    )
    _release(model, rows[leave])

    to_queue = residential_choice & ~stay
    tgt = feat.facility[np.arange(rows.size), choice]
    new_queue = to_queue & (pop.queue_facility[rows] != tgt)
    pop.queue_facility[rows[new_queue]] = tgt[new_queue]
    pop.queue_since[rows[new_queue]] = model.month
    clear = ~to_queue
    pop.queue_facility[rows[clear]] = -1
    pop.queue_since[rows[clear]] = -1

    community = (choice == COMMUNITY) & (pop.facility[rows] < 0)
    centre = feat.facility[community, COMMUNITY]
    free = fac.capacity_rows - fac.occupancy
    joined = np.zeros(community.sum(), dtype=bool)
    for k, c in enumerate(centre):  # a few hundred a month; sequential to respect places
        if free[c] > 0:
            free[c] -= 1
            joined[k] = True
    c_rows = rows[community][joined]
    np.add.at(fac.occupancy, centre[joined], 1)
    pop.facility[c_rows] = centre[joined]
    # while queueing for a bed a resident keeps the arrangement they had
    arrangement = np.where(stay | residential_choice, pop.arrangement[rows], choice)
    arrangement[np.flatnonzero(community)[~joined]] = FAMILY
    pop.arrangement[rows] = arrangement


def _deliver_and_measure(model: CareModel, needy: np.ndarray) -> np.ndarray:
    """Care delivered to everyone in need, unmet hours, and the KPI sums by district."""
    pop, fac, p, month = model.pop, model.facilities, model.params, model.month
    n_d = len(model.geo.districts)
    out = np.zeros((n_d, len(SUMS)))
    d = pop.district[needy].astype(np.int64)

    def add(name: str, values, rows_district=d) -> None:
        out[:, IDX[name]] += np.bincount(
            rows_district, weights=np.asarray(values, dtype=float), minlength=n_d
        )

    health = pop.health[needy]
    need = np.asarray(p.need.care_hours_by_state)[health]
    arrangement = pop.arrangement[needy]
    f = pop.facility[needy]
    kind = np.where(f >= 0, fac.kind[np.maximum(f, 0)], -1)
    residential = np.isin(kind, RESIDENTIAL)
    arrangement = np.where(
        residential, arrangement, np.where(arrangement >= PUBLIC_HOME, FAMILY, arrangement)
    )
    in_centre = (f >= 0) & ~residential
    arrangement = np.where(
        ~residential & (arrangement == COMMUNITY) & ~in_centre, FAMILY, arrangement
    )
    capacity = family_care_capacity(pop, needy, p.family, p.policy, model.in_residence)
    family = np.where(residential, 0.0, np.minimum(need, capacity))
    formal = np.where(residential, need, 0.0)
    formal = np.where(in_centre, np.minimum(p.services.day_care_hours, need - family), formal)

    home = arrangement == HOME
    team_capacity = model.team_hours_by_district() / model.scale
    request = np.maximum(need - family, 0.0)
    med_request = np.where(pop.medical[needy], p.need.medical_hours, 0.0)
    priority = np.where(pop.voucher[needy], 0, 1)
    care_cap = team_capacity * (1 - p.services.medical_staff_share)
    med_cap = team_capacity * p.services.medical_staff_share
    granted = np.zeros(needy.size)
    granted[home] = dispatch(
        care_cap, needy[home], d[home], request[home], priority[home], model.seed, month
    )
    med_granted = np.zeros(needy.size)
    med_home = home & (med_request > 0)
    med_granted[med_home] = dispatch(
        med_cap,
        needy[med_home],
        d[med_home],
        med_request[med_home],
        priority[med_home],
        model.seed,
        month,
    )
    formal = np.where(home, granted, formal)
    unmet = np.maximum(need - family - formal, 0.0)

    medical = pop.medical[needy]
    capable = model.facility_medical_capable()
    in_capable_bed = residential & capable[np.maximum(f, 0)]
    met = medical & (
        in_capable_bed | (home & (med_granted >= med_request - 1e-9) & (med_request > 0))
    )
    add("med_need", medical)
    add("med_met", met)
    add("med_met_beds", medical & in_capable_bed)
    add("in_need", np.ones(needy.size))
    add("n_family", arrangement == FAMILY)
    add("n_home", home)
    add("n_community", arrangement == COMMUNITY)
    add("n_institution", residential & (kind != MEDICAL))
    add("n_medical_bed", kind == MEDICAL)
    dependent = health >= 3
    add("dependents", dependent)
    add("dependents_unmet", dependent & (unmet > 1e-9))
    add("unmet_hours", unmet)
    add("family_hours", family)
    add("overloaded", family > p.family.overload_hours)
    add("team_used", granted + med_granted)
    out[:, IDX["team_capacity"]] = team_capacity

    queued = needy[pop.queue_facility[needy] >= 0]
    add("queue", np.ones(queued.size), pop.district[queued].astype(np.int64))
    add("wait_sum", month - pop.queue_since[queued], pop.district[queued].astype(np.int64))

    open_now = fac.is_open(month)
    fd = fac.district.astype(np.int64)
    for kind_code, name in _KIND_SUM.items():
        sel = open_now & (fac.kind == kind_code)
        out[:, IDX[f"beds_{name}"]] = np.bincount(fd[sel], weights=fac.capacity[sel], minlength=n_d)
        out[:, IDX[f"cap_{name}"]] = np.bincount(
            fd[sel], weights=fac.capacity_rows[sel], minlength=n_d
        )
        out[:, IDX[f"occ_{name}"]] = np.bincount(fd[sel], weights=fac.occupancy[sel], minlength=n_d)
    cov = model.coverage_sums()
    out[:, IDX["cov_centre"]], out[:, IDX["cov_day"]], out[:, IDX["urban_elderly"]] = cov

    _spending(model, out, needy, d, arrangement, health, granted)
    _reasons(model, out, needy, dependent & ~residential & (arrangement == FAMILY) & (unmet > 1e-9))
    return out


def _spending(model, out, needy, d, arrangement, health, granted) -> None:
    """Public spending by item (yuan per month, in row units; scaled to persons in metrics)."""
    pop, fac, p, month = model.pop, model.facilities, model.params, model.month
    pol, n_d = p.policy, out.shape[0]
    opening = (fac.open_month == month) & (fac.kind == PRIVATE)
    new_beds = np.bincount(
        fac.district[opening].astype(np.int64), weights=fac.capacity[opening], minlength=n_d
    )
    out[:, IDX["spend_construction"]] = new_beds * pol.construction_subsidy_per_bed / model.scale
    out[:, IDX["spend_operating"]] = out[:, IDX["occ_private"]] * pol.operating_subsidy_per_bed
    in_public = needy[pop.facility[needy] >= 0]
    in_public = in_public[fac.kind[pop.facility[in_public]] == PUBLIC]
    fee = np.where(pop.income[in_public] == 0, 0.0, p.money.price_public_home)
    out[:, IDX["spend_public_homes"]] = np.bincount(
        pop.district[in_public].astype(np.int64), weights=pol.public_bed_cost - fee, minlength=n_d
    )
    cost = np.where(
        arrangement == HOME,
        granted * p.money.price_home_care_hour,
        np.where(arrangement == COMMUNITY, p.money.price_day_care, 0.0),
    )
    voucher = np.where(pop.voucher[needy], np.minimum(pol.voucher_amount, cost), 0.0)
    out[:, IDX["spend_vouchers"]] = np.bincount(d, weights=voucher, minlength=n_d)
    severe_poor = (health == 4) & (pop.income[needy] <= 1)
    out[:, IDX["spend_nursing_subsidy"]] = np.bincount(
        d, weights=severe_poor * pol.nursing_subsidy, minlength=n_d
    )
    out[:, IDX["spend_old_age_allowance"]] = model.poor_80plus_by_district() * pol.old_age_allowance
    carers = (health >= 3) & (pop.facility[needy] < 0)
    out[:, IDX["spend_carer_allowance"]] = np.bincount(
        d, weights=carers * pol.carer_allowance, minlength=n_d
    )


def _reasons(model, out, needy, unmet_family_only) -> None:
    """Why dependents go without formal care, and why beds stand empty, by district."""
    pop, fac, month = model.pop, model.facilities, model.month
    n_d = out.shape[0]
    rows = needy[unmet_family_only]
    dependents = needy[pop.health[needy] >= 3]
    feats = option_features(model, dependents)
    if rows.size:
        sub = np.isin(dependents, rows)
        reasons = binding_reasons(model, feats)[sub]
        codes = pop.district[rows].astype(np.int64) * len(REASONS) + reasons
        tally = np.bincount(codes, minlength=n_d * len(REASONS)).reshape(n_d, len(REASONS))
        for r, name in enumerate(REASONS):
            out[:, IDX[f"unmet_reason_{name}"]] = tally[:, r]
    open_now = fac.is_open(month)
    dd = pop.district[dependents].astype(np.int64)
    for kind_code in (PUBLIC, PRIVATE, MEDICAL):
        sel = open_now & (fac.kind == kind_code)
        empty = np.bincount(
            fac.district[sel].astype(np.int64),
            weights=(fac.capacity_rows - fac.occupancy)[sel],
            minlength=n_d,
        )
        if dependents.size == 0:
            out[:, IDX["empty_reason_preference"]] += empty
            continue
        option = _OPTION_OF_KIND[kind_code]
        not_using = fac.kind[np.maximum(pop.facility[dependents], 0)] != kind_code
        not_using |= pop.facility[dependents] < 0
        reason = option_reason(model, feats, option)
        tally = (
            np.bincount(
                dd[not_using] * len(REASONS) + reason[not_using], minlength=n_d * len(REASONS)
            )
            .reshape(n_d, len(REASONS))
            .astype(float)
        )
        totals = tally.sum(axis=1, keepdims=True)
        shares = np.where(totals > 0, tally / np.maximum(totals, 1), 0.0)
        shares[totals[:, 0] == 0, REASONS.index("preference")] = 1.0
        for r, name in enumerate(REASONS):
            out[:, IDX[f"empty_reason_{name}"]] += empty * shares[:, r]
