"""Parameter uncertainty and global sensitivity (issue 20): every uncertain parameter has a
justified range, draws stay in it and are reproducible, intervals widen when parameter
uncertainty joins seed noise, Sobol indices of a known function come out right through the
same code path, and bad input on the command line is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.experiments import uncertainty as unc
from sim.experiments.calibrate import load_targets
from sim.experiments.global_sensitivity import direct_sobol, emulated_sobol
from sim.experiments.scenario import load_scenario
from sim.params.sections import Params
from tests.cli_helpers import fails

TINY = {"scale": 500.0, "until": "2016-12"}


@pytest.fixture(scope="module")
def factors() -> list[unc.Factor]:
    return unc.load_factors()


def _elements(value) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=float))


def test_every_uncertain_parameter_that_is_not_a_lever_has_a_range(factors) -> None:
    infos = {i.path: i for i in Params().describe()}
    fitted_paths = {unc.base_path(f.factor) for f in unc.FITTED}
    covered = {f.path for f in factors}
    for path, info in infos.items():
        if info.lever is not None or isinstance(info.default, (bool, str)):
            continue
        if info.assumed or path in fitted_paths:
            assert path in covered, f"{path} is assumed or fitted but has no range"
    names = [f.name for f in factors]
    assert len(names) == len(set(names))
    targets = load_targets(unc.TARGETS_PATH)
    for f in factors:
        info = infos[f.path]
        assert f.kind in unc.KINDS and f.basis, f.name
        assert info.lever is None, f"{f.name} is a lever: the scenario, not uncertainty"
        if f.how == "gradient":
            continue
        low, high, default = _elements(f.low), _elements(f.high), _elements(f.default)
        assert np.all(np.minimum(low, high) >= info.lo - 1e-9), f.name
        assert np.all(np.maximum(low, high) <= info.hi + 1e-9), f.name
        lo, hi = np.minimum(low, high) - 1e-9, np.maximum(low, high) + 1e-9
        assert np.all((default >= lo) & (default <= hi)), f"{f.name}: default outside its range"
        assert np.any(low != high), f"{f.name}: an empty range"
        if f.kind == "fitted":
            row = targets.loc[f.target]
            assert row["role"] == "fit", f"{f.name} reads a validation target"
            assert f.target_low == pytest.approx(row["value"] - row["tolerance"])
            assert f.target_high == pytest.approx(row["value"] + row["tolerance"])
    assert {f.name for f in factors if f.kind == "fitted"} == {f.factor for f in unc.FITTED}


def test_the_ranges_file_matches_the_declarations() -> None:
    shipped = pd.read_csv(unc.RANGES_PATH, dtype=str, keep_default_na=False)
    declared = unc.ranges_table(unc.declared_factors())
    have = shipped[shipped["kind"] != "fitted"].reset_index(drop=True)
    pd.testing.assert_frame_equal(have, declared, check_dtype=False)


def test_draws_stay_in_their_ranges_and_repeat_by_seed(factors) -> None:
    u = unc.unit_draws(16, len(factors), seed=3)
    assert np.array_equal(u, unc.unit_draws(16, len(factors), seed=3))
    assert not np.array_equal(u, unc.unit_draws(16, len(factors), seed=4))
    # a Latin hypercube: one point in each sixteenth of every factor's range
    assert all(sorted((u[:, j] * 16).astype(int)) == list(range(16)) for j in range(u.shape[1]))
    base = Params()
    for row in u[:6]:
        d = unc.draw(factors, row, base, refit=True)
        params = base.with_overrides(unc._nested(d.values))  # validated against [lo, hi]
        for f, x in zip(factors, row, strict=True):
            if f.how == "refit":
                assert f.target_low <= d.targets[f.target] <= f.target_high
                continue
            if f.how in ("range", "profile") and "[" not in f.name:
                got = _elements(unc._get(params, f.path))
                low, high = _elements(f.low), _elements(f.high)
                lo, hi = np.minimum(low, high), np.maximum(low, high)
                if f.path == "health.medical_need_prevalence":
                    continue  # regraded: checked in the next test
                assert np.all((got >= lo - 1e-6) & (got <= hi + 1e-6)), (f.name, x, got)
    again = unc.draw(factors, u[0], base)
    assert again == unc.draw(factors, u[0], base)


def test_the_medical_gradient_keeps_the_level_and_the_stated_ranges() -> None:
    params = Params()
    weights = unc.state_weights_2015(params)
    level = params.health.medical_need_prevalence
    for g in unc.GRADIENT_RANGE:
        graded = np.array(unc.regrade(level, g, weights))
        assert weights @ graded == pytest.approx(weights @ np.array(level), abs=1e-5)
        for p, (lo, hi) in zip(graded, unc.MEDICAL_STATE_RANGES, strict=True):
            assert lo <= p <= hi, (g, graded)
    steeper = np.array(unc.regrade(level, unc.GRADIENT_RANGE[1], weights))
    assert steeper[4] > level[4] and steeper[0] < level[0]


def test_the_population_refit_meets_its_targets_with_other_mortality() -> None:
    params = Params().with_overrides({"demography": {"mortality_scale": 0.9}})
    values, info = unc._refit_population(params, 860_000, 25_500)
    assert info["population_refit_ok"]
    assert info["pop_60plus_2020"] == pytest.approx(860_000, rel=2e-4)
    assert info["deaths_60plus_2021"] == pytest.approx(25_500, rel=2e-4)
    assert values["demography.net_migration_rate"] != Params().demography.net_migration_rate


def test_summarise_splits_variance_between_parameters_and_seeds() -> None:
    rng = np.random.default_rng(1)
    rows = []
    means = rng.normal(0, 2.0, 200)  # parameter sd 2
    for d, mu in enumerate(means):
        for s in (1, 2, 3, 4):
            rows.append({"draw": d, "seed": s, "year": 2020, "x": mu + rng.normal(0, 1.0)})
    table = unc.summarise(pd.DataFrame(rows), ["x"])
    row = table.iloc[0]
    assert row["param_share"] == pytest.approx(4 / 5, abs=0.06)
    assert row["p05"] < row["p50"] < row["p95"]
    flat = pd.DataFrame(rows)["x"]
    assert row["p95"] == pytest.approx(flat.quantile(0.95), rel=1e-9)


def test_intervals_widen_when_parameter_uncertainty_joins_seed_noise(tmp_path, factors) -> None:
    sc = load_scenario("plan_2016_2020")
    chosen = unc.uncertain_factors(sc, factors)
    seeds = (1, 2)
    fixed = unc.Design(sc, chosen, np.full((1, len(chosen)), 0.5), seeds, refit=False,
                       sample_seed=1, **TINY)  # fmt: skip
    drawn = unc.make_design(sc, 5, seeds, TINY["scale"], TINY["until"], 2, factors, refit=False)
    kpis = ["unmet_need_share", "share_institution"]
    widths = {}
    for name, design in (("seeds", fixed), ("both", drawn)):
        values, _, _ = unc.propagate(design, tmp_path / name, "uncertainty", None, 1, False, kpis)
        table = unc.summarise(values, kpis).set_index("kpi")
        widths[name] = table["p95"] - table["p05"]
        if name == "both":
            assert (table["param_share"] > 0).all()
    assert (widths["both"] > widths["seeds"]).all(), widths


def _ishigami(u: np.ndarray) -> np.ndarray:
    x = -np.pi + 2 * np.pi * u
    return np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])


ISHIGAMI_S1 = (0.3139, 0.4424, 0.0)
ISHIGAMI_ST = (0.5576, 0.4424, 0.2437)


def test_sobol_indices_of_the_ishigami_function_directly_and_through_the_emulator() -> None:
    direct = direct_sobol(_ishigami, 3, n_base=2048, seed=1)
    assert np.allclose(direct["S1"], ISHIGAMI_S1, atol=0.05)
    assert np.allclose(direct["ST"], ISHIGAMI_ST, atol=0.05)
    u = unc.unit_draws(200, 3, seed=5)
    table, choice = emulated_sobol(u, _ishigami(u), ["a", "b", "c"], n_base=1024, bootstrap=4)
    assert choice.r2 > 0.9
    assert np.allclose(table["S1"], ISHIGAMI_S1, atol=0.08), table
    assert np.allclose(table["ST"], ISHIGAMI_ST, atol=0.08), table
    assert (table["ST_conf"] > 0).all() and table["in_emulator"].all()


def test_the_shipped_intervals_answer_the_report(tmp_path) -> None:
    table = pd.DataFrame(
        [{"kpi": "unmet_need_share", "year": 2020, "unit": "share", "p05": 0.4, "p50": 0.45,
          "p95": 0.5, "mean": 0.45, "sd": 0.03, "param_share": 0.9, "draws": 50, "seeds": 3}]
    )  # fmt: skip
    path = tmp_path / "plan.csv"
    table.to_csv(path, index=False)
    meta = {"draws": 50, "seeds": [1, 2, 3], "scale": 10, "scenario": "plan_2016_2020",
            "factor_kinds": {"assumed": 60, "fitted": 5}}  # fmt: skip
    path.with_suffix(".json").write_text(json.dumps(meta))
    lo, median, hi, includes = unc.intervals("unmet_need_share", 2020, path)
    assert (lo, median, hi) == (0.4, 0.45, 0.5)
    assert "parameter" in includes and "stochastic" in includes and "50" in includes
    with pytest.raises(unc.UncertaintyError, match="KPI"):
        unc.intervals("no_such_kpi", 2020, path)
    with pytest.raises(unc.UncertaintyError, match="2035"):
        unc.intervals("unmet_need_share", 2035, path)
    if unc.SHIPPED_PATH.is_file():  # the shipped analysis of the plan
        for kpi in ("medical_care_demand_met", "unmet_need_share"):
            for year in (2020, 2035):
                got = unc.intervals(kpi, year)
                assert got.lo <= got.median <= got.hi


def test_command_line_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "out")
    fails(["uncertainty", "--out", out, "--seeds", "1,1"], capsys, "--seeds", "named twice")
    fails(["uncertainty", "--out", out, "--seeds", "1,x"], capsys, "--seeds")
    fails(["uncertainty", "--out", out, "--draws", "0"], capsys, "--draws")
    fails(["uncertainty", "--out", out, "--scenario", "nope"], capsys, "nope")
    fails(["uncertainty", "--out", out, "--until", "2016-06"], capsys, "--until")
    fails(["sobol", "--out", out, "--kpis", "unmet_share"], capsys, "--kpis", "unmet_need_share")
    fails(["sobol", "--out", out, "--years", "2040"], capsys, "--years")
    fails(["sobol", "--out", out, "--years", "2035", "--until", "2020-12"], capsys, "--years")
    afile = tmp_path / "afile"
    afile.write_text("x")
    fails(["uncertainty", "--out", str(afile), "--scale", "1000", "--until", "2016-12", "-q"],
          capsys, "not a folder")  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_uncertainty_command_resumes_and_refuses_other_folders(tmp_path: Path, capsys) -> None:
    out = tmp_path / "unc"
    args = ["uncertainty", "--out", str(out), "--draws", "2", "--seeds", "1,2", "--scale",
            "1000", "--until", "2016-12", "--no-refit", "-q"]  # fmt: skip
    assert main(args) == 0
    first = (out / "intervals.csv").read_text()
    meta = json.loads((out / "intervals.json").read_text())
    assert meta["draws"] == 2 and meta["seeds"] == [1, 2] and meta["wall_seconds"] > 0
    assert main(args) == 0  # resumed: every run read back, the same intervals
    assert (out / "intervals.csv").read_text() == first
    fails([*args[:4], "3", *args[5:]], capsys, "other draws")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    fails(["uncertainty", "--out", str(mine), *args[3:]], capsys, "other files")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_ranges_and_help_list_the_factors(capsys) -> None:
    assert main(["ranges"]) == 0
    out = capsys.readouterr().out
    assert "choice.constants[3:6]" in out and "fitted" in out and "triangular" in out
    for sub in ("uncertainty", "sobol", "ranges"):
        with pytest.raises(SystemExit) as info:
            main([sub, "--help"])
        assert info.value.code == 0
        assert "usage: eldercare" in capsys.readouterr().out
