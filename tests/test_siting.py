"""`eldercare site`: the covering problems against brute force, explicit sites in the model, and
the command's outputs fed back as a scenario."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.care.facilities import build_facilities
from sim.care.kinds import CENTRE, DAY_URBAN
from sim.cli import main
from sim.experiments.planning.siting import covered, e2sfca, lscp_size, mclp, opening_order
from sim.experiments.results import simulate
from sim.experiments.scenario import load_scenario
from sim.params.policy import NEIGHBOURHOODS
from sim.params.sections import Params
from sim.population.geography import load_geography
from sim.population.synthesis import district_elderly_weights
from tests.cli_helpers import fails


def _instance(seed: int, n: int = 14, m: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    demand, sites = rng.uniform(0, 3, (n, 2)), rng.uniform(0, 3, (m, 2))
    cost = np.hypot(*(demand[:, None, k] - sites[None, :, k] for k in (0, 1)))
    return cost, rng.uniform(1, 10, n)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mclp_matches_brute_force(seed: int) -> None:
    cost, weights = _instance(seed)
    for p, fixed in ((2, np.array([], int)), (3, np.array([4]))):
        best = max(
            weights[covered(cost, np.array(combo), 1.0)].sum()
            for combo in itertools.combinations(range(cost.shape[1]), p)
            if set(fixed) <= set(combo)
        )
        found = mclp(cost, weights, 1.0, p, fixed)
        assert len(found) == p and set(fixed) <= set(found)
        assert weights[covered(cost, found, 1.0)].sum() == pytest.approx(best)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lscp_matches_brute_force(seed: int) -> None:
    cost, _ = _instance(seed)
    reachable = (cost <= 1.2).any(axis=1)  # only points some site can cover
    cost = cost[reachable]
    need = next(
        p
        for p in range(1, cost.shape[1] + 1)
        if any(
            covered(cost, np.array(c), 1.2).all()
            for c in itertools.combinations(range(cost.shape[1]), p)
        )
    )
    assert lscp_size(cost, 1.2) == need


def test_opening_order_puts_the_largest_gain_first() -> None:
    cost = np.array([[0.0, 5.0, 5.0], [0.5, 5.0, 5.0], [5.0, 0.0, 5.0], [5.0, 5.0, 0.0]])
    weights = np.array([1.0, 1.0, 5.0, 0.5])
    assert opening_order(cost, weights, 1.0, np.array([0, 1, 2]), np.array([], int)).tolist() == [
        1,
        0,
        2,
    ]


def test_e2sfca_shares_places_among_those_within_reach() -> None:
    cost = np.array([[0.1, 9.0], [0.2, 9.0], [9.0, 0.1]])
    access = e2sfca(cost, np.array([100.0, 300.0, 50.0]), np.array([40.0, 10.0]), 1.0)
    # the first site's 40 places shared by 400 people in its first band: 100 per 1,000
    assert access == pytest.approx([100.0, 100.0, 200.0])


def test_explicit_sites_place_the_new_centres_in_opening_order() -> None:
    geo = load_geography()
    weights = district_elderly_weights(geo)
    plan = build_facilities(Params(), geo, weights, 1, 10.0)
    sites = [900, 3, 4, 5]  # a community of another district first
    sited = build_facilities(
        Params().with_overrides({"policy": {"centre_sites": sites, "day_care_sites": [7]}}),
        geo,
        weights,
        1,
        10.0,
    )
    new = np.flatnonzero((plan.kind == CENTRE) & (plan.open_month >= 0))
    first = new[np.argsort(plan.open_month[new], kind="stable")][:4]
    assert sited.neigh[first].tolist() == sites
    nb_district = geo.neighbourhoods["district"].to_numpy()
    assert (sited.district == nb_district[sited.neigh]).all()
    day = np.flatnonzero((plan.kind == DAY_URBAN) & (plan.open_month >= 0))[0]
    assert sited.neigh[day] == 7
    others = np.ones(plan.size, bool)
    others[[*first, day]] = False
    assert (sited.neigh[others] == plan.neigh[others]).all()  # nothing else moves
    assert (sited.capacity_rows == plan.capacity_rows).all()
    assert len(geo.neighbourhoods) == NEIGHBOURHOODS


def test_site_command_writes_a_scenario_that_covers_more(tmp_path: Path, capsys) -> None:
    out = tmp_path / "site"
    argv = ["site", "--year", "2016", "--scale", "1000", "--out", str(out), "-q"]
    assert main(argv) == 0
    assert sorted(os.listdir(out)) == sorted(
        ["manifest.json", "sites.csv", "coverage.csv", "site.toml", "site.html", "site.png"]
    )
    cov = pd.read_csv(out / "coverage.csv")
    city = cov[cov["district"] == "Taiyuan"].set_index(["kind", "allocation"])["coverage"]
    for kind in ("centre", "day_care"):
        assert city[kind, "optimised"] >= city[kind, "plan"] - 1e-12
    sc = load_scenario(out / "site.toml")
    sites = pd.read_csv(out / "sites.csv")
    assert (
        list(sc.params.policy.centre_sites)
        == sites.loc[sites["kind"] == "centre", "neighbourhood"].tolist()
    )
    frame = simulate(sc.params, 1, 1000.0, "2016-12")
    base = simulate(Params(), 1, 1000.0, "2016-12")
    last = [f[(f["district"] == "Taiyuan") & (f["month"] == "2016-12")] for f in (frame, base)]
    assert (
        last[0]["coverage_community_centre"].item() >= last[1]["coverage_community_centre"].item()
    )
    assert main(argv) == 0  # its own earlier output is replaced
    fails(["site", "--year", "2040", "--out", str(tmp_path / "x")], capsys, "--year", "2035")
    fails(["site", "--centre-radius", "9", "--out", str(tmp_path / "x")], capsys, "[0.3, 2.0]")
