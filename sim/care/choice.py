"""Care-arrangement choice: options, eligibility, multinomial-logit utilities, binding reasons.

The month's deciders (with their family) choose among the arrangements they may use
(`sim.care.kinds.CARE_OPTIONS`): family care only, home services, community / day care, a public
or private nursing home, an integrated medical-care bed; then move to it (a residential choice
joins a queue for a bed). `option_features` computes, for many residents at once, what each
option would mean for them (availability, net price against budget, distance, expected wait,
medical capability); `choose` draws the choice with a keyed uniform; `binding_reasons` says why a
dependent without formal care does not use the option that suits them best.

Tens of thousands of residents decide each month and the diagnostics revisit every dependent, so
the arithmetic is compiled (numba), row by row, and shared by all of these: what an option means
that depends only on where a resident lives (the facility they would use, its distance, expected
wait, free place and medical capability) is tabled per neighbourhood (`_places`); the residents'
columns are gathered once (`resident_columns.gather`); `_features_row` adds what depends on the
person (need, budget, net prices, eligibility for home services), `_person` and `_utility` score
the options and `_reason` names the first binding reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from sim.care.benefits import allowance_due, nursing_subsidy_due
from sim.care.gather import Residents, gather, prefetch_resident
from sim.care.kinds import (
    COMMUNITY,
    FAMILY,
    HOME,
    N_OPTIONS,
    OPTION_KIND,
    OPTION_OF_KIND,
    OPTION_RESIDENTIAL,
    PUBLIC_HOME,
    RESIDENTIAL_OPTIONS,
    kind_prices,
)
from sim.care.month import CareMonth
from sim.care.places import Places
from sim.care.teams import Teams
from sim.engine.jit import AHEAD, kernel, prefetch, row_function
from sim.engine.rng import Stream, keyed_uniform
from sim.engine.subsystem import Subsystem
from sim.kpis.registry import REASON_NAMES
from sim.params.sections import Params
from sim.population.columns import NO_MONTH, Population
from sim.population.kernel import NEED_LEVEL

REASONS = REASON_NAMES
NOT_ELIGIBLE, NO_VACANCY, DISTANCE, PRICE, NO_MEDICAL, PREFERENCE = (
    REASONS.index(name)
    for name in ("not_eligible", "no_vacancy", "distance", "price", "no_medical", "preference")
)
_RESIDENTIAL_KINDS = tuple(OPTION_KIND[option] for option in RESIDENTIAL_OPTIONS)
_CHOICE = int(Stream.CHOICE)
# Bounds of the Gumbel draw -log(-log(e)) for e in bucket b = floor(e * 64), i.e. for
# b / 64 <= e < (b + 1) / 64, with a margin far above the logarithms' rounding: an upper bound
# (the top bucket has none) and a lower one (the bottom bucket has none).
_GUMBEL_BUCKETS = 64
_GUMBEL_EDGES = -np.log(-np.log(np.arange(1, _GUMBEL_BUCKETS) / _GUMBEL_BUCKETS))
_GUMBEL_BOUND = np.append(_GUMBEL_EDGES + 1e-9, np.inf)
_GUMBEL_FLOOR = np.append(-np.inf, _GUMBEL_EDGES - 1e-9)


@dataclass
class OptionFeatures:
    """What each option means for each resident: arrays [n, 6] (or [n])."""

    rows: np.ndarray
    need_hours: np.ndarray
    family_hours: np.ndarray  # capacity
    budget: np.ndarray
    available: np.ndarray
    vacancy: np.ndarray  # a place is free now (or a short queue)
    net_price: np.ndarray
    km: np.ndarray
    wait: np.ndarray
    capable: np.ndarray  # medically capable
    facility: np.ndarray  # facility the resident would use (-1 none)


class _Options(NamedTuple):
    """OptionFeatures' arrays (all but `rows`) in the form the kernels take."""

    need: np.ndarray
    family: np.ndarray
    budget: np.ndarray
    available: np.ndarray
    vacancy: np.ndarray
    net: np.ndarray
    km: np.ndarray
    wait: np.ndarray
    capable: np.ndarray
    facility: np.ndarray


