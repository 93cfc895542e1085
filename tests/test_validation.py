"""Validation: the patterns are rows the fits never read; each is measured, compared and reported
as pass, miss or not testable; a pattern that passed in the committed report still passes on a
coarse run (the CI's regression check); the command's bad input exits 2 with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli import main
from sim.experiments import validate
from sim.experiments.calibrate import load_targets
from sim.params.sections import Params
from tests.cli_helpers import fails

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ROOT / "calibration" / "targets.csv"
CI_SCALE = 50  # coarse: one run to 2020-12 in seconds
CI_SEED = 1


def _row(check: str, value: float, tolerance: float) -> pd.Series:
    return pd.Series({"check": check, "value": value, "tolerance": tolerance}, name="a_pattern")


def test_every_validate_row_is_a_pattern_with_source_and_why_fair() -> None:
    rows = validate.validation_rows(TARGETS)
    testable = rows[rows["check"] != "not_testable"]
    assert len(testable) >= 8
    assert set(rows.index) == {p.name for p in validate.PATTERNS}
    for name, row in rows.iterrows():
        assert len(row["source"]) > 20 and len(row["why_fair"]) > 20, name
    for name in rows.index[rows["check"] == "not_testable"]:
        assert rows.loc[name, "why_fair"].startswith("not testable yet"), name
    assert set(validate.FAST_SUBSET) <= set(testable.index)


def test_no_statistic_of_the_fits_is_a_validation_pattern() -> None:
    targets = load_targets(TARGETS)
    fit = set(targets.index[targets["role"] == "fit"])
    assert fit.isdisjoint(validate.BY_NAME)


def test_status_pass_miss_and_not_testable() -> None:
    within = _row("within", 1.0, 0.1)
    assert validate.status(within, 1.05) == validate.PASS
    assert validate.status(within, 1.09) == validate.PASS
    assert validate.status(within, 1.11) == validate.MISS
    assert validate.status(within, 0.85) == validate.MISS
    assert validate.status(within, float("nan")) == validate.MISS
    assert validate.status(_row("at_most", 0.0, 0.0), 0.01) == validate.MISS
    assert validate.status(_row("at_most", 0.0, 0.0), -0.01) == validate.PASS
    assert validate.status(_row("at_least", 0.2, 0.0), 0.19) == validate.MISS
    assert validate.status(_row("at_least", 0.2, 0.0), 0.5) == validate.PASS
    assert validate.status(_row("not_testable", 0.6, 0.05), 0.6) == validate.NOT_TESTABLE


def test_a_miss_carries_its_mechanism(tmp_path: Path) -> None:
    """A pattern measured outside its tolerance is reported as a miss, with the explanation,
    in the table, the report, the figure and the status file; not-testable rows as such."""
    shifted = TARGETS.read_text(encoding="utf-8").replace(
        "queue_wait_probability,validate,queue,within,0.402,0.03",
        "queue_wait_probability,validate,queue,within,0.9,0.03",
    )
    moved = tmp_path / "targets.csv"
    moved.write_text(shifted, encoding="utf-8")
    names = ["queue_wait_probability", "occupancy_shanghai_2030_zhu2022"]
    table = validate.run_suite(Params(), [1], 50, names=names, targets=moved)
    by = table.set_index("pattern")
    assert by.loc["queue_wait_probability", "status"] == validate.MISS
    assert "admission" in by.loc["queue_wait_probability", "explanation"]
    assert by.loc["occupancy_shanghai_2030_zhu2022", "status"] == validate.NOT_TESTABLE
    assert np.isnan(by.loc["occupancy_shanghai_2030_zhu2022", "simulated"])
    out = tmp_path / "v.md"
    paths = validate.write_outputs(table, out, 50, [1], "a test")
    assert [p.name for p in paths] == ["v.md", "v.png", "v.csv"]
    text = out.read_text(encoding="utf-8")
    assert "**Why it misses (the likely mechanism):**" in text
    assert "| 2 | [occupancy_shanghai_2030_zhu2022]" in text
    assert "not testable yet" in text and "**miss**" in text
    status = pd.read_csv(tmp_path / "v.csv").set_index("pattern")
    assert status.loc["queue_wait_probability", "status"] == validate.MISS
    assert (tmp_path / "v.png").stat().st_size > 10_000
    assert "miss" in validate.console_table(table)


def test_queue_theory() -> None:
    """Erlang C by hand for small cases, and the exact chain of the model's month is the value
    in targets.csv (one source of the figure: the code that solves it)."""
    assert validate.erlang_c(1, 0.5) == pytest.approx(0.5)
    assert validate.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    exact = validate.queue_theory()
    row = load_targets(TARGETS).loc["queue_wait_probability"]
    assert row["value"] == pytest.approx(exact, abs=5e-4)
    erlang = validate.erlang_c(validate.QUEUE.beds, validate.QUEUE.load * validate.QUEUE.beds)
    assert abs(exact - erlang) < row["tolerance"]  # the month's step shifts it a little


def test_rate_and_odds_ratios() -> None:
    """Mantel-Haenszel over strata recovers a ratio that holds in every stratum, though the
    strata's rates differ; the odds ratio of a 2x2 table."""
    strata = np.repeat([0, 1], 4)
    exposed = np.tile([True, True, False, False], 2)
    months = np.array([10, 30, 60, 20, 30, 10, 20, 60], dtype=float)
    deaths = np.array([1, 1, 1, 0, 2, 2, 1, 1], dtype=float)
    # stratum 0: 2/40 vs 1/80; stratum 1: 4/40 vs 2/80: a ratio of 4 in each
    assert validate.rate_ratio(exposed, ~exposed, deaths, months, strata) == pytest.approx(4.0)
    assert np.isnan(validate.rate_ratio(exposed, ~exposed, np.zeros(8), months, strata))
    outcome = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    group = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    assert validate.odds_ratio(group, outcome) == pytest.approx((2 / 2) / (1 / 3))


