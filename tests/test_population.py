"""Tests of the population core: determinism, common random numbers, conservation of persons,
metrics consistency, incremental stocks, spouse links, and calibration checks of the fitted 2020
census level (in-sample: not validation, which is tests/test_validation.py)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from sim.core.model import CareModel
from sim.engine.calendar import FIRST_MONTH, month_index
from sim.engine.rng import Stream, categorical, uniforms
from sim.kpis.frame import CITY
from sim.params.sections import Params
from sim.population.columns import NO_MONTH, Population
from sim.population.families import (
    CHILD_CORESIDENT,
    CHILD_NONE,
    CHILD_SAME_DISTRICT,
    EXTERNAL_SPOUSE,
    NO_SPOUSE,
    pair_spouses,
)
from sim.population.geography import load_geography
from sim.population.health import build_tables
from sim.population.kernel import COUNTS, EVENT_WIDOWED, N_COUNTS, stock_counts
from sim.population.synthesis import (
    AT_START,
    NewRows,
    district_elderly_weights,
    fill_new_rows,
    new_row_draws,
    synthesise,
)

N_STOCK = 9  # columns C_60..C_MEDICAL of the stock
COUNT_COLUMNS = list(COUNTS)
CENSUS_60PLUS = 854_501


def _city(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["district"] == CITY].set_index("month")


# -- small runs at scale 50 (model construction dominates the cost, so they are shared) --------
MONTHS = 36
# care's effects on health off (unmet-need hazard ratios 1): then nothing a resident's family or
# income changes about their care reaches their health, and the CRN comparisons below are exact
NO_CARE_EFFECTS = {"health": {"unmet_need_death_hr": 1.0, "unmet_need_worsening_hr": 1.0}}
CRN_OVERRIDES = {
    "married": {"households": {"married_share_by_age": [0.6, 0.6, 0.5, 0.4, 0.3, 0.2]}},
    "income": {"income": {"urban_shares": [0.01, 0.05, 0.3, 0.5, 0.14]}},
}


@dataclass
class SmallRuns:
    base: CareModel  # seed 1, stepped month by month
    twin: CareModel  # seed 1, run_until
    other: CareModel  # seed 2
    alts: dict[str, CareModel]  # seed 1 with an override that touches neither health nor death
    start: dict[str, Population]  # populations before the first step
    crn_mismatch: list[str]  # 'name: column, month' where an alternative diverged
    stock_mismatch: list[int]  # months where the incremental stock differed from a recount


@pytest.fixture(scope="module")
def runs() -> SmallRuns:
    params = Params().with_overrides(NO_CARE_EFFECTS)
    base = CareModel(seed=1, scale=50, params=params)
    alts = {
        name: CareModel(seed=1, scale=50, params=params.with_overrides(o))
        for name, o in CRN_OVERRIDES.items()
    }
    start = {"base": copy.deepcopy(base.pop)} | {k: copy.deepcopy(m.pop) for k, m in alts.items()}
    crn_mismatch, stock_mismatch = [], []
    for month in range(MONTHS):
        base.step()
        fresh = stock_counts(base.pop, 10)
        if not np.array_equal(base.population.stock[:, :N_STOCK], fresh[:, :N_STOCK]):
            stock_mismatch.append(month)
        n = base.pop.size
        for name, alt in alts.items():
            alt.step()
            for col in ("health", "alive", "medical"):
                if alt.pop.size != n or not np.array_equal(
                    getattr(base.pop, col)[:n], getattr(alt.pop, col)[:n]
                ):
                    crn_mismatch.append(f"{name}: {col}, month {month}")
    twin = CareModel(seed=1, scale=50, params=params)
    twin.run_until("2018-12")
    other = CareModel(seed=2, scale=50, params=params)
    other.run_until("2018-12")
    return SmallRuns(base, twin, other, alts, start, crn_mismatch, stock_mismatch)


# -- determinism -------------------------------------------------------------------------------
def test_same_seed_identical_metrics(runs: SmallRuns) -> None:
    fa, fb = runs.base.metrics(), runs.twin.metrics()
    assert len(fa) == (MONTHS - FIRST_MONTH) * 11  # the population alone from 2010-11
    pd.testing.assert_frame_equal(fa, fb)


def test_same_seed_identical_columns(runs: SmallRuns) -> None:
    a, b = runs.base.pop, runs.twin.pop
    assert a.size == b.size
    for name in ("alive", "age_m", "sex", "district", "neigh", "health", "medical", "spouse"):
        np.testing.assert_array_equal(getattr(a, name)[: a.size], getattr(b, name)[: b.size], name)


def test_other_seed_differs(runs: SmallRuns) -> None:
    fa, fc = runs.base.metrics(), runs.other.metrics()
    assert list(fa["month"]) == list(fc["month"])
    assert not fa[COUNT_COLUMNS].equals(fc[COUNT_COLUMNS])
    assert not np.array_equal(runs.base.pop.health[:1000], runs.other.pop.health[:1000])
    # the deterministic parts agree: initial size and entrant counts
    assert runs.base.pop.size == runs.other.pop.size
    pd.testing.assert_series_equal(_city(fa)["entrants"], _city(fc)["entrants"])


def test_run_until_is_inclusive(runs: SmallRuns) -> None:
    m = runs.twin
    assert m.month == MONTHS
    assert m.metrics()["month"].iloc[-1] == "2018-12"
    m.run_until("2017-06")  # already past: no-op
    assert m.month == MONTHS


# -- common random numbers ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CRN_OVERRIDES))
def test_crn_health_and_death_unchanged(runs: SmallRuns, name: str) -> None:
    base, alt, start = runs.base, runs.alts[name], runs.start
    # the override does change the people it is about...
    changed = "spouse" if name == "married" else "income"
    assert not np.array_equal(getattr(start["base"], changed), getattr(start[name], changed))
    np.testing.assert_array_equal(start["base"].health, start[name].health)
    # ...but nobody's health path (compared every month) or death
    assert [m for m in runs.crn_mismatch if m.startswith(name)] == []
    n = base.pop.size
    assert alt.pop.size == n
    for col in ("health", "death_month", "medical", "age_m", "alive"):
        np.testing.assert_array_equal(getattr(base.pop, col)[:n], getattr(alt.pop, col)[:n], col)
    cols = ["month", "district", *(c for c in COUNT_COLUMNS if c != "widowed")]
    pd.testing.assert_frame_equal(base.metrics()[cols], alt.metrics()[cols])


def test_incremental_stock_every_month(runs: SmallRuns) -> None:
    assert runs.stock_mismatch == []


def test_spouses_at_start() -> None:
    """The 2010 start population: married men and women of a neighbourhood are paired."""
    params, geo = Params(), load_geography()
    tables = build_tables(params.health.settings(params.demography.max_hazard))
    pop = synthesise(params, geo, tables, 1, 50)
    n_linked = _check_spouses(pop)
    assert n_linked > 0.3 * pop.n_alive  # most married elderly are paired in the population
    assert n_linked % 2 == 0


# -- the 2020 census run (scale 10), shared by the consistency tests ---------------------------
@pytest.fixture(scope="module")
def census_run() -> tuple[CareModel, np.ndarray]:
    """Scale-10 run to 2020-11, with the rows flagged widowed each month: [month, alive/dead]."""
    model = CareModel(seed=1, scale=10)
    widowed = []
    while model.month <= month_index("2020-11"):
        model.step()
        n = model.pop.size
        flagged = (model.pop.event[:n] & EVENT_WIDOWED) != 0
        alive = model.pop.alive[:n]
        widowed.append((np.sum(flagged & alive), np.sum(flagged & ~alive)))
    return model, np.array(widowed)


@pytest.fixture(scope="module")
def census(census_run) -> CareModel:
    return census_run[0]


@pytest.fixture(scope="module")
def census_frame(census: CareModel) -> pd.DataFrame:
    return census.metrics()


def test_persons_conserved_in_columns(census: CareModel) -> None:
    pop = census.pop
    n = pop.size
    alive, dead, left = (
        pop.alive[:n],
        pop.death_month[:n] != NO_MONTH,
        pop.left_month[:n] != NO_MONTH,
    )
    assert not np.any(alive & dead) and not np.any(alive & left) and not np.any(dead & left)
    assert np.all(alive | dead | left)
    assert alive.sum() == pop.n_alive
    assert left.sum() > 0  # net out-migration at the fitted rate
    initial = np.sum(pop.entry_month[:n] == AT_START)
    assert initial == round(census.params.demography.census_2010_60plus / census.scale)
    entrants = np.sum(pop.entry_month[:n] > AT_START)
    assert alive.sum() + dead.sum() + left.sum() == initial + entrants == n
    # alive_rows lists exactly the living rows, in key order
    rows = pop.alive_rows()
    np.testing.assert_array_equal(rows, np.flatnonzero(alive))
    # nobody beyond pop.size is alive, and deaths and entries are in the simulated months
    assert not pop.alive[n:].any()
    assert pop.death_month[:n].max() < census.month
    assert pop.entry_month[:n].max() < census.month
    dm, em = pop.death_month[:n][dead], pop.entry_month[:n][dead]
    assert np.all(dm > em)  # nobody dies in their entry month


def test_persons_conserved_in_metrics(census: CareModel, census_frame: pd.DataFrame) -> None:
    city = _city(census_frame)
    initial_rows = int(np.sum(census.pop.entry_month[: census.pop.size] == AT_START))
    final = city["residents_60plus"].iloc[-1]
    arrived = city["entrants"].sum() + city["immigrants"].sum()
    departed = city["deaths"].sum() + city["emigrants"].sum()
    assert initial_rows * census.scale + arrived - departed == final
    # and month by month
    previous = initial_rows * census.scale
    for _, row in city.iterrows():
        change = row["entrants"] + row["immigrants"] - row["deaths"] - row["emigrants"]
        assert previous + change == row["residents_60plus"]
        previous = row["residents_60plus"]
    # arrival rows in the columns agree with the metrics
    entrants = np.sum(census.pop.entry_month[: census.pop.size] > AT_START)
    assert entrants * census.scale == arrived
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
    initial = pop.entry_month[: pop.size] == AT_START
    counts = np.bincount(pop.district[: pop.size][initial], minlength=10)
    w = district_elderly_weights(census.geo)
    # largest-remainder allocation: within one row of the exact share
    assert np.all(np.abs(counts - w * initial.sum()) < 1)


def test_incremental_stock_equals_recount(census: CareModel) -> None:
    fresh = stock_counts(census.pop, 10)
    assert fresh.shape == census.population.stock.shape == (10, N_COUNTS)
    np.testing.assert_array_equal(census.population.stock[:, :N_STOCK], fresh[:, :N_STOCK])


def test_neighbourhood_lies_in_district(census: CareModel) -> None:
    """Residents never move, so a resident's neighbourhood is in their district (the coverage
    sums count urban residents per neighbourhood and add them up by its district)."""
    pop, n = census.pop, census.pop.size
    nb_district = census.geo.neighbourhoods["district"].to_numpy()
    np.testing.assert_array_equal(nb_district[pop.neigh[:n]], pop.district[:n])


# -- new rows: the compiled draws against plain numpy -----------------------------------------
def _reference_pairs(rows, married, sex, neigh, age_m) -> np.ndarray:
    """`pair_spouses` by lexsort and rank keys."""
    spouse = np.where(married, EXTERNAL_SPOUSE, NO_SPOUSE).astype(np.int32)
    ranked = []
    for s in (0, 1):
        idx = np.flatnonzero(married & (sex == s))
        idx = idx[np.lexsort((rows[idx], age_m[idx], neigh[idx]))]
        nb = neigh[idx].astype(np.int64)
        first = np.r_[0, np.flatnonzero(np.diff(nb)) + 1]
        rank = np.arange(idx.size) - np.repeat(first, np.diff(np.r_[first, idx.size]))
        ranked.append((idx, nb << 32 | rank))
    (men, men_key), (women, women_key) = ranked
    _, im, iw = np.intersect1d(men_key, women_key, return_indices=True)
    spouse[men[im]] = rows[women[iw]]
    spouse[women[iw]] = rows[men[im]]
    return spouse


def _reference_new_rows(new: NewRows, month, params, geo, tables, seed) -> dict:
    """`fill_new_rows` over whole arrays: a probability vector per row, a mask per group."""
    rows, age_m, sex, district = new
    u = {stream: uniforms(seed, stream, rows, month + 1) for stream in Stream}
    dem, hh, nb = params.demography, params.households, geo.neighbourhoods
    years = age_m // 12
    villages = [nb.index[(nb["district"] == d) & (nb["kind"] == "village")] for d in range(10)]
    has_villages = np.array([v.size > 0 for v in villages])
    share = np.clip(geo.districts["urban_share"].to_numpy() * dem.urban_elderly_factor, 0, 1)
    urban = (u[Stream.INIT_URBAN] < share[district]) | ~has_villages[district]
    neigh = np.empty(rows.size, dtype=np.int64)
    for d in range(10):
        communities = nb.index[(nb["district"] == d) & (nb["kind"] == "community")].to_numpy()
        for ids, weight, at in (
            (communities, np.ones(communities.size), (district == d) & urban),
            (villages[d], nb.loc[villages[d], "registered_pop"], (district == d) & ~urban),
        ):
            neigh[at] = ids[categorical(u[Stream.INIT_NEIGHBOURHOOD][at], weight)]
    age_idx = np.minimum(years - 60, tables.prevalence.shape[1] - 1)
    health = categorical(u[Stream.INIT_HEALTH], tables.prevalence[sex.astype(int), age_idx])
    group = np.searchsorted([65, 70, 75, 80, 85], years, side="right")
    mean_beyond_first = np.maximum(np.asarray(hh.mean_children_by_age)[group] - 1, 1e-6)
    cdf = poisson.cdf(np.arange(21), mean_beyond_first[:, None])
    u_rest = np.clip(
        (u[Stream.INIT_CHILDREN] - hh.childless_share) / (1 - hh.childless_share), 0, 1 - 1e-12
    )
    n_children = np.where(
        u[Stream.INIT_CHILDREN] < hh.childless_share,
        0,
        1 + (u_rest[:, None] >= cdf).sum(1).clip(0, 20),
    )
    u_place = u[Stream.INIT_CHILD_PLACE]
    u_away = np.clip((u_place - hh.coresident_child_share) / (1 - hh.coresident_child_share), 0, 1)
    place = CHILD_SAME_DISTRICT + categorical(u_away, hh.child_place_if_not_coresident)
    place = np.where(u_place < hh.coresident_child_share, CHILD_CORESIDENT, place)
    married = u[Stream.INIT_MARRIED] < np.asarray(hh.married_share_by_age)[group]
    income_shares = np.array([params.income.rural_shares, params.income.urban_shares])
    return {
        "alive": np.ones(rows.size, dtype=bool),
        "age_m": age_m,
        "sex": sex,
        "district": district,
        "neigh": neigh,
        "urban": urban,
        "income": categorical(u[Stream.INIT_INCOME], income_shares[urban.astype(int)]),
        "health": health,
        "medical": u[Stream.INIT_MEDICAL]
        < np.asarray(params.health.medical_need_prevalence)[health],
        "n_children": n_children,
        "child_place": np.where(n_children == 0, CHILD_NONE, place),
        "entry_month": np.full(rows.size, month),
        "spouse": _reference_pairs(rows, married, sex, neigh, age_m),
    }


@pytest.mark.parametrize(
    ("seed", "month", "two_threads"), [(1, AT_START, True), (2, -5, False), (7, 233, False)]
)
def test_new_rows_equal_numpy_reference(
    seed: int, month: int, two_threads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every column `fill_new_rows` draws in its compiled pass equals the numpy draw, for rows
    with gaps, ages 60 to past the last age of the tables, every district and non-default
    household and income parameters; also when the rows are drawn in two halves on two threads
    (as the initial population is)."""
    if two_threads:
        monkeypatch.setattr("sim.population.synthesis._TWO_THREADS_FROM", 1)
    params = Params().with_overrides(
        {
            "households": {"childless_share": 0.08, "mean_children_by_age": [1.0, 2, 3, 4, 5, 6]},
            "income": {"urban_shares": [0.0, 0.05, 0.3, 0.5, 0.15]},
        }
    )
    geo, tables = (
        load_geography(),
        build_tables(params.health.settings(params.demography.max_hazard)),
    )
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(60_000, 20_000, replace=False))
    age_m = np.r_[np.full(5_000, 720), rng.integers(720, 115 * 12, rows.size - 5_000)]
    district = rng.integers(0, 10, rows.size)
    new = NewRows(rows, age_m, rng.integers(0, 2, rows.size).astype(np.int8), district)
    pop = Population(capacity=60_000)
    fill_new_rows(pop, new, month, params, geo, tables, seed)
    expected = _reference_new_rows(new, month, params, geo, tables, seed)
    for name, values in expected.items():
        np.testing.assert_array_equal(getattr(pop, name)[rows], values, err_msg=name)


