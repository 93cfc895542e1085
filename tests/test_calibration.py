"""Calibration: the fitted file loads and validates, known parameters are recovered, the report
regenerates."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from sim.experiments.calibrate import (
    STAGES,
    CalibrationError,
    abc_posterior,
    fit,
    fit_targets_digest,
    load_targets,
    objective,
    replicate,
    report,
    statistics,
)
from sim.experiments.validate import validation_rows
from sim.params.fitted import FITTED_PATH
from sim.params.sections import Params
from sim.population.projection import project

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ROOT / "calibration" / "targets.csv"


def test_targets_file_is_complete() -> None:
    """Every 'fit' row has a simulated statistic here; every 'validate' row has a pattern in
    sim/experiments/validate.py (tests/test_validation.py)."""
    targets = load_targets(TARGETS)
    assert targets["source"].str.len().min() > 5
    fitted_targets = {m.target for moments in STAGES.values() for m in moments}
    fit_rows = set(targets.index[targets["role"] == "fit"])
    assert fitted_targets <= fit_rows
    stats = statistics(Params(), seed=1, scale=200)
    assert fit_rows <= set(stats), fit_rows - set(stats)
    assert set(targets.index[targets["role"] == "validate"]) == set(validation_rows(TARGETS).index)


@pytest.mark.parametrize("stage", ["medical", "choice"])
def test_fits_and_posterior_refuse_validation_rows(stage: str) -> None:
    """Marking the target a stage fits as 'validate' makes the fit and the ABC posterior refuse
    it before any run (tests/test_demography.py does the population and health stages)."""
    targets = load_targets(TARGETS)
    name = STAGES[stage][0].target
    changed = targets.copy()
    changed.loc[name, "role"] = "validate"
    with pytest.raises(CalibrationError, match=f"{name}: a validation target"):
        fit(changed, Params.declared(), [stage], seed=1, scale=500, log=lambda _: None)
    with pytest.raises(CalibrationError, match=f"{name}: a validation target"):
        abc_posterior(changed, Params(), [stage], scale=500, db_path=Path("/nonexistent.db"))
    assert objective({name: 0.0}, changed.loc[[name]]) == 0.0  # nothing left to fit


def test_fitted_file_digest_covers_the_fit_rows_only(tmp_path: Path) -> None:
    """Adding a validation row leaves the digest of what the fits read as it is; changing a
    fit row's value changes it."""
    base = fit_targets_digest(TARGETS)
    text = TARGETS.read_text(encoding="utf-8")
    extra = tmp_path / "extra.csv"
    extra.write_text(text + "x,validate,family,within,1,1,u,d,s,src,why\n", encoding="utf-8")
    assert fit_targets_digest(extra) == base
    changed = tmp_path / "changed.csv"
    changed.write_text(text.replace("pop_60plus_2020,fit,population,within,854501",
                                    "pop_60plus_2020,fit,population,within,854502"),
                       encoding="utf-8")  # fmt: skip
    assert fit_targets_digest(changed) != base


def test_fitted_file_loads_by_default_with_provenance() -> None:
    data = tomllib.loads(FITTED_PATH.read_text(encoding="utf-8"))
    prov = data["provenance"]
    for key in ("fit_targets_sha256", "date", "code_version", "method", "objective"):
        assert key in prov
    assert prov["fit_targets_sha256"] == fit_targets_digest(TARGETS)
    params = Params()
    for section, values in data["params"].items():
        for name, value in values.items():
            got = getattr(getattr(params, section), name)
            expected = tuple(value) if isinstance(value, list) else value
            assert got == pytest.approx(expected), f"{section}.{name}"
    assert Params.declared() != params


def test_fitted_file_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.params import fitted

    bad = tmp_path / "fitted.toml"
    bad.write_text("[params.demography]\nmortality_scale = 9.0\n", encoding="utf-8")  # [0.8, 1.2]
    monkeypatch.setenv("ELDERCARE_FITTED", str(bad))
    fitted._read.cache_clear()
    with pytest.raises(fitted.FittedFileError, match="mortality_scale"):
        Params()
    fitted._read.cache_clear()


def test_recovers_known_population_parameters() -> None:
    """Project with known parameters, fit to those outputs, recover them (the fit runs on the
    deterministic projection, whose match with the stochastic model tests/test_demography.py
    checks)."""
    truth = Params.declared().with_overrides(
        {"demography": {"entry_share": 0.0047, "net_migration_rate": 0.002}}
    )
    proj = project(truth)
    targets = pd.DataFrame(
        {
            "value": [proj.deaths_in_year(2021), proj.on(2020, 11)["60+"]],
            "tolerance": [1.0, 1.0],
            "role": ["fit", "fit"],
        },
        index=["deaths_60plus_2021", "pop_60plus_2020"],
    )
    fitted, solved = fit(
        targets, Params.declared(), ["population"], seed=3, scale=20, log=lambda _: None
    )
    assert fitted.demography.entry_share == pytest.approx(0.0047, rel=1e-6)
    assert fitted.demography.net_migration_rate == pytest.approx(0.002, rel=1e-5)
    assert set(solved) == {"demography.entry_share", "demography.net_migration_rate"}


def test_report_regenerates_at_small_scale(tmp_path: Path) -> None:
    targets = load_targets(TARGETS)
    reps = replicate(Params(), [1, 2], scale=200)
    text = report(targets, reps, tmp_path, "test run")
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report_deviation.png").is_file()
    for name, row in targets.iterrows():
        assert (f"| {name} |" in text) == (row["role"] == "fit"), name
    assert "## Targets missed" in text and "validation.md" in text


def test_abc_smc_gives_a_weighted_posterior_within_the_priors(tmp_path: Path) -> None:
    targets = load_targets(TARGETS)
    post = abc_posterior(
        targets,
        Params(),
        ["population"],
        scale=300,
        db_path=tmp_path / "a.db",
        population_size=8,
        generations=2,
    )
    assert len(post) == 8
    assert post["weight"].sum() == pytest.approx(1.0)
    for m in STAGES["population"]:
        assert post[m.lever].between(*m.bracket).all(), m.lever
