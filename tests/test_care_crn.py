"""Common random numbers in the care system, and CRN-paired policy directions (scale 100).

CRN: adding beds to the public home with the longest queue must, with care's effects on health
switched off (hazard ratios 1), leave every health path and death month unchanged, and change
the care of people who live near it (families look across district lines, by distance).
Directions (3 seeds, each scenario paired with the baseline of the same seed): doubling the
integrated medical-care beds added never lowers the city's medical-care demand met over
2019-2020; a higher private-home price never raises mean private-home occupancy over 2018-2020.

Runtime: the baseline of each seed is built once; the CRN scenario is a deep copy of the
not-yet-run baseline with one home enlarged.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from sim.care.kinds import CENTRE, DAY_URBAN, KIND_NAMES, PRIVATE, PUBLIC
from sim.core.model import CareModel
from sim.engine.calendar import month_index
from sim.kpis.frame import CITY
from sim.params.sections import Params

SCALE = 100
SEEDS = (1, 2, 3)
CRN_SEED = 1
CRN_MONTHS = 36
CRN_EXTRA_ROWS = 10  # +1,000 beds at scale 100 in one public home
END = "2020-12"
PRICE_BASE = Params().money.price_private_home
NO_EFFECTS = Params().with_overrides(
    {"health": {"unmet_need_death_hr": 1.0, "unmet_need_worsening_hr": 1.0}}
)  # integrated_care_death_hr is 1.0 by default
PRICE_HIGH = PRICE_BASE + 1000.0


def _city_mean(model: CareModel, column: str, first: str, last: str) -> float:
    m = model.metrics()
    city = m[m["district"] == CITY]
    sel = (city["month"] >= first) & (city["month"] <= last)
    return float(city.loc[sel, column].mean())


def _crn_pair(base: CareModel) -> dict:
    """After a year, step `base` and a copy with the public home with the longest queue enlarged
    in lockstep; compare month by month (public homes at the lowest fee, so that some queue)."""
    for _ in range(12):
        base.step()
    other = copy.deepcopy(base)
    fac = other.places.table
    public = np.flatnonzero(fac.kind == PUBLIC)
    f = int(public[np.argmax(other.places.market.queue[public])])
    assert other.places.market.queue[f] > 0
    fac.capacity_rows[f] += CRN_EXTRA_ROWS
    fac.capacity[f] += CRN_EXTRA_ROWS * SCALE
    health_diff_months = 0
    alive_diff_months = 0
    differs = np.zeros(0, dtype=bool)
    for _ in range(CRN_MONTHS - 12):
        base.step()
        other.step()
        a, b = base.pop, other.pop
        assert a.size == b.size  # entrants are deterministic
        n = a.size
        health_diff_months += int(not np.array_equal(a.health[:n], b.health[:n]))
        alive_diff_months += int(not np.array_equal(a.alive[:n], b.alive[:n]))
        changed = (
            (a.arrangement[:n] != b.arrangement[:n])
            | (a.facility[:n] != b.facility[:n])
            | (a.queue_facility[:n] != b.queue_facility[:n])
        )
        differs = np.r_[differs, np.zeros(n - differs.size, dtype=bool)] | changed
    n = base.pop.size
    rows = np.flatnonzero(differs)
    nb = base.geo.neighbourhoods
    x, y = nb["x_km"].to_numpy(), nb["y_km"].to_numpy()
    at = fac.neigh[f]
    km = lambda r: np.hypot(x[base.pop.neigh[r]] - x[at], y[base.pop.neigh[r]] - y[at])  # noqa: E731
    return {
        "facility": f,
        "health_diff_months": health_diff_months,
        "alive_diff_months": alive_diff_months,
        "death_month_equal": np.array_equal(base.pop.death_month[:n], other.pop.death_month[:n]),
        "medical_equal": np.array_equal(base.pop.medical[:n], other.pop.medical[:n]),
        "n_differ": int(rows.size),
        "km_differ": float(np.median(km(rows))),
        "km_needy": float(np.median(km(base.needy_rows))),
        "occupancy_gain": int(other.places.table.occupancy[f] - base.places.table.occupancy[f]),
    }


@pytest.fixture(scope="module")
def runs():
    med_base = Params().policy.medical_beds_added
    med_params = Params().with_overrides(
        {"policy": {"medical_beds_added": tuple(2 * b for b in med_base)}}
    )
    price_params = Params().with_overrides({"money": {"price_private_home": PRICE_HIGH}})
    out = {"crn": None, "medical": {}, "price": {}}
    for seed in SEEDS:
        base = CareModel(seed=seed, scale=SCALE)
        price = CareModel(seed=seed, scale=SCALE, params=price_params)
        if seed == CRN_SEED:
            cheap = NO_EFFECTS.with_overrides({"money": {"price_public_home": 600.0}})
            out["crn"] = _crn_pair(CareModel(seed=seed, scale=SCALE, params=cheap))
        base.run_until(END)
        price.run_until(END)
        med = CareModel(seed=seed, scale=SCALE, params=med_params)
        med.run_until(END)
        if seed == CRN_SEED:
            out["tables"] = (base.places.table, med.places.table)
        out["medical"][seed] = (
            _city_mean(base, "medical_care_demand_met", "2019-01", "2020-12"),
            _city_mean(med, "medical_care_demand_met", "2019-01", "2020-12"),
        )
        out["price"][seed] = (
            _city_mean(base, "occupancy_private", "2018-01", "2020-12"),
            _city_mean(price, "occupancy_private", "2018-01", "2020-12"),
        )
        assert base.month == price.month == med.month == month_index(END) + 1
    print("\nCRN:", out["crn"])
    for seed in SEEDS:
        (b_med, m_med), (b_pr, p_pr) = out["medical"][seed], out["price"][seed]
        print(
            f"seed {seed}: medical_care_demand_met 2019-20 base {b_med:.4f} doubled beds "
            f"{m_med:.4f} (delta {m_med - b_med:+.4f}); occupancy_private 2018-20 base "
            f"{b_pr:.4f} price {PRICE_HIGH:.0f} {p_pr:.4f} (delta {p_pr - b_pr:+.4f})"
        )
    return out


def test_without_care_effects_extra_beds_leave_health_and_deaths_identical(runs):
    crn = runs["crn"]
    assert crn["health_diff_months"] == 0
    assert crn["alive_diff_months"] == 0
    assert crn["death_month_equal"]
    assert crn["medical_equal"]


def test_crn_extra_beds_change_care_near_them(runs):
    crn = runs["crn"]
    assert crn["occupancy_gain"] > 0  # the extra beds were used
    assert crn["n_differ"] > 0
    assert crn["km_differ"] < 0.5 * crn["km_needy"], crn


def test_more_medical_beds_do_not_move_other_facilities(runs):
    base, more = runs["tables"]
    for kind in (CENTRE, DAY_URBAN, PUBLIC, PRIVATE):
        a, b = base.kind == kind, more.kind == kind
        assert a.sum() == b.sum()
        assert np.array_equal(base.neigh[a], more.neigh[b]), KIND_NAMES[kind]
        assert np.array_equal(base.medical_draw[a], more.medical_draw[b]), KIND_NAMES[kind]


@pytest.mark.parametrize("seed", SEEDS)
def test_more_medical_beds_never_lower_medical_demand_met(runs, seed):
    base, more = runs["medical"][seed]
    assert np.isfinite(base) and np.isfinite(more)
    assert more >= base, f"seed {seed}: base {base:.5f}, doubled beds {more:.5f}"


@pytest.mark.parametrize("seed", SEEDS)
def test_higher_private_price_never_raises_private_occupancy(runs, seed):
    base, dearer = runs["price"][seed]
    assert np.isfinite(base) and np.isfinite(dearer)
    assert dearer <= base, f"seed {seed}: base {base:.5f}, price {PRICE_HIGH}: {dearer:.5f}"
