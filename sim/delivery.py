"""Care delivered this month to everyone in need, and the raw KPI sums by district.

Every resident in need (care-need level 1+ or a medical need, ~250 k rows in 2030) is visited
each month, so the per-person arithmetic runs in two compiled passes (numba) around the team
dispatch: `_receive` works out what the family and any facility give, the teams share their
hours (`services.dispatch`), and `_tally` adds each person's care, unmet hours and public
spending into the [district, SUMS] array in row order (the same sums, in the same order, as a
per-column bincount).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sim.choice import COMMUNITY, FAMILY, HOME, PUBLIC_HOME, REASONS
from sim.facilities import MEDICAL, PRIVATE, PUBLIC
from sim.families import family_care_capacity
from sim.jit import AHEAD, kernel, prefetch, row_function
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
KIND_SUM = {PUBLIC: "public", PRIVATE: "private", MEDICAL: "medical"}
_EPS = 1e-9  # hours: below this a shortfall is rounding, not unmet care

# column indices as module constants, so the compiled tally sees them as literals
_MED_NEED, _MED_MET, _MED_MET_BEDS = IDX["med_need"], IDX["med_met"], IDX["med_met_beds"]
_QUEUE, _WAIT_SUM, _IN_NEED = IDX["queue"], IDX["wait_sum"], IDX["in_need"]
_N_FAMILY, _N_HOME, _N_COMMUNITY = IDX["n_family"], IDX["n_home"], IDX["n_community"]
_N_INSTITUTION, _N_MEDICAL_BED = IDX["n_institution"], IDX["n_medical_bed"]
_DEPENDENTS, _DEPENDENTS_UNMET = IDX["dependents"], IDX["dependents_unmet"]
_UNMET_HOURS, _FAMILY_HOURS = IDX["unmet_hours"], IDX["family_hours"]
_OVERLOADED, _TEAM_USED = IDX["overloaded"], IDX["team_used"]
_SPEND_PUBLIC, _SPEND_VOUCHERS = IDX["spend_public_homes"], IDX["spend_vouchers"]
_SPEND_NURSING, _SPEND_CARER = IDX["spend_nursing_subsidy"], IDX["spend_carer_allowance"]


class _People(NamedTuple):
    """The population columns the passes read, by row."""

    district: np.ndarray
    health: np.ndarray
    medical: np.ndarray
    voucher: np.ndarray
    income: np.ndarray
    arrangement: np.ndarray
    facility: np.ndarray
    queue_facility: np.ndarray
    queue_since: np.ndarray


class _Places(NamedTuple):
    """By facility: its kind, whether it is a bed, whether it is medically capable now."""

    kind: np.ndarray
    residential: np.ndarray
    capable: np.ndarray


class _Rates(NamedTuple):
    """Hours, thresholds and prices (sim.params), and the month."""

    need_by_state: np.ndarray  # care hours per month by health state
    day_care_hours: float
    medical_hours: float
    overload_hours: float
    public_bed_cost: float
    public_fee: float
    home_hour_price: float
    day_care_price: float
    voucher_amount: float
    nursing_subsidy: float
    carer_allowance: float
    month: int


class _Care(NamedTuple):
    """Care this month of each person in need: entry k is population row needy[k]."""

    family_capacity: np.ndarray  # hours per month the household could give
    need: np.ndarray
    in_use: np.ndarray  # arrangement actually in use
    kind: np.ndarray  # kind of the facility held (-1 none)
    family: np.ndarray  # hours given by the family
    formal: np.ndarray  # hours given by a facility
    request: np.ndarray  # hours asked of the teams, if on home services
    med_request: np.ndarray
    granted: np.ndarray  # hours the teams grant
    med_granted: np.ndarray
    unmet_family_only: np.ndarray  # a dependent with unmet need and family care only


def _new_care(family_capacity: np.ndarray) -> _Care:
    """Arrays for `_receive` and `_tally` to fill; grants stay zero for those not on home care."""
    n = family_capacity.size
    return _Care(
        family_capacity=family_capacity,
        need=np.empty(n),
        in_use=np.empty(n, dtype=np.int8),
        kind=np.empty(n, dtype=np.int8),
        family=np.empty(n),
        formal=np.empty(n),
        request=np.empty(n),
        med_request=np.empty(n),
        granted=np.zeros(n),
        med_granted=np.zeros(n),
        unmet_family_only=np.empty(n, dtype=np.bool_),
    )


@row_function
def _prefetch_person(people: _People, i: np.uintp) -> None:
    """Start loading row i's columns: the persons in need are scattered over the population."""
    prefetch(people.district, i)
    prefetch(people.health, i)
    prefetch(people.medical, i)
    prefetch(people.voucher, i)
    prefetch(people.income, i)
    prefetch(people.arrangement, i)
    prefetch(people.facility, i)
    prefetch(people.queue_facility, i)
    prefetch(people.queue_since, i)


