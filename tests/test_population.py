"""Tests of the population core: determinism, common random numbers, conservation of persons,
metrics consistency, incremental stocks, spouse links and the 2020 census level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.calendar import month_index
from sim.geography import load_geography
from sim.kernels import N_COUNTS, stock_counts
from sim.metrics import CITY, POPULATION_COLUMNS
from sim.model import CareModel
from sim.params import Params
from sim.population import district_elderly_weights

N_STOCK = 9  # columns C_60..C_MEDICAL of the stock
COUNT_COLUMNS = list(POPULATION_COLUMNS)
CENSUS_60PLUS = 854_501


def _run(seed: int, scale: float, months: int, params: Params | None = None) -> CareModel:
    model = CareModel(seed=seed, scale=scale, params=params)
    for _ in range(months):
        model.step()
    return model


def _city(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["district"] == CITY].set_index("month")


# -- determinism -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def twins() -> tuple[CareModel, CareModel, CareModel]:
    return _run(1, 50, 24), _run(1, 50, 24), _run(2, 50, 24)


def test_same_seed_identical_metrics(twins) -> None:
    a, b, _ = twins
    fa, fb = a.metrics(), b.metrics()
    assert len(fa) == 24 * 11
    pd.testing.assert_frame_equal(fa, fb)


def test_same_seed_identical_columns(twins) -> None:
    a, b, _ = twins
    assert a.pop.size == b.pop.size
    for name in ("alive", "age_m", "sex", "district", "neigh", "health", "medical", "spouse"):
        np.testing.assert_array_equal(
            getattr(a.pop, name)[: a.pop.size], getattr(b.pop, name)[: b.pop.size], err_msg=name
        )


def test_other_seed_differs(twins) -> None:
    a, _, c = twins
    fa, fc = a.metrics(), c.metrics()
    assert list(fa["month"]) == list(fc["month"])
    assert not fa[COUNT_COLUMNS].equals(fc[COUNT_COLUMNS])
    assert not np.array_equal(a.pop.health[:1000], c.pop.health[:1000])
    # the deterministic parts agree: initial size and entrant counts
    assert a.pop.size == c.pop.size
    pd.testing.assert_series_equal(_city(fa)["entrants"], _city(fc)["entrants"])


def test_run_until_is_inclusive_and_matches_stepping(twins) -> None:
    a, _, _ = twins
    m = CareModel(seed=1, scale=50)
    m.run_until("2017-12")
    assert m.month == 24
    assert m.metrics()["month"].iloc[-1] == "2017-12"
    pd.testing.assert_frame_equal(m.metrics(), a.metrics())
    m.run_until("2017-06")  # already past: no-op
    assert m.month == 24


# -- common random numbers ---------------------------------------------------------------------
CRN_OVERRIDES = [
    {"households": {"married_share_by_age": [0.6, 0.6, 0.5, 0.4, 0.3, 0.2]}},
    {"income": {"urban_shares": [0.01, 0.05, 0.3, 0.5, 0.14]}},
]


@pytest.mark.parametrize("overrides", CRN_OVERRIDES, ids=["married", "income"])
def test_crn_health_and_death_unchanged(overrides: dict) -> None:
    base = CareModel(seed=3, scale=100)
    alt = CareModel(seed=3, scale=100, params=Params().with_overrides(overrides))
    # the override does change the people it is about
    changed = "spouse" if "households" in overrides else "income"
    assert not np.array_equal(getattr(base.pop, changed), getattr(alt.pop, changed))
    np.testing.assert_array_equal(base.pop.health, alt.pop.health)
    for month in range(36):
        base.step()
        alt.step()
        assert base.pop.size == alt.pop.size
        n = base.pop.size
        np.testing.assert_array_equal(
            base.pop.health[:n], alt.pop.health[:n], err_msg=f"health, month {month}"
        )
        np.testing.assert_array_equal(
            base.pop.alive[:n], alt.pop.alive[:n], err_msg=f"alive, month {month}"
        )
    n = base.pop.size
    np.testing.assert_array_equal(base.pop.death_month[:n], alt.pop.death_month[:n])
    np.testing.assert_array_equal(base.pop.medical[:n], alt.pop.medical[:n])
    np.testing.assert_array_equal(base.pop.age_m[:n], alt.pop.age_m[:n])
    cols = ["month", "district", *(c for c in COUNT_COLUMNS if c != "widowed")]
    pd.testing.assert_frame_equal(base.metrics()[cols], alt.metrics()[cols])


# -- the 2020 census run (scale 10), shared by the consistency tests ---------------------------
@pytest.fixture(scope="module")
def census() -> CareModel:
    model = CareModel(seed=1, scale=10)
    model.run_until("2020-11")
    return model


@pytest.fixture(scope="module")
def census_frame(census: CareModel) -> pd.DataFrame:
    return census.metrics()


def test_persons_conserved_in_columns(census: CareModel) -> None:
    pop = census.pop
    n = pop.size
    alive, dead = pop.alive[:n], pop.death_month[:n] >= 0
    assert not np.any(alive & dead)
    assert np.all(alive | dead)
    assert alive.sum() == pop.n_alive
    initial = np.sum(pop.entry_month[:n] == -1)
    assert initial == round(census.params.demography.initial_60plus / census.scale)
    entrants = np.sum(pop.entry_month[:n] >= 0)
    assert alive.sum() + dead.sum() == initial + entrants == n
    # alive_rows lists exactly the living rows, in key order
    rows = pop.alive_rows()
    np.testing.assert_array_equal(rows, np.flatnonzero(alive))
    # nobody beyond pop.size is alive, and deaths and entries are in the simulated months
    assert not pop.alive[n:].any()
    assert pop.death_month[:n].max() < census.month
    assert pop.entry_month[:n].max() < census.month
    dm, em = pop.death_month[:n][dead], pop.entry_month[:n][dead]
    assert np.all(dm >= np.maximum(em, 0))
    assert np.all(dm[em >= 0] > em[em >= 0])  # entrants do not die in their entry month


def test_persons_conserved_in_metrics(census: CareModel, census_frame: pd.DataFrame) -> None:
    city = _city(census_frame)
    initial_rows = int(np.sum(census.pop.entry_month[: census.pop.size] == -1))
    final = city["residents_60plus"].iloc[-1]
    assert initial_rows * census.scale + city["entrants"].sum() - city["deaths"].sum() == final
    # and month by month
    previous = initial_rows * census.scale
    for _, row in city.iterrows():
        assert previous + row["entrants"] - row["deaths"] == row["residents_60plus"]
        previous = row["residents_60plus"]
    # entrant rows in the columns agree with the metrics
    entrants = np.sum(census.pop.entry_month[: census.pop.size] >= 0)
    assert entrants * census.scale == city["entrants"].sum()
    assert final == census.pop.n_alive * census.scale


def test_state_counts_sum_to_residents(census_frame: pd.DataFrame) -> None:
    states = [c for c in COUNT_COLUMNS if c.endswith(("healthy", "selfcare", "dependent"))]
    assert len(states) == 5
    np.testing.assert_array_equal(
        census_frame[states].sum(axis=1), census_frame["residents_60plus"]
    )
    f = census_frame
    assert (f["residents_60plus"] >= f["residents_65plus"]).all()
    assert (f["residents_65plus"] >= f["residents_80plus"]).all()
    assert (f["medical_need"] <= f["residents_60plus"]).all()


def test_district_rows_sum_to_city(census_frame: pd.DataFrame) -> None:
    f = census_frame
    names = list(load_geography().districts["name_en"])
    assert set(f["district"]) == {*names, CITY}
    months = f["month"].unique()
    assert len(f) == len(months) * (len(names) + 1)
    districts = f[f["district"] != CITY].groupby("month", sort=False)[COUNT_COLUMNS].sum()
    city = _city(f)[COUNT_COLUMNS]
    pd.testing.assert_frame_equal(districts.loc[city.index], city, check_names=False)
    # counts are persons: whole multiples of the scale, never negative
    values = f[COUNT_COLUMNS].to_numpy()
    assert (values >= 0).all()
    assert np.all(values % 10 == 0)


def test_district_elderly_weights() -> None:
    w = district_elderly_weights(load_geography())
    assert w.shape == (10,)
    assert np.all(w > 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_initial_districts_follow_weights(census: CareModel) -> None:
    pop = census.pop
    initial = pop.entry_month[: pop.size] == -1
    counts = np.bincount(pop.district[: pop.size][initial], minlength=10)
    w = district_elderly_weights(census.geo)
    # largest-remainder allocation: within one row of the exact share
    assert np.all(np.abs(counts - w * initial.sum()) < 1)


def test_incremental_stock_equals_recount(census: CareModel) -> None:
    fresh = stock_counts(census.pop, 10)
    assert fresh.shape == census._stock.shape == (10, N_COUNTS)
    np.testing.assert_array_equal(census._stock[:, :N_STOCK], fresh[:, :N_STOCK])


def test_incremental_stock_every_month() -> None:
    model = CareModel(seed=5, scale=200)
    for _ in range(30):
        model.step()
        np.testing.assert_array_equal(
            model._stock[:, :N_STOCK],
            stock_counts(model.pop, 10)[:, :N_STOCK],
            err_msg=f"month {model.month - 1}",
        )


# -- spouses -----------------------------------------------------------------------------------
def _check_spouses(model: CareModel) -> int:
    pop = model.pop
    rows = pop.alive_rows()
    sp = pop.spouse[rows]
    assert np.all(sp >= -2)
    linked = rows[sp >= 0]
    partner = pop.spouse[linked]
    assert np.all(partner < pop.size)
    assert np.all(pop.alive[partner]), "a living resident points to a dead spouse"
    np.testing.assert_array_equal(pop.spouse[partner], linked)
    assert np.all(pop.sex[partner] != pop.sex[linked])
    np.testing.assert_array_equal(pop.neigh[partner], pop.neigh[linked])
    np.testing.assert_array_equal(pop.district[partner], pop.district[linked])
    return linked.size


def test_spouses_at_start() -> None:
    model = CareModel(seed=1, scale=20)
    n_linked = _check_spouses(model)
    assert n_linked > 0.3 * model.pop.n_alive  # most married elderly are paired in the population
    assert n_linked % 2 == 0


def test_spouses_after_deaths(census: CareModel) -> None:
    pop = census.pop
    n = pop.size
    assert (pop.death_month[:n] >= 0).sum() > 1000
    n_linked = _check_spouses(census)
    assert n_linked % 2 == 0
    # some pairs were broken by a death: the survivor has no spouse now
    dead = np.flatnonzero(pop.death_month[:n] >= 0)
    widowed = pop.spouse[dead]
    widowed = widowed[widowed >= 0]
    assert widowed.size > 0
    survivors = widowed[pop.alive[widowed]]
    assert survivors.size > 0
    assert np.all(pop.spouse[survivors] == -1)
    # entrants are paired too
    entrants = pop.alive_rows()[pop.entry_month[pop.alive_rows()] >= 0]
    assert np.any(pop.spouse[entrants] >= 0)


def test_widowed_metric_counts_pairs_broken(census: CareModel, census_frame: pd.DataFrame) -> None:
    city = _city(census_frame)
    assert city["widowed"].sum() > 0
    assert (city["widowed"] <= city["deaths"] + city["residents_60plus"]).all()


# -- the 2020 census ---------------------------------------------------------------------------
def test_census_2020_residents(census_frame: pd.DataFrame) -> None:
    city = _city(census_frame)
    value = city.loc["2020-10", "residents_60plus"]
    assert abs(value / CENSUS_60PLUS - 1) < 0.02


def test_census_2020_unable_share(census_frame: pd.DataFrame) -> None:
    row = _city(census_frame).loc["2020-11"]
    unable = (row["partially_dependent"] + row["fully_dependent"]) / row["residents_60plus"]
    assert abs(unable - 0.021) < 0.005


def test_unable_share_rises_with_age(census: CareModel) -> None:
    assert census.month == month_index("2020-11") + 1
    pop = census.pop
    rows = pop.alive_rows()
    years = pop.age_m[rows] // 12
    unable = pop.health[rows] >= 3
    group = np.minimum((years - 60) // 5, 4)  # 60-64, 65-69, 70-74, 75-79, 80+
    assert years.min() >= 60
    shares = np.array([unable[group == g].mean() for g in range(5)])
    assert np.all(np.diff(shares) > 0), shares
