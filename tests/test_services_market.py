"""The shortcuts in home-care dispatch and the facility market against brute force: `dispatch`
equals serving every request in sorted key order, and bit for bit the numpy block formulation
its compiled passes follow; the kept choice distances, coverage and covering centres equal a
fresh all-pairs computation, across openings; the yearly coverage and old-age allowance sums
equal a count per resident."""

from __future__ import annotations

import numpy as np
import pytest

from sim.care.kinds import CENTRE, DAY_RURAL, DAY_URBAN, RESIDENTIAL
from sim.care.teams import _TIE_BINS, dispatch
from sim.core.model import CareModel
from sim.engine.rng import Stream, uniforms

SCALE = 50


def _dispatch_by_full_sort(capacity, rows, district, request, priority, seed, month):
    """Serve every request in (district, priority, keyed tie-break) order, one at a time."""
    tie = uniforms(seed, Stream.DISPATCH, rows, month)
    levels = int(priority.max()) + 1
    order = np.argsort((district * levels + priority) * 2.0 + tie, kind="stable")
    left = capacity.astype(float).copy()
    granted = np.zeros(rows.size)
    for i in order:
        granted[i] = min(max(left[district[i]], 0.0), request[i])
        left[district[i]] -= request[i]
    return granted


def _dispatch_case(rng, n, n_districts, levels, binding):
    rows = rng.choice(10**7, n, replace=False)
    district = rng.integers(0, n_districts, n)
    priority = rng.integers(0, levels, n)
    request = np.where(rng.random(n) < 0.2, 0.0, rng.uniform(0, 80, n))
    demand = np.bincount(district, weights=request, minlength=n_districts)
    capacity = demand * np.where(binding, rng.uniform(0.05, 0.95, n_districts), 1.5)
    return capacity, rows, district, request, priority


@pytest.mark.parametrize("n", [1, 7, 300, 20_000])
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_dispatch_equals_full_sort(n, levels):
    rng = np.random.default_rng(n * 10 + levels)
    binding = np.array([True, False, True, True, False])  # districts within and over capacity
    case = _dispatch_case(rng, n, binding.size, levels, binding)
    for month in range(3):
        granted = dispatch(*case, 5, month)
        assert np.allclose(granted, _dispatch_by_full_sort(*case, 5, month), rtol=0, atol=1e-9)


def test_dispatch_equal_requests_and_zero_capacity():
    """Equal requests (as medical visits are) fill capacity exactly; a district without hours
    grants nothing; a single partly served request gets what is left."""
    rng = np.random.default_rng(2)
    n = 5_000
    rows = rng.choice(10**7, n, replace=False)
    district = rng.integers(0, 3, n)
    priority = rng.integers(0, 2, n)
    request = np.full(n, 4.0)
    capacity = np.array([400.0, 0.0, 1002.0])
    granted = dispatch(capacity, rows, district, request, priority, 9, 40)
    expected = _dispatch_by_full_sort(capacity, rows, district, request, priority, 9, 40)
    assert np.array_equal(granted, expected)
    assert np.bincount(district, weights=granted, minlength=3).tolist() == [400.0, 0.0, 1002.0]
    assert np.sum((granted > 0) & (granted < request)) == 1


def _dispatch_by_blocks(capacity, rows, district, request, priority, seed, month):
    """Numpy reference with the float operations `dispatch` must repeat: group sums by
    np.bincount in array order, then running sums by np.cumsum over the groups, over the
    tie-break bins of the group where the hours run out, and over that bin's requests in key
    order (one running sum across districts)."""
    levels = int(priority.max()) + 1
    group = district * levels + priority
    key = group * 2.0 + uniforms(seed, Stream.DISPATCH, rows, month)
    tie_bin = np.floor(key * _TIE_BINS).astype(np.int64) - group * (2 * _TIE_BINS)
    granted = np.zeros(rows.size)
    last, last_hours = [], []  # the requests of the cut bins, and their bin's hours
    for d in range(capacity.size):
        by_group = np.bincount(priority[district == d], request[district == d], minlength=levels)
        cut, left = _cut_blocks(capacity[d], by_group)
        granted[(district == d) & (priority < cut)] = request[(district == d) & (priority < cut)]
        tied = np.flatnonzero((district == d) & (priority == cut))
        by_bin = np.bincount(tie_bin[tied], request[tied], minlength=_TIE_BINS + 1)
        cut_bin, left_bin = _cut_blocks(left, by_bin)
        granted[tied[tie_bin[tied] < cut_bin]] = request[tied[tie_bin[tied] < cut_bin]]
        last.append(tied[tie_bin[tied] == cut_bin])
        last_hours.append(np.full(last[-1].size, left_bin))
    idx, hours = np.concatenate(last), np.concatenate(last_hours)
    if idx.size:
        order = np.argsort(key[idx], kind="stable")
        idx, hours = idx[order], hours[order]
        served = np.cumsum(request[idx])
        start = np.r_[True, district[idx][1:] != district[idx][:-1]]
        before = np.r_[0.0, served][np.flatnonzero(start)][np.cumsum(start) - 1]
        grant = hours - (served - request[idx] - before)
        granted[idx] = np.clip(grant, 0.0, request[idx])
    return granted


