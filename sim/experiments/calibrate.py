"""Calibration: simulated statistics, staged simulated-method-of-moments fits, fitted file, report.

Staged so each stage is fast (issue 'Calibration'): 1. population and mortality
(entrant share, mortality scale), 2. health levels (the census 'unable' and 'healthy' levels fed
to sim/population/health.py, so the *simulated* 2020 levels hit the targets), 3. care choice (a
common shift of the residential constants). Each moment is matched with scipy.optimize.brentq on
a model run that reuses the same seed: common random numbers make the objective a monotone step
function, so the root search is stable. The model does not read the targets file; data flow one way.
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
from sim.experiments.results import code_version
from sim.params.sections import Params
from sim.population.families import CHILD_CORESIDENT

TARGET_COLUMNS = ["target", "stage", "value", "tolerance", "unit", "date", "statistic", "source"]
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
    return table.set_index("target")


def statistics(
    params: Params, seed: int = 1, scale: float = 10, care: bool = True
) -> dict[str, float]:
    """Every simulated statistic named in targets.csv, from one run to 2021-12 (without the care
    system when `care` is False: the population and health stages do not need it)."""
    model = CareModel(seed=seed, scale=scale, params=params, care=care)
    stats: dict[str, float] = {}
    model.run_until("2016-01")
    pop = model.pop
    rows = pop.alive_rows()
    stats["empty_nest_share"] = float((pop.child_place[rows] != CHILD_CORESIDENT).mean())
    alone = (pop.spouse[rows] == -1) & (pop.child_place[rows] != CHILD_CORESIDENT)
    stats["living_alone_share"] = float(alone.mean())
    fac = model.places.table
    at_start = fac.open_month < 0
    homes = at_start & np.isin(fac.kind, (PUBLIC, PRIVATE))
    stats["institutions_2015"] = float(homes.sum())
    stats["institutional_beds_2015"] = float(fac.capacity[homes].sum())
    stats["day_care_2015"] = float((at_start & (fac.kind == DAY_URBAN)).sum())
    stats["service_teams_2015"] = float(teams_in_year(params.services, 2016))
    stats["pop_60plus_2010_interpolated_2015"] = float(params.demography.initial_60plus)

    model.run_until("2020-11")
    rows = pop.alive_rows()
    age = pop.age_m[rows] // 12 - 1  # the kernel has aged everyone at the end of the month
    health = pop.health[rows]
    for name, (lo, hi) in AGE_GROUPS.items():
        sel = (age >= lo) & (age <= hi)
        stats[f"unable_{name}"] = float((health[sel] >= 3).mean())
        stats[f"healthy_{name}"] = float((health[sel] == 0).mean())
    model.run_until("2021-12")
    frame = model.metrics()
    city = frame[frame["district"] == "Taiyuan"].set_index("month")
    first = city.iloc[0]
    stats["share_65plus_of_60plus"] = float(first["residents_65plus"] / first["residents_60plus"])
    stats["pop_60plus_2020"] = float(city.loc["2020-10", "residents_60plus"])
    stats["deaths_60plus_2021"] = float(city.loc["2021-01":"2021-12", "deaths"].sum())
    nov = city.loc["2020-11"]
    dependents = nov["partially_dependent"] + nov["fully_dependent"]
    stats["unable_selfcare_share_2020"] = float(dependents / nov["residents_60plus"])
    stats["healthy_or_basic_share_2020"] = float(
        (nov["healthy"] + nov["basically_healthy"]) / nov["residents_60plus"]
    )
    stats["full_dependency_share"] = float(nov["fully_dependent"] / dependents)
    if care:
        dec = city.loc["2020-12"]
        stats["residential_share_in_need"] = float(
            dec["share_institution"] + dec["share_medical_bed"]
        )
    return stats


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


def _shift_residential(p: Params, x: float) -> Params:
    base = list(Params.declared().choice.constants)
    return p.with_overrides({"choice": {"constants": [*base[:3], *(c + x for c in base[3:])]}})


STAGES: dict[str, list[Moment]] = {
    "population": [
        Moment(
            "deaths_60plus_2021",
            "demography.mortality_scale",
            (0.6, 1.4),
            _set("demography.mortality_scale"),
        ),
        Moment(
            "pop_60plus_2020",
            "demography.entrant_share_of_china",
            (0.002, 0.008),
            _set("demography.entrant_share_of_china"),
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
    "choice": [
        Moment(
            "residential_share_in_need",
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
    """Staged fit; returns the fitted parameters and the solved value of each lever."""
    params, solved = start, {}
    for stage in stages:
        for round_no in range(rounds if len(STAGES[stage]) > 1 else 1):
            for m in STAGES[stage]:
                goal = float(targets.loc[m.target, "value"])

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


def objective(stats: dict[str, float], targets: pd.DataFrame) -> float:
    """Sum of squared deviations in tolerance units over targets with a tolerance."""
    t = targets[targets["tolerance"] > 0]
    dev = [(stats[k] - t.loc[k, "value"]) / t.loc[k, "tolerance"] for k in t.index]
    return float(np.sum(np.square(dev)))


def fitted_toml(params: Params, targets_path: Path, method: str, value: float) -> str:
    """The fitted file: provenance plus the fitted parameters (only those calibration sets)."""
    digest = hashlib.sha256(targets_path.read_bytes()).hexdigest()
    d, h, c = params.demography, params.health, params.choice
    fmt = lambda v: "[" + ", ".join(f"{x:.6g}" for x in v) + "]"  # noqa: E731
    return "\n".join(
        [
            "# Fitted parameters, loaded by Params() by default (sim/params/fitted.py).",
            "# Regenerate: python calibration/calibrate.py   (see README.md, Calibration)",
            "[provenance]",
            f'targets_file = "calibration/{targets_path.name}"',
            f'targets_sha256 = "{digest}"',
            f'date = "{dt.date.today().isoformat()}"',
            f'code_version = "{code_version()}"',
            f'method = "{method}"',
            f"objective = {value:.6g}",
            "",
            "[params.demography]",
            f"entrant_share_of_china = {d.entrant_share_of_china:.6g}",
            f"mortality_scale = {d.mortality_scale:.6g}",
            "",
            "[params.health]",
            f"unable_selfcare_pct = {fmt(h.unable_selfcare_pct)}",
            "",
            "[params.choice]",
            f"constants = {fmt(c.constants)}",
            "",
        ]
    )


def replicate(params: Params, seeds: list[int], scale: float) -> pd.DataFrame:
    """Statistics over several seeds: one row per seed."""
    return pd.DataFrame([statistics(params, s, scale) for s in seeds], index=seeds)


def report(targets: pd.DataFrame, reps: pd.DataFrame, folder: Path, note: str) -> str:
    """calibration/report.md and its chart: simulated against target for every target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for name, t in targets.iterrows():
        values = reps[name]
        lo, hi = np.percentile(values, [5, 95])
        mean = float(values.mean())
        within = (
            abs(mean - t["value"]) <= t["tolerance"]
            if t["tolerance"] > 0
            else np.isclose(mean, t["value"], rtol=1e-6)
        )
        rows.append(
            (
                name,
                t["stage"],
                t["value"],
                t["tolerance"],
                mean,
                lo,
                hi,
                bool(within),
                t["unit"],
                t["source"],
            )
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "target",
            "stage",
            "target_value",
            "tolerance",
            "simulated_mean",
            "sim_p5",
            "sim_p95",
            "within",
            "unit",
            "source",
        ],
    )
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1))
    scaled = table[table["tolerance"] > 0]
    dev = (scaled["simulated_mean"] - scaled["target_value"]) / scaled["tolerance"]
    err_lo = (scaled["simulated_mean"] - scaled["sim_p5"]) / scaled["tolerance"]
    err_hi = (scaled["sim_p95"] - scaled["simulated_mean"]) / scaled["tolerance"]
    colours = ["tab:green" if w else "tab:red" for w in scaled["within"]]
    ax.barh(scaled["target"], dev, xerr=[err_lo, err_hi], color=colours)
    ax.axvspan(-1, 1, color="0.9", zorder=0)
    ax.set_xlabel("(simulated - target) / tolerance; grey band = within tolerance")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(folder / "report_deviation.png", dpi=110)
    plt.close(fig)

    missed = table[~table["within"]]
    lines = [
        "# Calibration report",
        "",
        note,
        "",
        "![deviation of each target](report_deviation.png)",
        "",
        "| target | stage | target | tolerance | simulated mean | 90% interval | within | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.target} | {r.stage} | {r.target_value:.4g} | {r.tolerance:.3g} | "
            f"{r.simulated_mean:.4g} | {r.sim_p5:.4g} - {r.sim_p95:.4g} | "
            f"{'yes' if r.within else '**no**'} | {r.source} |"
        )
    lines += ["", "## Targets missed", ""]
    if missed.empty:
        lines.append("None: every target is within its tolerance.")
    for r in missed.itertuples():
        off = r.simulated_mean - r.target_value
        lines.append(
            f"- **{r.target}**: simulated {r.simulated_mean:.4g} against {r.target_value:.4g} "
            f"(off by {off:+.3g} {r.unit}; tolerance {r.tolerance:.3g})."
        )
    text = "\n".join(lines) + "\n"
    (folder / "report.md").write_text(text, encoding="utf-8")
    return text


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
    tolerance = {m.target: float(targets.loc[m.target, "tolerance"]) for m in moments}
    observed = {m.target: float(targets.loc[m.target, "value"]) for m in moments}

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