@kernel
def _receive(people: _People, places: _Places, rates: _Rates, needy: np.ndarray, care: _Care):
    """Per person in need: hours needed, the arrangement actually in use, whether they hold a
    bed or a day place, family hours, facility hours, and what they would ask of the teams.

    A resident who chose a home or centre but holds no place yet keeps family care only.
    """
    n = needy.size
    for k in range(n):
        if k + AHEAD < n:
            _prefetch_person(people, np.uintp(needy[k + AHEAD]))
        i = np.uintp(needy[k])
        f = people.facility[i]
        need = rates.need_by_state[np.uintp(people.health[i])]
        care.need[k] = need
        care.kind[k] = places.kind[np.uintp(f)] if f >= 0 else -1
        bed = f >= 0 and places.residential[np.uintp(f)]
        a = people.arrangement[i]
        if not bed and (a >= PUBLIC_HOME or (a == COMMUNITY and f < 0)):
            a = FAMILY
        care.in_use[k] = a
        if bed:
            family, formal = 0.0, need
        else:
            family = min(need, care.family_capacity[k])
            formal = min(rates.day_care_hours, need - family) if f >= 0 else 0.0
        care.family[k], care.formal[k] = family, formal
        care.request[k] = max(need - family, 0.0)
        care.med_request[k] = rates.medical_hours if people.medical[i] else 0.0


@kernel
def _tally(
    people: _People, places: _Places, rates: _Rates, needy: np.ndarray, care: _Care, out
):  # fmt: skip
    """Add each person's care, unmet need, queue place and public spending to
    out[district, SUMS], in row order (the same sums, in the same order, as a per-column
    bincount); flag care.unmet_family_only (the dependents whose binding reason the diagnostics
    explain)."""
    n = needy.size
    for k in range(n):
        if k + AHEAD < n:
            _prefetch_person(people, np.uintp(needy[k + AHEAD]))
        i = np.uintp(needy[k])
        d = np.uintp(people.district[i])
        f = people.facility[i]
        health, medical, in_use, kind = (
            people.health[i],
            people.medical[i],
            care.in_use[k],
            care.kind[k],
        )
        bed = f >= 0 and places.residential[np.uintp(f)]
        home = in_use == HOME
        granted, family = care.granted[k], care.family[k]
        unmet = max(care.need[k] - family - (granted if home else care.formal[k]), 0.0)
        dependent = health >= 3
        capable_bed = bed and places.capable[np.uintp(f)]
        med_request = care.med_request[k]
        team_medical = home and med_request > 0 and care.med_granted[k] >= med_request - _EPS
        out[d, _MED_NEED] += medical
        out[d, _MED_MET] += medical and (capable_bed or team_medical)
        out[d, _MED_MET_BEDS] += medical and capable_bed
        out[d, _IN_NEED] += 1.0
        out[d, _N_FAMILY] += in_use == FAMILY
        out[d, _N_HOME] += home
        out[d, _N_COMMUNITY] += in_use == COMMUNITY
        out[d, _N_INSTITUTION] += bed and kind != MEDICAL
        out[d, _N_MEDICAL_BED] += kind == MEDICAL
        out[d, _DEPENDENTS] += dependent
        out[d, _DEPENDENTS_UNMET] += dependent and unmet > _EPS
        out[d, _UNMET_HOURS] += unmet
        out[d, _FAMILY_HOURS] += family
        out[d, _OVERLOADED] += family > rates.overload_hours
        out[d, _TEAM_USED] += granted + care.med_granted[k]
        if people.queue_facility[i] >= 0:
            out[d, _QUEUE] += 1.0
            out[d, _WAIT_SUM] += rates.month - people.queue_since[i]
        income = people.income[i]
        if f >= 0 and kind == PUBLIC:  # 三无/五保 residents pay no fee
            out[d, _SPEND_PUBLIC] += rates.public_bed_cost - (
                0.0 if income == 0 else rates.public_fee
            )
        if people.voucher[i]:
            if home:
                cost = granted * rates.home_hour_price
            else:
                cost = rates.day_care_price if in_use == COMMUNITY else 0.0
            out[d, _SPEND_VOUCHERS] += min(rates.voucher_amount, cost)
        if health == 4 and income <= 1:
            out[d, _SPEND_NURSING] += rates.nursing_subsidy
        if dependent and f < 0:
            out[d, _SPEND_CARER] += rates.carer_allowance
        care.unmet_family_only[k] = dependent and not bed and in_use == FAMILY and unmet > _EPS


