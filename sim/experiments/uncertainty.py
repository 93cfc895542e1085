"""Parameter uncertainty: a range for every parameter that is not a lever, draws over them, and
their spread in the headline KPIs, combined with the model's own randomness.

The uncertain factors (`calibration/parameter_ranges.csv`, written by `eldercare ranges --write`):

- **assumed** parameters (their source says "assumed"): uniform over the declared range, or over
  the declaration's `plausible` range where the declared [lo, hi] is only what the code allows
  (`sim.params.declare.param`). A tuple (e.g. care hours by state) is one factor: its elements
  move together from the low to the high end of their own ranges.
- **sourced** parameters that declare a `plausible` range (the source's interval, or the
  tolerance its calibration target carries): triangular, peaked at the sourced value.
- **fitted** parameters: the range that keeps the fitted statistic within its tolerance in
  `calibration/targets.csv` (rows of role 'fit' only). Each draw places the target uniformly in
  [value - tolerance, value + tolerance]. The population pair (entry share, net migration) and the
  residential choice constants are *refitted in every draw* to those target values, given the
  draw's other parameters (so a draw with higher mortality still meets the 2021 deaths, and one
  with another choice coefficient still meets the CLHLS institutionalisation rate); the level of
  'unable to self-care' and of the chronic-condition flag are interpolated along their profile
  (the fitted factor at each end of the tolerance: the tables are built to the target level
  whatever the other health parameters, so no refit is needed).

Levers are the scenario, not uncertainty; a parameter the scenario sets is not drawn either.
Draws are a Latin hypercube over the factors' unit cube, shared by every seed (common random
numbers): `eldercare uncertainty` runs draws x seeds on the batch executor and writes 5/50/95%
quantiles per KPI and year with the share of variance from parameters and from seeds;
`intervals(kpi, year)` reads the shipped result for the report and the app.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from sim.experiments.batch import BatchSpec, lhs_points, nested, prepare, run_batch, run_file
from sim.experiments.results import (
    OutputError,
    code_digest,
    code_version,
    params_hash,
    read_manifest,
    write_csv_atomic,
    write_json_atomic,
)
from sim.experiments.scenario import Scenario, apply_params, deep_merge
from sim.kpis.frame import CITY
from sim.kpis.registry import BY_NAME, in_view
from sim.params.declare import ParamInfo
from sim.params.sections import Params

ROOT = Path(__file__).resolve().parents[2]
RANGES_PATH = ROOT / "calibration" / "parameter_ranges.csv"
TARGETS_PATH = ROOT / "calibration" / "targets.csv"
SHIPPED_PATH = ROOT / "calibration" / "uncertainty_plan.csv"
KINDS = ("assumed", "fitted", "sourced")
RANGE_COLUMNS = [
    "factor", "path", "kind", "how", "distribution", "default", "low", "high", "unit", "target",
    "target_low", "target_high", "basis",
]  # fmt: skip
# The headline KPIs given intervals: the key list and the figures the plan's questions turn on.
HEADLINE = (
    *in_view("key"),
    "medical_care_demand",
    "deaths_attributable_unmet",
    "residents_60plus",
    "residents_80plus",
)
# The gradient of the chronic-condition flag by health state: the log odds ratios against
# 'healthy' (declared 1, 1.3, 2.5, 4, 6: assumed) times this factor, the level held: half to one
# and a half times the assumed gradient; both ends keep every state within the ranges the
# declaration states (tests/test_uncertainty.py checks it).
GRADIENT = "health.medical_need_prevalence:gradient"
GRADIENT_RANGE = (0.5, 1.5)
MEDICAL_STATE_RANGES = ((0.2, 0.6), (0.3, 0.7), (0.4, 0.85), (0.5, 0.95), (0.6, 0.98))


class UncertaintyError(ValueError):
    """A bad ranges file, an unknown KPI or year, or an output folder of another analysis."""


# -- factors ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fitted:
    """A fitted parameter: the 'fit' target it is fitted to and how a draw sets it."""

    factor: str  # the parameter's path (with an element slice if only part of it is fitted)
    target: str  # row of calibration/targets.csv (role 'fit')
    how: str  # 'refit' (solved in every draw) or 'profile' (interpolated between the ends)
    stage: str  # calibration stage (sim.experiments.calibrate.STAGES)
    note: str


FITTED: tuple[Fitted, ...] = (
    Fitted("demography.entry_share", "pop_60plus_2020", "refit", "population",
           "solved with net_migration_rate on the deterministic projection in every draw, so the "
           "2020 census 60+ equals the draw's value of the target"),
    Fitted("demography.net_migration_rate", "deaths_60plus_2021", "refit", "population",
           "solved with entry_share in every draw, so the 2021 deaths at 60+ equal the draw's "
           "value of the target"),
    Fitted("health.unable_selfcare_pct", "unable_selfcare_share_2020", "profile", "health",
           "the census level times a factor; the ends are the factors at which the simulated "
           "2020 share meets the ends of the tolerance"),
    Fitted("health.medical_need_prevalence", "multimorbidity_60plus_2015", "profile", "medical",
           "the odds by state times a factor; the ends meet the ends of the tolerance; the "
           "gradient by state is a separate assumed factor that keeps this level"),
    Fitted("choice.constants[3:6]", "institutionalised_3y_65plus", "refit", "choice",
           "a common shift of the residential constants solved in every draw on the model "
           "itself (the draw's first seed and scale, to 2019-12)"),
)  # fmt: skip
FITTED_BY_FACTOR = {f.factor: f for f in FITTED}


def base_path(factor: str) -> str:
    """The parameter path of a factor name ('choice.constants[3:6]' -> 'choice.constants')."""
    return factor.split("[")[0].split(":")[0]


def element_slice(factor: str, size: int) -> slice:
    """The elements of a tuple parameter a factor sets (all, or '[a:b]')."""
    if "[" not in factor:
        return slice(0, size)
    a, b = factor.split("[", 1)[1].rstrip("]").split(":")
    return slice(int(a), int(b))


@dataclass(frozen=True)
class Factor:
    """One uncertain input: `value(u)` maps a point u in [0, 1] to the parameter's value (a
    number, or a tuple whose elements move together), or, for a refitted factor, to the value of
    its target."""

    name: str
    path: str
    kind: str  # assumed | fitted | sourced
    how: str  # range | profile | refit | gradient
    distribution: str  # uniform | triangular (peak at the default)
    default: float | tuple[float, ...]
    low: float | tuple[float, ...]
    high: float | tuple[float, ...]
    unit: str = ""
    target: str = ""
    target_low: float = math.nan
    target_high: float = math.nan
    basis: str = ""

    def quantile(self, u: float) -> float:
        """The factor's position in [0, 1] for a uniform u (its distribution's inverse CDF)."""
        if self.distribution == "uniform":
            return float(u)
        lo, hi, mode = (np.atleast_1d(v).astype(float) for v in (self.low, self.high, self.default))
        span = hi - lo
        moving = np.flatnonzero(span > 0)
        c = float((mode[moving[0]] - lo[moving[0]]) / span[moving[0]]) if moving.size else 0.5
        if u < c:
            return math.sqrt(u * c)
        return 1.0 - math.sqrt((1.0 - u) * (1.0 - c))

    def value(self, u: float) -> Any:
        if self.how == "refit":
            return self.target_low + float(u) * (self.target_high - self.target_low)
        q = self.quantile(u)
        if isinstance(self.low, tuple):
            return tuple(a + q * (b - a) for a, b in zip(self.low, self.high, strict=True))
        return self.low + q * (self.high - self.low)


def _kind(info: ParamInfo) -> str | None:
    """'assumed', 'sourced' (a sourced value with a plausible range) or None (held fixed)."""
    if info.assumed:
        return "assumed"
    return "sourced" if info.plausible is not None else None


def declared_factors(params: Params | None = None) -> list[Factor]:
    """The assumed and sourced factors, from the declarations (every non-lever parameter whose
    source is assumed, and every sourced one with a `plausible` range); the fitted ones are
    `fitted_factors`. UncertaintyError for an uncertain tuple without per-element ranges."""
    params = params or Params()
    out = []
    for info in params.describe():
        kind = _kind(info)
        if info.lever is not None or kind is None or isinstance(info.default, (bool, str)):
            continue
        part = _fitted_part(info.path)
        if part == info.path:  # fitted as a whole (`fitted_factors`)
            if info.path == "health.medical_need_prevalence":
                out.append(_gradient_factor(info))
            continue
        low, high = info.plausible if info.plausible is not None else (info.lo, info.hi)
        name, default = info.path, info.default
        if isinstance(default, tuple):
            if info.plausible is None:
                raise UncertaintyError(
                    f"{info.path}: an uncertain tuple needs a plausible range per element"
                )
            default = tuple(float(v) for v in default)
            free = [i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a != b]
            if part is not None:  # some elements are fitted: this factor moves the others
                fitted = element_slice(part, len(default))
                free = [i for i in free if not fitted.start <= i < fitted.stop]
                name = f"{info.path}[{min(free)}:{max(free) + 1}]"
            low = tuple(float(low[i]) if i in free else d for i, d in enumerate(default))
            high = tuple(float(high[i]) if i in free else d for i, d in enumerate(default))
        else:
            default, low, high = float(default), float(low), float(high)
        out.append(
            Factor(name, info.path, kind, "range",
                   "uniform" if kind == "assumed" else "triangular", default, low, high,
                   info.unit, basis=_basis(info, kind))
        )  # fmt: skip
    return out


def _fitted_part(path: str) -> str | None:
    """The fitted factor of parameter `path`: None if none, `path` if all of it is fitted,
    'path[a:b]' if only those elements are."""
    for f in FITTED:
        if base_path(f.factor) == path:
            return f.factor
    return None


def _basis(info: ParamInfo, kind: str) -> str:
    text = info.source if not info.doc else f"{info.source}; {info.doc}"
    if kind == "assumed" and info.plausible is not None:
        text = f"declared range [{info.lo:g}, {info.hi:g}] narrowed (plausible): {text}"
    return " ".join(text.split())


def _gradient_factor(info: ParamInfo) -> Factor:
    return Factor(
        GRADIENT, info.path, "assumed", "gradient", "uniform", 1.0, *GRADIENT_RANGE,
        basis="assumed: log odds ratios of the chronic-condition flag by state against "
        "'healthy' (declared odds 1, 1.3, 2.5, 4, 6; no survey by dependency found) times this "
        "factor, the 2015 level of the 60+ held; the ends keep each state within the ranges "
        "the declaration states",
    )  # fmt: skip


def fitted_factors(profile: pd.DataFrame) -> list[Factor]:
    """The fitted factors with the parameter ends of `profile` (rows of the ranges table)."""
    rows = profile.set_index("factor")
    out = []
    for f in FITTED:
        r = rows.loc[f.factor]
        out.append(
            Factor(f.factor, base_path(f.factor), "fitted", f.how, "uniform",
                   _parse(r["default"]), _parse(r["low"]), _parse(r["high"]), str(r["unit"]),
                   f.target, float(r["target_low"]), float(r["target_high"]), str(r["basis"]))
        )  # fmt: skip
    return out


# -- the ranges table ------------------------------------------------------------------------------
def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(f"{v:.6g}" for v in value)
    return f"{value:.6g}"


def _parse(text: Any) -> float | tuple[float, ...]:
    if isinstance(text, (int, float)):
        return float(text)
    parts = str(text).split()
    return float(parts[0]) if len(parts) == 1 else tuple(float(p) for p in parts)


def ranges_table(factors: Sequence[Factor]) -> pd.DataFrame:
    rows = []
    for f in factors:
        rows.append(
            {
                "factor": f.name,
                "path": f.path,
                "kind": f.kind,
                "how": f.how,
                "distribution": f.distribution,
                "default": _format(f.default),
                "low": _format(f.low),
                "high": _format(f.high),
                "unit": f.unit,
                "target": f.target,
                "target_low": "" if math.isnan(f.target_low) else f"{f.target_low:.6g}",
                "target_high": "" if math.isnan(f.target_high) else f"{f.target_high:.6g}",
                "basis": f.basis,
            }
        )
    return pd.DataFrame(rows, columns=RANGE_COLUMNS)


@functools.cache
def _read_ranges(path: Path, mtime: float) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except OSError as err:
        raise UncertaintyError(f"{path}: cannot read ({err.strerror or err})") from None
    missing = [c for c in RANGE_COLUMNS if c not in table.columns]
    if missing:
        raise UncertaintyError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def load_factors(path: Path = RANGES_PATH, params: Params | None = None) -> list[Factor]:
    """Every factor: the declared ones (from the declarations, here) and the fitted ones (their
    profile ends from the ranges file). UncertaintyError if the file lacks a fitted factor."""
    if not path.is_file():
        raise UncertaintyError(f"{path}: no ranges file; write it with `eldercare ranges --write`")
    table = _read_ranges(path, path.stat().st_mtime)
    have = set(table["factor"])
    lacking = [f.factor for f in FITTED if f.factor not in have]
    if lacking:
        raise UncertaintyError(f"{path}: no range for the fitted {lacking[0]}")
    profile = table[table["kind"] == "fitted"].copy()
    for column in ("target_low", "target_high"):
        profile[column] = profile[column].astype(float)
    return declared_factors(params) + fitted_factors(profile)


def profile_fitted(
    seed: int = 1, scale: float = 10, log: Callable[[str], None] = print
) -> list[Factor]:
    """The fitted factors with their ends computed here: for a 'profile' factor the fitted
    multiplier at which the simulated statistic meets each end of its tolerance (brentq on the
    model at `seed`, `scale`, as calibration does); for a 'refit' factor the parameter at each
    end (the other target at its value), for the table: the draws refit."""
    from scipy.optimize import brentq

    from sim.experiments.calibrate import STAGES, fit_value, load_targets, statistics

    targets = load_targets(TARGETS_PATH)
    fitted = Params()
    out = []
    for f in FITTED:
        value = fit_value(targets, f.target)
        tol = float(targets.loc[f.target, "tolerance"])
        ends = (value - tol, value + tol)
        path = base_path(f.factor)
        section, name = path.split(".")
        default = getattr(getattr(fitted, section), name)
        unit = next(i.unit for i in fitted.describe() if i.path == path)
        if f.stage == "population":
            low, high = (_refit_population(fitted, *_pop_targets(targets, f.target, e))[0][path]
                         for e in ends)  # fmt: skip
        else:
            moment = next(m for m in STAGES[f.stage] if m.target == f.target)
            care = f.stage == "choice"

            def gap(x: float, goal: float, m=moment, care=care, label=f.factor) -> float:
                got = statistics(m.apply(fitted, x), seed, scale, care)[m.target]
                log(f"  {label}: x = {x:.5g} -> {m.target} = {got:.5g} (goal {goal:.5g})")
                return got - goal

            bracket = CHOICE_BRACKET if f.stage == "choice" else moment.bracket
            xs = [brentq(gap, *bracket, args=(e,), xtol=1e-3) for e in ends]
            got = [getattr(getattr(moment.apply(fitted, x), section), name) for x in xs]
            low, high = got
        if isinstance(default, tuple):
            default = tuple(float(v) for v in default)
            low, high = tuple(float(v) for v in low), tuple(float(v) for v in high)
        else:
            default, low, high = float(default), float(low), float(high)
        if _first(low) > _first(high):
            low, high = high, low
        basis = (
            f"fitted (calibration stage '{f.stage}') to {f.target} = {value:g} +/- {tol:g} "
            f"({targets.loc[f.target, 'source']}); {f.note}"
        )
        out.append(Factor(f.factor, path, "fitted", f.how, "uniform", default, low, high, unit,
                          f.target, ends[0], ends[1], basis))  # fmt: skip
    return out


def _first(value: Any) -> float:
    return float(np.ravel(value)[0])


def _pop_targets(targets: pd.DataFrame, which: str, value: float) -> tuple[float, float]:
    from sim.experiments.calibrate import fit_value

    pop = fit_value(targets, "pop_60plus_2020")
    deaths = fit_value(targets, "deaths_60plus_2021")
    return (value, deaths) if which == "pop_60plus_2020" else (pop, value)


def write_ranges(path: Path = RANGES_PATH, **profile_kwargs: Any) -> pd.DataFrame:
    """Compute the fitted profiles and write the ranges table (declared and fitted factors)."""
    factors = declared_factors() + profile_fitted(**profile_kwargs)
    table = ranges_table(factors)
    write_csv_atomic(table, path)
    return table


# -- draws -----------------------------------------------------------------------------------------
def unit_draws(n: int, k: int, seed: int) -> np.ndarray:
    """A Latin hypercube of n points in [0, 1]^k, deterministic in `seed`."""
    return lhs_points([(0.0, 1.0)] * k, n, seed)


@dataclass(frozen=True)
class Draw:
    """One parameter draw before its refits: parameter values by path, and target values."""

    values: dict[str, Any]
    targets: dict[str, float]


def draw(factors: Sequence[Factor], u: Sequence[float], base: Params, refit: bool = True) -> Draw:
    """The parameter values (dotted path -> value) and refit targets of one point u. Without
    `refit`, a refitted factor moves its parameter between the ends of the ranges table (the
    parameter at each end of the target's tolerance, the other parameters as fitted)."""
    values: dict[str, Any] = {}
    targets: dict[str, float] = {}
    gradient = None
    for f, x in zip(factors, u, strict=True):
        v = f.value(float(x))
        if f.how == "refit" and not refit:
            v = replace(f, how="profile").value(float(x))
        if f.how == "refit" and refit:
            targets[f.target] = v
        elif f.how == "gradient":
            gradient = v
        elif "[" in f.name:  # part of a tuple: the other elements as drawn or as in `base`
            current = list(values.get(f.path, _get(base, f.path)))
            part = element_slice(f.name, len(current))
            current[part] = v[part]
            values[f.path] = tuple(current)
        else:
            values[f.path] = v
    for path, v in list(values.items()):
        values[path] = _cast(_get(base, path), v)
    if gradient is not None:
        path = "health.medical_need_prevalence"
        level = values.get(path, _get(base, path))
        with_values = base.with_overrides(_nested(values))
        values[path] = regrade(level, gradient, state_weights_2015(with_values))
    return Draw(values, targets)


def _get(params: Params, path: str) -> Any:
    obj = params
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _cast(current: Any, value: Any) -> Any:
    """Whole numbers for integer parameters; floats otherwise (tuples element by element)."""
    if isinstance(current, tuple):
        return tuple(_cast(c, v) for c, v in zip(current, value, strict=True))
    if isinstance(current, int) and not isinstance(current, bool):
        return round(float(value))
    return float(value)


def _nested(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, v in values.items():
        out = deep_merge(out, nested(path, list(v) if isinstance(v, tuple) else v))
    return out


def state_weights_2015(params: Params) -> np.ndarray:
    """Share of the 60+ in each health state in 2015 (the target mix by sex and age, weighted by
    WPP China's ages, the mean of the 2010 and 2020 tables): the weights that hold the
    chronic-condition level when its gradient by state changes."""
    from sim.population.demography import single_ages_by_sex
    from sim.population.health import target_prevalence

    mix = target_prevalence(params.health.settings(params.demography.max_hazard))
    ages = (single_ages_by_sex(2010) + single_ages_by_sex(2020)) / 2
    w = (mix * ages[:, :, None]).sum(axis=(0, 1))
    return w / w.sum()


def regrade(level: Sequence[float], gradient: float, weights: np.ndarray) -> tuple[float, ...]:
    """Prevalence by state with the log odds ratios against state 0 times `gradient`, shifted so
    the weighted mean stays that of `level`."""
    p = np.asarray(level, dtype=float)
    logit = np.log(p / (1 - p))
    graded = logit[0] + gradient * (logit - logit[0])
    goal = float(weights @ p)
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        mean = float(weights @ (1 / (1 + np.exp(-(graded + mid)))))
        lo, hi = (mid, hi) if mean < goal else (lo, mid)
    out = 1 / (1 + np.exp(-(graded + (lo + hi) / 2)))
    return tuple(float(round(v, 6)) for v in out)


# -- refits ----------------------------------------------------------------------------------------
POP_GOAL = 1e-4  # relative accuracy of the population refit (the tolerances are 2% and 10%)
CHOICE_GOAL = 0.05  # the institutionalisation refit stops within 5% of its target (tolerance 50%)
# The residential shift's bracket: wider below than calibration's (-3, 3), whose lower end still
# gives 0.47% against the tolerance's 0.4% (the declared constants allow down to -8).
CHOICE_BRACKET = (-6.0, 3.0)


def _refit_population(
    params: Params, pop_60plus: float, deaths: float, weights: tuple[float, float] = (1.0, 1.0)
) -> tuple[dict[str, float], dict[str, Any]]:
    """Entry share and net migration that make the deterministic projection meet both targets:
    Newton steps with a finite-difference Jacobian; where the declared bounds stop them (e.g. high
    mortality with few deaths needs more out-migration than the range allows), the bounded least
    squares of the misses in `weights` (the targets' tolerances)."""
    from scipy.optimize import least_squares

    from sim.population.projection import project

    d = params.demography
    names = ("entry_share", "net_migration_rate")
    infos = {i.path: i for i in params.describe()}
    lo = np.array([infos[f"demography.{n}"].lo for n in names])
    hi = np.array([infos[f"demography.{n}"].hi for n in names])
    goal = np.array([pop_60plus, deaths])

    def outputs(x: np.ndarray) -> np.ndarray:
        p = params.with_overrides({"demography": dict(zip(names, map(float, x), strict=True))})
        proj = project(p)
        return np.array([proj.on(2020, 11)["60+"], proj.deaths_in_year(2021)])

    def hit(y: np.ndarray) -> bool:
        return bool(np.all(np.abs(y / goal - 1) < POP_GOAL))

    x = np.array([d.entry_share, d.net_migration_rate])
    y = outputs(x)
    steps = np.array([1e-5, 1e-4])
    jac = np.column_stack([(outputs(x + np.eye(2)[j] * steps[j]) - y) / steps[j] for j in range(2)])
    for _ in range(8):
        if hit(y):
            break
        x = np.clip(x - np.linalg.solve(jac, y - goal), lo, hi)
        y = outputs(x)
    if not hit(y):
        sol = least_squares(lambda z: (outputs(z) - goal) / np.asarray(weights), x,
                            bounds=(lo, hi), x_scale=steps * 100, xtol=1e-10)  # fmt: skip
        x = sol.x
        y = outputs(x)
    values = {f"demography.{n}": float(v) for n, v in zip(names, x, strict=True)}
    return values, {"pop_60plus_2020": float(y[0]), "deaths_60plus_2021": float(y[1]),
                    "population_refit_ok": hit(y)}  # fmt: skip


def _refit_residential(
    params: Params, target: float, seed: int, scale: float
) -> tuple[tuple[float, ...], dict[str, Any]]:
    """The residential constants shifted together until the model's 3-year institutionalisation
    of the 65+ (CLHLS' measure, calibration stage 'choice') is within CHOICE_GOAL of `target`:
    secant steps on its log, from the fitted shift, within CHOICE_BRACKET."""
    from sim import CareModel
    from sim.experiments.calibrate import _institutionalised_3y

    declared = Params.declared().choice.constants
    constants = params.choice.constants

    def with_shift(x: float) -> Params:
        shifted = (*constants[:3], *(c + x for c in declared[3:]))
        return params.with_overrides({"choice": {"constants": list(shifted)}})

    def log_rate(x: float) -> float:
        model = CareModel(seed=seed, scale=scale, params=with_shift(x))
        return math.log(max(_institutionalised_3y(model), 1e-6))

    goal = math.log(target)
    lo, hi = CHOICE_BRACKET
    x0 = constants[3] - declared[3]
    f0 = log_rate(x0)
    x1, f1, evals = x0, f0, 1
    slope = 0.7  # d log(rate) / d shift: about 0.7 along the profile (0.4% to 1.2%); then secant
    while abs(f1 - goal) > CHOICE_GOAL and evals < 5:
        x_new = float(np.clip(x1 + (goal - f1) / slope, lo, hi))
        if x_new == x1:
            break
        f_new = log_rate(x_new)
        evals += 1
        if x_new != x1 and f_new != f1:
            slope = max((f_new - f1) / (x_new - x1), 0.05)
        x1, f1 = x_new, f_new
    shifted = tuple(float(c) for c in with_shift(x1).choice.constants)
    within = abs(f1 - goal) <= 2 * CHOICE_GOAL
    return shifted, {"institutionalised_3y_65plus": math.exp(f1), "choice_shift": x1,
                     "choice_refit_ok": bool(within), "choice_refit_runs": evals}  # fmt: skip


@dataclass(frozen=True)
class PrepareTask:
    """One draw to complete (picklable): its drawn values and targets, the scenario's overrides,
    and where the residential refit runs."""

    index: int
    values: dict[str, Any]
    targets: dict[str, float]
    scenario_overrides: dict[str, Any]
    seed: int
    scale: float
    refit: bool
    bands: dict[str, tuple[float, float]]  # target -> its tolerance band (value -/+ tolerance)


def prepare_draw(task: PrepareTask) -> dict[str, Any]:
    """The draw's final parameter values (after its refits) and what the refits reached;
    executed in a worker."""
    values = dict(task.values)
    info: dict[str, Any] = {}
    if task.refit and task.targets:
        params = Params().with_overrides(deep_merge(task.scenario_overrides, _nested(values)))
        if "pop_60plus_2020" in task.targets:
            names = ("pop_60plus_2020", "deaths_60plus_2021")
            tolerances = tuple((task.bands[n][1] - task.bands[n][0]) / 2 for n in names)
            pop, diag = _refit_population(params, *(task.targets[n] for n in names), tolerances)
            values.update(pop)
            info.update(diag)
            params = params.with_overrides(_nested(pop))
        if "institutionalised_3y_65plus" in task.targets:
            constants, diag = _refit_residential(
                params, task.targets["institutionalised_3y_65plus"], task.seed, task.scale
            )
            values["choice.constants"] = constants
            info.update(diag)
        for name, (low, high) in task.bands.items():  # what the refits reached, in the bands?
            if name in info:
                info[f"{name}_within_tolerance"] = bool(low <= info[name] <= high)
    return {"index": task.index, "values": _jsonable(values), "refit": info}


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


# -- propagation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Design:
    """What an uncertainty or sensitivity analysis runs: the scenario, the factors it draws (the
    scenario's own parameters excluded), the unit draws, seeds, scale and last month."""

    scenario: Scenario
    factors: tuple[Factor, ...]
    u: np.ndarray  # [draw, factor] in [0, 1]
    seeds: tuple[int, ...]
    scale: float
    until: str
    sample_seed: int
    refit: bool = True

    def fingerprint(self) -> str:
        key = {
            "scenario": self.scenario.overrides,
            "factors": ranges_table(self.factors).to_dict("records"),
            "u": np.round(self.u, 12).tolist(),
            "seeds": list(self.seeds),
            "scale": self.scale,
            "until": self.until,
            "refit": self.refit,
            "code": code_digest(),
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def uncertain_factors(scenario: Scenario, factors: Sequence[Factor]) -> tuple[Factor, ...]:
    """The factors the scenario does not set itself (a scenario's value is its choice)."""
    set_paths = {p for p in _flat_paths(scenario.overrides)}
    return tuple(f for f in factors if f.path not in set_paths)


def _flat_paths(tree: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        out += _flat_paths(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def make_design(
    scenario: Scenario,
    draws: int,
    seeds: Sequence[int],
    scale: float,
    until: str,
    sample_seed: int = 1,
    factors: Sequence[Factor] | None = None,
    refit: bool = True,
    first: np.ndarray | None = None,
) -> Design:
    """A Latin hypercube of `draws` points over the factors the scenario leaves uncertain
    (after the points `first`, e.g. those of an earlier analysis whose runs are reused)."""
    chosen = uncertain_factors(scenario, factors if factors is not None else load_factors())
    u = unit_draws(draws, len(chosen), sample_seed)
    if first is not None:
        u = np.vstack([first, u])
    return Design(scenario, chosen, u, tuple(seeds), float(scale), until, sample_seed, refit)


def reusable(folder: Path, design: Design) -> np.ndarray:
    """The unit draws of an earlier uncertainty analysis in `folder` whose runs at this design's
    seed a sensitivity analysis can reuse (same scenario, factors, scale, last month, refit and
    first seed); UncertaintyError otherwise."""
    man = read_manifest(Path(folder))
    if man is None or man.get("kind") != "uncertainty":
        raise UncertaintyError(f"{folder}: not an `eldercare uncertainty` output folder")
    same = {
        "scenario": man["scenario"].get("overrides") == design.scenario.overrides,
        "factors": man.get("factors") == [f.name for f in design.factors],
        "scale": man.get("scale") == design.scale,
        "until": man.get("until") == design.until,
        "refit": man.get("refit") == design.refit,
        "seed": (man.get("seeds") or [None])[0] == design.seeds[0],
    }
    differ = [k for k, ok in same.items() if not ok]
    if differ:
        raise UncertaintyError(f"{folder}: its runs differ from these ({', '.join(differ)})")
    return unit_draws(int(man["draws"]), len(design.factors), int(man["sample_seed"]))


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists() or not source.is_file():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def open_folder(out: Path, kind: str, design: Design) -> None:
    """Create `out` for this analysis, or reopen it to resume (same fingerprint); OutputError
    (nothing changed) for a folder that holds anything else."""
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        old = read_manifest(out)
        tail = "; choose another --out (nothing was changed)"
        if old is None or old.get("kind") != kind:
            what = f"an eldercare {old['kind']} output" if old and "kind" in old else "other files"
            raise OutputError(out, f"holds {what}{tail}")
        if old.get("fingerprint") != design.fingerprint():
            raise OutputError(
                out, f"holds a {kind} analysis of other draws, seeds, ranges or code{tail}"
            )
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(out, f"cannot be created ({err.strerror or err})") from None


def prepare_all(
    design: Design,
    out: Path,
    executor: Executor | None,
    workers: int,
    progress: bool,
) -> list[dict[str, Any]]:
    """Every draw completed (refits run on the executor), each saved in out/draws/ as it ends, so
    a resumed analysis redoes only the missing ones."""
    from tqdm import tqdm

    folder = out / "draws"
    folder.mkdir(exist_ok=True)
    base = design.scenario.params
    bands = {f.target: (f.target_low, f.target_high) for f in design.factors if f.target}
    tasks = []
    for i, row in enumerate(design.u):
        d = draw(design.factors, row, base, design.refit)
        tasks.append(PrepareTask(i, d.values, d.targets, design.scenario.overrides,
                                 design.seeds[0], design.scale, design.refit, bands))  # fmt: skip
    done: dict[int, dict[str, Any]] = {}
    for t in tasks:
        path = folder / f"draw={t.index}.json"
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                done[t.index] = json.loads(path.read_text(encoding="utf-8"))
    todo = [t for t in tasks if t.index not in done]
    needs_runs = design.refit and any("institutionalised_3y_65plus" in t.targets for t in todo)
    if progress and todo:
        what = "refitting the population pair" + (
            " and the residential constants (model runs to 2019-12)" if needs_runs else ""
        )
        print(f"{len(todo)} draws to prepare ({what})", flush=True)

    def keep(result: dict[str, Any]) -> None:
        done[result["index"]] = result
        write_json_atomic(folder / f"draw={result['index']}.json", result)

    with tqdm(total=len(tasks), initial=len(done), desc="draws", unit="draw",
              disable=not progress) as bar:  # fmt: skip
        if executor is None or len(todo) <= 1:
            for t in todo:
                keep(prepare_draw(t))
                bar.update(1)
        else:
            futures = [executor.submit(prepare_draw, t) for t in todo]
            try:
                for fut in as_completed(futures):
                    keep(fut.result())
                    bar.update(1)
            finally:
                for fut in futures:
                    fut.cancel()
    return [done[i] for i in range(len(tasks))]


def batch_spec(design: Design, prepared: list[dict[str, Any]], name: str) -> BatchSpec:
    """The runs (draw x seed) as a batch of the executor: one point per draw."""
    sc = design.scenario
    points, overrides, hashes = [], [], []
    for p in prepared:
        over = deep_merge(sc.overrides, _nested(p["values"]))
        params = apply_params(f"{name} draw {p['index']}", over)
        points.append(dict(p["values"]))
        overrides.append(over)
        hashes.append(params_hash(params))
    return BatchSpec(
        name, name, sc, design.seeds, design.until, design.scale, "uncertainty",
        tuple(sorted({k for p in points for k in p})), tuple(points), tuple(overrides),
        tuple(hashes),
    )  # fmt: skip


def december_values(
    spec: BatchSpec, runs: Path, kpis: Sequence[str], years: Sequence[int]
) -> pd.DataFrame:
    """City values of `kpis` in December of `years`: one row per (draw, seed, year)."""
    months = [f"{y}-12" for y in years]
    frames = []
    for i in range(len(spec.points)):
        for s in spec.seeds:
            f = pd.read_parquet(run_file(runs, i, s), columns=["month", "district", *kpis])
            f = f[(f["district"] == CITY) & f["month"].isin(months)]
            frames.append(f.assign(draw=i, seed=s, year=f["month"].str[:4].astype(int)))
    out = pd.concat(frames, ignore_index=True)
    return out[["draw", "seed", "year", *kpis]]


def propagate(
    design: Design,
    out: Path,
    kind: str,
    executor: Executor | None = None,
    workers: int = 1,
    progress: bool = True,
    kpis: Sequence[str] = HEADLINE,
    years: Sequence[int] | None = None,
    reuse: tuple[Path, int] | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]], float]:
    """Run every draw x seed (resumable); returns the December values of `kpis` (city), the
    completed draws and the wall time in seconds of this call. `reuse` (folder, n): the first
    n draws are those of the uncertainty analysis in that folder (`reusable`); its completed
    draws and runs are linked in (each run is still checked to be this analysis' own)."""
    t0 = time.perf_counter()
    out = Path(out)
    open_folder(out, kind, design)
    write_json_atomic(out / "manifest.json", manifest(design, kind))
    if reuse is not None:
        (out / "draws").mkdir(exist_ok=True)
        for i in range(reuse[1]):
            name = f"draw={i}.json"
            _link_or_copy(Path(reuse[0]) / "draws" / name, out / "draws" / name)
    prepared = prepare_all(design, out, executor, workers, progress)
    spec = batch_spec(design, prepared, f"{kind} {design.scenario.name}")
    if reuse is not None:
        prepare(spec, out / "batch")
        for i in range(reuse[1]):
            for s in design.seeds:
                source = run_file(Path(reuse[0]) / "batch" / "runs", i, s)
                _link_or_copy(source, run_file(out / "batch" / "runs", i, s))
    run_batch(spec, out / "batch", executor, progress, workers)
    last = int(design.until[:4]) if design.until.endswith("-12") else int(design.until[:4]) - 1
    years = list(years) if years is not None else list(range(2016, last + 1))
    values = december_values(spec, out / "batch" / "runs", kpis, years)
    return values, prepared, time.perf_counter() - t0


def manifest(design: Design, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "fingerprint": design.fingerprint(),
        "scenario": design.scenario.manifest(),
        "draws": int(design.u.shape[0]),
        "seeds": list(design.seeds),
        "scale": design.scale,
        "until": design.until,
        "sample_seed": design.sample_seed,
        "refit": design.refit,
        "factors": [f.name for f in design.factors],
        "code_version": code_version(),
        "code_digest": code_digest(),
        **extra,
    }


def summarise(values: pd.DataFrame, kpis: Sequence[str]) -> pd.DataFrame:
    """Per KPI and year: 5/50/95% quantiles and mean over every draw x seed (parameter and
    stochastic uncertainty together), and the share of the variance from the parameters:
    between-draw variance of the seed means less its seed part, over the total (one-way
    random-effects ANOVA); the rest is the seeds'."""
    rows = []
    for year, g in values.groupby("year", sort=True):
        for k in kpis:
            v = g.pivot_table(index="draw", columns="seed", values=k, aggfunc="first")
            x = v.to_numpy(dtype=float)
            flat = x[np.isfinite(x)]
            m = x.shape[1]
            within = float(np.nanmean(np.nanvar(x, axis=1, ddof=1))) if m > 1 else 0.0
            between = float(np.nanvar(np.nanmean(x, axis=1), ddof=1)) if x.shape[0] > 1 else 0.0
            param = max(between - within / m, 0.0)
            total = param + within
            p05, p50, p95 = (np.quantile(flat, [0.05, 0.5, 0.95]) if flat.size
                             else (np.nan,) * 3)  # fmt: skip
            rows.append(
                {
                    "kpi": k,
                    "year": int(year),
                    "unit": BY_NAME[k].unit if k in BY_NAME else "",
                    "p05": p05,
                    "p50": p50,
                    "p95": p95,
                    "mean": float(flat.mean()) if flat.size else np.nan,
                    "sd": float(flat.std(ddof=1)) if flat.size > 1 else np.nan,
                    "param_share": param / total if total > 0 else np.nan,
                    "draws": int(x.shape[0]),
                    "seeds": int(m),
                }
            )
    return pd.DataFrame(rows)


# -- the shipped intervals -------------------------------------------------------------------------
class Interval(NamedTuple):
    """A 90% interval and its median, and what it includes (for a label)."""

    lo: float
    median: float
    hi: float
    includes: str


@functools.cache
def _shipped(path: Path, mtime: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    table = pd.read_csv(path)
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text(encoding="utf-8")) if side.is_file() else {}
    return table.set_index(["kpi", "year"]).sort_index(), meta


def includes_text(meta: dict[str, Any]) -> str:
    """One line on what an interval includes, from the analysis' sidecar."""
    n = meta.get("draws", "?")
    seeds = meta.get("seeds", [])
    kinds = meta.get("factor_kinds", {})
    what = ", ".join(f"{v} {k}" for k, v in kinds.items()) or "the uncertain"
    return (
        f"90% interval (5th-95th percentile) combining parameter uncertainty ({n} Latin-hypercube "
        f"draws over {what} parameters; fitted ones refitted or kept within their calibration "
        f"tolerance) and stochastic uncertainty ({len(seeds)} seeds per draw, common random "
        f"numbers) at scale {meta.get('scale', '?'):g}; not structural (model-form) uncertainty "
        f"nor the scenario's levers ({meta.get('scenario', '?')}, {meta.get('date', '')})"
    )


def intervals(kpi: str, year: int, path: Path = SHIPPED_PATH) -> Interval:
    """The 90% interval of the city's `kpi` in December of `year` under the plan as written
    (parameter and stochastic uncertainty combined), its median and what it includes, from the
    shipped `calibration/uncertainty_plan.csv` (written by `eldercare uncertainty`).
    UncertaintyError for a KPI or year it does not hold."""
    if not path.is_file():
        raise UncertaintyError(f"{path}: no shipped uncertainty analysis")
    table, meta = _shipped(path, path.stat().st_mtime)
    if (kpi, int(year)) not in table.index:
        kpis = sorted(set(table.index.get_level_values(0)))
        years = sorted(set(table.index.get_level_values(1)))
        if kpi not in kpis:
            raise UncertaintyError(f"no interval for KPI {kpi!r}; have {', '.join(kpis)}")
        raise UncertaintyError(f"no interval for {year}; have {years[0]}-{years[-1]}")
    row = table.loc[(kpi, int(year))]
    return Interval(float(row["p05"]), float(row["p50"]), float(row["p95"]), includes_text(meta))


def intervals_table(path: Path = SHIPPED_PATH) -> pd.DataFrame:
    """The whole shipped table (kpi, year, unit, p05, p50, p95, mean, sd, param_share, ...)."""
    if not path.is_file():
        raise UncertaintyError(f"{path}: no shipped uncertainty analysis")
    return _shipped(path, path.stat().st_mtime)[0].reset_index()


def factor_kinds(factors: Sequence[Factor]) -> dict[str, int]:
    counts = {k: sum(f.kind == k for f in factors) for k in KINDS}
    return {k: n for k, n in counts.items() if n}
