"""The population's monthly rates, shared by the stochastic model (`system`) and its
deterministic projection (`projection`), so both run on the same numbers."""

from __future__ import annotations

import numpy as np

from sim.params.sections import DemographyParams, HealthParams
from sim.population.demography import migration_rate_by_age
from sim.population.health import HealthTables, monthly_cum_in, onset_factor
from sim.population.lifetable import hazard_table


def death_probabilities(
    demography: DemographyParams, tables: HealthTables, year: int
) -> np.ndarray:
    """Monthly death probability [sex, age, state] in a calendar year: the life table's hazard by
    sex and age (times mortality_scale, with its improvement) times the state's relative risk."""
    d = demography
    table = hazard_table(year + 0.5, d.max_hazard, d.mortality_improvement)[:2]
    hazard = table[:, :, None] * d.mortality_scale * tables.mortality_rr
    return 1 - np.exp(-hazard / 12)


def leave_probabilities(demography: DemographyParams) -> np.ndarray:
    """Monthly probability of moving out [sex, age] at a negative net migration rate: the rate /
    12 of the month's starting stock (zero at a positive rate, when newcomers arrive)."""
    out = np.maximum(-migration_rate_by_age(demography), 0.0) / 12
    return np.broadcast_to(out, (2, out.size))


def transitions_cum(health: HealthParams, demography: DemographyParams, year: int) -> np.ndarray:
    """Cumulative monthly health transitions [sex, age, from, to] in a calendar year (with the
    morbidity trend after 2020)."""
    settings = health.settings(demography.max_hazard)
    return monthly_cum_in(settings, onset_factor(year, health.dependency_onset_trend))


def medical_onset_rates(prevalence: tuple[float, ...], remission: float) -> np.ndarray:
    """Monthly onset by state so that, within a state, onset/(onset+remission) = prevalence."""
    p = np.clip(np.asarray(prevalence, dtype=float), 0, 0.999)
    return remission * p / (1 - p)
