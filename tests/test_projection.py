"""Cohort-component projection of the 60+: start, accounting, cohorts, fit, monotone responses."""

from __future__ import annotations

import numpy as np
import pytest

from sim.experiments import demography_fit as pf
from sim.params.sections import Params
from sim.population import demography as dm
from sim.population import projection as pr
from sim.population.health import build_tables
from sim.population.rates import death_probabilities
from sim.population.reference import read_table

TARGETS = pf.DemographyTargets(pop_60plus_2020=854_501, deaths_60plus_2021=0.80 * 30_967)


def _params(**values) -> Params:
    return Params().with_overrides({"demography": values})


@pytest.fixture(scope="module")
def central() -> pf.FitResult:
    return pf.fit_entry_and_migration(Params(), TARGETS)


def test_start_reproduces_the_2010_census_exactly():
    for tilt in (-0.02, 0.0, 0.03):
        p = _params(initial_old_age_tilt=tilt, female_share_shift=0.02)
        proj = pr.project(p)
        assert proj.stock_60[0, 2] == pytest.approx(466_800, abs=1e-6)
        assert proj.stock_65[0, 2] == pytest.approx(333_395, abs=1e-6)
        assert proj.on(2010, 11) == {
            "60+": pytest.approx(466_800, abs=1e-6),
            "65+": pytest.approx(333_395, abs=1e-6),
            "80+": pytest.approx(proj.stock_80[0, 2]),
        }


def test_old_age_tilt_moves_the_80plus_share_at_start():
    younger = pr.project(_params(initial_old_age_tilt=-0.02))
    older = pr.project(_params(initial_old_age_tilt=0.02))
    assert older.stock_80[0, 2] > younger.stock_80[0, 2]


def test_accounting_identity_month_by_month():
    p = _params(net_migration_rate=0.01, migration_age_decline=0.05)
    proj = pr.project(p)
    for sex in range(3):
        change = np.diff(proj.stock_60[:, sex])
        flows = proj.entrants[:, sex] + proj.migration[:, sex] - proj.deaths[:, sex]
        np.testing.assert_allclose(change, flows, rtol=0, atol=1e-6)
    assert proj.stock_60.shape == (pr.N_MONTHS + 1, 3)
    np.testing.assert_allclose(proj.final.sum(axis=1), proj.stock_60[-1, :2], rtol=1e-12)


def test_first_month_deaths_by_hand():
    """The first month's deaths: the start stock by sex, age and state (the census structure
    times the target prevalence) times the model's death probabilities of 2010."""
    p = _params(entry_share=0.002)
    proj = pr.project(p)
    tables = build_tables(p.health.settings(p.demography.max_hazard))
    cell_age = np.repeat(np.arange(dm.N_AGES), 12)
    stock = dm.start_cells(p.demography)[:, :, None] * tables.prevalence[:, cell_age]
    q = death_probabilities(p.demography, tables, 2010)[:, cell_age]
    assert proj.deaths[0, 2] == pytest.approx((stock * q).sum(), rel=1e-12)


def test_entrants_are_share_times_china_cohort():
    p = _params(entry_share=0.004, entry_share_after_2020=1.1)
    proj = pr.project(p)
    years, flows = dm.china_turning_60()
    i2015 = proj.month_index(2015, 6)
    assert proj.entrants[i2015, 2] == pytest.approx(0.004 * flows[years == 2015][0] / 12)
    i2025 = proj.month_index(2025, 6)
    assert proj.entrants[i2025, 2] == pytest.approx(0.0044 * flows[years == 2025][0] / 12)


def test_china_cohorts_reproduce_the_wpp_groups_and_the_famine_dip():
    years, flows = dm.china_turning_60()
    by_year = dict(zip(years, flows, strict=True))
    # persons born 1959-1961 turn 60 in 2019-2021; the 1962-1963 boom from 2022
    assert by_year[2020] < 0.8 * by_year[2016]
    assert by_year[2023] > 1.5 * by_year[2020]
    # five yearly flows ~ the 60-64 group (survival aside): within 6% in every year 2005-2035
    t = read_table("wpp_china_annual_groups.csv", ["year", "age_group", "population_thousands"])
    g = t[t["age_group"] == "60-64"].set_index("year")["population_thousands"] * 1000
    for year in range(2005, 2036):
        window = 0.5 * by_year[year - 5] + sum(by_year[year - k] for k in range(1, 5))
        window += 0.5 * by_year[year]
        assert window == pytest.approx(g[year], rel=0.06), year


def test_sprague_split_keeps_totals_and_reproduces_a_cubic():
    ages = np.arange(0, 45)
    single = 1000 + 3 * ages - 0.2 * ages**2 + 0.004 * ages**3
    groups = single.reshape(-1, 5).sum(axis=1)
    split = dm.sprague_split(groups)
    np.testing.assert_allclose(split.sum(axis=1), groups[2:-2], rtol=1e-12)
    np.testing.assert_allclose(split.ravel(), single[10:35], rtol=1e-9)


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("net_migration_rate", -0.005, 0.01),
        ("entry_share", 0.0035, 0.0045),
        ("entry_share_after_2020", 0.9, 1.1),
    ],
)
def test_more_inflow_gives_more_60plus(field, low, high):
    lo = pr.project(_params(**{field: low}))
    hi = pr.project(_params(**{field: high}))
    assert hi.on(2036, 1)["60+"] > lo.on(2036, 1)["60+"]
    if field != "entry_share_after_2020":
        assert hi.on(2020, 11)["60+"] > lo.on(2020, 11)["60+"]
    else:  # acts from 2021 only
        assert hi.on(2020, 11)["60+"] == lo.on(2020, 11)["60+"]


def test_higher_mortality_gives_fewer_and_more_deaths():
    lo = pr.project(_params(mortality_scale=0.9))
    hi = pr.project(_params(mortality_scale=1.1))
    assert hi.on(2020, 11)["60+"] < lo.on(2020, 11)["60+"]
    assert hi.deaths_in_year(2011) > lo.deaths_in_year(2011)
    slow = pr.project(_params(mortality_improvement=0.5))
    fast = pr.project(_params(mortality_improvement=1.5))
    assert fast.on(2036, 1)["80+"] > slow.on(2036, 1)["80+"]


def test_fit_meets_both_targets(central):
    assert central.fitted_60plus_2020 == pytest.approx(854_501, abs=1)
    assert central.fitted_deaths_2021 == pytest.approx(0.80 * 30_967, abs=1)
    assert central.projection.on(2020, 11)["60+"] == pytest.approx(854_501, abs=1)
    assert abs(np.linalg.det(central.jacobian)) > 0


def test_higher_death_share_needs_more_migration(central):
    high = pf.fit_entry_and_migration(Params(), TARGETS.at_death_share(0.85))
    assert high.params.demography.net_migration_rate > central.params.demography.net_migration_rate
    assert high.params.demography.entry_share < central.params.demography.entry_share
    assert central.sensitivity > 0


def test_variants_are_ordered():
    out = {name: pf.fit_variant(name, Params(), TARGETS).projection for name in pf.VARIANTS}
    for year in (2026, 2031, 2036):
        values = [out[n].on(year, 1)["60+"] for n in ("low", "central", "high")]
        assert values == sorted(values)
        old = [out[n].on(year, 1)["80+"] for n in ("low", "central", "high")]
        assert old == sorted(old)
