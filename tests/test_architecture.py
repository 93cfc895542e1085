"""The architecture as the code states it: import layering (import-linter contracts in
pyproject.toml), the runner's check that the month ahead is safe, each care subsystem writing
only the population columns it declares, and Mesa's agent registry holding only the persistent
agents."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.care.month import CareMonth
from sim.core.agents import Facility, Family, Resident, ServiceTeam
from sim.core.model import CareModel
from sim.engine.runner import PipelineError, Runner
from sim.engine.subsystem import Subsystem
from sim.population.columns import COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    """Layers (cli/app > experiments > core > care > population > kpis/params > engine) and no
    circle among any package's modules, imports inside functions and under TYPE_CHECKING
    included."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a test dependency (pip install -e '.[test]')"
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


class _WritesHealth(Subsystem):
    writes = frozenset({"arrangement", "health"})


def test_runner_refuses_a_care_subsystem_that_writes_what_the_month_ahead_reads() -> None:
    model = CareModel(seed=1, scale=2000)
    with pytest.raises(PipelineError, match="_WritesHealth writes health"):
        Runner(model.population, (*model.care, _WritesHealth()))
    Runner(model.population, model.care)  # the model's own subsystems pass


def _columns(model: CareModel) -> dict[str, np.ndarray]:
    n = model.pop.size
    return {name: getattr(model.pop, name)[:n].copy() for name in COLUMNS}


def test_each_care_subsystem_writes_only_the_columns_it_declares() -> None:
    """Step the care subsystems one by one for a year of months and compare every population
    column before and after each: a column that changed must be in the subsystem's `writes`."""
    model = CareModel(seed=3, scale=200)
    written: dict[str, set[str]] = {type(s).__name__: set() for s in model.care}
    for _ in range(13):
        population = model.runner.population_month(model.month)
        month = CareMonth.open(
            model.month, population.event_rows, model.pop.event, population.needy,
            population.counts,
        )  # fmt: skip
        for subsystem in model.care:
            before = _columns(model)
            subsystem.step(month)
            after = _columns(model)
            changed = {name for name in COLUMNS if not np.array_equal(before[name], after[name])}
            assert changed <= subsystem.writes, (type(subsystem).__name__, changed)
            written[type(subsystem).__name__] |= changed
        model.runner.complete([w for s in model.care if (w := s.results(month)) is not None])
        model.month += 1
    assert written["Choice"] and written["Admission"] and written["Assessment"]


def test_model_agents_hold_only_facilities_and_teams() -> None:
    model = CareModel(seed=2, scale=500)
    model.run_until("2016-04")
    assert len(model.deciders) > 0 and model.resident(0).describe()["person_key"] == 0
    kinds = {type(agent) for agent in model.agents}
    assert kinds == {Facility, ServiceTeam}
    assert len(model.agents) == len(model.facility_agents) + len(model.team_agents)
    assert not any(isinstance(a, (Resident, Family)) for a in model.agents)
    teams = model.team_agents
    formed = [t for t in teams if t.district >= 0]
    assert len(formed) == model.params.services.teams_2015
    hours = sum(t.monthly_hours for t in formed)
    assert hours == pytest.approx(model.teams.hours(model.month - 1).sum())