def test_patterns_that_passed_still_pass_on_a_coarse_run() -> None:
    """The CI's regression check: the fast subset at a coarse scale, one seed; every pattern the
    committed report (calibration/validation.csv, written by `eldercare validate`) marks pass
    must still pass. Statistics chosen for the subset are stable at this scale."""
    committed = validate.committed_status()
    rows = validate.validation_rows(TARGETS)
    assert set(committed.index) == set(rows.index), "regenerate: eldercare validate"
    subset = list(validate.FAST_SUBSET)
    table = validate.run_suite(Params(), [CI_SEED], CI_SCALE, names=subset).set_index("pattern")
    passed = committed.index[committed["status"] == validate.PASS]
    now_missed = [
        f"{n}: {table.loc[n, 'simulated']:.4g}"
        for n in subset
        if n in passed and table.loc[n, "status"] != validate.PASS
    ]
    assert not now_missed, f"patterns that passed now miss: {now_missed}"
    for name in subset:  # every statistic is measurable at this scale
        assert np.isfinite(table.loc[name, "simulated"]), name


def test_committed_report_lists_every_pattern() -> None:
    text = validate.REPORT_PATH.read_text(encoding="utf-8")
    committed = validate.committed_status()
    for i, (name, row) in enumerate(committed.iterrows(), start=1):
        assert f"### {i}. {name}" in text
        assert f"- **Status: {row['status']}.**" in text
    assert validate.REPORT_PATH.with_suffix(".png").is_file()


def test_cli_bad_input_exits_2(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "v.md")
    fails(["validate", "--seeds", "1,x", "--out", out], capsys, "--seeds", "1,x")
    fails(["validate", "--seeds", "", "--out", out], capsys, "--seeds")
    fails(["validate", "--seeds", "1,1", "--out", out], capsys, "--seeds", "twice")
    fails(["validate", "--seeds", "-1", "--out", out], capsys, "--seeds")
    fails(["validate", "--scale", "0.5", "--out", out], capsys, "--scale")
    fails(["validate", "--out", str(tmp_path / "v.txt")], capsys, "--out", ".md")
    fails(["validate", "--out", str(tmp_path / "no" / "v.md")], capsys, "--out", "folder")
    fails(["validate", "--patterns", "queue_wait_probabilty", "--out", out], capsys,
          "queue_wait_probabilty", "queue_wait_probability")  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_cli_writes_the_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "v.md"
    args = ["validate", "--patterns", "queue_wait_probability,dependency_incidence_trend"]
    assert main([*args, "--seeds", "3", "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "queue_wait_probability" in printed and "not testable yet" in printed
    assert {p.name for p in tmp_path.iterdir()} == {"v.md", "v.png", "v.csv"}
