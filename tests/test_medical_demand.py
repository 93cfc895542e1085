"""What integrated beds achieve: the plan's medical-care demand and the KPI that answers to
integrated care only; care that changes health (hazard ratios by care status, normalised to the
life table's mix); expected consequences.

Directions are CRN-paired (same seed, one thing changed), city sums over 2016-01..2018-12 at
scale 100.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.care.kinds import MEDICAL
from sim.core.model import CareModel
from sim.kpis.frame import CITY
from sim.params.sections import Params
from sim.population.care_effects import (
    DEPENDENT_STATE,
    INTEGRATED,
    MET,
    N_STATUS,
    UNMET,
    CareStatus,
    care_effects,
    scaled_probability,
)
from sim.population.kernel import _worsened

SCALE, SEED, END = 100, 1, "2018-12"
NO_EFFECTS = {"health": {"unmet_need_death_hr": 1.0, "unmet_need_worsening_hr": 1.0}}


def _sums(overrides: dict | None = None, scale: float = SCALE) -> dict[str, float]:
    params = Params().with_overrides(overrides) if overrides else None
    model = CareModel(seed=SEED, scale=scale, params=params)
    model.run_until(END)
    m = model.metrics()
    city = m[(m["district"] == CITY) & (m["month"] >= "2016-01")]
    return city.drop(columns=["month", "district"]).sum().to_dict()


@pytest.fixture(scope="module")
def plan() -> dict[str, float]:
    return _sums()


# -- the effects ---------------------------------------------------------------------------------
def test_met_and_unmet_average_to_the_table_at_the_reference_share() -> None:
    health = Params().health
    e = care_effects(health)
    u = health.reference_unmet_share
    for ratios, hr in ((e.death, health.unmet_need_death_hr),
                       (e.worsening, health.unmet_need_worsening_hr),
                       (e.hospital, health.unmet_need_hospital_rr)):  # fmt: skip
        assert ratios[0] == 1.0  # no status: the tables as they are
        assert (1 - u) * ratios[MET] + u * ratios[UNMET] == pytest.approx(1.0)
        assert ratios[UNMET] / ratios[MET] == pytest.approx(hr)
    assert e.hospital[INTEGRATED + MET] / e.hospital[MET] == pytest.approx(
        health.integrated_care_hospital_rr
    )
    assert e.death.size == e.worsening.size == e.hospital.size == N_STATUS


def test_worsening_scales_only_the_hazard_of_full_dependency() -> None:
    rng = np.random.default_rng(1)
    # monthly rows summing to just under 1, mostly staying in the state
    p = rng.dirichlet(np.ones(5), size=(2, 3, 5)) * 0.1 + np.eye(5) * 0.88
    cum = np.cumsum(p, axis=-1)
    assert _worsened(cum, 1.0) is cum
    out = _worsened(cum, 1.5)
    q = np.diff(out, prepend=0.0, axis=-1)
    full, part = DEPENDENT_STATE + 1, DEPENDENT_STATE
    np.testing.assert_allclose(
        q[:, :, part, full], scaled_probability(p[:, :, part, full], 1.5), rtol=1e-12
    )
    np.testing.assert_allclose(out[..., -1], cum[..., -1], rtol=1e-12)  # rows keep their sum
    others = np.arange(5) != part
    np.testing.assert_array_equal(out[:, :, others], cum[:, :, others])


def test_care_status_reaches_the_kernel_two_months_later() -> None:
    status = CareStatus()
    rows = np.array([3, 7])
    filled = status.record(10, rows)
    filled[:] = [UNMET, MET]
    assert status.for_kernel(11)[0].size == 0
    got_rows, got = status.for_kernel(12)
    np.testing.assert_array_equal(got_rows, rows)
    np.testing.assert_array_equal(got, [UNMET, MET])
    status.record(13, rows)
    assert status.for_kernel(12)[0].size == 0  # older months are dropped


def test_recorded_status_follows_the_care_received() -> None:
    """After a month, each person needing care has the status code of their care: dependents
    met or unmet, the integrated bit with a chronic condition in an integrated bed."""
    model = CareModel(seed=SEED, scale=SCALE)
    model.run_until("2017-06")
    rows, status = model.population.care_status.for_kernel(model.month + 1)  # the last month
    pop = model.pop
    dependent = pop.health[rows] >= DEPENDENT_STATE
    adl = status % INTEGRATED
    assert (adl[~dependent] == 0).all() and np.isin(adl[dependent], (MET, UNMET)).all()
    assert (adl == UNMET).any() and (adl == MET).any()
    fac = pop.facility[rows]
    integrated_bed = (fac >= 0) & (model.places.table.kind[np.maximum(fac, 0)] == MEDICAL)
    chronic_in_bed = pop.medical[rows] & integrated_bed
    assert (status[chronic_in_bed] >= INTEGRATED).all() and chronic_in_bed.any()
    assert (status[~pop.medical[rows]] < INTEGRATED).all()


def test_less_unmet_need_saves_lives_only_with_care_effects() -> None:
    """Doubling the home-care packages cuts unmet need; with care's effects on health this cuts
    deaths, with the effects switched off health stays exactly the same (scale 10: the effect
    is a few per cent of the deaths of a few thousand dependents)."""
    bigger = {"services": {"package_hours_by_state": [0.0, 0.0, 26.0, 44.0, 60.0]}}
    for effects in (False, True):
        base = {} if effects else NO_EFFECTS
        before = _sums(base or None, scale=10)
        after = _sums({**base, **bigger}, scale=10)
        assert after["unmet_need_share"] < before["unmet_need_share"]
        if effects:
            assert after["deaths"] < before["deaths"]
            assert after["deaths_attributable_unmet"] < before["deaths_attributable_unmet"]
        else:
            for name in ("deaths", "fully_dependent", "partially_dependent", "residents_60plus"):
                assert after[name] == before[name], name


# -- the KPI answers to integrated care ------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "sign"),
    [
        ({"money": {"price_medical_bed": 2000.0}}, +1),
        ({"money": {"price_medical_bed": 7000.0}}, -1),
        ({"services": {"medical_staff_share": 0.5}}, +1),
    ],
)
def test_integrated_care_moves_the_medical_kpi(plan, overrides, sign) -> None:
    moved = _sums(overrides)
    change = moved["medical_care_demand_met"] - plan["medical_care_demand_met"]
    assert sign * change > 0, (overrides, change)


def test_integrated_beds_near_the_demand_meet_more_of_it() -> None:
    """Integrated beds added in Xiaodian (小店区) meet more of the demand there (scale 10)."""
    key, name = "xiaodian", "Xiaodian"

    def xiaodian(overrides: dict | None) -> float:
        params = Params().with_overrides(overrides) if overrides else None
        model = CareModel(seed=SEED, scale=10, params=params)
        model.run_until(END)
        m = model.metrics()
        return m[(m["district"] == name) & (m["month"] >= "2016-01")][
            "medical_care_demand_met"
        ].sum()

    change = xiaodian({"districts": {"medical_beds": {key: 5000}}}) - xiaodian(None)
    assert change > 0, change


@pytest.mark.parametrize(
    "overrides",
    [
        {"family": {"overload_hours": 80.0}},
        {"policy": {"operating_subsidy_per_bed": 500.0}},
        {"choice": {"too_far_km": 20.0}},
    ],
)
def test_unrelated_assumptions_leave_the_medical_kpi(plan, overrides) -> None:
    moved = _sums(overrides)
    assert moved["medical_care_demand_met"] == plan["medical_care_demand_met"]
    assert moved["medical_care_demand"] == plan["medical_care_demand"]


def test_the_definition_is_a_parameter(plan) -> None:
    """Counting demand from state 2 (unhealthy but self-caring) counts more of it; counting
    nursing homes with medical service as integrated care meets more of it."""
    wider = _sums({"need": {"medical_demand_min_state": 2}})
    assert wider["medical_care_demand"] > plan["medical_care_demand"]
    homes = _sums({"need": {"capable_homes_integrated": True}})
    assert homes["medical_care_demand"] == plan["medical_care_demand"]
    assert homes["medical_care_demand_met"] > plan["medical_care_demand_met"]
    # the broad KPI has every chronic condition as its denominator: far lower
    assert plan["medical_care_demand_met_broad"] < plan["medical_care_demand_met"]