def _cut_blocks(hours, demand):
    """First block whose running sum exceeds `hours` (len if none), and the hours left for it."""
    through = np.cumsum(demand)
    cut = int(np.sum(through <= hours))
    return cut, hours - (through[cut - 1] if cut else 0.0)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_dispatch_equals_numpy_blocks_bit_for_bit(levels):
    rng = np.random.default_rng(levels)
    binding = np.array([True, False, True, True, False, True])
    for n in (1, 50, 30_000):
        case = _dispatch_case(rng, n, binding.size, levels, binding)
        for month in range(2):
            granted = dispatch(*case, 7, month)
            expected = _dispatch_by_blocks(*case, 7, month)
            assert np.array_equal(granted.view(np.int64), expected.view(np.int64))


def test_dispatch_edge_cases():
    """No requests; every request served; no hours at all; hours that run out exactly at the
    edge of a tie-break bin, and within the first request."""
    rng = np.random.default_rng(5)
    empty = np.zeros(0, np.int64)
    assert dispatch(np.array([10.0]), empty, empty, np.zeros(0), empty, 1, 0).shape == (0,)
    n = 4_000
    rows = rng.choice(10**7, n, replace=False)
    district = rng.integers(0, 2, n)
    priority = rng.integers(0, 2, n)
    request = rng.integers(0, 9, n).astype(float)  # whole hours: every sum is exact
    plenty = np.bincount(district, weights=request) + 1.0
    assert np.array_equal(dispatch(plenty, rows, district, request, priority, 1, 3), request)
    none = dispatch(np.zeros(2), rows, district, request, priority, 1, 3)
    assert not none.any()
    key_bin = np.floor(uniforms(1, Stream.DISPATCH, rows, 3) * _TIE_BINS)
    served_first = (priority == 0) | (key_bin < 300)  # district 1 runs out at the edge of bin 300
    edge = np.array(
        [request[district == 0].sum() / 2, request[(district == 1) & served_first].sum()]
    )
    for capacity in (edge, np.array([0.5, 2.0])):
        granted = dispatch(capacity, rows, district, request, priority, 1, 3)
        assert np.array_equal(
            granted, _dispatch_by_full_sort(capacity, rows, district, request, priority, 1, 3)
        )
        assert np.array_equal(
            granted, _dispatch_by_blocks(capacity, rows, district, request, priority, 1, 3)
        )
    granted = dispatch(edge, rows, district, request, priority, 1, 3)
    assert np.array_equal(
        granted[district == 1], np.where(served_first, request, 0.0)[district == 1]
    )


# -- facility market ------------------------------------------------------------------------
def _all_pairs_km(model: CareModel, facilities: np.ndarray) -> np.ndarray:
    nb = model.geo.neighbourhoods
    x, y = nb["x_km"].to_numpy(), nb["y_km"].to_numpy()
    at = model.places.table.neigh[facilities]
    return np.hypot(x[:, None] - x[at][None, :], y[:, None] - y[at][None, :])


def _fresh_pick(model: CareModel, kind: int, month: int) -> tuple[np.ndarray, np.ndarray]:
    """Best facility of `kind` in the whole city per place entry (each neighbourhood, then each
    again with distance weighted for a child elsewhere in the city) from the full distance
    matrix of `month`."""
    t, market, choice = model.places.table, model.places.market, model.params.choice
    city = np.flatnonzero(t.is_open(month) & (t.kind == kind) & (t.capacity_rows > 0))
    km = _all_pairs_km(model, city)
    best, dist = [], []
    for weight in (1.0, choice.child_in_city_distance):
        score = choice.distance_per_km * weight * km + choice.wait_per_month * market.wait[city]
        j = np.argmax(score, axis=1)
        best.append(city[j])
        dist.append(km[np.arange(j.size), j])
    return np.concatenate(best), np.concatenate(dist)


