"""Care pathways: every lever acts through behaviour or says it does not (CRN-paired), stays end
by the exit hazards, supply set in one district stays there, families look across district
lines with distance, and a lasting taste keeps a decision until circumstances change.

Directions are CRN-paired (same seed, one lever moved), summed over 2016-01..2018-12 at scale
100 for the city; the choice's draws are the same in both runs, so a lever that improves one
option moves people only into it.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.care.kinds import MEDICAL, PRIVATE, PUBLIC
from sim.core.model import CareModel
from sim.engine.calendar import FIRST_MONTH
from sim.engine.districts import DISTRICT_KEYS
from sim.kpis.frame import CITY
from sim.params.levers import levers
from sim.params.sections import Params
from sim.population.lifetable import AGE_MIN, N_AGES

SCALE = 100
SEED = 1
END = "2018-12"
USE = (
    *(f"share_{n}" for n in ("family_only", "home_services", "community", "institution")),
    "share_medical_bed",
    *(f"occupancy_{k}" for k in ("public", "private", "medical")),
)

# lever: (moved to, the use it moves, +1 up / -1 down). Every lever that acts through behaviour
# is here (checked below): a lever the choice does not read cannot pass.
BEHAVIOUR = {
    "money.price_public_home": (2400.0, "occupancy_public", -1),
    "money.price_private_home": (4000.0, "occupancy_private", -1),
    "money.price_medical_bed": (6000.0, "occupancy_medical", -1),
    "money.price_home_care_hour": (50.0, "share_home_services", -1),
    "money.price_day_care": (1000.0, "share_community", -1),
    "policy.voucher_amount": (800.0, "share_home_services", +1),
    "policy.voucher_min_state": (2, "share_home_services", +1),
    "policy.voucher_min_age": (70, "share_home_services", +1),
    "policy.voucher_max_income_class": (3, "share_home_services", +1),
    "policy.nursing_subsidy": (1000.0, "share_family_only", -1),
    "policy.old_age_allowance": (500.0, "share_family_only", -1),
    "policy.carer_allowance": (1000.0, "family_care_hours", +1),
}
SPENDING = {
    "policy.construction_subsidy_per_bed": (20000.0, "spending_construction"),
    "policy.operating_subsidy_per_bed": (500.0, "spending_operating"),
}


def _override(path: str, value) -> dict:
    section, name = path.split(".")
    return {section: {name: value}}


def _city(params: Params | None = None) -> CareModel:
    model = CareModel(seed=SEED, scale=SCALE, params=params)
    model.run_until(END)
    return model


def _sums(model: CareModel) -> dict[str, float]:
    m = model.metrics()
    city = m[(m["district"] == CITY) & (m["month"] >= "2016-01")]
    return city.drop(columns=["month", "district"]).sum().to_dict()


@pytest.fixture(scope="module")
def base() -> CareModel:
    return _city()


def test_levers_declare_how_they_act() -> None:
    """The behavioural levers are exactly those this file moves, the spending-only ones too."""
    acts = {info.path: info.lever.acts for info in levers()}
    assert {p for p, a in acts.items() if a == "behaviour"} == set(BEHAVIOUR)
    assert {p for p, a in acts.items() if a == "spending"} == set(SPENDING)


@pytest.mark.parametrize("path", sorted(BEHAVIOUR))
def test_behavioural_lever_moves_use_its_way(base: CareModel, path: str) -> None:
    value, kpi, sign = BEHAVIOUR[path]
    moved = _sums(_city(Params().with_overrides(_override(path, value))))
    before = _sums(base)
    change = moved[kpi] - before[kpi]
    assert sign * change > 0, (path, kpi, before[kpi], moved[kpi])


@pytest.mark.parametrize("path", sorted(SPENDING))
def test_spending_lever_moves_spending_only(base: CareModel, path: str) -> None:
    value, kpi = SPENDING[path]
    moved = _sums(_city(Params().with_overrides(_override(path, value))))
    before = _sums(base)
    assert moved[kpi] > before[kpi]
    for name in USE:
        assert moved[name] == before[name], name


def test_lasting_taste_repeats_a_decision() -> None:
    """Deciding twice under the same circumstances gives the same choice; a switching cost keeps
    more of those in a bed in it."""
    model = CareModel(seed=SEED, scale=SCALE)
    model.run_until("2017-06")
    pop, places = model.pop, model.places
    rows = model.needy_rows
    first, _ = model.choice.choose(rows)
    again, _ = model.choice.choose(rows)
    np.testing.assert_array_equal(first, again)
    held = pop.facility[rows]
    in_bed = rows[(held >= 0) & places.residential[np.maximum(held, 0)]]
    assert in_bed.size > 20

    def stay_share(cost: float) -> float:
        chooser = model.choice
        chooser.params = model.params.with_overrides({"choice": {"switching_cost": cost}})
        try:
            choice, _ = chooser.choose(in_bed)
        finally:
            chooser.params = model.params
        return float(np.isin(choice, (3, 4, 5)).mean())

    assert stay_share(5.0) > stay_share(0.0)


def test_bed_deaths_follow_the_death_hazards() -> None:
    """Deaths of those in a bed each month match the life-table death probabilities of the
    residents in a bed at its start (sum over 24 months, within 4 standard deviations); the
    care system's spin-up leaves residents in beds in 2016-01, their stays begun before 2016."""
    model = CareModel(seed=SEED, scale=10)
    pop = model.pop
    since = pop.bed_since[: pop.size]
    assert ((since >= FIRST_MONTH) & (since < 0) & (pop.facility[: pop.size] >= 0)).sum() > 100
    pop, places, system = model.pop, model.places, model.population
    expected = variance = observed = 0.0
    for _ in range(24):
        rows = pop.alive_rows()
        held = pop.facility[rows]
        rows = rows[(held >= 0) & places.residential[np.maximum(held, 0)]]
        q = system.death_probabilities(2016 + model.month // 12)
        age = np.minimum(pop.age_m[rows] // 12 - AGE_MIN, N_AGES - 1)
        p = q[pop.sex[rows], age, pop.health[rows]]
        model.step()
        expected += p.sum()
        variance += (p * (1 - p)).sum()
        observed += (pop.death_month[rows] == model.month - 1).sum()
    assert expected > 50
    assert abs(observed - expected) <= 4 * np.sqrt(variance), (observed, expected)


def test_district_supply_stays_in_its_district() -> None:
    """2,000 integrated beds in Xiaodian add 400 a year there and change nothing elsewhere; teams
    added in one district add hours there only."""
    key = DISTRICT_KEYS[0]
    params = Params().with_overrides(
        {"districts": {"medical_beds": {key: 2000}, "teams": {key: 50}}}
    )
    plan, more = CareModel(seed=SEED, scale=SCALE), CareModel(seed=SEED, scale=SCALE, params=params)
    a, b = plan.places.table, more.places.table
    for month in range(0, 60, 12):
        for kind in (PUBLIC, PRIVATE, MEDICAL):
            for d in range(plan.n_districts):
                beds = [
                    t.capacity[t.is_open(month) & (t.kind == kind) & (t.district == d)].sum()
                    for t in (a, b)
                ]
                extra = 400 * (month // 12 + 1) if (kind == MEDICAL and d == 0) else 0
                assert beds[1] - beds[0] == extra, (month, kind, d)
    hours = plan.teams.hours(0), more.teams.hours(0)
    assert hours[1][0] > hours[0][0]
    np.testing.assert_array_equal(hours[1][1:], hours[0][1:])


def test_cross_district_flows_fall_with_distance() -> None:
    """Families look across district lines, by distance: most admissions stay in the home
    district, and between districts the admissions per bed are higher for pairs closer than the
    median distance between district centres than for pairs farther apart (scale 10, 2016-2018)."""
    model = CareModel(seed=SEED, scale=10)
    model.run_until(END)
    m, geo = model.metrics(), model.geo
    nb = geo.neighbourhoods
    cx = nb.groupby("district")["x_km"].mean().to_numpy()
    cy = nb.groupby("district")["y_km"].mean().to_numpy()
    names = list(geo.districts["name_en"])
    flows = np.zeros((len(names), len(names)))  # [bed district, home district]
    beds = np.zeros(len(names))
    for i, name in enumerate(names):
        rows = m[(m["district"] == name) & (m["month"] >= "2016-02")]
        flows[i] = [rows[f"admissions_from_{key}"].sum() for key in DISTRICT_KEYS]
        beds[i] = rows[["beds_public", "beds_private", "beds_medical"]].sum(axis=1).mean()
    across = ~np.eye(len(names), dtype=bool)
    assert 0 < flows[across].sum() < 0.5 * flows.sum()
    distance = np.hypot(cx[:, None] - cx[None, :], cy[:, None] - cy[None, :])[across]
    per_bed = (flows / beds[:, None])[across]
    near = distance < np.median(distance)
    assert per_bed[near].mean() > 2 * per_bed[~near].mean()


def test_empty_beds_beside_queues(base: CareModel) -> None:
    """A district's empty beds count beside queues only when no one waits there and someone
    waits in another district; never more than its empty beds."""
    m = base.metrics()
    m = m[(m["month"] >= "2016-01") & (m["district"] != CITY)]
    city_queue = m.groupby("month")["queue_length"].transform("sum")
    beside = m["empty_beds_beside_queues"]
    assert (beside[m["queue_length"] > 0] == 0).all()
    assert (beside[city_queue == 0] == 0).all()
    assert (beside <= m["empty_beds"] + 1e-9).all()
    lonely = (m["queue_length"] == 0) & (city_queue > 0)
    np.testing.assert_allclose(beside[lonely], m.loc[lonely, "empty_beds"])
    assert lonely.any()
