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
    bad.write_text("[params.demography]\nmortality_scale = 9.0\n", encoding="utf-8")
    monkeypatch.setenv("ELDERCARE_FITTED", str(bad))
    fitted._read.cache_clear()
    with pytest.raises(fitted.FittedFileError, match="mortality_scale"):
        Params()
    fitted._read.cache_clear()


def test_recovers_known_population_parameters() -> None:
    """Simulate with known parameters, fit to those outputs, recover them."""
    truth = Params.declared().with_overrides(
        {"demography": {"mortality_scale": 1.12, "entrant_share_of_china": 0.0047}}
    )
    observed = statistics(truth, seed=3, scale=100, care=False)
    targets = pd.DataFrame(
        {
            "value": [observed["deaths_60plus_2021"], observed["pop_60plus_2020"]],
            "tolerance": [1.0, 1.0],
        },
        index=["deaths_60plus_2021", "pop_60plus_2020"],
    )
    fitted, solved = fit(
        targets, Params.declared(), ["population"], seed=3, scale=100, log=lambda _: None
    )
    assert fitted.demography.mortality_scale == pytest.approx(1.12, rel=0.03)
    assert fitted.demography.entrant_share_of_china == pytest.approx(0.0047, rel=0.03)
    assert set(solved) == {"demography.mortality_scale", "demography.entrant_share_of_china"}


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
