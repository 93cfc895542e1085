"""The residents' columns gathered once a month, the team requests and the compiled tally
of care delivered, each against a direct computation from the resident columns."""

from __future__ import annotations

import numpy as np
import pytest

from sim import CareModel
from sim.care.delivery import IDX, _new_care, _new_requests, _Places, _Rates, _receive
from sim.care.gather import Residents, gather
from sim.care.kinds import (
    COMMUNITY,
    FACILITY_KINDS,
    FAMILY,
    HOME,
    MEDICAL,
    OPTION_RESIDENTIAL,
    PUBLIC,
)
from sim.care.month import CareMonth
from sim.population.families import (
    CHILD_CORESIDENT,
    CHILD_IN_CITY,
    NO_SPOUSE,
    family_care_capacity,
)
from sim.population.kernel import NEED_LEVEL


@pytest.fixture(scope="module")
def model() -> CareModel:
    m = CareModel(seed=11, scale=40)
    m.run_until("2019-06")
    return m


def _row_sets(model: CareModel) -> list[np.ndarray]:
    """The residents in need, none, the population's first and last rows, a random sample."""
    n = model.pop.size
    sample = np.sort(np.random.default_rng(3).choice(n, size=min(n, 5000), replace=False))
    return [model.needy_rows, model.needy_rows[:0], np.array([0, n - 1]), sample]


@pytest.mark.parametrize("which", range(4))
def test_gather_copies_the_columns_and_family_capacity(model: CareModel, which: int) -> None:
    pop, p = model.pop, model.params
    rows = _row_sets(model)[which]
    people = gather(pop, p, model.places.residential, rows)
    for name in Residents._fields[:-3]:
        column = getattr(pop, name)
        np.testing.assert_array_equal(getattr(people, name), column[rows], err_msg=name)
        assert getattr(people, name).dtype == column.dtype, name
    np.testing.assert_array_equal(people.child_in_city, pop.child_place[rows] == CHILD_IN_CITY)
    alone = (pop.spouse[rows] == NO_SPOUSE) & (pop.child_place[rows] != CHILD_CORESIDENT)
    np.testing.assert_array_equal(people.alone, alone)
    capacity = family_care_capacity(pop, rows, p.family, p.policy, model.places.residential)
    np.testing.assert_array_equal(people.family, capacity)


def test_requests_are_those_on_home_services_in_row_order(model: CareModel) -> None:
    """`_receive` lists each resident on home services as a request of their package's hours
    (as far as the family leaves a gap), and those on home services or holding a day place with
    a medical need as a medical request, against a numpy reference."""
    p, needy, residential = model.params, model.needy_rows, model.places.residential
    people = gather(model.pop, p, residential, needy)
    facility, arrangement = people.facility.astype(np.int64), people.arrangement
    bed = (facility >= 0) & residential[np.maximum(facility, 0)]
    chose_a_bed = OPTION_RESIDENTIAL[arrangement]
    waiting = ~bed & (chose_a_bed | ((arrangement == COMMUNITY) & (facility < 0)))
    in_use = np.where(waiting, FAMILY, arrangement)
    need = np.asarray(p.need.care_hours_by_state)[people.health]
    family = np.where(bed, 0.0, np.minimum(need, people.family))
    home = np.flatnonzero(in_use == HOME)
    day_place = (in_use == COMMUNITY) & (facility >= 0)
    medical = np.flatnonzero(people.medical & ((in_use == HOME) | day_place))
    assert home.size > 0 and medical.size > 0
    assert np.any(people.medical & day_place)  # the day-care users' visits are covered
    package = np.asarray(p.services.package_hours_by_state)[people.health]

    places = _Places(model.places.table.kind, residential, np.zeros(1, dtype=bool))
    rates = _Rates(
        need_by_state=np.asarray(p.need.care_hours_by_state, dtype=float),
        package_by_state=np.asarray(p.services.package_hours_by_state, dtype=float),
        day_care_hours=40.0,
        medical_hours=7.0,
        overload_hours=0.0,
        public_bed_cost=0.0,
        public_fee=0.0,
        home_hour_price=0.0,
        day_care_price=0.0,
        voucher_amount=0.0,
        nursing_subsidy=0.0,
        carer_allowance=0.0,
        month=0,
        demand_min_state=3,
        capable_homes=False,
        hospital_month=0.0,
        death_prob=np.zeros((2, 1, 5)),
        death_multiplier=np.ones(6),
        hospital_multiplier=np.ones(6),
    )
    care, requests = _new_care(needy.size), (_new_requests(needy.size), _new_requests(needy.size))
    counts = _receive(people, places, rates, needy, care, *requests)
    np.testing.assert_array_equal(care.in_use, in_use)
    for entries, hours, r, n in zip(
        (home, medical),
        (np.minimum(package, np.maximum(need - family, 0.0)), np.full(needy.size, 7.0)),
        requests,
        counts,
        strict=True,
    ):
        assert n == entries.size
        np.testing.assert_array_equal(r.entry[:n], entries)
        np.testing.assert_array_equal(r.row[:n], needy[entries])
        np.testing.assert_array_equal(r.district[:n], people.district[entries])
        np.testing.assert_array_equal(r.hours[:n], hours[entries])
        np.testing.assert_array_equal(r.priority[:n], np.where(people.voucher[entries], 0, 1))


