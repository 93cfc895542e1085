"""Calibration: simulated statistics, staged fits, fitted file, report.

Staged so each stage is fast: 1. population (the entry share and net migration at 60+, solved
jointly on the deterministic projection, the stochastic model's expected value, to the 2020
census 60+ and the 2021 deaths: `demography_fit`), 2. health levels (the census 'unable' level
fed to sim/population/health.py, so the *simulated* 2020 level hits the target), 3. the level of
chronic conditions needing regular medical care (the odds of the medical flag, to the 2015 survey
of the aged), 4. care choice (a common shift of the residential constants). The scalar moments
are matched with scipy.optimize.brentq on model runs that reuse the same seed: common random
numbers make the objective a monotone step function, so the root search is stable.

Targets have a role (calibration/targets.csv): 'fit' rows are what the fits may read, 'validate'
rows are kept out of every fit (`fit` refuses them) and only reported. The model does not read
the targets file; data flow one way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from sim.care.kinds import DAY_URBAN, PRIVATE, PUBLIC
from sim.care.teams import teams_in_year
from sim.core.model import CareModel
from sim.experiments.demography_fit import (
    VARIANTS,
    DemographyTargets,
    fit_entry_and_migration,
    fit_variant,
)
from sim.experiments.results import code_version
from sim.params.sections import Params
from sim.population.families import CHILD_CORESIDENT

TARGET_COLUMNS = [
    "target", "role", "stage", "check", "value", "tolerance", "unit", "date", "statistic",
    "source",
]  # fmt: skip
ROLES = ("fit", "validate")
# 'within': |simulated - value| <= tolerance; 'at_most': simulated <= value + tolerance (a bound,
# e.g. stated willingness bounds intention from above); 'at_least': simulated >= value -
# tolerance; 'not_testable': a validation pattern the model cannot measure yet (validate rows
# only; sim/experiments/validate.py reports it as such)
CHECKS = ("within", "at_most", "at_least", "not_testable")
AGE_GROUPS = {"60_64": (60, 64), "65_69": (65, 69), "70_74": (70, 74), "75plus": (75, 200)}


class CalibrationError(ValueError):
    """A bad targets file or a fit that cannot proceed."""


def load_targets(path: Path) -> pd.DataFrame:
    """Read and check the targets file (every row needs a value, tolerance and source)."""
    try:
        table = pd.read_csv(path)
    except OSError as err:
        raise CalibrationError(f"{path}: cannot read ({err})") from err
    missing = [c for c in TARGET_COLUMNS if c not in table.columns]
    if missing:
        raise CalibrationError(f"{path}: missing column(s) {', '.join(missing)}")
    bad = table[table[["value", "tolerance"]].isna().any(axis=1) | table["source"].isna()]
    if len(bad):
        raise CalibrationError(
            f"{path}: target {bad.iloc[0]['target']}: value, tolerance and source are required"
        )
    for column, allowed in (("role", ROLES), ("check", CHECKS)):
        bad = table[~table[column].isin(allowed)]
        if len(bad):
            raise CalibrationError(
                f"{path}: target {bad.iloc[0]['target']}: {column} must be one of "
                f"{', '.join(allowed)}"
            )
    fitted_bounds = table[(table["role"] == "fit") & (table["check"] != "within")]
    if len(fitted_bounds):
        raise CalibrationError(
            f"{path}: target {fitted_bounds.iloc[0]['target']}: a fit target needs check 'within'"
        )
    return table.set_index("target")


def met(target: pd.Series, simulated: float) -> bool:
    """Whether a simulated value meets a target row (its `check`, value and tolerance)."""
    if target["check"] == "at_most":
        return bool(simulated <= target["value"] + target["tolerance"])
    if target["check"] == "at_least":
        return bool(simulated >= target["value"] - target["tolerance"])
    if target["check"] == "not_testable":
        raise CalibrationError(f"target {target.name}: not testable; nothing meets it")
    if target["tolerance"] > 0:
        return bool(abs(simulated - target["value"]) <= target["tolerance"])
    return bool(np.isclose(simulated, target["value"], rtol=1e-6))


def fit_value(targets: pd.DataFrame, name: str) -> float:
    """The value of a target a fit may read; CalibrationError for a validation target (kept
    out of every fit) or an unknown one."""
    if name not in targets.index:
        raise CalibrationError(f"target {name}: not in the targets file")
    if targets.loc[name, "role"] != "fit":
        raise CalibrationError(f"target {name}: a validation target; no fit may read it")
    return float(targets.loc[name, "value"])


def statistics(
    params: Params, seed: int = 1, scale: float = 10, care: bool = True
) -> dict[str, float]:
    """The simulated statistic of every 'fit' row of targets.csv, from one run to 2021-12
    (without the care system when `care` is False: the population and health stages do not need
    it). The 'validate' rows are measured by sim/experiments/validate.py."""
    model = CareModel(seed=seed, scale=scale, params=params, care=care)
    stats: dict[str, float] = {}
    model.run_until("2016-01")
    pop = model.pop
    rows = pop.alive_rows()
    stats["empty_nest_share"] = float((pop.child_place[rows] != CHILD_CORESIDENT).mean())
    fac = model.places.table
    at_start = fac.open_month < 0
    homes = at_start & np.isin(fac.kind, (PUBLIC, PRIVATE))
    stats["institutions_2015"] = float(homes.sum())
    stats["institutional_beds_2015"] = float(fac.capacity[homes].sum())
    stats["day_care_2015"] = float((at_start & (fac.kind == DAY_URBAN)).sum())
    stats["service_teams_2015"] = float(teams_in_year(params.services, 2016))
    if care:
        stats["institutionalised_3y_65plus"] = _institutionalised_3y(model)

    model.run_until("2020-10")  # the stock on 2020-11-01, the census day
    rows = pop.alive_rows()
    age = pop.age_m[rows] // 12
    health = pop.health[rows]
    for name, (lo, hi) in AGE_GROUPS.items():
        sel = (age >= lo) & (age <= hi)
        stats[f"unable_{name}"] = float((health[sel] >= 3).mean())
        stats[f"healthy_{name}"] = float((health[sel] == 0).mean())
    model.run_until("2021-12")
    frame = model.metrics()
    city = frame[frame["district"] == "Taiyuan"].set_index("month")
    survey = city.loc["2015-07"]  # the stock on 2015-08-01 (the 2015 survey of the aged)
    stats["multimorbidity_60plus_2015"] = float(survey["medical_need"] / survey["residents_60plus"])
    census = city.loc["2020-10"]  # the stock on 2020-11-01
    stats["pop_60plus_2020"] = float(census["residents_60plus"])
    stats["deaths_60plus_2021"] = float(city.loc["2021-01":"2021-12", "deaths"].sum())
    dependents = census["partially_dependent"] + census["fully_dependent"]
    stats["unable_selfcare_share_2020"] = float(dependents / census["residents_60plus"])
    stats["healthy_or_basic_share_2020"] = float(
        (census["healthy"] + census["basically_healthy"]) / census["residents_60plus"]
    )
    stats["full_dependency_share"] = float(census["fully_dependent"] / dependents)
    return stats


def _in_bed(model: CareModel, rows: np.ndarray) -> np.ndarray:
    held = model.pop.facility[rows]
    return (held >= 0) & model.places.residential[np.maximum(held, 0)]


def _institutionalised_3y(model: CareModel) -> float:
    """Of the residents 65+ living at home on 2017-01-01 and alive on 2020-01-01, the share then
    in a bed (CLHLS' 3-year institutionalisation rate, measured the same way)."""
    pop = model.pop
    model.run_until("2016-12")  # the stock on 2017-01-01
    rows = pop.alive_rows()
    cohort = rows[(pop.age_m[rows] >= 65 * 12) & ~_in_bed(model, rows)]
    model.run_until("2019-12")
    alive = cohort[pop.alive[cohort]]
    return float(_in_bed(model, alive).mean())


@dataclass(frozen=True)
class Moment:
    """One fitted parameter matched to one target by a scalar root search."""

    target: str
    lever: str
    bracket: tuple[float, float]
    apply: Callable[[Params, float], Params]


def _set(path: str) -> Callable[[Params, float], Params]:
    section, name = path.split(".")
    return lambda p, x: p.with_overrides({section: {name: x}})


def _scale_levels(field: str) -> Callable[[Params, float], Params]:
    def apply(p: Params, x: float) -> Params:
        base = getattr(Params.declared().health, field)
        return p.with_overrides({"health": {field: [round(v * x, 4) for v in base]}})

    return apply


def _scale_odds(p: Params, x: float) -> Params:
    """The declared chronic-condition prevalence by state with its odds times x."""
    base = np.asarray(Params.declared().health.medical_need_prevalence)
    odds = base / (1 - base) * x
    return p.with_overrides({"health": {"medical_need_prevalence": list(odds / (1 + odds))}})


def _shift_residential(p: Params, x: float) -> Params:
    base = list(Params.declared().choice.constants)
    return p.with_overrides({"choice": {"constants": [*base[:3], *(c + x for c in base[3:])]}})


STAGES: dict[str, list[Moment]] = {
    # solved jointly on the deterministic projection (`_fit_population`); the brackets are the
    # priors of the ABC research runs
    "population": [
        Moment(
            "pop_60plus_2020",
            "demography.entry_share",
            (0.002, 0.008),
            _set("demography.entry_share"),
        ),
        Moment(
            "deaths_60plus_2021",
            "demography.net_migration_rate",
            (-0.02, 0.04),
            _set("demography.net_migration_rate"),
        ),
    ],
    "health": [
        Moment(
            "unable_selfcare_share_2020",
            "health.unable_selfcare_pct (x factor)",
            (0.5, 2.0),
            _scale_levels("unable_selfcare_pct"),
        ),
    ],
    "medical": [
        Moment(
            "multimorbidity_60plus_2015",
            "health.medical_need_prevalence (odds x factor)",
            (0.2, 5.0),
            _scale_odds,
        ),
    ],
    "choice": [
        Moment(
            "institutionalised_3y_65plus",
            "choice.constants[3:] (+ shift)",
            (-3.0, 3.0),
            _shift_residential,
        ),
    ],
}


def fit(
    targets: pd.DataFrame,
    start: Params,
    stages: list[str],
    seed: int,
    scale: float,
    log: Callable[[str], None] = print,
    rounds: int = 2,
) -> tuple[Params, dict[str, float]]:
    """Staged fit; returns the fitted parameters and the solved value of each lever. Reads the
    'fit' targets only (`fit_value`)."""
    params, solved = start, {}
    for stage in stages:
        if stage == "population":
            params = _fit_population(params, targets)
            for m in STAGES[stage]:
                section, name = m.lever.split(".")
                solved[m.lever] = getattr(getattr(params, section), name)
                log(f"{stage}: {m.lever} = {solved[m.lever]:.6g}")
            continue
        for round_no in range(rounds if len(STAGES[stage]) > 1 else 1):
            for m in STAGES[stage]:
                goal = fit_value(targets, m.target)

                def gap(
                    x: float,
                    m: Moment = m,
                    goal: float = goal,
                    base: Params = params,
                    stage: str = stage,
                    round_no: int = round_no,
                ) -> float:
                    care = stage == "choice"
                    value = statistics(m.apply(base, x), seed, scale, care)[m.target]
                    log(
                        f"  [{stage} r{round_no + 1}] {m.lever} = {x:.6g}: {m.target} = "
                        f"{value:.6g} (target {goal:.6g})"
                    )
                    return value - goal

                lo, hi = m.bracket
                if np.sign(gap(lo)) == np.sign(gap(hi)):
                    raise CalibrationError(
                        f"{m.lever}: target {m.target} = {goal} not reachable in [{lo}, {hi}]"
                    )
                x = brentq(gap, lo, hi, xtol=1e-4 * (hi - lo), maxiter=30)
                params = m.apply(params, x)
                solved[m.lever] = x
                log(f"{stage}: {m.lever} = {x:.6g}")
    return params, solved


def demography_targets(targets: pd.DataFrame) -> DemographyTargets:
    return DemographyTargets(
        pop_60plus_2020=fit_value(targets, "pop_60plus_2020"),
        deaths_60plus_2021=fit_value(targets, "deaths_60plus_2021"),
    )


def _fit_population(params: Params, targets: pd.DataFrame) -> Params:
    """Entry share and net migration solved jointly on the deterministic projection."""
    result = fit_entry_and_migration(params, demography_targets(targets))
    d = result.params.demography
    values = {"entry_share": d.entry_share, "net_migration_rate": d.net_migration_rate}
    return params.with_overrides({"demography": values})


def variant_scenarios(params: Params, targets: pd.DataFrame) -> dict[str, str]:
    """The low and high projection variants as scenario files (name -> TOML text) that extend
    the plan: entry share and migration refitted at the ends of the assumed death share, and the
    post-2020 settings and morbidity trend of `demography_fit.VARIANTS`."""
    out = {}
    for name in ("low", "high"):
        result = fit_variant(name, params, demography_targets(targets))
        d, v = result.params.demography, VARIANTS[name]
        settings = (
            f"death share at 60+ of {v['death_share']:g}, entry share after 2020 x "
            f"{v['entry_share_after_2020']:g}, mortality improvement x "
            f"{v['mortality_improvement']:g}, dependency onset trend "
            f"{v['dependency_onset_trend']:+g}/year"
        )
        out[f"demography_{name}"] = "\n".join(
            [
                f"# The {name} projection variant, written by the population stage of "
                "`python calibration/calibrate.py` (do not edit by hand)",
                f'name = "demography_{name}"',
                f'description = "The plan with the {name} projection of the population '
                f'(docs/ODD.md section 3.4): {settings}."',
                'extends = "plan_2016_2020"',
                'until = "2035-12"',
                "",
                "[params.demography]",
                f"entry_share = {d.entry_share:.6g}",
                f"net_migration_rate = {d.net_migration_rate:.6g}",
                f"entry_share_after_2020 = {d.entry_share_after_2020:g}",
                f"mortality_improvement = {d.mortality_improvement:g}",
                "",
                "[params.health]",
                f"dependency_onset_trend = {v['dependency_onset_trend']:g}",
                "",
            ]
        )
    return out


def objective(stats: dict[str, float], targets: pd.DataFrame) -> float:
    """Sum of squared deviations in tolerance units over targets with a tolerance."""
    t = targets[(targets["tolerance"] > 0) & (targets["role"] == "fit")]
    dev = [(stats[k] - t.loc[k, "value"]) / t.loc[k, "tolerance"] for k in t.index]
    return float(np.sum(np.square(dev)))


def fit_targets_digest(path: Path) -> str:
    """sha256 of the 'fit' rows of the targets file (their TARGET_COLUMNS as written, one line
    each): what a fit can have read. Validation rows, or columns no fit reads, leave it as it
    is, so adding a validation pattern does not make the fitted file stale."""
    import csv

    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        lines = [
            "\x1f".join(row[c] for c in TARGET_COLUMNS)
            for row in reader
            if row.get("role") == "fit"
        ]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def fitted_toml(params: Params, targets_path: Path, method: str, value: float) -> str:
    """The fitted file: provenance plus the fitted parameters (only those calibration sets)."""
    digest = fit_targets_digest(targets_path)
    d, h, c = params.demography, params.health, params.choice
    fmt = lambda v: "[" + ", ".join(f"{x:.6g}" for x in v) + "]"  # noqa: E731
    return "\n".join(
        [
            "# Fitted parameters, loaded by Params() by default (sim/params/fitted.py).",
            "# Regenerate: python calibration/calibrate.py   (see README.md, Calibration)",
            "[provenance]",
            f'targets_file = "calibration/{targets_path.name}"',
            f'fit_targets_sha256 = "{digest}"',
            f'date = "{dt.date.today().isoformat()}"',
            f'code_version = "{code_version()}"',
            f'method = "{method}"',
            f"objective = {value:.6g}",
            "",
            "[params.demography]",
            f"entry_share = {d.entry_share:.6g}",
            f"net_migration_rate = {d.net_migration_rate:.6g}",
            "",
            "[params.health]",
            f"unable_selfcare_pct = {fmt(h.unable_selfcare_pct)}",
            f"medical_need_prevalence = {fmt(h.medical_need_prevalence)}",
            "",
            "[params.choice]",
            f"constants = {fmt(c.constants)}",
            "",
        ]
    )


def replicate(params: Params, seeds: list[int], scale: float) -> pd.DataFrame:
    """Statistics over several seeds: one row per seed."""
    return pd.DataFrame([statistics(params, s, scale) for s in seeds], index=seeds)


def report(
    targets: pd.DataFrame,
    reps: pd.DataFrame,
    folder: Path,
    note: str,
    sections: list[str] = (),
) -> str:
    """calibration/report.md and its chart: simulated against target for every 'fit' target,
    then the `sections` (markdown lines, e.g. `demography_summary`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for name, t in targets[targets["role"] == "fit"].iterrows():
        values = reps[name]
        lo, hi = np.percentile(values, [5, 95])
        mean = float(values.mean())
        ok = met(t, mean)
        rows.append(
            (
                name,
                t["role"],
                t["stage"],
                t["check"],
                t["value"],
                t["tolerance"],
                mean,
                lo,
                hi,
                ok,
                t["unit"],
                t["source"],
                t.get("if_missed", ""),
            )
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "target",
            "role",
            "stage",
            "check",
            "target_value",
            "tolerance",
            "simulated_mean",
            "sim_p5",
            "sim_p95",
            "met",
            "unit",
            "source",
            "if_missed",
        ],
    )
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1))
    scaled = table[(table["tolerance"] > 0) & (table["check"] == "within")]
    dev = (scaled["simulated_mean"] - scaled["target_value"]) / scaled["tolerance"]
    err_lo = (scaled["simulated_mean"] - scaled["sim_p5"]) / scaled["tolerance"]
    err_hi = (scaled["sim_p95"] - scaled["simulated_mean"]) / scaled["tolerance"]
    colours = ["tab:green" if w else "tab:red" for w in scaled["met"]]
    ax.barh(scaled["target"], dev, xerr=[err_lo, err_hi], color=colours)
    ax.axvspan(-1, 1, color="0.9", zorder=0)
    ax.set_xlabel("(simulated - target) / tolerance; grey band = within tolerance")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(folder / "report_deviation.png", dpi=110)
    plt.close(fig)

    missed = table[~table["met"]]
    lines = [
        "# Calibration report",
        "",
        note,
        "",
        "![deviation of each target](report_deviation.png)",
        "",
        "Every row is a 'fit' target: the fits may read it, so meeting it is a calibration "
        "check (in-sample), not validation. The 'validate' rows of targets.csv are kept out of "
        "every fit and reported in [validation.md](validation.md) (`eldercare validate`).",
        "",
        "| target | role | stage | check | target | tolerance | simulated mean | 90% interval "
        "| met | source |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.target} | {r.role} | {r.stage} | {r.check} | {r.target_value:.4g} | "
            f"{r.tolerance:.3g} | "
            f"{r.simulated_mean:.4g} | {r.sim_p5:.4g} - {r.sim_p95:.4g} | "
            f"{'yes' if r.met else '**no**'} | {r.source} |"
        )
    lines += ["", "## Targets missed", ""]
    if missed.empty:
        lines.append("None: every target is met.")
    for r in missed.itertuples():
        off = r.simulated_mean - r.target_value
        lines.append(
            f"- **{r.target}**: simulated {r.simulated_mean:.4g} against {r.target_value:.4g} "
            f"(off by {off:+.3g} {r.unit}; tolerance {r.tolerance:.3g})."
            + (f" Why: {r.if_missed}." if isinstance(r.if_missed, str) and r.if_missed else "")
        )
    text = "\n".join([*lines, *sections]) + "\n"
    (folder / "report.md").write_text(text, encoding="utf-8")
    return text


def demography_summary(params: Params, seeds: list[int], scale: float) -> list[str]:
    """Markdown: life expectancy at 60 implied by the model against the life table, the stock on
    the 2020 census day (the split by age is a prediction, compared with nothing), and 60+ and
    80+ in 2025, 2030 and 2035 for each projection variant (range over `seeds`)."""
    from sim.experiments.scenario import load_scenario
    from sim.population import lifetable
    from sim.population.projection import project

    lines = ["", "## Demography", "", "### Life expectancy at 60 (years)", ""]
    lines += ["| year | sex | WPP 2024 table | model (seeds) |", "|---|---|---|---|"]
    e60 = {2015: [], 2020: []}
    census = []
    variants = {"low": "demography_low", "central": None, "high": "demography_high"}
    for seed in seeds:
        model = CareModel(seed=seed, scale=scale, params=params, care=False)
        e60[2015].append(model.population.life_expectancy_at_60(2015))
        model.run_until("2020-06")
        e60[2020].append(model.population.life_expectancy_at_60(2020))
        model.run_until("2020-10")
        frame = model.metrics()
        census.append(frame[(frame["district"] == "Taiyuan") & (frame["month"] == "2020-10")])
    for year, values in e60.items():
        values = np.array(values)
        for sex, name in enumerate(("men", "women")):
            lo, hi = values[:, sex].min(), values[:, sex].max()
            table = lifetable.table_life_expectancy(year, sex)
            lines.append(f"| {year} | {name} | {table:.2f} | {lo:.2f} - {hi:.2f} |")
    census = pd.concat(census)
    proj = project(params).on(2020, 11)
    lines += ["", "### On the 2020 census day (2020-11-01; persons)", ""]
    lines += ["| age | model (seeds) | deterministic projection |", "|---|---|---|"]
    for column, group in (("residents_60plus", "60+"), ("residents_65plus", "65+"),
                          ("residents_80plus", "80+")):  # fmt: skip
        lo, hi = census[column].min(), census[column].max()
        lines.append(f"| {group} | {lo:,.0f} - {hi:,.0f} | {proj[group]:,.0f} |")
    lines += [
        "",
        "60+ is a fit target; the split into 60-64 and 65+ comes out of the cohort logic (no "
        "target).",
        "",
        "### Projection variants (persons at the end of the year; model, range over seeds)",
        "",
        "| variant | 60+ 2025 | 60+ 2030 | 60+ 2035 | 80+ 2025 | 80+ 2030 | 80+ 2035 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, scenario in variants.items():
        p = load_scenario(scenario).params if scenario else params
        frames = []
        for seed in seeds:
            model = CareModel(seed=seed, scale=scale, params=p, care=False)
            model.run_until("2035-12")
            f = model.metrics()
            frames.append(f[f["district"] == "Taiyuan"].set_index("month"))
        cells = []
        for column in ("residents_60plus", "residents_80plus"):
            for year in (2025, 2030, 2035):
                v = [f.loc[f"{year}-12", column] for f in frames]
                cells.append(f"{min(v):,.0f} - {max(v):,.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def abc_posterior(
    targets: pd.DataFrame,
    start: Params,
    stages: list[str],
    scale: float,
    db_path: Path,
    population_size: int = 50,
    generations: int = 4,
    seed: int = 1,
) -> pd.DataFrame:
    """ABC-SMC (pyabc) posterior over the levers of `stages`, for research runs.

    Priors are uniform over each lever's bracket; the distance is the root sum of squared
    deviations in tolerance units; each simulation uses a seed derived from its parameter values,
    so the run is reproducible while the posterior still reflects the model's randomness.
    Returns the last generation's weighted particles (one column per lever, plus `weight`).
    """
    import pyabc

    moments = [m for stage in stages for m in STAGES[stage]]
    names = [f"p{i}" for i in range(len(moments))]
    care = "choice" in stages
    prior = pyabc.Distribution(
        **{
            n: pyabc.RV("uniform", m.bracket[0], m.bracket[1] - m.bracket[0])
            for n, m in zip(names, moments, strict=True)
        }
    )
    observed = {m.target: fit_value(targets, m.target) for m in moments}
    tolerance = {m.target: float(targets.loc[m.target, "tolerance"]) for m in moments}

    def model(theta: dict) -> dict:
        params = start
        for n, m in zip(names, moments, strict=True):
            params = m.apply(params, float(theta[n]))
        key = hashlib.sha256(repr(sorted(theta.items())).encode()).digest()
        run_seed = seed * 100_003 + int.from_bytes(key[:3], "little")
        stats = statistics(params, run_seed, scale, care)
        return {k: stats[k] for k in observed}

    def distance(x: dict, x0: dict) -> float:
        return float(np.sqrt(sum(((x[k] - x0[k]) / tolerance[k]) ** 2 for k in x0)))

    np.random.seed(seed)  # pyabc draws from numpy's global generator
    abc = pyabc.ABCSMC(
        model,
        prior,
        distance,
        population_size=population_size,
        sampler=pyabc.sampler.SingleCoreSampler(),
    )
    abc.new(f"sqlite:///{db_path}", observed)
    history = abc.run(max_nr_populations=generations)
    frame, weights = history.get_distribution()
    out = frame.rename(columns=dict(zip(names, [m.lever for m in moments], strict=True)))
    out = out.reset_index(drop=True)
    out["weight"] = np.asarray(weights) / np.sum(weights)
    return out