def test_pair_spouses_equals_reference_with_ties() -> None:
    """Pairs by age rank per neighbourhood, ties broken by row, on crowded neighbourhoods with
    equal ages, and on the empty and one-sex cases."""
    rng = np.random.default_rng(3)
    n = 5_000
    rows = np.sort(rng.choice(10 * n, n, replace=False))
    married = rng.random(n) < 0.8
    sex = rng.integers(0, 2, n).astype(np.int8)
    neigh = rng.integers(0, 40, n).astype(np.int16)
    age_m = rng.choice([720, 721, 800, 1300], n)
    cases = [
        (rows, married, sex, neigh, age_m),
        (rows, married, np.zeros(n, dtype=np.int8), neigh, age_m),
        (rows, np.zeros(n, dtype=bool), sex, neigh, age_m),
        (rows[:0], married[:0], sex[:0], neigh[:0], age_m[:0]),
    ]
    for case in cases:
        np.testing.assert_array_equal(pair_spouses(*case), _reference_pairs(*case))
    with pytest.raises(ValueError, match="rows must increase"):
        pair_spouses(rows[::-1], married, sex, neigh, age_m)


def test_new_row_draws_are_cached_per_parameters() -> None:
    """The constant tables are built once per parameters and read-only; other parameters get
    their own tables."""
    geo, params = load_geography(), Params()
    sections = (params.demography, params.health, params.income, params.households, geo)
    draws = new_row_draws(*sections)
    assert new_row_draws(*sections) is draws
    assert not draws.neigh_cum.flags.writeable and not draws.households.children_cdf.flags.writeable
    other = params.with_overrides({"income": {"urban_shares": [0.0, 0.05, 0.3, 0.5, 0.15]}})
    redrawn = new_row_draws(*sections[:2], other.income, *sections[3:])
    assert not np.array_equal(redrawn.income_cum, draws.income_cum)