def deliver_and_measure(model: CareModel, needy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Care delivered to everyone in need this month: returns the raw sums [district, SUMS]
    (reason columns still zero) and the mask of dependents with unmet need and family care only.
    """
    pop, p = model.pop, model.params
    people = _People(
        pop.district,
        pop.health,
        pop.medical,
        pop.voucher,
        pop.income,
        pop.arrangement,
        pop.facility,
        pop.queue_facility,
        pop.queue_since,
    )
    places = _Places(
        model.facilities.kind, model.residential_facility, model.facility_medical_capable()
    )
    pol, money = p.policy, p.money
    rates = _Rates(
        np.asarray(p.need.care_hours_by_state, dtype=np.float64),
        float(p.services.day_care_hours),
        float(p.need.medical_hours),
        float(p.family.overload_hours),
        float(pol.public_bed_cost),
        float(money.price_public_home),
        float(money.price_home_care_hour),
        float(money.price_day_care),
        float(pol.voucher_amount),
        float(pol.nursing_subsidy),
        float(pol.carer_allowance),
        int(model.month),
    )
    care = _new_care(family_care_capacity(pop, needy, p.family, p.policy, places.residential))
    _receive(people, places, rates, needy, care)
    home = np.flatnonzero(care.in_use == HOME)
    med_home = home[care.med_request[home] > 0]
    team_capacity = model.team_hours_by_district() / model.scale
    share = p.services.medical_staff_share
    care.granted[home] = _team_hours(
        model, team_capacity * (1 - share), needy[home], care.request[home]
    )
    care.med_granted[med_home] = _team_hours(
        model, team_capacity * share, needy[med_home], care.med_request[med_home]
    )
    out = np.zeros((len(model.geo.districts), len(SUMS)))
    _tally(people, places, rates, needy, care, out)
    out[:, IDX["team_capacity"]] = team_capacity
    _facility_sums(model, out)
    return out, care.unmet_family_only


def _team_hours(
    model: CareModel, capacity: np.ndarray, rows: np.ndarray, hours: np.ndarray
) -> np.ndarray:
    """Hours the district teams (`capacity` by district) grant to the requests of `hours` by
    residents `rows`, voucher holders first."""
    priority = np.where(model.pop.voucher[rows], 0, 1)
    district = model.pop.district[rows].astype(np.int64)
    return dispatch(capacity, rows, district, hours, priority, model.seed, model.month)


def _facility_sums(model: CareModel, out: np.ndarray) -> None:
    """Beds, places in use, coverage and the facility-side spending by district."""
    fac, p, month, n_d = model.facilities, model.params, model.month, out.shape[0]
    open_now = fac.is_open(month)
    fd = fac.district.astype(np.int64)
    for kind_code, name in KIND_SUM.items():
        sel = open_now & (fac.kind == kind_code)
        out[:, IDX[f"beds_{name}"]] = np.bincount(fd[sel], weights=fac.capacity[sel], minlength=n_d)
        out[:, IDX[f"cap_{name}"]] = np.bincount(
            fd[sel], weights=fac.capacity_rows[sel], minlength=n_d
        )
        out[:, IDX[f"occ_{name}"]] = np.bincount(fd[sel], weights=fac.occupancy[sel], minlength=n_d)
    cov = model.coverage_sums()
    out[:, IDX["cov_centre"]], out[:, IDX["cov_day"]], out[:, IDX["urban_elderly"]] = cov
    pol = p.policy
    opening = (fac.open_month == month) & (fac.kind == PRIVATE)
    new_beds = np.bincount(fd[opening], weights=fac.capacity[opening], minlength=n_d)
    out[:, IDX["spend_construction"]] = new_beds * pol.construction_subsidy_per_bed / model.scale
    out[:, IDX["spend_operating"]] = out[:, IDX["occ_private"]] * pol.operating_subsidy_per_bed
    out[:, IDX["spend_old_age_allowance"]] = model.poor_80plus_by_district() * pol.old_age_allowance
