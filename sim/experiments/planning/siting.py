"""`eldercare site`: where to put the new community centres and urban day-care centres so that they
cover as much of the simulated need as possible, and how that compares with the plan's allocation.

Demand: the model's urban residents with a care need (health state 2 or worse, those the care
system serves) at the end of a chosen year, per urban community (the synthetic neighbourhood
points of `population.geography`), weighted by the care hours they need a month
(`need.care_hours_by_state` by health state, plus `need.medical_hours` for those of them with a
chronic condition needing regular medical care, which integrated home care adds): derived from
the run. A chronic condition alone (half the 60+, multimorbidity) is no need for these centres.
Candidate sites: the urban communities, where the model puts these centres. Within reach:
straight-line km within a radius, by default the model's own (`services.community_radius_km` =
1 km, the plan's 500-1,000 m for urban centres, also the upper end of GB 50180-2018's 15-minute
life circle of 800-1,000 m; `services.day_care_radius_km` = 0.5 km, the plan's 200-500 m for
urban day care).

Methods (PySAL): the maximal covering location problem (spopt MCLP) places the same number of
new centres the scenario's schedule opens by that year, the existing ones kept; the location
set covering problem (spopt LSCP) gives how many would cover every community with need.
Accessibility: the enhanced two-step floating catchment area (PySAL access E2SFCA; places per
1,000 persons in need, within the radius, distance bands of a third of the radius weighted
1 / 0.68 / 0.22 as Luo & Qi 2009's travel-time zones: assumed for walking), summarised by
district. The plan's allocation is the model's own (a keyed draw among each district's
communities, in proportion to their number). The sites found feed back as a scenario
(`policy.centre_sites`, `policy.day_care_sites`, in the order of their marginal coverage).
"""

from __future__ import annotations

import argparse
import html
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.experiments.scenario import Scenario

KINDS = ("centre", "day_care")  # community centres, urban day-care centres
_BANDS = ((1 / 3, 1.0), (2 / 3, 0.68), (1.0, 0.22))  # share of the radius, weight (Luo & Qi 2009)


@dataclass(frozen=True)
class SiteSettings:
    scenario: Scenario
    year: int
    seed: int
    scale: float
    centres: int | None  # new community centres (None: as many as the schedule opens)
    day_care: int | None  # new urban day-care centres (None: as the schedule)
    centre_radius: float | None  # km (None: the scenario's services.community_radius_km)
    day_care_radius: float | None


def add_site_arguments(p: argparse.ArgumentParser, number: Callable) -> None:
    """The `site` options (the parser's number type makes the one-line errors)."""
    from sim.params.sections import Params

    infos = {i.path: i for i in Params().describe()}
    p.add_argument("--scenario", default="plan_2016_2020", help="base scenario")
    p.add_argument(
        "--year",
        type=number(int, 2016, 2035, "a year in [2016, 2035]"),
        default=2020,
        help="the year whose December need is covered (default 2020)",
    )
    for flag, what in (("--centres", "new community centres"), ("--day-care", "new day care")):
        p.add_argument(
            flag,
            type=number(int, 0, 5000, "a whole number in [0, 5000]"),
            help=f"{what} to site (default: as many as the schedule opens)",
        )
    for flag, path in (
        ("--centre-radius", "services.community_radius_km"),
        ("--day-care-radius", "services.day_care_radius_km"),
    ):
        lo, hi = infos[path].lo, infos[path].hi
        p.add_argument(
            flag,
            type=number(float, lo, hi, f"km in [{lo}, {hi}]"),
            help=f"km (default: the scenario's {path}; {infos[path].source})",
        )


def site_settings(args: argparse.Namespace) -> SiteSettings:
    from sim.experiments.scenario import load_scenario

    sc = load_scenario(args.scenario)
    return SiteSettings(
        sc,
        args.year,
        sc.seed if args.seed is None else args.seed,
        sc.scale if args.scale is None else args.scale,
        args.centres,
        args.day_care,
        args.centre_radius,
        args.day_care_radius,
    )


# -- the optimisation problems ---------------------------------------------------------------------
def mclp(
    cost: np.ndarray, weights: np.ndarray, radius: float, p: int, fixed: np.ndarray | None = None
) -> np.ndarray:
    """Sites (columns of `cost`, demand x site km) of the maximal covering location problem: `p`
    sites in all, the `fixed` ones among them, covering the most weight within `radius`."""
    from spopt.locate import MCLP

    model = MCLP.from_cost_matrix(
        cost,
        weights,
        service_radius=radius,
        p_facilities=p,
        predefined_facilities_arr=_predefined(cost, fixed),
    )
    return _solved_sites(model)


