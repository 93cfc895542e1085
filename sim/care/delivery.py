"""Care delivered this month to everyone in need, and the raw KPI sums by district.

Every resident needing care (care-need level 1+, state 2+; ~150 k rows in 2030) is visited
each month. Their rows are scattered over the population (one in ~8 rows), so a pass that reads
them there streams nearly whole columns from memory: `gather.gather` reads their
columns and family care capacity once, after admissions, into compact arrays that every later
pass of the month reads in order. The per-person arithmetic runs in two compiled passes (numba)
around the team dispatch: `_receive` works out what the family and any facility give and lists
the requests to the teams, the teams share their hours (`teams.dispatch`), and `_tally` adds
each person's care, unmet hours and public spending into the month's sums
[district, kpis.registry.CARE_SUMS] in row order (the same sums, in the same order, as a
per-column bincount).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.care.benefits import ALLOWANCE_AGE_M, ALLOWANCE_MAX_INCOME, nursing_subsidy_due
from sim.care.gather import Residents, gather
from sim.care.kinds import COMMUNITY, FAMILY, HOME, MEDICAL, OPTION_RESIDENTIAL, PUBLIC
from sim.care.month import CareMonth
from sim.care.places import Places
from sim.care.teams import Teams, dispatch
from sim.engine.calendar import EachYear, decimal_year
from sim.engine.jit import kernel, row_function
from sim.engine.subsystem import Deferred, Subsystem
from sim.kpis.registry import CARE_SUMS
from sim.params.sections import Params
from sim.population.care_effects import INTEGRATED, MET, NO_STATUS, UNMET, care_effects
from sim.population.kernel import C_MEDICAL
from sim.population.lifetable import AGE_MIN
from sim.population.system import PopulationSystem

IDX = {s.name: i for i, s in enumerate(CARE_SUMS)}
_EPS = 1e-9  # hours: below this a shortfall is rounding, not unmet care

# column indices as module constants, so the compiled tally sees them as literals
_MED_DEMAND, _MED_DEMAND_MET = IDX["med_demand"], IDX["med_demand_met"]
_MED_DEMAND_MET_BEDS, _MED_BROAD_MET = IDX["med_demand_met_beds"], IDX["med_broad_met"]
_HOSPITAL, _HOSPITAL_UNMET = IDX["hospital"], IDX["hospital_unmet"]
_HOSPITAL_AVERTED, _DEATHS_UNMET = IDX["hospital_averted"], IDX["deaths_unmet"]
_IN_NEED = IDX["in_need"]
_N_FAMILY, _N_HOME, _N_COMMUNITY = IDX["n_family"], IDX["n_home"], IDX["n_community"]
_N_INSTITUTION, _N_MEDICAL_BED = IDX["n_institution"], IDX["n_medical_bed"]
_DEPENDENTS, _DEPENDENTS_UNMET = IDX["dependents"], IDX["dependents_unmet"]
_UNMET_HOURS, _FAMILY_HOURS = IDX["unmet_hours"], IDX["family_hours"]
_OVERLOADED, _TEAM_USED = IDX["overloaded"], IDX["team_used"]
_SPEND_PUBLIC, _SPEND_VOUCHERS = IDX["spend_public_homes"], IDX["spend_vouchers"]
_SPEND_NURSING, _SPEND_CARER = IDX["spend_nursing_subsidy"], IDX["spend_carer_allowance"]
# the sums of whole numbers (`RawSum.counted`): `_tally` counts them in integers (exact in any
# order, and adding a flag to an integer needs no branch, where adding it as 0.0 or 1.0 compiles
# to one)
_COUNTED = [IDX[s.name] for s in CARE_SUMS if s.counted]


class _Places(NamedTuple):
    """By facility: its kind, whether it is a bed, whether it is medically capable now."""

    kind: np.ndarray
    residential: np.ndarray
    capable: np.ndarray


class _Rates(NamedTuple):
    """Hours, thresholds and prices (sim.params.sections), and the month."""

    need_by_state: np.ndarray  # care hours per month by health state
    package_by_state: np.ndarray  # hours of the home-care package by health state
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
    demand_min_state: int  # the plan's medical-care demand: this state or worse, with the flag
    capable_homes: bool  # a nursing home with medical service counts as integrated care
    hospital_month: float  # hospital admissions a month of a person with a chronic condition
    death_prob: np.ndarray  # monthly death probability [sex, age - 60, state] of the year
    death_multiplier: np.ndarray  # by care status (`population.care_effects`)
    hospital_multiplier: np.ndarray


class _Care(NamedTuple):
    """Care this month of each person in need: entry k is population row needy[k]."""

    need: np.ndarray
    in_use: np.ndarray  # arrangement actually in use
    kind: np.ndarray  # kind of the facility held (-1 none)
    family: np.ndarray  # hours given by the family
    formal: np.ndarray  # hours given by a facility
    med_request: np.ndarray  # medical hours needed of the teams
    granted: np.ndarray  # hours the teams grant
    med_granted: np.ndarray
    unmet_family_only: np.ndarray  # a dependent with unmet need and family care only
    status: np.ndarray  # the care received, for the health of the months ahead (care_effects)


class _Requests(NamedTuple):
    """Requests to the teams, in row order: request j is by the person in need of entry
    `entry[j]`; the other arrays are `services.dispatch`'s arguments."""

    entry: np.ndarray
    row: np.ndarray
    district: np.ndarray
    hours: np.ndarray
    priority: np.ndarray  # 0 for voucher holders, who are served first; 1 for others


