"""Cohort-component projection of the 60+: start, accounting, cohorts, fit, monotone responses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sim.params.declare import describe
from sim.population import projection as pr
from sim.population import projection_fit as pf
from sim.population.reference import read_table


@pytest.fixture(scope="module")
def central() -> pf.FitResult:
    return pf.fit_entry_and_migration()


def test_start_reproduces_the_2010_census_exactly():
    for tilt in (-0.02, 0.0, 0.03):
        p = replace(pr.ProjectionParams(), initial_old_age_tilt=tilt, female_share_shift=0.02)
        proj = pr.project(p)
        assert proj.stock_60[0, 2] == pytest.approx(466_800, abs=1e-6)
        assert proj.stock_65[0, 2] == pytest.approx(333_395, abs=1e-6)
        assert proj.on(2010, 11) == {
            "60+": pytest.approx(466_800, abs=1e-6),
            "65+": pytest.approx(333_395, abs=1e-6),
            "80+": pytest.approx(proj.stock_80[0, 2]),
        }


def test_old_age_tilt_moves_the_80plus_share_at_start():
    younger = pr.project(replace(pr.ProjectionParams(), initial_old_age_tilt=-0.02))
    older = pr.project(replace(pr.ProjectionParams(), initial_old_age_tilt=0.02))
    assert older.stock_80[0, 2] > younger.stock_80[0, 2]


def test_accounting_identity_month_by_month():
    p = replace(pr.ProjectionParams(), net_migration_rate=0.01, migration_age_decline=0.05)
    proj = pr.project(p)
    for sex in range(3):
        change = np.diff(proj.stock_60[:, sex])
        flows = proj.entrants[:, sex] + proj.migration[:, sex] - proj.deaths[:, sex]
        np.testing.assert_allclose(change, flows, rtol=0, atol=1e-6)
    assert proj.stock_60.shape == (pr.N_MONTHS + 1, 3)
    np.testing.assert_allclose(proj.final.sum(axis=1), proj.stock_60[-1, :2], rtol=1e-12)


def test_first_month_deaths_by_hand():
    p = replace(pr.ProjectionParams(), entry_share=0.002)
    proj = pr.project(p)
    stock = pr.initial_stock(p, 466_800, 333_395)
    from sim.population import lifetable

    h = lifetable.hazard_table(2010 + 10 / 12 + 1 / 24)[:2]
    q = np.repeat(1 - np.exp(-h / 12), 12, axis=1)
    assert proj.deaths[0, 2] == pytest.approx((stock * q).sum(), rel=1e-12)


def test_entrants_are_share_times_china_cohort():
    p = replace(pr.ProjectionParams(), entry_share=0.004, entry_share_after_2020=1.1)
    proj = pr.project(p)
    years, flows = pr.china_turning_60()
    i2015 = proj.month_index(2015, 6)
    assert proj.entrants[i2015, 2] == pytest.approx(0.004 * flows[years == 2015][0] / 12)
    i2025 = proj.month_index(2025, 6)
    assert proj.entrants[i2025, 2] == pytest.approx(0.0044 * flows[years == 2025][0] / 12)


def test_china_cohorts_reproduce_the_wpp_groups_and_the_famine_dip():
    years, flows = pr.china_turning_60()
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
    split = pr.sprague_split(groups)
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
    lo = pr.project(replace(pr.ProjectionParams(), **{field: low}))
    hi = pr.project(replace(pr.ProjectionParams(), **{field: high}))
    assert hi.on(2036, 1)["60+"] > lo.on(2036, 1)["60+"]
    if field != "entry_share_after_2020":
        assert hi.on(2020, 11)["60+"] > lo.on(2020, 11)["60+"]
    else:  # acts from 2021 only
        assert hi.on(2020, 11)["60+"] == lo.on(2020, 11)["60+"]


def test_higher_mortality_gives_fewer_and_more_deaths():
    lo = pr.project(replace(pr.ProjectionParams(), mortality_scale=0.9))
    hi = pr.project(replace(pr.ProjectionParams(), mortality_scale=1.1))
    assert hi.on(2020, 11)["60+"] < lo.on(2020, 11)["60+"]
    assert hi.deaths_in_year(2011) > lo.deaths_in_year(2011)
    slow = pr.project(replace(pr.ProjectionParams(), mortality_improvement=0.5))
    fast = pr.project(replace(pr.ProjectionParams(), mortality_improvement=1.5))
    assert fast.on(2036, 1)["80+"] > slow.on(2036, 1)["80+"]


def test_fit_meets_both_targets(central):
    assert central.fitted_60plus_2020 == pytest.approx(854_501, abs=1)
    assert central.fitted_deaths_2021 == pytest.approx(0.80 * 30_967, abs=1)
    assert central.projection.on(2020, 11)["60+"] == pytest.approx(854_501, abs=1)
    assert abs(np.linalg.det(central.jacobian)) > 0


def test_higher_death_share_needs_more_migration(central):
    high = pf.fit_entry_and_migration(death_share=0.85)
    assert high.params.net_migration_rate > central.params.net_migration_rate
    assert high.params.entry_share < central.params.entry_share
    assert central.sensitivity > 0


def test_fit_reads_no_row_but_its_declared_inputs(monkeypatch, central):
    # the only Taiyuan figures the fit may read; none is a validation figure
    assert set(pf.FIT_INPUTS) == {
        "census_2010_60plus",
        "census_2010_65plus",
        "census_2020_60plus",
        "deaths_2021_all_ages",
        "death_share_60plus_2021",
    }
    full = read_table(pf.INPUTS_FILE, ["indicator", "value"])
    assert not full["indicator"].str.contains("2020_65").any()
    # served only the declared rows, the fit gives the same answer: it reads nothing else
    only = full[full["indicator"].isin(pf.FIT_INPUTS)].reset_index(drop=True)
    original = pf.read_table

    def restricted(name: str, columns: list[str]) -> pd.DataFrame:
        return only.copy() if name == pf.INPUTS_FILE else original(name, columns)

    monkeypatch.setattr(pf, "read_table", restricted)
    again = pf.fit_entry_and_migration()
    assert again.params == central.params


def test_fit_refuses_missing_inputs(monkeypatch):
    monkeypatch.setattr(
        pf, "read_table", lambda name, cols: pd.DataFrame({"indicator": [], "value": []})
    )
    with pytest.raises(KeyError):
        pf.fit_inputs()


def test_variants_are_ordered():
    out = {name: pf.variant(name).projection for name in pf.VARIANTS}
    for year in (2026, 2031, 2036):
        values = [out[n].on(year, 1)["60+"] for n in ("low", "central", "high")]
        assert values == sorted(values)
        old = [out[n].on(year, 1)["80+"] for n in ("low", "central", "high")]
        assert old == sorted(old)


def test_parameters_are_declared_with_ranges_and_sources():
    for cls in (pr.ProjectionParams, pr.MorbidityTrendProposal):
        infos = describe(cls())
        assert infos
        for info in infos:
            assert info.lo <= info.default <= info.hi, info.path
            assert info.source, info.path
    with pytest.raises(ValueError):
        pr.with_values(pr.ProjectionParams(), net_migration_rate=0.5)