def lscp_size(cost: np.ndarray, radius: float, fixed: np.ndarray | None = None) -> int:
    """Sites needed (the `fixed` ones included) to cover every demand point within `radius`."""
    from spopt.locate import LSCP

    model = LSCP.from_cost_matrix(
        cost, service_radius=radius, predefined_facilities_arr=_predefined(cost, fixed)
    )
    return _solved_sites(model).size


def _predefined(cost: np.ndarray, fixed: np.ndarray | None) -> np.ndarray | None:
    if fixed is None or not fixed.size:
        return None
    pre = np.zeros(cost.shape[1], dtype=int)
    pre[fixed] = 1
    return pre


def _solved_sites(model) -> np.ndarray:
    """Solve with PuLP's bundled CBC (quietly: PuLP 3.3 announces its 4.0 API) and return the
    sites opened."""
    import pulp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model.solve(pulp.PULP_CBC_CMD(msg=False))
    return np.array([j for j, v in enumerate(model.fac_vars) if v.value() > 0.5], dtype=np.int64)


def covered(cost: np.ndarray, sites: np.ndarray, radius: float) -> np.ndarray:
    """Whether each demand point is within `radius` of one of `sites`."""
    if sites.size == 0:
        return np.zeros(cost.shape[0], dtype=bool)
    return (cost[:, sites] <= radius).any(axis=1)


def opening_order(
    cost: np.ndarray, weights: np.ndarray, radius: float, sites: np.ndarray, fixed: np.ndarray
) -> np.ndarray:
    """`sites` ordered by the need each adds to what is already covered (greedy; ties: lower
    index), so a schedule that opens fewer of them opens the most useful first."""
    left = list(sites)
    done = covered(cost, fixed, radius)
    order = []
    while left:
        gains = [weights[~done & (cost[:, s] <= radius)].sum() for s in left]
        best = left.pop(int(np.argmax(gains)))
        order.append(best)
        done |= cost[:, best] <= radius
    return np.array(order, dtype=np.int64)


def e2sfca(
    cost: np.ndarray, population: np.ndarray, places: np.ndarray, radius: float
) -> np.ndarray:
    """Places per 1,000 persons in need reachable from each demand point (access E2SFCA)."""
    from access import Access, weights

    near = np.argwhere(cost <= radius)
    costs = pd.DataFrame({"origin": near[:, 0], "dest": near[:, 1], "km": cost[tuple(near.T)]})
    demand = pd.DataFrame({"id": np.arange(cost.shape[0]), "population": population})
    supply = pd.DataFrame({"id": np.arange(cost.shape[1]), "places": places})
    steps = {radius * share: w for share, w in _BANDS}
    with warnings.catch_warnings():  # access 1.1 uses pandas idioms pandas 3 deprecates
        warnings.simplefilter("ignore")
        acc = Access(
            demand_df=demand,
            demand_index="id",
            demand_value="population",
            supply_df=supply,
            supply_index="id",
            supply_value="places",
            cost_df=costs,
            cost_origin="origin",
            cost_dest="dest",
            cost_name="km",
        )
        score = acc.enhanced_two_stage_fca(
            name="e2sfca", cost="km", max_cost=radius, weight_fn=weights.step_fn(steps)
        )
    return score.reindex(demand["id"]).fillna(0.0).to_numpy().ravel() * 1000


# -- the command -----------------------------------------------------------------------------------
@dataclass
class Demand:
    """Urban communities: index, district, km coordinates, need-weighted hours, persons in need."""

    neigh: np.ndarray
    district: np.ndarray
    xy: np.ndarray
    hours: np.ndarray
    persons: np.ndarray


def community_demand(model) -> Demand:
    """The need of the model's living urban residents with a care need per urban community (in
    persons): care hours by state, plus medical hours for those with a chronic condition."""
    geo, pop, need = model.places.geo, model.pop, model.params.need
    nb = geo.neighbourhoods
    n = len(nb)
    hours = np.zeros(n)
    for state, h in enumerate(need.care_hours_by_state):
        if h:
            hours += h * pop.count_living(pop.urban & (pop.health == state), pop.neigh, n)
    in_need = pop.urban & (pop.health >= 2)
    hours += need.medical_hours * pop.count_living(in_need & pop.medical, pop.neigh, n)
    persons = pop.count_living(in_need, pop.neigh, n).astype(float)
    comm = np.flatnonzero((nb["kind"] == "community").to_numpy())
    return Demand(
        comm,
        nb["district"].to_numpy()[comm],
        nb[["x_km", "y_km"]].to_numpy()[comm],
        hours[comm] * model.scale,
        persons[comm] * model.scale,
    )