def _new_requests(n: int) -> _Requests:
    """Room for `n` requests."""
    return _Requests(
        *(np.empty(n, dtype=t) for t in (np.int64, np.int64, np.int64, float, np.int64))
    )


@row_function
def _add_request(
    requests: _Requests, j: int, k: int, row: int, district: int, hours: float, voucher: bool
) -> None:
    """Write request j: `hours` by the person in need of entry k (population row `row`)."""
    requests.entry[j], requests.row[j], requests.district[j] = k, row, district
    requests.hours[j], requests.priority[j] = hours, 0 if voucher else 1


def _new_care(n: int) -> _Care:
    """Arrays for `_receive` and `_tally` to fill; grants stay zero for those not on home care."""
    return _Care(
        need=np.empty(n),
        in_use=np.empty(n, dtype=np.int8),
        kind=np.empty(n, dtype=np.int8),
        family=np.empty(n),
        formal=np.empty(n),
        med_request=np.empty(n),
        granted=np.zeros(n),
        med_granted=np.zeros(n),
        unmet_family_only=np.empty(n, dtype=np.bool_),
        status=np.empty(n, dtype=np.uint8),
    )


@kernel
def _receive(
    people: Residents, places: _Places, rates: _Rates, needy: np.ndarray, care: _Care,
    home: _Requests, medical: _Requests,
) -> tuple[int, int]:  # fmt: skip
    """Per person needing care: hours needed, the arrangement actually in use, whether they hold
    a bed or a day place, family hours, facility hours, and their requests to the teams (written
    to `home` and `medical`; returns the number of each): those on home services ask for their
    package's hours (as far as the family leaves a gap) and, with a medical need, medical visits
    (integrated home care); those holding a day place in a community centre, with a medical need,
    get the same visits at home (the family doctor's team serves the household whatever daytime
    care it uses), so day care and home care are integrated care alike.

    A resident who chose a home or centre but holds no place yet keeps family care only.
    """
    n_home = n_medical = 0
    for k in range(people.health.size):
        f = people.facility[k]
        need = rates.need_by_state[np.uintp(people.health[k])]
        care.need[k] = need
        care.kind[k] = places.kind[np.uintp(f)] if f >= 0 else -1
        bed = f >= 0 and places.residential[np.uintp(f)]
        a = people.arrangement[k]
        if not bed and (OPTION_RESIDENTIAL[a] or (a == COMMUNITY and f < 0)):
            a = FAMILY
        care.in_use[k] = a
        if bed:
            family, formal = 0.0, need
        else:
            family = min(need, people.family[k])
            formal = min(rates.day_care_hours, need - family) if f >= 0 else 0.0
        care.family[k], care.formal[k] = family, formal
        h = np.uintp(people.health[k])
        visits = people.medical[k] and (a == HOME or (a == COMMUNITY and f >= 0))
        med_request = rates.medical_hours if visits else 0.0
        care.med_request[k] = med_request
        row, d, voucher = needy[k], people.district[k], people.voucher[k]
        if a == HOME:
            hours = min(rates.package_by_state[h], max(need - family, 0.0))
            _add_request(home, n_home, k, row, d, hours, voucher)
            n_home += 1
        if visits:
            _add_request(medical, n_medical, k, row, d, med_request, voucher)
            n_medical += 1
    return n_home, n_medical


