"""Care delivered this month to everyone in need, and the raw KPI sums by district.

Every resident in need (care-need level 1+ or a medical need, ~250 k rows in 2030) is visited
each month, so the per-person arithmetic runs in two compiled passes (numba) around the team
dispatch: `_care_received` works out what the family and any facility give, the teams share
their hours (`services.dispatch`), and `_tally` adds each person's care, unmet hours and public
spending into the [district, SUMS] array in row order (the same sums, in the same order, as a
per-column bincount).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

from sim.choice import COMMUNITY, FAMILY, HOME, PUBLIC_HOME, REASONS
from sim.facilities import MEDICAL, PRIVATE, PUBLIC
from sim.families import family_care_capacity
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


@numba.njit(cache=True)
def _care_received(
    needy, health, arrangement, facility, medical, fac_kind, residential_facility,
    need_by_state, family_capacity, day_care_hours, medical_hours,
):  # fmt: skip
    """Per person in need: hours needed, the arrangement actually in use, whether they hold a
    bed or a day place, family hours, facility hours, and what they would ask of the teams;
    plus the positions of those on home services (and of those with a medical request).

    A resident who chose a home or centre but holds no place yet keeps family care only.
    """
    n = needy.size
    need = np.empty(n)
    in_use = np.empty(n, dtype=np.int8)
    kind = np.empty(n, dtype=np.int8)
    family = np.empty(n)
    formal = np.empty(n)
    request = np.empty(n)
    med_request = np.empty(n)
    home = np.empty(n, dtype=np.int64)
    med_home = np.empty(n, dtype=np.int64)
    n_home = n_med_home = 0
    for k in range(n):
        i = needy[k]
        f = facility[i]
        need[k] = need_by_state[health[i]]
        kind[k] = fac_kind[f] if f >= 0 else -1
        bed = f >= 0 and residential_facility[f]
        a = arrangement[i]
        if not bed and (a >= PUBLIC_HOME or (a == COMMUNITY and f < 0)):
            a = FAMILY
        in_use[k] = a
        if bed:
            family[k] = 0.0
            formal[k] = need[k]
        else:
            family[k] = min(need[k], family_capacity[k])
            formal[k] = min(day_care_hours, need[k] - family[k]) if f >= 0 else 0.0
        request[k] = max(need[k] - family[k], 0.0)
        med_request[k] = medical_hours if medical[i] else 0.0
        if a == HOME:
            home[n_home] = k
            n_home += 1
            if med_request[k] > 0:
                med_home[n_med_home] = k
                n_med_home += 1
    return (
        need, in_use, kind, family, formal, request, med_request, home[:n_home],
        med_home[:n_med_home],
    )  # fmt: skip


@numba.njit(cache=True)
def _tally(
    out, needy, district, health, medical, voucher, income, facility, queue_facility,
    queue_since, month, capable, residential_facility, in_use, kind, need, family, formal,
    granted, med_granted, med_request, overload_hours, public_bed_cost, public_fee,
    home_hour_price, day_care_price, voucher_amount, nursing_subsidy, carer_allowance,
):  # fmt: skip
    """Add each person's care, unmet need, queue place and public spending to
    out[district, SUMS], in row order.

    Returns whether each is a dependent left with family care only and unmet hours (the rows
    whose binding reason the diagnostics explain).
    """
    unmet_family_only = np.zeros(needy.size, dtype=np.bool_)
    for k in range(needy.size):
        i = needy[k]
        d = district[i]
        f = facility[i]
        bed = f >= 0 and residential_facility[f]
        home = in_use[k] == HOME
        unmet = max(need[k] - family[k] - (granted[k] if home else formal[k]), 0.0)
        dependent = health[i] >= 3
        capable_bed = bed and capable[f]
        team_medical = home and med_request[k] > 0 and med_granted[k] >= med_request[k] - _EPS
        out[d, _MED_NEED] += medical[i]
        out[d, _MED_MET] += medical[i] and (capable_bed or team_medical)
        out[d, _MED_MET_BEDS] += medical[i] and capable_bed
        out[d, _IN_NEED] += 1.0
        out[d, _N_FAMILY] += in_use[k] == FAMILY
        out[d, _N_HOME] += home
        out[d, _N_COMMUNITY] += in_use[k] == COMMUNITY
        out[d, _N_INSTITUTION] += bed and kind[k] != MEDICAL
        out[d, _N_MEDICAL_BED] += kind[k] == MEDICAL
        out[d, _DEPENDENTS] += dependent
        out[d, _DEPENDENTS_UNMET] += dependent and unmet > _EPS
        out[d, _UNMET_HOURS] += unmet
        out[d, _FAMILY_HOURS] += family[k]
        out[d, _OVERLOADED] += family[k] > overload_hours
        out[d, _TEAM_USED] += granted[k] + med_granted[k]
        if queue_facility[i] >= 0:
            out[d, _QUEUE] += 1.0
            out[d, _WAIT_SUM] += month - queue_since[i]
        if f >= 0 and kind[k] == PUBLIC:  # 三无/五保 residents pay no fee
            out[d, _SPEND_PUBLIC] += public_bed_cost - (0.0 if income[i] == 0 else public_fee)
        if voucher[i]:
            if home:
                cost = granted[k] * home_hour_price
            else:
                cost = day_care_price if in_use[k] == COMMUNITY else 0.0
            out[d, _SPEND_VOUCHERS] += min(voucher_amount, cost)
        out[d, _SPEND_NURSING] += nursing_subsidy if health[i] == 4 and income[i] <= 1 else 0.0
        out[d, _SPEND_CARER] += carer_allowance if dependent and f < 0 else 0.0
        unmet_family_only[k] = dependent and not bed and in_use[k] == FAMILY and unmet > _EPS
    return unmet_family_only


def deliver_and_measure(model: CareModel, needy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Care delivered to everyone in need this month: returns the raw sums [district, SUMS]
    (reason columns still zero) and the mask of dependents with unmet need and family care only.
    """
    pop, fac, p, month = model.pop, model.facilities, model.params, model.month
    out = np.zeros((len(model.geo.districts), len(SUMS)))
    capacity = family_care_capacity(pop, needy, p.family, p.policy, model.residential_facility)
    need, in_use, kind, family, formal, request, med_request, home, med_home = _care_received(
        needy,
        pop.health,
        pop.arrangement,
        pop.facility,
        pop.medical,
        fac.kind,
        model.residential_facility,
        np.asarray(p.need.care_hours_by_state, dtype=np.float64),
        capacity,
        p.services.day_care_hours,
        p.need.medical_hours,
    )
    team_capacity = model.team_hours_by_district() / model.scale
    share = p.services.medical_staff_share
    granted = _team_hours(model, team_capacity * (1 - share), needy, home, request)
    med_granted = _team_hours(model, team_capacity * share, needy, med_home, med_request)
    out[:, IDX["team_capacity"]] = team_capacity
    pol, money = p.policy, p.money
    unmet_family_only = _tally(
        out,
        needy,
        pop.district,
        pop.health,
        pop.medical,
        pop.voucher,
        pop.income,
        pop.facility,
        pop.queue_facility,
        pop.queue_since,
        month,
        model.facility_medical_capable(),
        model.residential_facility,
        in_use,
        kind,
        need,
        family,
        formal,
        granted,
        med_granted,
        med_request,
        p.family.overload_hours,
        pol.public_bed_cost,
        money.price_public_home,
        money.price_home_care_hour,
        money.price_day_care,
        pol.voucher_amount,
        pol.nursing_subsidy,
        pol.carer_allowance,
    )
    _facility_sums(model, out)
    return out, unmet_family_only


def _team_hours(
    model: CareModel, capacity: np.ndarray, needy: np.ndarray, users: np.ndarray, hours: np.ndarray
) -> np.ndarray:
    """Hours the district teams (`capacity` by district) grant to the residents in need at
    positions `users`, voucher holders first; zero for everyone else."""
    rows = needy[users]
    priority = np.where(model.pop.voucher[rows], 0, 1)
    district = model.pop.district[rows].astype(np.int64)
    granted = np.zeros(needy.size)
    granted[users] = dispatch(
        capacity, rows, district, hours[users], priority, model.seed, model.month
    )
    return granted


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