class _Places(NamedTuple):
    """Options by place entry [2 x n_neighbourhoods, options]: what does not depend on the
    person. Entry nb is a neighbourhood; entry n_neighbourhoods + nb the same for a resident
    whose nearest child lives elsewhere in the city (`FacilityMarket.pick`).

    Home services' availability is per person (set by `_features_row`); their medical capability
    is the same everywhere.
    """

    available: np.ndarray
    vacancy: np.ndarray
    km: np.ndarray
    wait: np.ndarray
    capable: np.ndarray
    facility: np.ndarray
    price: np.ndarray  # [6] list price of each residential option (yuan/month)


class _Logit(NamedTuple):
    """Utility coefficients (sim.params.choice.ChoiceParams) and day care's hours."""

    constants: np.ndarray
    need_gap: float
    dependency_institution: float
    medical_capable: float
    living_alone_institution: float
    price_per_1000: float
    unaffordable: float
    distance_per_km: float
    child_in_city_distance: float
    wait_per_month: float
    switching_cost: float
    day_care_hours: float


class _Scene(NamedTuple):
    """This month's options and parameters, in the flat form numba takes."""

    places: _Places
    logit: _Logit
    held_option: np.ndarray  # by facility: the option a place there is (a bed's, or community)
    need_by_state: np.ndarray  # care hours per month by health state
    package_by_state: np.ndarray  # hours of the home-care package by (assessed) health state
    urban_income: np.ndarray  # by income class
    rural_income: np.ndarray
    support_share: float
    voucher_amount: float
    nursing_subsidy: float
    old_age_allowance: float
    home_open: np.ndarray  # by district: service teams exist
    home_hour_price: float
    day_care_price: float
    budget_floor: float  # lowest budget counted in affordability (yuan/month)
    too_far_km: float  # beyond this a facility is out of reach in the diagnostics


class _Person(NamedTuple):
    """The utility terms of one resident that do not depend on the option."""

    gap_share: float  # share of the need the family cannot cover
    day_cover: float  # share of that gap a day place covers
    home_cover: float  # share of that gap the home-care package covers
    residential: float  # extra pull of residential options
    medical: bool  # medical need
    closed: bool  # no care need: only family care (or keep a place held)
    held: int  # the option of the bed or day place in use (-1 none): leaving it costs
    distance_weight: float  # of a facility's distance (less with a child elsewhere in the city)


def _scene(
    params: Params, places: _Places, held_option: np.ndarray, home_open: np.ndarray
) -> _Scene:
    """A month's scene: `places` by neighbourhood, `held_option` by facility, `home_open` by
    district (teams exist)."""
    m, c = params.money, params.choice
    logit = _Logit(
        constants=np.asarray(c.constants, dtype=np.float64),
        need_gap=float(c.need_gap),
        dependency_institution=float(c.dependency_institution),
        medical_capable=float(c.medical_capable),
        living_alone_institution=float(c.living_alone_institution),
        price_per_1000=float(c.price_per_1000),
        unaffordable=float(c.unaffordable),
        distance_per_km=float(c.distance_per_km),
        child_in_city_distance=float(c.child_in_city_distance),
        wait_per_month=float(c.wait_per_month),
        switching_cost=float(c.switching_cost),
        day_care_hours=float(params.services.day_care_hours),
    )
    return _Scene(
        places=places,
        logit=logit,
        held_option=held_option,
        need_by_state=np.asarray(params.need.care_hours_by_state, dtype=np.float64),
        package_by_state=np.asarray(params.services.package_hours_by_state, dtype=np.float64),
        urban_income=np.asarray(m.urban_income, dtype=np.float64),
        rural_income=np.asarray(m.rural_income, dtype=np.float64),
        support_share=float(m.family_support_share),
        voucher_amount=float(params.policy.voucher_amount),
        nursing_subsidy=float(params.policy.nursing_subsidy),
        old_age_allowance=float(params.policy.old_age_allowance),
        home_open=home_open,
        home_hour_price=float(m.price_home_care_hour),
        day_care_price=float(m.price_day_care),
        budget_floor=float(m.budget_floor),
        too_far_km=float(c.too_far_km),
    )