# -- spouses -----------------------------------------------------------------------------------
def _check_spouses(pop: Population) -> int:
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


def test_spouses_after_deaths(census: CareModel) -> None:
    pop = census.pop
    n = pop.size
    assert (pop.death_month[:n] != NO_MONTH).sum() > 1000
    n_linked = _check_spouses(census.pop)
    assert n_linked % 2 == 0
    # some pairs were broken by a death: the survivor has no spouse now
    dead = np.flatnonzero(pop.death_month[:n] != NO_MONTH)
    widowed = pop.spouse[dead]
    widowed = widowed[widowed >= 0]
    assert widowed.size > 0
    survivors = widowed[pop.alive[widowed]]
    assert survivors.size > 0
    assert np.all(pop.spouse[survivors] == -1)
    # entrants are paired too
    entrants = pop.alive_rows()[pop.entry_month[pop.alive_rows()] > AT_START]
    assert np.any(pop.spouse[entrants] >= 0)


def test_widowed_metric_counts_flagged_rows(census_run, census_frame: pd.DataFrame) -> None:
    _, widowed = census_run
    city = _city(census_frame).loc["2016-01":]  # the months stepped after the build
    assert city["widowed"].sum() > 0
    # the metric counts the living residents who lost a spouse (not those who died too)
    np.testing.assert_array_equal(city["widowed"].to_numpy() / 10, widowed[:, 0])