def test_tally_matches_a_count_from_the_columns(model: CareModel) -> None:
    pop, fac, needy, pol = model.pop, model.places.table, model.needy_rows, model.params.policy
    queued = pop.queue_facility[needy] >= 0
    events = np.zeros(0, dtype=np.int64)
    counts = model.population.current.counts
    month = CareMonth.open(model.month, events, pop.event, needy, counts)
    month.waiting = needy[queued]
    model.delivery.step(month)
    for subsystem in (model.places, model.teams, model.admission):
        subsystem.results(month)
    model.delivery.results(month)()
    out, unmet_family_only = month.sums, month.unmet_family_only
    n_d = out.shape[0]
    d = pop.district[needy].astype(np.int64)

    def by_district(weights) -> np.ndarray:
        return np.bincount(d, weights=np.asarray(weights, dtype=float), minlength=n_d)

    f = pop.facility[needy]
    bed = (f >= 0) & model.places.residential[np.maximum(f, 0)]
    public = (f >= 0) & (fac.kind[np.maximum(f, 0)] == PUBLIC)
    health, income = pop.health[needy], pop.income[needy]
    dependent = health >= 3
    expected = {
        "in_need": by_district(NEED_LEVEL[health] > 0),
        "dependents": by_district(dependent),
        "med_demand": by_district(pop.medical[needy] & (health >= 3)),
        "med_demand_met_beds": by_district(
            pop.medical[needy] & (health >= 3) & (fac.kind[np.maximum(f, 0)] == MEDICAL) & bed
        ),
        "queue": by_district(queued),
        "wait_sum": by_district(np.where(queued, model.month - pop.queue_since[needy], 0)),
        "spend_carer_allowance": by_district((dependent & (f < 0)) * pol.carer_allowance),
        "spend_nursing_subsidy": by_district(((health == 4) & (income <= 1)) * pol.nursing_subsidy),
        "spend_public_homes": by_district(
            public
            * (
                pol.public_bed_cost
                - np.where(income == 0, 0.0, model.params.money.price_public_home)
            )
        ),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(out[:, IDX[name]], value, rtol=1e-12, err_msg=name)
    assert out[:, IDX["queue"]].sum() > 0 and out[:, IDX["med_demand_met_beds"]].sum() > 0
    assert out[:, IDX["spend_public_homes"]].sum() > 0
    arrangements = out[:, [IDX[c] for c in ("n_family", "n_home", "n_community")]].sum(axis=1)
    beds = out[:, [IDX["n_institution"], IDX["n_medical_bed"]]].sum(axis=1)
    np.testing.assert_array_equal(arrangements + beds, expected["in_need"])
    # the diagnostics explain exactly the dependents left with unmet need and no formal care
    assert unmet_family_only.sum() <= out[:, IDX["dependents_unmet"]].sum()
    assert not (unmet_family_only & ~dependent).any() and not (unmet_family_only & bed).any()
    # beds in use by district equal the residents holding them
    for kind in FACILITY_KINDS:
        if kind.residential:
            holding = (f >= 0) & (fac.kind[np.maximum(f, 0)] == kind.code)
            assert out[:, IDX[f"occ_{kind.key}"]].sum() >= holding.sum()