def _fresh_coverage(model: CareModel, month: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Covered neighbourhoods per kind and the covering centre, from all pairs."""
    t, svc = model.places.table, model.params.services
    n_nb = len(model.geo.neighbourhoods)
    covered, covering, best_km = {}, np.full(n_nb, -1), np.full(n_nb, np.inf)
    for kind, radius in ((CENTRE, svc.community_radius_km), (DAY_URBAN, svc.day_care_radius_km)):
        ids = np.flatnonzero(t.is_open(month) & (t.kind == kind))
        km = _all_pairs_km(model, ids)
        covered[kind] = (km <= radius).any(axis=1)
        nearest = km.argmin(axis=1)
        dist = km[np.arange(n_nb), nearest]
        better = (dist <= radius) & (dist < best_km)
        covering[better], best_km[better] = ids[nearest[better]], dist[better]
    rural = np.flatnonzero(t.is_open(month) & (t.kind == DAY_RURAL))
    covering[t.neigh[rural]] = rural
    return covered, covering


@pytest.fixture(scope="module")
def market_run() -> list[dict]:
    """A scale-50 run through two rounds of openings (each January), checked every month."""
    model = CareModel(seed=3, scale=SCALE)
    entries = np.arange(2 * len(model.geo.neighbourhoods))
    months = []
    for month in range(26):
        model.step()
        picks = {kind: model.places.market.pick(kind, entries) for kind in RESIDENTIAL}
        fresh = {kind: _fresh_pick(model, kind, month) for kind in RESIDENTIAL}
        coverage = None
        if month % 12 == 0:
            cover = {k: model.places.market.covered_by(k, month) for k in (CENTRE, DAY_URBAN)}
            coverage = (cover, model.places.market.covering, _fresh_coverage(model, month))
        months.append({"picks": picks, "fresh": fresh, "coverage": coverage})
    return months


def test_kept_choice_distances_equal_fresh_computation(market_run):
    for month, m in enumerate(market_run):
        for kind in RESIDENTIAL:
            best, km = m["picks"][kind]
            fresh_best, fresh_km = m["fresh"][kind]
            assert np.array_equal(best, fresh_best), (month, kind)
            assert np.array_equal(km, fresh_km), (month, kind)


def test_coverage_equals_all_pairs(market_run):
    januaries = [m["coverage"] for m in market_run if m["coverage"] is not None]
    assert len(januaries) == 3
    for cover, covering, (fresh_cover, fresh_covering) in januaries:
        for kind in (CENTRE, DAY_URBAN):
            assert np.array_equal(cover[kind], fresh_cover[kind])
        assert np.array_equal(covering, fresh_covering)


@pytest.fixture(scope="module")
def january() -> CareModel:
    model = CareModel(seed=2, scale=SCALE)
    model.run_until("2017-01")  # the yearly sums were taken in this January's step
    return model


def test_coverage_sums_count_each_urban_resident(january: CareModel):
    pop, rows, month = january.pop, january.pop.alive_rows(), january.month - 1
    urban = rows[pop.urban[rows]]
    d = pop.district[urban].astype(np.int64)
    covered = [
        january.places.market.covered_by(kind, month)[pop.neigh[urban]]
        for kind in (CENTRE, DAY_URBAN)
    ]
    expected = [np.bincount(d, weights=c, minlength=10) for c in covered]
    expected.append(np.bincount(d, minlength=10).astype(float))
    assert np.array_equal(january.places._coverage(month), np.stack(expected))


def test_poor_80plus_counts_each_resident(january: CareModel):
    pop, rows = january.pop, january.pop.alive_rows()
    poor_80 = rows[(pop.age_m[rows] >= 960) & (pop.income[rows] <= 2)]
    expected = np.bincount(pop.district[poor_80], minlength=10).astype(float)
    assert expected.sum() > 0
    assert np.array_equal(january.delivery._poor_80plus(january.month - 1), expected)
