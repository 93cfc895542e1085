"""Joint fit of the entry share and net migration at 60+, and the low / central / high variants.

Targets (sim/data/taiyuan_demography_inputs.csv, nothing else is read): the 2020 census 60+
(854,501 on 2020-11-01) and the deaths of residents 60+ in 2021 = death share x 30,967 (all-age
deaths, 2021 sample survey). The death share is an assumption (0.80, range 0.75-0.85): the fit is
solved at each end and the middle, and the spread is reported as the uncertainty it carries. The
2010 census (466,800 aged 60+, 333,395 aged 65+) is the start, reproduced exactly. The 2020 split
by age is not a target: 65+ on 2020-11-01 comes out of the cohort logic and is reported only.

Two equations, two unknowns: the pair is identified when the Jacobian is regular, which it is
because a migrant of 60+ (the stock's age mix) dies at a higher rate than an entrant aged 60.
How well it is identified is measured by `FitResult.sensitivity`: the change in the fitted
migration rate per 1,000 deaths of the target.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.optimize import least_squares

from sim.population.projection import Projection, ProjectionParams, project
from sim.population.reference import read_table

INPUTS_FILE = "taiyuan_demography_inputs.csv"
FIT_INPUTS = (
    "census_2010_60plus",
    "census_2010_65plus",
    "census_2020_60plus",
    "deaths_2021_all_ages",
    "death_share_60plus_2021",
)
DEATH_SHARE_RANGE = (0.75, 0.85)  # assumed, as in calibration/targets.csv


def fit_inputs() -> dict[str, float]:
    """The five figures the fit uses, by indicator name; no other row of the file is read."""
    t = read_table(INPUTS_FILE, ["indicator", "value"])
    rows = t[t["indicator"].isin(FIT_INPUTS)]
    values = dict(zip(rows["indicator"], rows["value"].astype(float), strict=True))
    missing = [k for k in FIT_INPUTS if k not in values]
    if missing:
        raise KeyError(f"{INPUTS_FILE}: missing {', '.join(missing)}")
    return values


@dataclass(frozen=True)
class FitResult:
    """Fitted pair, the targets it meets and what it implies."""

    params: ProjectionParams
    death_share: float
    target_60plus_2020: float
    target_deaths_2021: float
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
        p = self.params
        scale_in = np.array([p.entry_share, 0.01])
        scale_out = np.array([self.target_60plus_2020, self.target_deaths_2021])
        return float(np.linalg.cond(self.jacobian * scale_in[None, :] / scale_out[:, None]))


def _outputs(p: ProjectionParams, inputs: dict[str, float]) -> tuple[np.ndarray, Projection]:
    proj = project(p, inputs["census_2010_60plus"], inputs["census_2010_65plus"])
    return np.array([proj.on(2020, 11)["60+"], proj.deaths_in_year(2021)]), proj


def fit_entry_and_migration(
    base: ProjectionParams | None = None,
    death_share: float | None = None,
    inputs: dict[str, float] | None = None,
) -> FitResult:
    """Solve entry_share and net_migration_rate so the projection meets both targets exactly
    (within 0.01 persons), the other parameters as in `base`."""
    base = base or ProjectionParams()
    inputs = inputs or fit_inputs()
    share = inputs["death_share_60plus_2021"] if death_share is None else death_share
    target = np.array(
        [inputs["census_2020_60plus"], share * inputs["deaths_2021_all_ages"]], dtype=float
    )
    meta = {f.name: f.metadata for f in fields(ProjectionParams)}
    names = ("entry_share", "net_migration_rate")
    lo = [meta[n]["lo"] for n in names]
    hi = [meta[n]["hi"] for n in names]

    def params_of(x: np.ndarray) -> ProjectionParams:
        return replace(base, entry_share=float(x[0]), net_migration_rate=float(x[1]))

    def residual(x: np.ndarray) -> np.ndarray:
        return (_outputs(params_of(x), inputs)[0] - target) / target

    x0 = np.clip([base.entry_share, base.net_migration_rate], lo, hi)
    sol = least_squares(residual, x0, bounds=(lo, hi), xtol=1e-13, ftol=1e-13, gtol=1e-13)
    fitted = params_of(sol.x)
    out, proj = _outputs(fitted, inputs)
    jac = np.zeros((2, 2))
    for j, step in enumerate((1e-6, 1e-5)):
        x = sol.x.copy()
        x[j] += step
        jac[:, j] = (_outputs(params_of(x), inputs)[0] - out) / step
    return FitResult(fitted, share, target[0], target[1], out[0], out[1], jac, proj)


VARIANTS: dict[str, dict[str, float]] = {
    # death share -> fitted (entry share, migration); the other settings apply after 2020
    "low": {"death_share": 0.75, "entry_share_after_2020": 0.9, "mortality_improvement": 0.5},
    "central": {"death_share": 0.80, "entry_share_after_2020": 1.0, "mortality_improvement": 1.0},
    "high": {"death_share": 0.85, "entry_share_after_2020": 1.1, "mortality_improvement": 1.5},
}
"""Low / central / high to 2035. The entry share and migration are refitted at the ends of the
assumed death-share range (a higher death share needs an older stock, so more migration and a
larger 2035 60+); the entry share of the cohorts turning 60 from 2021 is scaled by 0.9 / 1 / 1.1
(assumed); mortality improvement after 2021 is 0.5 / 1 / 1.5 times WPP 2024 medium (assumed).
The morbidity trend is left to the lead (`MorbidityTrendProposal`)."""


def variant(name: str, base: ProjectionParams | None = None) -> FitResult:
    """The fit of a variant, its post-2020 settings applied before fitting (they touch the 2021
    deaths only through 2021 itself, a few deaths, and the refit absorbs that)."""
    v = VARIANTS[name]
    base = replace(
        base or ProjectionParams(),
        entry_share_after_2020=v["entry_share_after_2020"],
        mortality_improvement=v["mortality_improvement"],
    )
    return fit_entry_and_migration(base, death_share=v["death_share"])
