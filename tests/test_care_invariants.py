"""Care-system invariants over a 36-month run (scale 50), checked after every step, the KPI
columns, a model-level check of public-home admission priority, and `dispatch` properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.care.admission
from sim.care.kinds import PUBLIC, RESIDENTIAL
from sim.care.teams import dispatch
from sim.core.model import CareModel
from sim.kpis.frame import CITY
from sim.kpis.registry import KPIS
from sim.population.columns import NO_MONTH

SCALE = 50
MONTHS = 36

SHARE_COLUMNS = [k.name for k in KPIS if k.care and k.kind == "share"]
KPI_COLUMNS = [k.name for k in KPIS if k.care]


def _check(model: CareModel, n0: int, entrant_rows: int) -> dict[str, int]:
    """Violations of each invariant after one step (counts of offending rows/facilities)."""
    pop, fac = model.pop, model.places.table
    n = pop.size
    alive, left = pop.alive[:n], pop.left_month[:n] != NO_MONTH
    facility = pop.facility[:n]
    queue = pop.queue_facility[:n]
    holders = alive & (facility >= 0)
    recount = np.bincount(facility[holders], minlength=fac.size)
    in_residence = holders & np.isin(fac.kind[np.maximum(facility, 0)], RESIDENTIAL)
    return {
        "over_capacity": int((fac.occupancy > fac.capacity_rows).sum()),
        "negative_occupancy": int((fac.occupancy < 0).sum()),
        "occupancy_recount": int((recount != fac.occupancy).sum()),
        "dead_holds_facility": int((~alive & (facility >= 0)).sum()),
        "dead_holds_queue": int((~alive & (queue >= 0)).sum()),
        "resident_also_queued": int((in_residence & (queue >= 0)).sum()),
        "queue_since_mismatch": int(
            ((queue >= 0) != (pop.queue_since[:n] != NO_MONTH))[alive].sum()
        ),
        "rows_not_conserved": int(n != n0 + entrant_rows),
        "alive_dead_mismatch": int(
            (alive.sum() != pop.n_alive)
            + ((~alive).sum() != (pop.death_month[:n] != NO_MONTH).sum() + left.sum())
            + (alive.sum() + (~alive).sum() != n0 + entrant_rows)
        ),
    }


@pytest.fixture(scope="module")
def run():
    """Step the model month by month, recording invariant violations and every admission."""
    calls = []
    real_admit = sim.care.admission.admit

    def recording_admit(table, month, rows, target, priority, since, seed):
        needy = model.needy_rows  # the applicants are found without a pass over them: check it
        queued_needy = needy[model.pop.queue_facility[needy] >= 0]
        admitted = real_admit(table, month, rows, target, priority, since, seed)
        calls.append(
            {
                "month": month,
                "applicants_are_the_queued_needy": np.array_equal(rows, queued_needy),
                "rows": rows.copy(),
                "target": target.copy(),
                "kind": table.kind[target].copy(),
                "priority": np.asarray(priority).copy(),
                "since": np.asarray(since).copy(),
                "admitted": admitted.copy(),
            }
        )
        return admitted

    model = CareModel(seed=11, scale=SCALE)
    n0 = model.pop.size
    entrant_rows = 0
    violations = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim.care.admission, "admit", recording_admit)
        for _ in range(MONTHS):
            before = model.pop.size
            model.step()
            entrant_rows += model.pop.size - before
            violations.append(_check(model, n0, entrant_rows))
            calls[-1]["income"] = model.pop.income[calls[-1]["rows"]].copy()
    return {
        "model": model,
        "n0": n0,
        "violations": violations,
        "calls": calls,
        "metrics": model.metrics(),
    }


def test_applicants_are_everyone_in_need_in_a_queue(run) -> None:
    assert all(call["applicants_are_the_queued_needy"] for call in run["calls"])
    assert sum(call["rows"].size for call in run["calls"]) > 100  # queues did form


def _months_violating(run, name: str) -> list[tuple[int, int]]:
    return [(m, v[name]) for m, v in enumerate(run["violations"]) if v[name]]


@pytest.mark.parametrize(
    "name",
    [
        "over_capacity",
        "negative_occupancy",
        "occupancy_recount",
        "dead_holds_facility",
        "resident_also_queued",
        "queue_since_mismatch",
        "rows_not_conserved",
        "alive_dead_mismatch",
    ],
)
def test_invariant_holds_every_month(run, name):
    assert _months_violating(run, name) == []


def test_dead_residents_hold_no_queue_place(run):
    assert _months_violating(run, "dead_holds_queue") == []


def test_some_facilities_and_queues_in_use(run):
    """The invariants above are not vacuous."""
    model = run["model"]
    assert model.places.table.occupancy.sum() > 0
    assert (model.pop.queue_facility[: model.pop.size] >= 0).any()
    assert (~model.pop.alive[: model.pop.size]).sum() > 0


def test_persons_conserved_in_metrics(run):
    m = run["metrics"]
    start = m[(m["district"] == CITY) & (m["month"] == "2015-12")]["residents_60plus"].iloc[0]
    m = m[m["month"] >= "2016-01"]  # the care months stepped in the run
    city = m[m["district"] == CITY].reset_index(drop=True)
    assert len(city) == MONTHS
    change = city["entrants"] + city["immigrants"] - city["deaths"] - city["emigrants"]
    expected = start + change.cumsum()
    assert np.allclose(city["residents_60plus"], expected)
    model = run["model"]
    assert city["residents_60plus"].iloc[-1] == model.pop.n_alive * SCALE
    districts = m[m["district"] != CITY].groupby("month")[["residents_60plus", "deaths"]].sum()
    assert np.allclose(districts["residents_60plus"].to_numpy(), city["residents_60plus"])
    assert np.allclose(districts["deaths"].to_numpy(), city["deaths"])


def test_team_hours_used_within_capacity(run):
    u = run["metrics"]["team_utilisation"].dropna()
    assert len(u) > 0
    assert (u >= 0).all()
    assert (u <= 1 + 1e-9).all(), u.max()


def test_kpi_columns_exist_and_shares_are_shares(run):
    m = run["metrics"]
    missing = [c for c in KPI_COLUMNS if c not in m.columns]
    assert missing == []
    for col in SHARE_COLUMNS:
        x = m[col].to_numpy(dtype=float)
        finite = x[~np.isnan(x)]
        assert ((finite >= -1e-12) & (finite <= 1 + 1e-9)).all(), (col, finite.min(), finite.max())
    city = m[(m["district"] == CITY) & (m["month"] >= "2016-01")]
    for col in SHARE_COLUMNS:  # from 2016-01 the city always has a denominator
        if col != "bed_exits_death_share":  # a share of the month's exits: none in some months
            assert city[col].notna().all(), col
    before = m[m["month"] < "2016-01"]  # the population alone: no care figures
    assert before[KPI_COLUMNS].isna().all().all()
    counts = ["empty_beds", "residents_in_institutions", "queue_length", "unmet_care_hours"]
    assert (m.loc[m["month"] >= "2016-01", counts] >= 0).all().all()


def test_arrangement_shares_partition_those_in_need(run):
    m = run["metrics"]
    shares = m[[c for c in SHARE_COLUMNS if c.startswith("share_")]]
    total = shares.sum(axis=1)[shares.notna().all(axis=1)]
    assert np.allclose(total, 1.0)


def test_institution_metrics_match_the_residents(run):
    model, m = run["model"], run["metrics"]
    pop, fac = model.pop, model.places.table
    n = pop.size
    f = pop.facility[:n][pop.alive[:n] & (pop.facility[:n] >= 0)]
    in_res = np.isin(fac.kind[f], RESIDENTIAL).sum()
    last = m[m["district"] == CITY].iloc[-1]
    assert last["residents_in_institutions"] == in_res * SCALE


def test_public_homes_never_pass_over_a_waiting_class0_applicant(run):
    """Model level: in every month and public home, if a 三无/五保 (income 0) applicant is left
    waiting, nobody of a higher income class with a later-or-equal application got a bed (in
    fact nobody of a higher class at all, since class 0 is the top priority)."""
    contested = 0
    for call in run["calls"]:
        public = call["kind"] == PUBLIC
        assert (call["priority"][public] == np.minimum(call["income"][public], 3)).all()
        for f in np.unique(call["target"][public]):
            sel = call["target"] == f
            waiting0 = sel & ~call["admitted"] & (call["income"] == 0)
            got = sel & call["admitted"]
            if not waiting0.any() or not got.any():
                continue
            contested += 1
            earliest = call["since"][waiting0].min()
            passed_over = got & (call["income"] > 0) & (call["since"] >= earliest)
            assert not passed_over.any()
            assert (call["income"][got] == 0).all()
    # how often a class-0 applicant actually had to wait in a home that admitted someone
    print(f"contested (month, public home) pairs: {contested}")


def test_public_queue_was_non_empty_somewhere(run):
    waited = sum(
        int(((c["kind"] == PUBLIC) & ~c["admitted"]).sum()) for c in run["calls"] if c["rows"].size
    )
    assert waited > 0
    by_class = sum(
        np.bincount(c["income"][(c["kind"] == PUBLIC) & ~c["admitted"]], minlength=5)
        for c in run["calls"]
        if c["rows"].size
    )
    print(f"public-home applicant-months left waiting, by income class 0..4: {by_class}")


# -- dispatch -----------------------------------------------------------------------------------


@st.composite
def dispatch_case(draw):
    n_d = draw(st.integers(1, 4))
    n = draw(st.integers(0, 40))
    cap = draw(
        st.lists(st.floats(0, 300, allow_nan=False), min_size=n_d, max_size=n_d).map(np.array)
    )
    rows = np.array(draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True)))
    district = np.array(draw(st.lists(st.integers(0, n_d - 1), min_size=n, max_size=n)))
    request = np.array(draw(st.lists(st.floats(0, 80, allow_nan=False), min_size=n, max_size=n)))
    priority = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    return (
        cap,
        rows.astype(np.int64),
        district.astype(np.int64),
        request.astype(float),
        priority.astype(np.int64),
    )


@settings(max_examples=120, deadline=None)
@given(case=dispatch_case(), seed=st.integers(0, 1000), month=st.integers(0, 300))
def test_dispatch_properties(case, seed, month):
    cap, rows, district, request, priority = case
    granted = dispatch(cap, rows, district, request, priority, seed, month)
    assert granted.shape == rows.shape
    tol = 1e-9 * (1 + cap.max(initial=0) + request.sum())
    assert (granted >= 0).all()
    assert (granted <= request + tol).all()
    for d in range(cap.size):
        sel = district == d
        used = granted[sel].sum()
        assert used <= cap[d] + tol
        # work conserving: either every request is met or the district's hours are used up
        assert used >= min(cap[d], request[sel].sum()) - tol
        for p in np.unique(priority[sel]):
            short = sel & (priority == p) & (granted < request - tol)
            if short.any():
                lower = sel & (priority > p)
                assert (granted[lower] <= tol).all()


def test_dispatch_does_not_depend_on_array_order():
    rng = np.random.default_rng(3)
    n = 200
    rows = rng.choice(10**6, n, replace=False)
    district = rng.integers(0, 3, n)
    request = rng.uniform(0, 60, n)
    priority = rng.integers(0, 2, n)
    cap = np.array([500.0, 2000.0, 0.0])
    a = dispatch(cap, rows, district, request, priority, 4, 17)
    perm = rng.permutation(n)
    b = dispatch(cap, rows[perm], district[perm], request[perm], priority[perm], 4, 17)
    assert np.allclose(a[perm], b)
