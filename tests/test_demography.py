"""The population from the 2010 census: the start reproduces the census, the stochastic model
matches the deterministic cohort-component projection (its expected value) within sampling error,
the implied life expectancy at 60 is the life table's, the variants are ordered, a morbidity
trend moves dependency, and no fitting code reads a validation target."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.core.model import CareModel
from sim.experiments.calibrate import CalibrationError, fit, load_targets
from sim.experiments.scenario import load_scenario
from sim.kpis.frame import CITY
from sim.params.sections import Params
from sim.population import lifetable
from sim.population.geography import load_geography
from sim.population.health import build_tables
from sim.population.projection import project
from sim.population.synthesis import synthesise

ROOT = Path(__file__).resolve().parents[1]
SCALE = 5


@pytest.mark.parametrize("scale", [1, 7])
def test_start_reproduces_the_2010_census(scale: int) -> None:
    """60+ and 65+ on 2010-11-01 are the census' (to the nearest row)."""
    params, geo = Params(), load_geography()
    tables = build_tables(params.health.settings(params.demography.max_hazard))
    pop = synthesise(params, geo, tables, 3, scale)
    rows = pop.alive_rows()
    assert rows.size == round(466_800 / scale)
    assert np.sum(pop.age_m[rows] >= 65 * 12) == round(333_395 / scale)
    assert (pop.age_m[rows] >= 60 * 12).all()


@pytest.fixture(scope="module")
def runs() -> list[pd.DataFrame]:
    """Two seeds of the population alone at scale 5 to 2020-12 (city rows by month)."""
    out = []
    for seed in (1, 2):
        model = CareModel(seed=seed, scale=SCALE, care=False)
        model.run_until("2020-12")
        frame = model.metrics()
        out.append(frame[frame["district"] == CITY].set_index("month"))
    return out


@pytest.mark.parametrize(("month", "census_day"), [("2015-12", (2016, 1)), ("2020-10", (2020, 11))])
def test_model_matches_the_projection_within_sampling_error(runs, month, census_day) -> None:
    """The stock on the first day of the next month: 60+, 65+, 80+ within 5 standard deviations
    of the deterministic projection, the deviation's variance bounded by the number of exits
    (deaths and moves) so far, each a coin toss."""
    expected = project(Params()).on(*census_day)
    for city in runs:
        exits = city.loc[:month, ["deaths", "emigrants"]].to_numpy().sum() / SCALE
        sd = SCALE * np.sqrt(exits)
        for column, group in (("residents_60plus", "60+"), ("residents_65plus", "65+"),
                              ("residents_80plus", "80+")):  # fmt: skip
            z = (city.loc[month, column] - expected[group]) / sd
            assert abs(z) < 5, (month, column, city.loc[month, column], expected[group], z)


def test_deaths_and_moves_match_the_projection(runs) -> None:
    proj = project(Params())
    i = proj.month_index(2020, 1)
    for city in runs:
        deaths = city.loc["2020-01":"2020-12", "deaths"].sum()
        moved = city.loc["2020-01":"2020-12", "emigrants"].sum()
        assert abs(deaths - proj.deaths_in_year(2020)) < 5 * np.sqrt(SCALE * deaths)
        assert abs(moved + proj.migration[i : i + 12, 2].sum()) < 5 * np.sqrt(SCALE * moved)


def test_life_expectancy_at_60_is_the_tables() -> None:
    """e60 by sex implied by the model's death rates over its own mix of health states, 2015
    and 2020, within 0.3 years of the WPP 2024 table's."""
    model = CareModel(seed=4, scale=SCALE, care=False)
    for year, until in ((2015, None), (2020, "2020-06")):
        if until:
            model.run_until(until)
        e60 = model.population.life_expectancy_at_60(year)
        for sex in range(2):
            table = lifetable.table_life_expectancy(year, sex)
            assert abs(e60[sex] - table) < 0.3, (year, sex, e60[sex], table)


def test_variants_are_ordered_in_2035() -> None:
    """The shipped low and high projection variants bracket the plan's 60+ and 80+."""
    values = {}
    for name in ("demography_low", "plan_2016_2020", "demography_high"):
        model = CareModel(seed=1, scale=200, params=load_scenario(name).params, care=False)
        model.run_until("2035-12")
        frame = model.metrics()
        values[name] = frame[(frame["district"] == CITY) & (frame["month"] == "2035-12")].iloc[0]
    for column in ("residents_60plus", "residents_80plus"):
        low, mid, high = (values[n][column] for n in values)
        assert low < mid < high, (column, low, mid, high)


def test_dependency_trend_moves_dependency_and_not_the_paths_before_2021() -> None:
    """Common random numbers: a compression of the onset of dependency after 2020 leaves every
    health path to 2020 unchanged and then lowers the dependents."""
    base = Params()
    compressed = base.with_overrides({"health": {"dependency_onset_trend": -0.05}})
    frames = []
    for params in (base, compressed):
        model = CareModel(seed=2, scale=20, params=params, care=False)
        model.run_until("2030-12")
        frame = model.metrics()
        frames.append(frame[frame["district"] == CITY].set_index("month"))
    a, b = frames
    dependents = ["partially_dependent", "fully_dependent"]
    pd.testing.assert_frame_equal(a.loc[:"2020-12"], b.loc[:"2020-12"])
    assert b.loc["2030-12", dependents].sum() < a.loc["2030-12", dependents].sum()


def test_no_fit_reads_a_validation_target() -> None:
    """The fits read 'fit' rows only: marking a target the fit needs as a validation target
    makes the fit refuse it."""
    targets = load_targets(ROOT / "calibration" / "targets.csv")
    assert set(targets["role"]) == {"fit", "validate"}
    for stage, name in (
        ("population", "deaths_60plus_2021"),
        ("health", "unable_selfcare_share_2020"),
    ):
        changed = targets.copy()
        changed.loc[name, "role"] = "validate"
        with pytest.raises(CalibrationError, match=f"{name}: a validation target"):
            fit(changed, Params.declared(), [stage], seed=1, scale=500, log=lambda _: None)


def test_mortality_scale_moves_deaths_by_the_table() -> None:
    """mortality_scale multiplies the table's hazard at every age, sex and state."""
    base = Params()
    higher = base.with_overrides({"demography": {"mortality_scale": 1.1}})
    q = [CareModel(seed=1, scale=1000, params=p, care=False).population.death_probabilities(2018)
         for p in (base, higher)]  # fmt: skip
    hazard = [-np.log1p(-x) for x in q]
    np.testing.assert_allclose(hazard[1], 1.1 * hazard[0], rtol=1e-12)
    assert replace(base.demography, mortality_scale=1.1) == higher.demography
