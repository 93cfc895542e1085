"""Calibration: the fitted file loads and validates, known parameters are recovered, the report
regenerates."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from sim.experiments.calibrate import (
    STAGES,
    abc_posterior,
    fit,
    load_targets,
    replicate,
    report,
    statistics,
)
from sim.params.fitted import FITTED_PATH
from sim.params.sections import Params
from sim.population.projection import project

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ROOT / "calibration" / "targets.csv"


def test_targets_file_is_complete() -> None:
    targets = load_targets(TARGETS)
    assert targets["source"].str.len().min() > 5
    fitted_targets = {m.target for moments in STAGES.values() for m in moments}
    assert fitted_targets <= set(targets.index)
    stats = statistics(Params(), seed=1, scale=200)
    assert set(targets.index) <= set(stats), set(targets.index) - set(stats)


def test_fitted_file_loads_by_default_with_provenance() -> None:
    data = tomllib.loads(FITTED_PATH.read_text(encoding="utf-8"))
    prov = data["provenance"]
    for key in ("targets_sha256", "date", "code_version", "method", "objective"):
        assert key in prov
    assert prov["targets_sha256"] == hashlib.sha256(TARGETS.read_bytes()).hexdigest()
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
    for name in targets.index:
        assert f"| {name} |" in text
    assert "## Targets missed" in text


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