# -- calibration checks: fitted values, in-sample (not validation) -------------------------------
# The 60+ total is a fit target of the entry share and net migration, the 'unable to self-care'
# level a fit target of the health stage, and its rise with age the census gradient the health
# tables are fitted to: these tests check that the fits hold in the model, not that the model is
# valid. Validation is calibration/validation.md (`eldercare validate`, tests/test_validation.py).
def test_calibration_check_census_2020_residents(census_frame: pd.DataFrame) -> None:
    """Calibration check (fitted): the 60+ on the 2020 census day, within 2% of the census."""
    city = _city(census_frame)
    value = city.loc["2020-10", "residents_60plus"]
    assert abs(value / CENSUS_60PLUS - 1) < 0.02


def test_calibration_check_census_2020_unable_share(census_frame: pd.DataFrame) -> None:
    """Calibration check (fitted): 2.1% of the 60+ unable to self-care in 2020, +/- 0.5 pp."""
    row = _city(census_frame).loc["2020-11"]
    unable = (row["partially_dependent"] + row["fully_dependent"]) / row["residents_60plus"]
    assert abs(unable - 0.021) < 0.005


def test_calibration_check_unable_share_rises_with_age(census: CareModel) -> None:
    """Calibration check (fitted shape): the share unable to self-care rises with age, as the
    census gradient the health tables are fitted to."""
    assert census.month == month_index("2020-11") + 1
    pop = census.pop
    rows = pop.alive_rows()
    years = pop.age_m[rows] // 12
    unable = pop.health[rows] >= 3
    group = np.minimum((years - 60) // 5, 4)  # 60-64, 65-69, 70-74, 75-79, 80+
    assert years.min() >= 60
    shares = np.array([unable[group == g].mean() for g in range(5)])
    assert np.all(np.diff(shares) > 0), shares


def _model_with_cap(cap: float) -> CareModel:
    params = Params()
    demography = dataclasses.replace(params.demography, max_hazard=cap)
    return CareModel(seed=1, scale=1000, params=dataclasses.replace(params, demography=demography))


@pytest.mark.parametrize("cap", [0.5, 0.8, 2.0])
def test_max_hazard_caps_the_extrapolated_hazard(cap: float) -> None:
    """`demography.max_hazard` caps the hazard extrapolated past WPP's closed groups, nothing
    else."""
    from sim.population.lifetable import hazard_table

    capped, free = hazard_table(2030.5, cap), hazard_table(2030.5, np.inf)
    assert capped.max() <= cap * (1 + 1e-12)
    np.testing.assert_array_equal(capped[:, :30], free[:, :30])  # ages 60-89 untouched
    assert (capped < free).any() == (cap < free.max())


def test_model_mortality_follows_max_hazard() -> None:
    low, high = _model_with_cap(0.5), _model_with_cap(2.0)
    p_low, p_high = (
        low.population.death_probabilities(2030),
        high.population.death_probabilities(2030),
    )
    np.testing.assert_array_equal(p_low[:, :30], p_high[:, :30])  # ages 60-89 untouched
    assert (p_low[:, -1] < p_high[:, -1]).all()  # age 110: lower cap, fewer deaths
