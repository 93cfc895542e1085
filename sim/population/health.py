"""Health (care-need) states, their target prevalence, monthly transitions and state mortality.

States (../shared/DESIGN.md section 4: census categories): 0 healthy, 1 basically healthy,
2 unhealthy but self-caring, 3 partially dependent, 4 fully dependent (3 + 4 = census 'unable to
self-care').

Derivation, in three steps:
1. Target prevalence by single age and sex: cumulative logits fitted to the Shanghai 2010 census
   gradient (census_health_status.csv), shifted so the 60+ level equals Shaanxi 2020 (healthy or
   basically healthy 87.8% men / 85.4% women; unable to self-care 1.8% / 2.3%) over the 2020 age
   structure; 'unable' is split into partial / full dependency by the Barthel severity shares
   (moderate 1.5% : severe 1.1% of 60+, SW China 2020, behaviour_reference.csv).
2. Base monthly rates from the CLHLS one-year matrices (clhls_transitions_1yr.csv): states 1-3
   map onto model {0,1}, 2 and {3,4}; each rate is smoothed log-linearly over age bands and sex.
   Recovery is kept (35%/yr out of the worst state at 65-70).
3. Per 5-year age band and sex, four multipliers (0/1 balance, onset of state 2, onset of
   dependency, progression 3->4) are solved so that a cohort entering at 60 with the target mix
   reproduces the target prevalence of the band (sequentially, band after band). This is the
   'scaled so the census prevalence by age is reproduced' step.

Mortality by state uses CLHLS relative risks (state 2 and 3 against state 1), normalised for each
sex and age (`lifetable.normalised_relative_risks`) so that the population-average hazard at the
target prevalence equals the life table's (WPP 2024 China by sex, lifetable.py).

A morbidity trend (`HealthParams.dependency_onset_trend`) scales the onset of dependency after
2020 (`monthly_cum_in`): compression below 0, expansion above.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.linalg import expm
from scipy.optimize import least_squares

from sim.params.sections import HealthSettings
from sim.population.demography import AGE_MIN, AGES, N_AGES, single_ages_by_sex
from sim.population.lifetable import hazard_table, normalised_relative_risks
from sim.population.reference import census_health, clhls_one_year

N_STATES = 5
STATE_NAMES = (
    "healthy",
    "basically_healthy",
    "unhealthy_selfcare",
    "partially_dependent",
    "fully_dependent",
)
SEXES = ("male", "female")
BANDS = np.arange(60, 105, 5)  # band b covers ages BANDS[b]..BANDS[b]+4; the last is 100+
_CENSUS_AGE_MID = {"60-64": 62.0, "65-69": 67.0, "70-74": 72.0}


@dataclass(frozen=True)
class HealthTables:
    """Everything the monthly kernel needs: [sex, age index, from state, to state] arrays."""

    prevalence: np.ndarray  # [sex, age, state] target mix
    monthly_cum: np.ndarray  # [sex, age, from, to] cumulative transition probabilities
    monthly: np.ndarray  # [sex, age, from, to] transition probabilities (rows sum to 1)
    mortality_rr: np.ndarray  # [sex, age, state] hazard multiplier on the all-state hazard
    multipliers: np.ndarray  # [sex, band, 4] fitted scale factors (for reports)


def _mean_age_75plus() -> float:
    """Mean age of China's 75+ in 2010 (WPP 2024), the age of the census' open group."""
    shares = single_ages_by_sex(2010).sum(axis=0)[15:]
    return float(AGE_MIN + 15 + (shares * np.arange(shares.size)).sum() / shares.sum())


def census_cumulative_logits() -> dict[str, np.ndarray]:
    """Per sex: (3 thresholds x [intercept, slope]) of logit P(category >= k) against age."""
    t = census_health()
    sh = t[(t["geography"] == "Shanghai") & t["age_group"].isin([*_CENSUS_AGE_MID, "75+"])]
    ages = {**_CENSUS_AGE_MID, "75+": _mean_age_75plus()}
    order = ["healthy", "basically_healthy", "unhealthy_but_self_care", "unable_self_care"]
    out = {}
    for sex in SEXES:
        rows = sh[sh["sex"] == sex]
        x = np.array([ages[g] for g in ages])
        coefs = []
        for k in (1, 2, 3):
            p = np.array(
                [
                    rows[(rows["age_group"] == g) & rows["category"].isin(order[k:])]["count"].sum()
                    / rows[rows["age_group"] == g]["count"].sum()
                    for g in ages
                ]
            )
            slope, intercept = np.polyfit(x, np.log(p / (1 - p)), 1)
            coefs.append((intercept, slope))
        out[sex] = np.array(coefs)
    return out


def target_prevalence(settings: HealthSettings) -> np.ndarray:
    """Target state mix [sex, age 60..110, state], level-matched to the 2020 reference."""
    logits = census_cumulative_logits()
    ages_2020 = single_ages_by_sex(int(settings.reference_year))  # WPP 2024 China, by sex
    out = np.zeros((2, N_AGES, N_STATES))
    for s, sex in enumerate(SEXES):
        weights = ages_2020[s] / ages_2020[s].sum()
        coef = logits[sex].copy()
        levels = {
            1: 1 - settings.healthy_or_basic_pct[s] / 100,
            2: settings.unable_selfcare_pct[s] / 100,
        }
        for k, level in levels.items():  # threshold 1 = 'unhealthy or worse', 2 = 'unable'
            coef[k, 0] += _shift_to_level(coef[k], weights, level)
        cum = 1 / (1 + np.exp(-(coef[:, 0][None, :] + coef[:, 1][None, :] * AGES[:, None])))
        cum = np.minimum.accumulate(cum, axis=1)  # P(>=1) >= P(>=2) >= P(>=3)
        unable = cum[:, 2]
        out[s, :, 0] = 1 - cum[:, 0]
        out[s, :, 1] = cum[:, 0] - cum[:, 1]
        out[s, :, 2] = cum[:, 1] - cum[:, 2]
        out[s, :, 3] = unable * (1 - settings.full_dependency_share)
        out[s, :, 4] = unable * settings.full_dependency_share
    return out


def _shift_to_level(coef: np.ndarray, weights: np.ndarray, level: float) -> float:
    """Intercept shift so the age-weighted mean of logistic(coef) equals `level` (bisection)."""
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        p = 1 / (1 + np.exp(-(coef[0] + mid + coef[1] * AGES)))
        lo, hi = (mid, hi) if (weights * p).sum() < level else (lo, mid)
    return (lo + hi) / 2


@cache
def clhls_smoothed_rates() -> np.ndarray:
    """Monthly CLHLS rates [sex, age, from 0..2, to 0..2] among survivors, smoothed over age."""
    t = clhls_one_year()
    mids = np.array([int(b[:2]) + 2.5 for b in t["age_band"]])
    out = np.zeros((2, N_AGES, 3, 3))
    for s, sex in enumerate(SEXES):
        for i in range(3):
            rows = t[(t["sex"] == sex) & (t["from_state"] == i + 1)]
            x = mids[rows.index]
            alive = 1 - rows["to_death"].to_numpy()
            for j in range(3):
                if i == j:
                    continue
                # assumed floor/cap: zero cells in the rounded tables would give log(0)
                p = np.clip(rows[f"to_state_{j + 1}"].to_numpy() / alive, 1e-3, 0.9)
                rate = -np.log(1 - p) / 12
                slope, intercept = np.polyfit(x, np.log(rate), 1)
                out[s, :, i, j] = np.exp(intercept + slope * np.minimum(AGES, 97.5))
    return out


@cache
def clhls_mortality_rr() -> np.ndarray:
    """Hazard ratio of CLHLS state 2 and 3 against state 1 [sex, 3], geometric mean over bands."""
    t = clhls_one_year()
    out = np.ones((2, 3))
    for s, sex in enumerate(SEXES):
        rows = t[t["sex"] == sex].pivot(index="age_band", columns="from_state", values="to_death")
        for state in (2, 3):
            out[s, state - 1] = float(np.exp(np.log(rows[state] / rows[1]).mean()))
    return out


def _generator(base: np.ndarray, m: np.ndarray, settings: HealthSettings) -> np.ndarray:
    """5-state monthly rate matrix for one age and sex from CLHLS rates and band multipliers.

    m = [share of the 0/1 churn going 0->1, onset-of-2 scale, onset-of-dependency scale,
         progression 3->4 per month].
    """
    rec = settings.recovery_scale
    q = np.zeros((N_STATES, N_STATES))
    q[0, 1] = settings.exchange_per_month * m[0]
    q[1, 0] = settings.exchange_per_month * (1 - m[0])
    q[0, 2] = q[1, 2] = base[0, 1] * m[1]
    q[0, 3] = q[1, 3] = base[0, 2] * m[2]
    q[2, 1] = base[1, 0] * rec
    q[2, 3] = base[1, 2] * m[2]
    q[3, 1] = base[2, 0] * rec
    q[3, 2] = base[2, 1] * rec
    q[3, 4] = m[3]
    q[4, 3] = base[2, 1] * rec * settings.full_dependency_recovery_ratio
    np.fill_diagonal(q, -q.sum(axis=1))
    return q


def _state_hazard(settings: HealthSettings, prevalence: np.ndarray) -> np.ndarray:
    """Hazard multiplier [sex, age, state]: CLHLS relative risks, normalised so that the
    prevalence-weighted mean is 1 for every sex and age."""
    clhls = clhls_mortality_rr()
    rr = np.ones((2, N_AGES, N_STATES))
    k = settings.full_dependency_mortality_ratio
    share_full = prevalence[..., 4] / np.maximum(prevalence[..., 3] + prevalence[..., 4], 1e-12)
    for s in range(2):
        rr[s, :, 2] = clhls[s, 1]
        partial = clhls[s, 2] / (1 - share_full[s] + k * share_full[s])
        rr[s, :, 3] = partial
        rr[s, :, 4] = partial * k
    return normalised_relative_risks(rr, prevalence)


@cache
def build_tables(settings: HealthSettings) -> HealthTables:
    """Fit the band multipliers and return the monthly tables (cached per settings)."""
    prevalence = target_prevalence(settings)
    rates = clhls_smoothed_rates()
    rr = _state_hazard(settings, prevalence)
    hazard = hazard_table(settings.reference_year, settings.max_hazard)  # [sex, age]
    monthly = np.zeros((2, N_AGES, N_STATES, N_STATES))
    multipliers = np.zeros((2, BANDS.size, 4))
    for s in range(2):
        dist, base_hazard = prevalence[s, 0].copy(), hazard[s]
        for b, start in enumerate(BANDS):
            ages = np.arange(start, min(start + 5, AGES[-1] + 1)) - AGE_MIN
            if b == BANDS.size - 1:
                ages = np.arange(start, AGES[-1] + 1) - AGE_MIN
            death = 1 - np.exp(-base_hazard[ages][:, None] * rr[s, ages] / 12)
            target = prevalence[s, ages].mean(axis=0)
            x0 = (
                np.array([0.0, 0.0, 0.0, np.log(0.01)])
                if b == 0
                else _logit_log(multipliers[s, b - 1])
            )
            fit = least_squares(
                _band_residual,
                x0,
                bounds=([-6, -5, -5, -12], [6, 5, 5, 0]),
                args=(rates[s, ages], death, dist, target, settings),
            )
            m = _from_logit_log(fit.x)
            multipliers[s, b] = m
            for a in ages:
                monthly[s, a] = expm(_generator(rates[s, a], m, settings))
            dist = _run_band(rates[s, ages], death, dist, m, settings)[1]
    monthly = np.clip(monthly, 0.0, 1.0)
    monthly /= monthly.sum(axis=3, keepdims=True)
    cum = np.cumsum(monthly, axis=3)
    cum[..., -1] = 1.0
    return HealthTables(prevalence, cum, monthly, rr, multipliers)


def _logit_log(m: np.ndarray) -> np.ndarray:
    return np.array([np.log(m[0] / (1 - m[0])), np.log(m[1]), np.log(m[2]), np.log(m[3])])


def _from_logit_log(x: np.ndarray) -> np.ndarray:
    return np.array([1 / (1 + np.exp(-x[0])), np.exp(x[1]), np.exp(x[2]), np.exp(x[3])])


def _run_band(rates, death, dist, m, settings) -> tuple[np.ndarray, np.ndarray]:
    """Survivor state mix month by month over a band: (mean mix, mix at the end)."""
    total = np.zeros(N_STATES)
    for i in range(rates.shape[0]):
        p = expm(_generator(rates[i], m, settings))
        for _ in range(12):
            dist = (dist * (1 - death[i])) @ p
            dist = dist / dist.sum()
            total += dist
    return total / total.sum(), dist


def _band_residual(x, rates, death, dist, target, settings) -> np.ndarray:
    mean, _ = _run_band(rates, death, dist, _from_logit_log(x), settings)
    return (mean[1:] - target[1:]) / np.sqrt(target[1:] + 1e-4)


def onset_factor(year: int, trend: float) -> float:
    """The multiplier on the onset of dependency in a calendar year: exp(trend x (year - 2020))
    from 2021 (1 up to 2020, where the tables are fitted to the census level)."""
    return float(np.exp(trend * max(year - 2020, 0)))


@cache
def monthly_cum_in(settings: HealthSettings, factor: float) -> np.ndarray:
    """Cumulative monthly transitions [sex, age, from, to] with the onset of dependency (from
    states 0-2 into state 3) multiplied by `factor` (the fitted tables when factor is 1)."""
    tables = build_tables(settings)
    if factor == 1.0:
        return tables.monthly_cum
    rates = clhls_smoothed_rates()
    monthly = np.zeros_like(tables.monthly)
    for s in range(2):
        for a in range(N_AGES):
            m = tables.multipliers[s, min((a + AGE_MIN - BANDS[0]) // 5, BANDS.size - 1)].copy()
            m[2] *= factor
            monthly[s, a] = expm(_generator(rates[s, a], m, settings))
    monthly = np.clip(monthly, 0.0, 1.0)
    monthly /= monthly.sum(axis=3, keepdims=True)
    cum = np.cumsum(monthly, axis=3)
    cum[..., -1] = 1.0
    cum.setflags(write=False)
    return cum