def _places(params: Params, places: Places) -> _Places:
    """The community centre covering each neighbourhood and the facility of each residential kind
    its residents would apply to (market.pick), with their free places, waits and capability, by
    place entry (`_Places`)."""
    fac, market = places.table, places.market
    entries = np.arange(2 * market.covering.size)
    n = entries.size
    medical_now = market.medical_now
    facility = np.full((n, N_OPTIONS), -1, dtype=np.int64)
    vacancy = np.ones((n, N_OPTIONS), dtype=bool)
    km = np.zeros((n, N_OPTIONS))
    wait = np.zeros((n, N_OPTIONS))
    capable = np.zeros((n, N_OPTIONS), dtype=bool)
    price = np.zeros(N_OPTIONS)

    centre = np.tile(market.covering, 2)
    facility[:, COMMUNITY] = centre
    free_places = fac.capacity_rows - fac.occupancy
    vacancy[:, COMMUNITY] = (centre >= 0) & (free_places[np.maximum(centre, 0)] > 0)
    capable[:, HOME] = params.services.medical_staff_share > 0
    prices = kind_prices(params.money)
    for option, kind in OPTION_KIND.items():
        f, distance = market.pick(kind, entries)
        ok = f >= 0
        fi = np.maximum(f, 0)
        facility[:, option] = f
        km[:, option] = distance
        wait[:, option] = np.where(ok, market.wait[fi], 0.0)
        vacancy[:, option] = ok & (market.free[fi] - market.queue[fi] > 0)
        capable[:, option] = ok & medical_now[fi]
        price[option] = prices[kind]
    available = facility >= 0
    available[:, FAMILY] = True
    return _Places(
        available=available, vacancy=vacancy, km=km, wait=wait, capable=capable,
        facility=facility, price=price,
    )  # fmt: skip


