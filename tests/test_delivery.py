"""The residents' columns gathered once a month, the team requests and the compiled tally
of care delivered, each against a direct computation from the resident columns."""

from __future__ import annotations

import numpy as np
import pytest

from sim import CareModel
from sim.care.choice import COMMUNITY, FAMILY, HOME, PUBLIC_HOME
from sim.care.delivery import (
    IDX,
    KIND_SUM,
    _new_care,
    _new_requests,
    _Places,
    _Rates,
    _receive,
    deliver_and_measure,
)
from sim.care.facilities import PUBLIC
from sim.care.gather import Residents, gather
from sim.population.families import CHILD_CORESIDENT, NO_SPOUSE, family_care_capacity


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
    people = gather(model, rows)
    for name in Residents._fields[:-2]:
        column = getattr(pop, name)
        np.testing.assert_array_equal(getattr(people, name), column[rows], err_msg=name)
        assert getattr(people, name).dtype == column.dtype, name
    alone = (pop.spouse[rows] == NO_SPOUSE) & (pop.child_place[rows] != CHILD_CORESIDENT)
    np.testing.assert_array_equal(people.alone, alone)
    capacity = family_care_capacity(pop, rows, p.family, p.policy, model.residential_facility)
    np.testing.assert_array_equal(people.family, capacity)


def test_requests_are_those_on_home_services_in_row_order(model: CareModel) -> None:
    """`_receive` lists each resident on home services as a request of their unmet hours, and
    those of them with a medical need again as a medical request, against a numpy reference."""
    p, needy = model.params, model.needy_rows
    people = gather(model, needy)
    facility, arrangement = people.facility.astype(np.int64), people.arrangement
    bed = (facility >= 0) & model.residential_facility[np.maximum(facility, 0)]
    waiting = ~bed & ((arrangement >= PUBLIC_HOME) | ((arrangement == COMMUNITY) & (facility < 0)))
    in_use = np.where(waiting, FAMILY, arrangement)
    need = np.asarray(p.need.care_hours_by_state)[people.health]
    family = np.where(bed, 0.0, np.minimum(need, people.family))
    home = np.flatnonzero(in_use == HOME)
    medical = home[people.medical[home]]
    assert home.size > 0 and 0 < medical.size < home.size

    places = _Places(model.facilities.kind, model.residential_facility, np.zeros(1, dtype=bool))
    rates = _Rates(np.asarray(p.need.care_hours_by_state, dtype=float), 40.0, 7.0, *[0.0] * 8, 0)
    care, requests = _new_care(needy.size), (_new_requests(needy.size), _new_requests(needy.size))
    counts = _receive(people, places, rates, needy, care, *requests)
    np.testing.assert_array_equal(care.in_use, in_use)
    for entries, hours, r, n in zip(
        (home, medical),
        (np.maximum(need - family, 0.0), np.full(needy.size, 7.0)),
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
    pop, fac, needy, pol = model.pop, model.facilities, model.needy_rows, model.params.policy
    queued = pop.queue_facility[needy] >= 0
    out, per_person = deliver_and_measure(model, needy, gather(model, needy), needy[queued])
    unmet_family_only = per_person.add_to(out)
    n_d = out.shape[0]
    d = pop.district[needy].astype(np.int64)

    def by_district(weights) -> np.ndarray:
        return np.bincount(d, weights=np.asarray(weights, dtype=float), minlength=n_d)

    f = pop.facility[needy]
    bed = (f >= 0) & model.residential_facility[np.maximum(f, 0)]
    capable_bed = bed & model.facility_medical_capable()[np.maximum(f, 0)]
    public = (f >= 0) & (fac.kind[np.maximum(f, 0)] == PUBLIC)
    health, income = pop.health[needy], pop.income[needy]
    dependent = health >= 3
    expected = {
        "in_need": by_district(np.ones(needy.size)),
        "dependents": by_district(dependent),
        "med_need": by_district(pop.medical[needy]),
        "med_met_beds": by_district(pop.medical[needy] & capable_bed),
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
    assert out[:, IDX["queue"]].sum() > 0 and out[:, IDX["med_met_beds"]].sum() > 0
    assert out[:, IDX["spend_public_homes"]].sum() > 0
    arrangements = out[:, [IDX[c] for c in ("n_family", "n_home", "n_community")]].sum(axis=1)
    beds = out[:, [IDX["n_institution"], IDX["n_medical_bed"]]].sum(axis=1)
    np.testing.assert_array_equal(arrangements + beds, expected["in_need"])
    # the diagnostics explain exactly the dependents left with unmet need and no formal care
    assert unmet_family_only.sum() <= out[:, IDX["dependents_unmet"]].sum()
    assert not (unmet_family_only & ~dependent).any() and not (unmet_family_only & bed).any()
    # beds in use by district equal the residents holding them
    for kind, kind_name in KIND_SUM.items():
        holding = (f >= 0) & (fac.kind[np.maximum(f, 0)] == kind)
        assert out[:, IDX[f"occ_{kind_name}"]].sum() >= holding.sum()
