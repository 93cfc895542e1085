"""Joint fit of the entry share and net migration at 60+, and the low / central / high variants.

Targets (calibration/targets.csv, role 'fit'): the 2020 census 60+ (854,501 residents on
2020-11-01) and the deaths of residents 60+ in 2021 = death share x 30,967 (all-age deaths, 2021
sample survey). The death share is an assumption (0.80, range 0.75-0.85): the variants fit at
its ends. The 2010 census (466,800 aged 60+, 333,395 aged 65+) is the start, reproduced exactly.
The 2020 split by age is not a target: the 65+ on 2020-11-01 comes out of the cohort logic.

The fit is on the deterministic projection (`sim.population.projection`), the stochastic model's
expected value (tests/test_demography.py checks that the model matches it within sampling error).
Two equations, two unknowns: the pair is identified when the Jacobian is regular, which it is
because a migrant of 60+ (the stock's age mix) dies at a higher rate than an entrant aged 60, but
weakly: `FitResult.sensitivity` is the change in the fitted migration rate per 1,000 deaths.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.optimize import least_squares

from sim.params.sections import Params
from sim.population.projection import Projection, project

CENTRAL_DEATH_SHARE = 0.80  # the share at 60+ behind the deaths target (targets.csv, assumed)


@dataclass(frozen=True)
class DemographyTargets:
    """What the fit meets: the 2020 census 60+, and the 2021 deaths at 60+ (all-age deaths
    times the assumed share CENTRAL_DEATH_SHARE)."""

    pop_60plus_2020: float
    deaths_60plus_2021: float

    def at_death_share(self, share: float) -> DemographyTargets:
        """The targets with the deaths at another assumed share of deaths at 60+."""
        return replace(
            self, deaths_60plus_2021=self.deaths_60plus_2021 * share / CENTRAL_DEATH_SHARE
        )


@dataclass(frozen=True)
class FitResult:
    """Fitted pair, the targets it meets and what it implies."""

    params: Params
    targets: DemographyTargets
    fitted_60plus_2020: float
    fitted_deaths_2021: float
    jacobian: np.ndarray  # d(60+ 2020, deaths 2021) / d(entry_share, net_migration_rate)
    projection: Projection

    @property
    def sensitivity(self) -> float:
        """Change of the fitted net migration rate per 1,000 more target deaths (60+ held)."""
        return float(np.linalg.solve(self.jacobian, [0.0, 1000.0])[1])

    @property
    def condition(self) -> float:
        """Condition number of the Jacobian in relative units (targets and parameters)."""
        p, t = self.params.demography, self.targets
        scale_in = np.array([p.entry_share, 0.01])
        scale_out = np.array([t.pop_60plus_2020, t.deaths_60plus_2021])
        return float(np.linalg.cond(self.jacobian * scale_in[None, :] / scale_out[:, None]))


def _outputs(p: Params) -> tuple[np.ndarray, Projection]:
    proj = project(p)
    return np.array([proj.on(2020, 11)["60+"], proj.deaths_in_year(2021)]), proj


def fit_entry_and_migration(base: Params, targets: DemographyTargets) -> FitResult:
    """Solve entry_share and net_migration_rate so the projection meets both targets exactly
    (within 0.01 persons), the other parameters as in `base`."""
    goal = np.array([targets.pop_60plus_2020, targets.deaths_60plus_2021], dtype=float)
    meta = {f.name: f.metadata for f in fields(base.demography)}
    names = ("entry_share", "net_migration_rate")
    lo = [meta[n]["lo"] for n in names]
    hi = [meta[n]["hi"] for n in names]

    def params_of(x: np.ndarray) -> Params:
        values = dict(zip(names, (float(x[0]), float(x[1])), strict=True))
        return replace(base, demography=replace(base.demography, **values))

    def residual(x: np.ndarray) -> np.ndarray:
        return (_outputs(params_of(x))[0] - goal) / goal

    x0 = np.clip([base.demography.entry_share, base.demography.net_migration_rate], lo, hi)
    sol = least_squares(residual, x0, bounds=(lo, hi), xtol=1e-13, ftol=1e-13, gtol=1e-13)
    fitted = params_of(sol.x)
    out, proj = _outputs(fitted)
    jac = np.zeros((2, 2))
    for j, step in enumerate((1e-6, 1e-5)):
        x = sol.x.copy()
        x[j] += step
        jac[:, j] = (_outputs(params_of(x))[0] - out) / step
    return FitResult(fitted, targets, out[0], out[1], jac, proj)


VARIANTS: dict[str, dict[str, float]] = {
    "low": {
        "death_share": 0.75,
        "entry_share_after_2020": 0.9,
        "mortality_improvement": 0.5,
        "dependency_onset_trend": -0.031,
    },
    "central": {
        "death_share": CENTRAL_DEATH_SHARE,
        "entry_share_after_2020": 1.0,
        "mortality_improvement": 1.0,
        "dependency_onset_trend": 0.0,
    },
    "high": {
        "death_share": 0.85,
        "entry_share_after_2020": 1.1,
        "mortality_improvement": 1.5,
        "dependency_onset_trend": 0.01,
    },
}
"""Low / central / high demand to 2035. The entry share and migration are refitted at the ends of
the assumed death-share range (a higher death share needs an older stock, so more migration and
a larger 2035 60+); the entry share of the cohorts turning 60 from 2021 is scaled by 0.9 / 1 / 1.1
(assumed); mortality improvement after 2021 is 0.5 / 1 / 1.5 times WPP 2024 medium (assumed);
the onset of dependency changes by -3.1% a year (compression at the CHNS 1997-2006 decline of
ADL disability, validity_reference.csv) / 0 / +1% a year (expansion, assumed: no source) after
2020."""


def fit_variant(name: str, base: Params, targets: DemographyTargets) -> FitResult:
    """The fit of a variant, its post-2020 settings applied before fitting."""
    v = VARIANTS[name]
    base = base.with_overrides(
        {
            "demography": {
                "entry_share_after_2020": v["entry_share_after_2020"],
                "mortality_improvement": v["mortality_improvement"],
            },
            "health": {"dependency_onset_trend": v["dependency_onset_trend"]},
        }
    )
    return fit_entry_and_migration(base, targets.at_death_share(v["death_share"]))