def run_site(settings: SiteSettings, out: str | Path) -> list[str]:
    """Site the centres, compare with the plan's allocation, write the folder; returns the
    summary lines."""
    from sim import CareModel
    from sim.care.kinds import CENTRE, DAY_URBAN
    from sim.experiments.results import (
        atomic_dir,
        check_writable,
        code_digest,
        code_version,
        params_hash,
        write_csv_atomic,
        write_json_atomic,
        write_text_atomic,
    )

    check_writable(out, "site")
    t0 = time.perf_counter()
    sc = settings.scenario
    model = CareModel(seed=settings.seed, scale=settings.scale, params=sc.params)
    model.run_until(f"{settings.year}-12")
    demand = community_demand(model)
    svc = sc.params.services
    cost = np.hypot(*(demand.xy[:, None, k] - demand.xy[None, :, k] for k in (0, 1)))
    site_of = {int(n): i for i, n in enumerate(demand.neigh)}  # neighbourhood -> column
    table = model.places.table
    last = (settings.year - 2016) * 12 + 11
    rows, sites_found, lines = [], {}, []
    for kind, code, count, radius, places, path in (
        (
            "centre",
            CENTRE,
            settings.centres,
            settings.centre_radius or svc.community_radius_km,
            svc.centre_places,
            "centre_sites",
        ),
        (
            "day_care",
            DAY_URBAN,
            settings.day_care,
            settings.day_care_radius or svc.day_care_radius_km,
            svc.day_care_places,
            "day_care_sites",
        ),
    ):
        mine = table.kind == code
        old = np.array([site_of[int(n)] for n in table.neigh[mine & (table.open_month < 0)]], int)
        plan_new = table.neigh[mine & (table.open_month >= 0) & (table.open_month <= last)]
        plan = np.array([site_of[int(n)] for n in plan_new], dtype=np.int64)
        fixed = np.unique(old)
        n_new = plan.size if count is None else count
        p = min(fixed.size + n_new, cost.shape[1])
        chosen = np.setdiff1d(mclp(cost, demand.hours, radius, p, fixed), fixed)
        order = opening_order(cost, demand.hours, radius, chosen, fixed)
        sites_found[path] = [int(demand.neigh[j]) for j in order]
        need_points = demand.hours > 0
        full = lscp_size(cost[need_points], radius, fixed)
        for label, new in (("plan", plan), ("optimised", order)):
            all_sites = np.concatenate([old, new])
            cov = covered(cost, np.unique(all_sites), radius)
            access = e2sfca(
                cost,
                demand.persons,
                np.bincount(all_sites, minlength=cost.shape[1]) * places,
                radius,
            )
            rows.extend(_district_rows(kind, label, demand, cov, access, new.size))
        lines.append(_summary(kind, rows, n_new, old.size, radius, full - fixed.size))
    coverage = pd.DataFrame(rows)
    sites = _sites_frame(model.places.geo, sites_found)
    overrides = _with_sites(sc.overrides, sites_found)
    scenario_text = _site_scenario(settings, overrides)
    manifest = {
        "kind": "site",
        "scenario": sc.manifest(),
        "year": settings.year,
        "seed": settings.seed,
        "scale": settings.scale,
        "params_hash": params_hash(sc.params),
        "code_version": code_version(),
        "code_digest": code_digest(),
        "seconds": time.perf_counter() - t0,
        "summary": lines,
    }
    with atomic_dir(out, "site") as tmp:
        write_csv_atomic(sites, tmp / "sites.csv")
        write_csv_atomic(coverage, tmp / "coverage.csv")
        write_text_atomic(tmp / "site.toml", scenario_text)
        png = site_chart(model.places.geo, demand, sites_found, table, last)
        (tmp / "site.png").write_bytes(png)
        write_text_atomic(tmp / "site.html", site_html(coverage, lines, png, settings))
        write_json_atomic(tmp / "manifest.json", manifest)
    return lines


def _summary(kind: str, rows: list[dict[str, Any]], n_new: int, n_old: int, radius: float,
             needed: int) -> str:  # fmt: skip
    """Coverage of the city and the spread of E2SFCA across the districts, both allocations."""
    from sim.kpis.frame import CITY

    mine = pd.DataFrame([r for r in rows if r["kind"] == kind])
    city = mine[mine["district"] == CITY].set_index("allocation")["coverage"]
    spread = {}
    for label, d in mine[mine["district"] != CITY].groupby("allocation"):
        e = d["e2sfca_per_1000"]
        spread[label] = f"{e.min():.0f}-{e.max():.0f} (CV {e.std() / e.mean():.2f})"
    return (
        f"{kind}: {n_new} new (+{n_old} existing) within {radius:g} km cover "
        f"{city['optimised']:.1%} of the need-weighted urban demand (the plan's allocation: "
        f"{city['plan']:.1%}); covering all of it needs {needed} new sites; E2SFCA places per "
        f"1,000 in need across districts {spread['optimised']} (plan's: {spread['plan']})"
    )


