"""Statistical checks of the monthly kernel against the configured health and mortality tables.

Tolerances come from sampling error: per-cell z-scores with the exact Poisson-binomial variance
(sum of p(1 - p) over the people at risk) must stay within 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from sim.core.model import CareModel
from sim.engine.calendar import decimal_year
from sim.params.sections import Params
from sim.population.demography import AGE_MIN, N_AGES, single_ages_by_sex
from sim.population.health import N_STATES, target_prevalence
from sim.population.rates import leave_probabilities, medical_onset_rates

Z_MAX = 5.0
SCALE = 5  # ~128k rows
N_RECORDED = 4  # months with a full before/after record
N_MONTHS = 60  # survival of the initial cohort over five years


@dataclass
class MonthRecord:
    month: int
    rows: np.ndarray
    sex: np.ndarray
    age: np.ndarray  # age index into the tables
    health0: np.ndarray
    medical0: np.ndarray
    alive1: np.ndarray
    died1: np.ndarray
    health1: np.ndarray
    medical1: np.ndarray


@dataclass
class Run:
    model: CareModel
    records: list[MonthRecord]
    cohort: np.ndarray  # initial residents aged 60-64
    cohort_sex: np.ndarray
    cohort_age_m: np.ndarray
    cohort_health: np.ndarray
    alive_by_month: np.ndarray  # [month, person in cohort]


def _age_index(age_m: np.ndarray) -> np.ndarray:
    return np.minimum(age_m // 12 - AGE_MIN, N_AGES - 1).astype(np.int64)


@pytest.fixture(scope="module")
def run() -> Run:
    model = CareModel(seed=11, scale=SCALE)
    pop = model.pop
    rows = pop.alive_rows()
    cohort = rows[pop.age_m[rows] // 12 < 65].copy()  # aged 60-64 on 2016-01-01
    cohort_sex, cohort_age_m = pop.sex[cohort].copy(), pop.age_m[cohort].copy()
    cohort_health = pop.health[cohort].copy()
    records, alive = [], []
    for step in range(N_MONTHS):
        month = model.month
        if step < N_RECORDED:
            rows = pop.alive_rows().copy()
            before = (pop.sex[rows].copy(), _age_index(pop.age_m[rows]))
            h0, m0 = pop.health[rows].copy(), pop.medical[rows].copy()
        model.step()
        if step < N_RECORDED:
            died = pop.death_month[rows] == month
            after = (
                pop.alive[rows].copy(),
                died,
                pop.health[rows].copy(),
                pop.medical[rows].copy(),
            )
            records.append(MonthRecord(month, rows, *before, h0, m0, *after))
        alive.append(pop.alive[cohort].copy())
    return Run(model, records, cohort, cohort_sex, cohort_age_m, cohort_health, np.array(alive))


def _z(observed: float, expected: float, variance: float) -> float:
    return (observed - expected) / np.sqrt(max(variance, 1e-12))


# -- health-state transitions ------------------------------------------------------------------
def test_transition_matrix_matches_tables(run: Run) -> None:
    monthly = run.model.population.tables.monthly
    observed = np.zeros((N_STATES, N_STATES))
    expected = np.zeros((N_STATES, N_STATES))
    variance = np.zeros((N_STATES, N_STATES))
    for r in run.records:
        ok = r.alive1
        s, a, h0, h1 = r.sex[ok], r.age[ok], r.health0[ok], r.health1[ok]
        np.add.at(observed, (h0, h1), 1)
        p = monthly[s, a, h0]  # [person, to]
        for f in range(N_STATES):
            sel = h0 == f
            expected[f] += p[sel].sum(axis=0)
            variance[f] += (p[sel] * (1 - p[sel])).sum(axis=0)
    assert observed.sum() > 400_000
    # people changing state at all: a few thousand per month
    assert observed.sum() - np.trace(observed) > 1000
    tested = 0
    for f in range(N_STATES):
        for t in range(N_STATES):
            if expected[f, t] >= 20:
                z = _z(observed[f, t], expected[f, t], variance[f, t])
                msg = f"{f}->{t}: observed {observed[f, t]}, expected {expected[f, t]:.1f}"
                assert abs(z) < Z_MAX, f"{msg}, z={z:.2f}"
                tested += 1
            elif expected[f, t] < 0.01:
                assert observed[f, t] == 0, f"{f}->{t} happened but has ~zero probability"
    assert tested >= 12


def test_transition_chi_square_by_origin(run: Run) -> None:
    """Pearson chi-square per origin state over destinations with expected >= 20."""
    from scipy.stats import chi2

    monthly = run.model.population.tables.monthly
    for f in range(N_STATES):
        obs = np.zeros(N_STATES)
        exp = np.zeros(N_STATES)
        for r in run.records:
            sel = r.alive1 & (r.health0 == f)
            obs += np.bincount(r.health1[sel], minlength=N_STATES)
            exp += monthly[r.sex[sel], r.age[sel], f].sum(axis=0)
        keep = exp >= 20
        if keep.sum() < 2:
            continue
        # lump the rare destinations into one cell
        o = np.r_[obs[keep], obs[~keep].sum()]
        e = np.r_[exp[keep], exp[~keep].sum()]
        o, e = o[e > 0], e[e > 0]
        stat = ((o - e) ** 2 / e).sum()
        # the multinomial chi-square is conservative for heterogeneous p (Poisson-binomial)
        assert chi2.sf(stat, o.size - 1) > 1e-4, f"from {f}: obs {o}, exp {e.round(1)}"


def test_medical_need_onset_and_remission(run: Run) -> None:
    hp = run.model.params.health
    onset = medical_onset_rates(hp.medical_need_prevalence, hp.medical_need_remission_per_month)
    remission = hp.medical_need_remission_per_month
    obs_on = exp_on = var_on = obs_off = exp_off = var_off = 0.0
    for r in run.records:
        ok = r.alive1
        no, yes = ok & ~r.medical0, ok & r.medical0
        p = onset[r.health1[no]]  # onset depends on the new state
        obs_on += r.medical1[no].sum()
        exp_on += p.sum()
        var_on += (p * (1 - p)).sum()
        obs_off += (~r.medical1[yes]).sum()
        exp_off += yes.sum() * remission
        var_off += yes.sum() * remission * (1 - remission)
    assert exp_on > 100 and exp_off > 100
    assert abs(_z(obs_on, exp_on, var_on)) < Z_MAX
    assert abs(_z(obs_off, exp_off, var_off)) < Z_MAX


# -- mortality ---------------------------------------------------------------------------------
def test_monthly_deaths_match_schedule(run: Run) -> None:
    total_obs = total_exp = total_var = 0.0
    by_state = np.zeros((3, N_STATES))
    for r in run.records:
        q = run.model.population.death_probabilities(int(decimal_year(r.month)))
        p = q[r.sex, r.age, r.health0]
        died = r.died1
        z = _z(died.sum(), p.sum(), (p * (1 - p)).sum())
        assert abs(z) < Z_MAX, f"month {r.month}: {died.sum()} deaths, expected {p.sum():.1f}"
        total_obs += died.sum()
        total_exp += p.sum()
        total_var += (p * (1 - p)).sum()
        for h in range(N_STATES):
            sel = r.health0 == h
            by_state[:, h] += died[sel].sum(), p[sel].sum(), (p[sel] * (1 - p[sel])).sum()
    assert total_obs > 1000
    assert abs(_z(total_obs, total_exp, total_var)) < Z_MAX
    for h in range(N_STATES):
        o, e, v = by_state[:, h]
        if e >= 20:
            assert abs(_z(o, e, v)) < Z_MAX, f"state {h}: {o} deaths, expected {e:.1f}"


def test_death_probabilities_consistent_with_tables(run: Run) -> None:
    model = run.model
    q = model.population.death_probabilities(2018)
    assert q.shape == (2, N_AGES, N_STATES)
    assert np.all((q > 0) & (q < 1))
    # worse health, higher mortality (state 2 and worse above the healthy states)
    assert np.all(q[:, :, 3] > q[:, :, 1])
    assert np.all(q[:, :, 4] >= q[:, :, 3])
    # rising with age at every state and sex, up to the hazard cap
    assert np.all(np.diff(q[:, :40], axis=1) > 0)
    # men die at higher rates than women of the same age and state
    assert np.all(q[0] > q[1])
    # the prevalence-weighted hazard multiplier is 1 at every age
    rr = model.population.tables.mortality_rr
    np.testing.assert_allclose(
        (rr * model.population.tables.prevalence).sum(axis=2), 1.0, rtol=1e-12
    )


def _projected_survival(run: Run) -> np.ndarray:
    """Expected probability [month, person] of being alive and still in Taiyuan by the Markov
    chain the kernel implements: each month death or moving out first (by state), then the
    transition, then ageing by one month."""
    model, tables = run.model, run.model.population.tables
    sex, age_m = run.cohort_sex.astype(np.int64), run.cohort_age_m.astype(np.int64)
    dist = np.zeros((sex.size, N_STATES))
    dist[np.arange(sex.size), run.cohort_health] = 1.0
    out = np.zeros((N_MONTHS, sex.size))
    leave = leave_probabilities(model.params.demography)
    for month in range(N_MONTHS):
        q = model.population.death_probabilities(int(decimal_year(month)))
        a = _age_index(age_m)
        dist = dist * (1 - q[sex, a] - leave[sex, a][:, None])
        dist = np.einsum("ni,nij->nj", dist, tables.monthly[sex, a])
        out[month] = dist.sum(axis=1)
        age_m = age_m + 1
    return out


def test_cohort_survival_matches_projection(run: Run) -> None:
    n = run.cohort.size
    assert n > 30_000
    expected = _projected_survival(run)
    for month in range(11, N_MONTHS, 12):
        s = expected[month]
        observed = run.alive_by_month[month].sum()
        z = _z(observed, s.sum(), (s * (1 - s)).sum())
        assert abs(z) < Z_MAX, (
            f"after {month + 1} months: survival {observed / n:.4f}, projected "
            f"{s.mean():.4f}, z={z:.2f}"
        )
    # five-year survival of 60-64 year olds is plausible (China, ~2016-2020)
    assert 0.9 < run.alive_by_month[-1].mean() < 0.97


def test_cohort_survival_by_initial_state(run: Run) -> None:
    """Kaplan-Meier (no censoring) five-year survival by health at the start."""
    expected = _projected_survival(run)[-1]
    observed = run.alive_by_month[-1]
    for h in range(N_STATES):
        sel = run.cohort_health == h
        s = expected[sel]
        if (s * (1 - s)).sum() < 20:
            continue
        z = _z(observed[sel].sum(), s.sum(), (s * (1 - s)).sum())
        assert abs(z) < Z_MAX, f"state {h}: {observed[sel].mean():.4f} vs {s.mean():.4f}"


# -- configured tables -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def settings():
    return Params().health.settings(Params().demography.max_hazard)


def test_target_prevalence_is_a_distribution(settings) -> None:
    prev = target_prevalence(settings)
    assert prev.shape == (2, N_AGES, N_STATES)
    assert np.all(prev >= 0)
    np.testing.assert_allclose(prev.sum(axis=2), 1.0, atol=1e-12)
    # dependency rises with age
    unable = prev[..., 3] + prev[..., 4]
    assert np.all(np.diff(unable, axis=1) >= 0)
    share_full = prev[..., 4] / unable
    np.testing.assert_allclose(share_full, settings.full_dependency_share, rtol=1e-9)


def test_target_prevalence_matches_shaanxi_levels(settings) -> None:
    prev = target_prevalence(settings)
    ages = single_ages_by_sex(2020)
    for s in range(2):
        w = ages[s] / ages[s].sum()
        unable = (w * (prev[s, :, 3] + prev[s, :, 4])).sum()
        healthy = (w * (prev[s, :, 0] + prev[s, :, 1])).sum()
        assert unable == pytest.approx(settings.unable_selfcare_pct[s] / 100, abs=1e-6)
        assert healthy == pytest.approx(settings.healthy_or_basic_pct[s] / 100, abs=1e-6)


def test_target_prevalence_follows_overrides() -> None:
    p = Params().with_overrides({"health": {"unable_selfcare_pct": [3.0, 4.0]}})
    settings = p.health.settings(p.demography.max_hazard)
    prev = target_prevalence(settings)
    ages = single_ages_by_sex(2020)
    for s, level in enumerate((0.03, 0.04)):
        w = ages[s] / ages[s].sum()
        assert (w * prev[s, :, 3:].sum(axis=1)).sum() == pytest.approx(level, abs=1e-6)


def test_transition_tables_are_stochastic(run: Run) -> None:
    t = run.model.population.tables
    assert t.monthly.shape == (2, N_AGES, N_STATES, N_STATES)
    assert np.all(t.monthly >= 0)
    np.testing.assert_allclose(t.monthly.sum(axis=3), 1.0, atol=1e-12)
    assert np.all(np.diff(t.monthly_cum, axis=3) >= 0)
    np.testing.assert_array_equal(t.monthly_cum[..., -1], 1.0)
    np.testing.assert_allclose(t.monthly_cum, np.cumsum(t.monthly, axis=3), atol=1e-12)
    # monthly: staying is by far the most likely outcome
    assert np.all(np.diagonal(t.monthly, axis1=2, axis2=3) > 0.5)


def test_initial_health_mix_matches_prevalence(run: Run) -> None:
    """The initial population's states are drawn from the target prevalence by sex and age."""
    prev = run.model.population.tables.prevalence
    sex, age = run.records[0].sex, run.records[0].age
    h0 = run.records[0].health0
    p = prev[sex, age]  # [person, state]
    for h in range(N_STATES):
        z = _z((h0 == h).sum(), p[:, h].sum(), (p[:, h] * (1 - p[:, h])).sum())
        assert abs(z) < Z_MAX, f"state {h}"