@row_function
def _status(dependent: bool, unmet: bool, integrated: bool) -> np.uint8:
    """The care status code (`population.care_effects`)."""
    adl = (UNMET if unmet else MET) if dependent else NO_STATUS
    return np.uint8(adl + (INTEGRATED if integrated else 0))


@row_function
def _consequences(
    people: Residents, rates: _Rates, k: int, d: np.uintp, chronic: bool, status: int,
    out: np.ndarray,
) -> None:  # fmt: skip
    """Add person k's expected hospital admissions (with a chronic condition), those that unmet
    need adds and integrated care averts, and the deaths unmet need adds (care_effects' ratios;
    the kernel applies the death ratio two months later)."""
    adl = status % INTEGRATED  # the status without integrated care
    integrated = status - adl
    hospital = rates.hospital_month * chronic
    mult = rates.hospital_multiplier
    out[d, _HOSPITAL] += hospital * mult[status]
    if adl == UNMET:
        out[d, _HOSPITAL_UNMET] += hospital * (mult[status] - mult[integrated + MET])
        age = min(people.age_m[k] // 12 - AGE_MIN, rates.death_prob.shape[1] - 1)
        p = rates.death_prob[np.uintp(people.sex[k]), np.uintp(age), np.uintp(people.health[k])]
        dm = rates.death_multiplier
        unmet_death = 1.0 - (1.0 - p) ** dm[status]
        met_death = 1.0 - (1.0 - p) ** dm[integrated + MET]
        out[d, _DEATHS_UNMET] += unmet_death - met_death
    if integrated:
        out[d, _HOSPITAL_AVERTED] += hospital * (mult[adl] - mult[status])


@kernel
def _tally(
    people: Residents,
    places: _Places,
    rates: _Rates,
    care: _Care,
    out: np.ndarray,
    counts: np.ndarray,
) -> None:
    """Add each person's care, unmet need and public spending to
    out[district, CARE_SUMS], in row order (the same sums, in the same order, as a per-column
    bincount), and the `_COUNTED` columns to the integers counts[district, CARE_SUMS] instead; flag
    care.unmet_family_only (the dependents whose binding reason the diagnostics explain)."""
    for k in range(people.health.size):
        d = np.uintp(people.district[k])
        f = people.facility[k]
        held = f >= 0
        place = np.uintp(max(f, 0))  # a valid index (there are facilities); used only if held
        health, medical, in_use, kind = (
            people.health[k],
            people.medical[k],
            care.in_use[k],
            care.kind[k],
        )
        bed = held & places.residential[place]
        home = in_use == HOME
        granted, family = care.granted[k], care.family[k]
        unmet = max(care.need[k] - family - (granted if home else care.formal[k]), 0.0)
        dependent = health >= 3
        capable_bed = bed & places.capable[place]
        med_request = care.med_request[k]
        team_medical = med_request > 0 and care.med_granted[k] >= med_request - _EPS
        integrated = medical & (
            (kind == MEDICAL) | (capable_bed & rates.capable_homes) | team_medical
        )
        demand = medical & (health >= rates.demand_min_state)
        counts[d, _MED_DEMAND] += demand
        counts[d, _MED_DEMAND_MET] += demand & integrated
        counts[d, _MED_DEMAND_MET_BEDS] += demand & (kind == MEDICAL)
        counts[d, _MED_BROAD_MET] += integrated
        counts[d, _IN_NEED] += 1
        counts[d, _N_FAMILY] += in_use == FAMILY
        counts[d, _N_HOME] += home
        counts[d, _N_COMMUNITY] += in_use == COMMUNITY
        counts[d, _N_INSTITUTION] += bed & (kind != MEDICAL)
        counts[d, _N_MEDICAL_BED] += kind == MEDICAL
        counts[d, _DEPENDENTS] += dependent
        counts[d, _DEPENDENTS_UNMET] += dependent & (unmet > _EPS)
        status = _status(dependent, unmet > _EPS, integrated)
        care.status[k] = status
        _consequences(people, rates, k, d, medical, status, out)
        out[d, _UNMET_HOURS] += unmet
        out[d, _FAMILY_HOURS] += family
        counts[d, _OVERLOADED] += family > rates.overload_hours
        out[d, _TEAM_USED] += granted + care.med_granted[k]
        # the terms below are multiplied by whether they apply (adding 0.0 leaves a sum as it
        # is): measured faster than branching on each
        income = people.income[k]
        fee = 0.0 if income == 0 else rates.public_fee  # 三无/五保 residents pay no fee
        out[d, _SPEND_PUBLIC] += (rates.public_bed_cost - fee) * (kind == PUBLIC)
        day_care_cost = rates.day_care_price * (in_use == COMMUNITY)
        cost = granted * rates.home_hour_price if home else day_care_cost
        out[d, _SPEND_VOUCHERS] += min(rates.voucher_amount, cost) * people.voucher[k]
        out[d, _SPEND_NURSING] += rates.nursing_subsidy * nursing_subsidy_due(health, income)
        out[d, _SPEND_CARER] += rates.carer_allowance * (dependent & (not held))
        care.unmet_family_only[k] = dependent & (not bed) & (in_use == FAMILY) & (unmet > _EPS)


class _Teams(NamedTuple):
    """The month's team hours by district, for care and for medical care, and the keys of the
    dispatch's draws."""

    care_hours: np.ndarray
    medical_hours: np.ndarray
    seed: int
    month: int


class PersonSums(NamedTuple):
    """Care delivered to each person in need (`_receive`, the team dispatch) and the sums over
    them (`_tally`) of one month. They read only these arrays, the month's own, so they may run
    on another thread while the next month runs."""

    needy: np.ndarray
    people: Residents
    places: _Places
    rates: _Rates
    teams: _Teams
    chronic: np.ndarray  # residents with a chronic condition by district (rows)
    received: np.ndarray  # where the care status of `needy` goes (`CareStatus.record`)

    def add_to(self, out: np.ndarray) -> np.ndarray:
        """Add the sums to out[district, CARE_SUMS] and record the care received; returns the
        mask of dependents with unmet need and family care only."""
        n, teams = self.needy.size, self.teams
        care = _new_care(n)
        home, medical = _new_requests(n), _new_requests(n)
        n_home, n_medical = _receive(
            self.people, self.places, self.rates, self.needy, care, home, medical
        )
        care.granted[home.entry[:n_home]] = _team_hours(teams.care_hours, home, n_home, teams)
        care.med_granted[medical.entry[:n_medical]] = _team_hours(
            teams.medical_hours, medical, n_medical, teams
        )
        counts = np.zeros(out.shape, dtype=np.int64)
        _tally(self.people, self.places, self.rates, care, out, counts)
        out[:, _COUNTED] = counts[:, _COUNTED]
        chronic_needy = np.bincount(
            self.people.district[self.people.medical].astype(np.int64), minlength=out.shape[0]
        )
        out[:, _HOSPITAL] += self.rates.hospital_month * (self.chronic - chronic_needy)
        self.received[:] = care.status
        return care.unmet_family_only


def _team_hours(capacity: np.ndarray, requests: _Requests, n: int, teams: _Teams) -> np.ndarray:
    """Hours the district teams (`capacity` by district) grant to the first `n` `requests`."""
    r = requests
    return dispatch(
        capacity, r.row[:n], r.district[:n], r.hours[:n], r.priority[:n], teams.seed, teams.month
    )


class Delivery(Subsystem):
    """Care delivered to everyone in need this month, once the choices and admissions are made:
    the columns of those in need are gathered (`CareMonth.people`), and the per-person care,
    team dispatch and sums (`PersonSums`) are handed to the runner to complete."""

    def __init__(
        self, params: Params, population: PopulationSystem, places: Places, teams: Teams,
        seed: int, scale: float,
    ):  # fmt: skip
        self.params, self.population, self.places, self.teams = params, population, places, teams
        self.pop = population.pop
        self.seed, self.scale = seed, scale
        self._poor_80plus = EachYear(self._count_poor_80plus)
        self._effects = care_effects(params.health)

    def step(self, month: CareMonth) -> None:
        """Gather the columns of those in need (facilities, arrangements and queues are final);
        for the results only, so not in the spin-up."""
        if month.reported:
            month.people = gather(self.pop, self.params, self.places.residential, month.needy)

    def results(self, month: CareMonth) -> Deferred:
        """The allowance paid now; the care of each person in need and its sums, deferred."""
        p, out = self.params, month.sums
        out[:, IDX["spend_old_age_allowance"]] = (
            self._poor_80plus(month.month) * p.policy.old_age_allowance
        )
        places = _Places(  # capability copied: the next month may run before the sums are added
            kind=self.places.table.kind,
            residential=self.places.residential,
            capable=self.places.market.medical_now.copy(),
        )
        pol, money = p.policy, p.money
        rates = _Rates(
            need_by_state=np.asarray(p.need.care_hours_by_state, dtype=np.float64),
            package_by_state=np.asarray(p.services.package_hours_by_state, dtype=np.float64),
            day_care_hours=float(p.services.day_care_hours),
            medical_hours=float(p.need.medical_hours),
            overload_hours=float(p.family.overload_hours),
            public_bed_cost=float(pol.public_bed_cost),
            public_fee=float(money.price_public_home),
            home_hour_price=float(money.price_home_care_hour),
            day_care_price=float(money.price_day_care),
            voucher_amount=float(pol.voucher_amount),
            nursing_subsidy=float(pol.nursing_subsidy),
            carer_allowance=float(pol.carer_allowance),
            month=int(month.month),
            demand_min_state=int(p.need.medical_demand_min_state),
            capable_homes=bool(p.need.capable_homes_integrated),
            hospital_month=float(p.health.hospital_rate_chronic) / 12,
            death_prob=self.population.death_probabilities(int(decimal_year(month.month))),
            death_multiplier=self._effects.death,
            hospital_multiplier=self._effects.hospital,
        )
        capacity = self.teams.hours(month.month) / self.scale
        share = p.services.medical_staff_share
        teams = _Teams(
            care_hours=capacity * (1 - share),
            medical_hours=capacity * share,
            seed=self.seed,
            month=int(month.month),
        )
        chronic = month.counts[:, C_MEDICAL].astype(np.float64)
        received = self.population.care_status.record(month.month, month.needy)
        sums = PersonSums(month.needy, month.people, places, rates, teams, chronic, received)

        def complete() -> None:
            month.unmet_family_only = sums.add_to(out)

        return complete

    def _count_poor_80plus(self, month: int) -> np.ndarray:
        """Residents 80+ in income classes 0-2 (old-age allowance), by district. Flags from
        whole columns (cheaper than gathering the living rows), counted over the living."""
        pop = self.pop
        poor_80 = (pop.age_m >= ALLOWANCE_AGE_M) & (pop.income <= ALLOWANCE_MAX_INCOME)
        n_d = int(self.places.geo.districts.shape[0])
        return pop.count_living(poor_80, pop.district, n_d).astype(float)