@row_function
def _entry(pl: _Places, r: Residents, k: int) -> np.uintp:
    """Resident k's place entry (`_Places`)."""
    return np.uintp(r.neigh[k]) + np.uintp(pl.available.shape[0] // 2) * r.child_in_city[k]


def _new_options(n: int) -> _Options:
    """Uninitialised option arrays for `n` residents (the kernels fill every entry)."""
    return _Options(
        np.empty(n),
        np.empty(n),
        np.empty(n),
        np.empty((n, N_OPTIONS), dtype=np.bool_),
        np.empty((n, N_OPTIONS), dtype=np.bool_),
        np.empty((n, N_OPTIONS)),
        np.empty((n, N_OPTIONS)),
        np.empty((n, N_OPTIONS)),
        np.empty((n, N_OPTIONS), dtype=np.bool_),
        np.empty((n, N_OPTIONS), dtype=np.int64),
    )


def _options(f: OptionFeatures) -> _Options:
    return _Options(
        f.need_hours,
        f.family_hours,
        f.budget,
        f.available,
        f.vacancy,
        f.net_price,
        f.km,
        f.wait,
        f.capable,
        f.facility,
    )


@row_function
def _features_row(s: _Scene, r: Residents, k: int, o: _Options, ko: int) -> None:
    """Fill entry `ko` of the option arrays for resident `k`."""
    pl = s.places
    nb = _entry(pl, r, k)
    for j in range(N_OPTIONS):
        o.available[ko, j] = pl.available[nb, j]
        o.vacancy[ko, j] = pl.vacancy[nb, j]
        o.net[ko, j] = pl.price[j]
        o.km[ko, j] = pl.km[nb, j]
        o.wait[ko, j] = pl.wait[nb, j]
        o.capable[ko, j] = pl.capable[nb, j]
        o.facility[ko, j] = pl.facility[nb, j]
    need, family = s.need_by_state[np.uintp(r.health[k])], r.family[k]
    voucher = s.voucher_amount if r.voucher[k] else 0.0
    o.need[ko], o.family[ko], o.budget[ko] = need, family, _budget(s, r, k)
    o.available[ko, HOME] = r.urban[k] and s.home_open[np.uintp(r.district[k])]
    package = s.package_by_state[np.uintp(r.health[k])]
    o.net[ko, HOME] = max(package * s.home_hour_price - voucher, 0.0)
    o.net[ko, COMMUNITY] = max(s.day_care_price - voucher, 0.0)
    o.net[ko, PUBLIC_HOME] = _residential_price(s, r, k, PUBLIC_HOME)


@row_function
def _budget(s: _Scene, r: Residents, k: int) -> float:
    """What resident k can pay a month: income with family support and the cash benefits they
    receive (`benefits`), at least the floor."""
    income_class = np.uintp(r.income[k])
    income = s.urban_income[income_class] if r.urban[k] else s.rural_income[income_class]
    income *= 1 + s.support_share * min(r.n_children[k], 2)
    income += s.nursing_subsidy * nursing_subsidy_due(r.health[k], r.income[k])
    income += s.old_age_allowance * allowance_due(r.age_m[k], r.income[k])
    return max(income, s.budget_floor)


@row_function
def _residential_price(s: _Scene, r: Residents, k: int, option: int) -> float:
    """Resident k's price of a residential option: 三无/五保 residents pay no public-home fee."""
    return 0.0 if option == PUBLIC_HOME and r.income[k] == 0 else s.places.price[option]


@row_function
def _person(s: _Scene, r: Residents, k: int, o: _Options, ko: int) -> _Person:
    """Option-independent utility terms of resident `k` (options in entry `ko`)."""
    c, level, need = s.logit, NEED_LEVEL[r.health[k]], o.need[ko]
    gap = max(need - o.family[ko], 0.0)
    gap_share = gap / need if need > 0 else 0.0
    day_cover = min(1.0, c.day_care_hours / gap) if gap > 0 else 0.0
    home_cover = min(1.0, s.package_by_state[np.uintp(r.health[k])] / gap) if gap > 0 else 0.0
    alone = c.living_alone_institution * r.alone[k]
    residential = c.dependency_institution * max(level - 1, 0) + alone
    medical, f = r.medical[k], r.facility[k]
    held = s.held_option[np.uintp(f)] if f >= 0 else -1
    weight = c.child_in_city_distance if r.child_in_city[k] else 1.0
    return _Person(gap_share, day_cover, home_cover, residential, medical, level == 0, held, weight)


@row_function
def _utility(
    s: _Scene, o: _Options, ko: int, person: _Person, j: int, use_availability: bool
) -> float:
    """Logit utility of option `j` of entry `ko`: -inf if the option is closed to the person (no
    care need) or, if `use_availability`, unavailable, unless it keeps the place they hold (one
    who no longer needs care may stay); leaving a place held costs `switching_cost`."""
    held = person.held
    keeps = held >= 0 and (j == held or (OPTION_RESIDENTIAL[held] and OPTION_RESIDENTIAL[j]))
    if not keeps and (
        (person.closed and j != FAMILY) or (use_availability and not o.available[ko, j])
    ):
        return -np.inf
    c = s.logit
    x = 0.0 if held < 0 or keeps else -c.switching_cost  # any bed keeps a bed held (`_move`)
    if j == FAMILY:
        return x
    net, budget = o.net[ko, j], o.budget[ko]
    cover = 1.0
    if j == COMMUNITY:
        cover = person.day_cover
    elif j == HOME:
        cover = person.home_cover
    x += c.constants[j] + c.need_gap * person.gap_share * cover
    if OPTION_RESIDENTIAL[j]:
        x += person.residential
    x += c.medical_capable * (person.medical and o.capable[ko, j])
    x += c.price_per_1000 * net / 1000
    x += c.unaffordable * max(net - budget, 0.0) / budget
    distance = c.distance_per_km * person.distance_weight * o.km[ko, j]
    return x + distance + c.wait_per_month * o.wait[ko, j]


@row_function
def _reason(s: _Scene, o: _Options, ko: int, option: int, medical: bool) -> int:
    """First binding reason why entry `ko` does not use `option` (PREFERENCE if none binds)."""
    return _first_reason(
        s, option, o.available[ko, option], o.vacancy[ko, option], o.km[ko, option],
        o.net[ko, option] > o.budget[ko], medical and not o.capable[ko, option],
    )  # fmt: skip


@row_function
def _first_reason(
    s: _Scene, option: int, available: bool, vacancy: bool, km: float, too_dear: bool,
    lacks_medical: bool,
) -> int:  # fmt: skip
    """The first of the reasons, in REASONS' order, that binds (PREFERENCE if none)."""
    if not available and option in (HOME, COMMUNITY):
        return NOT_ELIGIBLE
    if not available or not vacancy:
        return NO_VACANCY
    if km > s.too_far_km:
        return DISTANCE
    if too_dear:
        return PRICE
    if lacks_medical:
        return NO_MEDICAL
    return PREFERENCE


@row_function
def _residential_reason(s: _Scene, r: Residents, k: int, option: int, budget: float) -> int:
    """`_reason` for resident k and a residential option, read from their neighbourhood's
    places directly (of a residential option only the price depends on the person)."""
    pl = s.places
    nb = _entry(pl, r, k)
    return _first_reason(
        s, option, pl.available[nb, option], pl.vacancy[nb, option], pl.km[nb, option],
        _residential_price(s, r, k, option) > budget,
        r.medical[k] and not pl.capable[nb, option],
    )  # fmt: skip


@row_function
def _binding_reason(s: _Scene, r: Residents, k: int, o: _Options, ko: int) -> int:
    """Reason for resident `k`'s best formal option (highest utility ignoring availability)."""
    person = _person(s, r, k, o, ko)
    best, top = FAMILY, -np.inf
    for j in range(FAMILY + 1, N_OPTIONS):
        u = _utility(s, o, ko, person, j, False)
        if u > top:
            best, top = j, u
    if best == FAMILY:  # every formal option is closed to them (no need)
        return PREFERENCE
    return _reason(s, o, ko, best, person.medical)


@kernel
def _fill_features(s: _Scene, r: Residents, o: _Options) -> None:
    for k in range(o.need.size):
        _features_row(s, r, k, o, k)


@kernel
def _fill_utilities(s: _Scene, r: Residents, o: _Options, u: np.ndarray) -> None:
    for k in range(o.need.size):
        person = _person(s, r, k, o, k)
        for j in range(N_OPTIONS):
            u[k, j] = _utility(s, o, k, person, j, True)


@row_function
def _gumbel(e: float) -> float:
    return -np.log(-np.log(e + 1e-300))


@row_function
def _gumbel_max(u: np.ndarray, key: int, seed: int, e: np.ndarray, bound: np.ndarray) -> int:
    """The option with the largest utility plus Gumbel draw (the first on ties): the draw of
    option j is `_gumbel` of the uniform keyed by (seed, CHOICE, key, j), so options at -inf are
    never chosen. `e` and `bound` are scratch (one entry per option).

    The draws are the person's lasting tastes, the same at every decision: a choice changes
    when the person's circumstances or options change, not because the dice are thrown again
    (with a fresh draw each time, a bed taken on a lucky draw is left at the next decision).

    Exact but lazy: an option's uniform bounds its draw from above and below (`_GUMBEL_BOUND`,
    `_GUMBEL_FLOOR`). The option with the highest upper bound wins outright, with no logarithm,
    when its lower bound is above every other option's upper bound (most deciders); else it is
    drawn first and the others only if their bound reaches the best so far.
    """
    for j in range(N_OPTIONS):
        e[j] = keyed_uniform(seed, _CHOICE, key, j)
        bound[j] = -np.inf
        if u[j] > -np.inf:
            bound[j] = u[j] + _GUMBEL_BOUND[np.uintp(e[j] * _GUMBEL_BUCKETS)]
    first = FAMILY
    for j in range(FAMILY + 1, N_OPTIONS):
        first = j if bound[j] > bound[first] else first
    runner_up = -np.inf
    for j in range(N_OPTIONS):
        if j != first:
            runner_up = max(runner_up, bound[j])
    if u[first] + _GUMBEL_FLOOR[np.uintp(e[first] * _GUMBEL_BUCKETS)] > runner_up:
        return first
    best, top = first, u[first] + _gumbel(e[first])
    for j in range(N_OPTIONS):
        if j != first and bound[j] >= top:
            x = u[j] + _gumbel(e[j])
            if x > top or (x == top and j < best):
                best, top = j, x
    return best


@kernel
def _choose(
    s: _Scene, r: Residents, rows: np.ndarray, seed: int, choice: np.ndarray,
    facility: np.ndarray, o: _Options, scratch: np.ndarray,
) -> None:  # fmt: skip
    """Each resident's choice and the facility of each of their options (see `choose`); `o`
    holds one resident's features, `scratch` is [3, 6]: nothing else is written per resident."""
    u, e, bound = scratch[0], scratch[1], scratch[2]
    for k in range(rows.size):
        _features_row(s, r, k, o, 0)
        person = _person(s, r, k, o, 0)
        for j in range(N_OPTIONS):
            u[j] = _utility(s, o, 0, person, j, True)
            facility[k, j] = o.facility[0, j]
        choice[k] = _gumbel_max(u, rows[k], seed, e, bound)


@kernel
def _option_reasons(s: _Scene, r: Residents, o: _Options, option: int, out: np.ndarray) -> None:
    for k in range(out.size):
        out[k] = _reason(s, o, k, option, r.medical[k])


@kernel
def _binding_reasons(s: _Scene, r: Residents, o: _Options, out: np.ndarray) -> None:
    for k in range(out.size):
        out[k] = _binding_reason(s, r, k, o, k)


@kernel
def _reason_tallies(
    s: _Scene, r: Residents, entries: np.ndarray, facility_kind: np.ndarray, unmet: np.ndarray,
    o: _Options, binding: np.ndarray, residential: np.ndarray,
) -> None:  # fmt: skip
    """See `reason_tallies`; `facility_kind` is the kind of each facility, `o` scratch for one
    resident."""
    for e in range(entries.size):
        if e + AHEAD < entries.size:
            prefetch_resident(r, np.uintp(entries[e + AHEAD]))
        k = entries[e]
        f = r.facility[k]
        kind = facility_kind[np.uintp(f)] if f >= 0 else -1
        d = np.uintp(r.district[k])
        if unmet[k]:  # all options' features, for the best formal option
            _features_row(s, r, k, o, 0)
            binding[d, _binding_reason(s, r, k, o, 0)] += 1
        budget = _budget(s, r, k)
        for n, option in enumerate(RESIDENTIAL_OPTIONS):
            if kind != _RESIDENTIAL_KINDS[n]:
                residential[n, d, _residential_reason(s, r, k, option, budget)] += 1


class ReasonInputs(NamedTuple):
    """What the reason diagnostics read of the model, taken at once after the month's care, so
    that the tallies may run later, on another thread."""

    scene: _Scene
    facility_kind: np.ndarray


def reason_tallies(
    inputs: ReasonInputs,
    people: Residents,
    entries: np.ndarray,
    unmet: np.ndarray,
    n_districts: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Reasons by district in one pass over the entries `entries` (in increasing order) of the
    residents in need `people` (the diagnostics of every dependent): `people` holds their
    columns already, so no population row is visited again.

    Returns the tally [district, reason] of `binding_reasons` over the entries flagged `unmet`
    (a mask over `people`), and for each of RESIDENTIAL_OPTIONS the tally
    [option, district, reason] of `option_reason` over the entries not in a facility of that
    option's kind.
    """
    binding = np.zeros((n_districts, len(REASONS)), dtype=np.int64)
    residential = np.zeros((len(RESIDENTIAL_OPTIONS), n_districts, len(REASONS)), dtype=np.int64)
    _reason_tallies(
        inputs.scene,
        people,
        entries,
        inputs.facility_kind,
        unmet,
        _new_options(1),
        binding,
        residential,
    )
    return binding, residential


class Choice(Subsystem):
    """The month's deciders choose an arrangement and move to it: they leave a place they no
    longer use, join, keep or leave a queue for a bed, or take a free place at their community
    centre (`_move`)."""

    writes = frozenset(("facility", "queue_facility", "queue_since", "arrangement", "bed_since"))

    def __init__(self, params: Params, pop: Population, places: Places, teams: Teams, seed: int):
        self.params, self.pop, self.places, self.teams, self.seed = params, pop, places, teams, seed
        self.month = 0  # the month last stepped (inspection reads its scene)

    def init(self) -> None:
        kind_option = OPTION_OF_KIND[self.places.table.kind]
        self._held = np.where(kind_option >= 0, kind_option, COMMUNITY).astype(np.int64)

    def step(self, month: CareMonth) -> None:
        self.month = month.month
        rows = month.deciders
        choice, option_facility = self.choose(rows)
        pop, fac = self.pop, self.places.table
        held = pop.facility[rows]
        released = _move(
            rows, choice, option_facility, month.month, pop.facility, pop.queue_facility,
            pop.queue_since, pop.arrangement, self.places.residential, fac.occupancy,
            fac.capacity_rows,
        )  # fmt: skip
        self.places.market.record_exits(released)
        left = pop.facility[rows] != held
        self.places.leave_beds(rows[left], held[left], False, month.month)

    def scene(self) -> _Scene:
        """The scene of the month last stepped (build it again once places change)."""
        home_open = self.teams.hours(self.month) > 0
        return _scene(self.params, _places(self.params, self.places), self._held, home_open)

    def people(self, rows: np.ndarray) -> Residents:
        return gather(self.pop, self.params, self.places.residential, rows)

    def option_features(self, rows: np.ndarray) -> OptionFeatures:
        """Evaluate every option for `rows` this month."""
        o = _new_options(rows.size)
        _fill_features(self.scene(), self.people(rows), o)
        return OptionFeatures(rows, *o)

    def utilities(self, f: OptionFeatures) -> np.ndarray:
        """Multinomial-logit utilities [n, options]; unavailable options get -inf."""
        u = np.empty((f.rows.size, N_OPTIONS))
        _fill_utilities(self.scene(), self.people(f.rows), _options(f), u)
        return u

    def choose(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chosen option per resident, and the facility [n, options] each option would give
        them (`OptionFeatures.facility`, -1 none).

        The logit draw is a Gumbel-max over one keyed uniform per (person, option), the
        person's lasting taste (`_gumbel_max`): the
        same probabilities as the logit, and a lever that improves one option moves people only
        into that option, so CRN-paired scenario differences are monotone and low-noise.
        """
        choice = np.empty(rows.size, dtype=np.int64)
        facility = np.empty((rows.size, N_OPTIONS), dtype=np.int64)
        _choose(
            self.scene(), self.people(rows), rows, self.seed, choice, facility,
            _new_options(1), np.empty((3, N_OPTIONS)),
        )  # fmt: skip
        return choice, facility

    def option_reason(self, f: OptionFeatures, option: int) -> np.ndarray:
        """First binding reason why each resident does not use `option` (PREFERENCE if none)."""
        out = np.empty(f.rows.size, dtype=np.int8)
        _option_reasons(self.scene(), self.people(f.rows), _options(f), option, out)
        return out

    def binding_reasons(self, f: OptionFeatures) -> np.ndarray:
        """Reason for each resident's best formal option (highest utility ignoring
        availability)."""
        out = np.empty(f.rows.size, dtype=np.int8)
        _binding_reasons(self.scene(), self.people(f.rows), _options(f), out)
        return out

    def reason_inputs(self) -> ReasonInputs:
        """What the reason diagnostics read, taken now (after the month's admissions)."""
        return ReasonInputs(self.scene(), self.places.table.kind)


def probabilities(util: np.ndarray) -> np.ndarray:
    """Logit probabilities row by row (unavailable options have probability 0)."""
    top = util.max(axis=1, keepdims=True)
    e = np.exp(util - top)
    return e / e.sum(axis=1, keepdims=True)


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
        residential_choice = OPTION_RESIDENTIAL[c]
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
            queue_since[i] = NO_MONTH
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