def _district_rows(
    kind: str, label: str, demand: Demand, cov: np.ndarray, access: np.ndarray, n_new: int
) -> list[dict[str, Any]]:
    """Coverage (need-weighted share) and E2SFCA (persons-in-need-weighted mean) by district."""
    from sim.kpis.frame import CITY
    from sim.population.geography import DISTRICT_CODES

    out = []
    for code, name in [*enumerate(DISTRICT_CODES), (-1, CITY)]:
        sel = demand.district == code if code >= 0 else np.ones(demand.district.size, bool)
        hours, persons = demand.hours[sel], demand.persons[sel]
        if not persons.sum():
            continue
        people = persons > 0  # access where no one is in need is not defined
        out.append(
            {
                "kind": kind,
                "allocation": label,
                "district": name,
                "new_sites": n_new,
                "need_hours": hours.sum(),
                "persons_in_need": persons.sum(),
                "coverage": hours[cov[sel]].sum() / hours.sum(),
                "e2sfca_per_1000": float(np.average(access[sel][people], weights=persons[people])),
            }
        )
    return out


def _sites_frame(geo, sites: dict[str, list[int]]) -> pd.DataFrame:
    nb = geo.neighbourhoods
    rows = [
        {
            "kind": path.removesuffix("_sites"),
            "order": i,
            "neighbourhood": n,
            "name": nb.at[n, "name"],
            "district": int(nb.at[n, "district"]),
            "x_km": nb.at[n, "x_km"],
            "y_km": nb.at[n, "y_km"],
        }
        for path, ns in sites.items()
        for i, n in enumerate(ns)
    ]
    return pd.DataFrame(rows)


def _with_sites(overrides: dict[str, Any], sites: dict[str, list[int]]) -> dict[str, Any]:
    from sim.experiments.scenario import deep_merge

    return deep_merge(overrides, {"policy": sites})


def _site_scenario(settings: SiteSettings, overrides: dict[str, Any]) -> str:
    from sim.experiments.scenario import dumps_scenario

    sc = settings.scenario
    comment = (
        f"`eldercare site` on {sc.name} ({sc.source}): the new centres at the sites that cover\n"
        f"the most need-weighted demand of {settings.year}-12 (seed {settings.seed}, scale "
        f"{settings.scale:g}), in the order of their marginal coverage"
    )
    return dumps_scenario(
        f"{sc.name}_sited",
        f"{sc.description} Centres sited by coverage.",
        sc.until,
        sc.seed,
        sc.scale,
        overrides,
        comment,
    )


def site_chart(geo, demand: Demand, sites: dict[str, list[int]], table, last: int) -> bytes:
    """Communities (size: need) with the plan's and the optimised new centres."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from sim.care.kinds import CENTRE, DAY_URBAN

    nb = geo.neighbourhoods
    fig = Figure(figsize=(12, 6), dpi=90)
    for k, (path, code, title) in enumerate(
        (
            ("centre_sites", CENTRE, "community centres"),
            ("day_care_sites", DAY_URBAN, "urban day care"),
        )
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        size = 60 * demand.hours / max(demand.hours.max(), 1.0)
        ax.scatter(demand.xy[:, 0], demand.xy[:, 1], s=size, color="#cccccc", label="need")
        plan = table.neigh[
            (table.kind == code) & (table.open_month >= 0) & (table.open_month <= last)
        ]
        for where, style in (
            (plan, {"marker": "x", "color": "C1", "label": "plan's allocation"}),
            (sites[path], {"marker": "o", "facecolors": "none", "edgecolors": "C0",
                           "label": "optimised"}),
        ):  # fmt: skip
            ax.scatter(nb.loc[where, "x_km"], nb.loc[where, "y_km"], s=14, **style)
        ax.set_title(f"new {title}", fontsize=10)
        ax.set_xlabel("km east")
        ax.set_ylabel("km north")
        ax.set_aspect("equal")
        ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def site_html(coverage: pd.DataFrame, lines: list[str], png: bytes, settings: SiteSettings) -> str:
    import base64

    wide = coverage.pivot_table(
        index=["kind", "district"],
        columns="allocation",
        values=["coverage", "e2sfca_per_1000"],
        sort=False,
    )
    wide.columns = [f"{a} ({b})" for a, b in wide.columns]
    summary = "".join(f"<li>{html.escape(s)}</li>" for s in lines)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>eldercare site</title>"
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:"
        "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}"
        "</style></head><body>"
        f"<h2>Siting new centres: {html.escape(settings.scenario.name)}, need of "
        f"{settings.year}-12</h2><ul>{summary}</ul><p>Coverage: share of the need-weighted "
        "urban demand within the radius of a centre (existing and new); E2SFCA: places per "
        "1,000 persons in need within reach. Model outcomes at scale "
        f"{settings.scale:g}, seed {settings.seed}; neighbourhood points are synthetic.</p>"
        f"<img alt='sites' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        f"{wide.to_html(float_format=lambda x: f'{x:.3f}')}</body></html>"
    )
