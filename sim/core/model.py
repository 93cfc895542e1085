"""CareModel: the Mesa model of elderly-care demand and supply in Taiyuan, one step per month.

The model builds its subsystems, each with what it needs, and runs their month in the order of
../shared/DESIGN.md section 5: the population (entrants, deaths, health and medical-need
transitions, widowhood, ageing), then the care system: places freed and queues refreshed, team
hours, deciders and their assessment, choices, admissions, care delivered, and the diagnostics.
Resident state lives in numpy columns (`sim.population.columns.Population`); Mesa agents are views
(`sim.core.agents`). The runner (`sim.engine.runner`) runs the months serially or, within
`run_until`, pipelined over two threads with identical results.
"""

from __future__ import annotations

from collections.abc import Callable

import mesa
import numpy as np
import pandas as pd

from sim.care.admission import Admission
from sim.care.assessment import Assessment
from sim.care.choice import Choice
from sim.care.delivery import Delivery
from sim.care.diagnostics import Diagnostics
from sim.care.month import CareMonth
from sim.care.places import Places
from sim.care.teams import Teams
from sim.core.agents import Facility, Family, Resident, ServiceTeam
from sim.engine.calendar import CARE_START, FIRST_MONTH, month_label, until_index
from sim.engine.runner import Runner
from sim.kpis.frame import metrics_frame
from sim.kpis.registry import CARE_SUM_NAMES
from sim.params.sections import Params
from sim.population.columns import Population
from sim.population.geography import load_geography
from sim.population.kernel import COUNTS, EVENT_WIDOWED
from sim.population.system import PopulationSystem


class CareModel(mesa.Model):
    """Taiyuan's elderly residents, families and care system from 2016-01 onwards.

    The residents start at the 2010 census (2010-11-01) and the model is built with their
    months to 2015-12 run: the population from the census, and the care system with the end-2015
    supply (its spin-up, so that 2016-01 starts from the residents in beds and the arrangements
    that supply sustains, not from everyone choosing at once). `metrics()` covers the population
    from 2010-11 and the care system from 2016-01.

    seed: every random draw is keyed by it (common random numbers across scenarios).
    scale: persons per resident row (1 = full city); metrics are always in persons.
    params: parameters; None = the plan as written (with the fitted values).
    care: False runs the population alone (demography and health; no care system), which
    calibration and the population benchmark use.
    """

    def __init__(
        self, seed: int = 1, scale: float = 1, params: Params | None = None, care: bool = True
    ):
        super().__init__(rng=seed)
        if scale < 1:
            raise ValueError(f"scale must be >= 1 (persons per row), got {scale}")
        self.seed, self.scale, self.params = int(seed), float(scale), params or Params()
        self.geo = load_geography()
        p, geo, seed, scale = self.params, self.geo, self.seed, self.scale
        self.population = PopulationSystem(p, geo, seed, scale)
        self.population.init()
        pop = self.pop
        self.places = Places(p, geo, pop, seed, scale)
        self.teams = Teams(p, geo, scale)
        self.assessment = Assessment(p, pop, self.places)
        self.choice = Choice(p, pop, self.places, self.teams, seed)
        self.admission = Admission(pop, self.places, seed)
        self.delivery = Delivery(p, self.population, self.places, self.teams, seed, scale)
        self.diagnostics = Diagnostics(self.choice, self.places)
        # the care system's month, in order (each step reads what the earlier ones recorded)
        care = (
            self.places,
            self.teams,
            self.assessment,
            self.choice,
            self.admission,
            self.delivery,
            self.diagnostics,
        )
        for subsystem in care:
            subsystem.init()
        self.care = care if care else ()
        self.runner = Runner(self.population, self.care)
        self._months: list[int] = []
        self._counts: list[np.ndarray] = []
        self._sums: list[np.ndarray] = []
        no_care = np.full((self.n_districts, len(CARE_SUM_NAMES)), np.nan)
        for month in range(FIRST_MONTH, CARE_START):  # the population, the care system's spin-up
            population = self.population.month(month)
            self._months.append(month)
            self._counts.append(population.counts)
            self._sums.append(no_care)
            spin_up = CareMonth.open(
                month, population.event_rows, self.pop.event, population.needy, population.counts
            )
            for subsystem in self.care:
                subsystem.step(spin_up)
        self.month = CARE_START  # the next month to simulate (0 = 2016-01)
        self._progress: Callable[[int], None] | None = None
        self._decider_rows = np.zeros(0, dtype=np.int64)
        self._residents: list[Resident] = []  # pooled views, rebound to this month's deciders
        self._families: list[Family] = []
        self.facility_agents = [Facility(self, i) for i in range(self.places.table.size)]
        self.team_agents = [ServiceTeam(self, i) for i in range(self.teams.table.size)]

    # -- time ---------------------------------------------------------------------------------
    def step(self) -> None:
        """One calendar month: the population's, then each care subsystem's in order."""
        population = self.runner.population_month(self.month)
        month = CareMonth.open(
            self.month, population.event_rows, self.pop.event, population.needy, population.counts
        )
        for subsystem in self.care:
            subsystem.step(month)
        self.runner.complete([work for s in self.care if (work := s.results(month)) is not None])
        self._record(month, population.counts)
        self.month += 1
        if self._progress is not None:
            self._progress(1)

    def run_until(self, until: str | float, progress: Callable[[int], None] | None = None) -> None:
        """Run through the calendar month `until` ('YYYY-MM', inclusive), pipelined over two
        threads (`Runner.run`); `progress(1)` is called after each month."""
        last = until_index(until) if isinstance(until, str) else int(until) - 1
        if last < self.month:
            return
        until_index(month_label(last))  # a month count past the data is refused too
        self._progress = progress
        try:
            self.runner.run(self.run_for, last + 1 - self.month, last)
        finally:
            self._progress = None

    def _record(self, month: CareMonth, counts: np.ndarray) -> None:
        self._months.append(month.month)
        self._counts.append(counts)
        self._sums.append(month.sums)  # completed by the runner (unused without care)
        if self.care:
            self._decider_rows = month.deciders
        else:  # the population alone: those with an event
            events = month.events
            self._decider_rows = events[self.pop.alive[events]]

    # -- state --------------------------------------------------------------------------------
    @property
    def pop(self) -> Population:
        """The residents' columns."""
        return self.population.pop

    @property
    def n_districts(self) -> int:
        return len(self.geo.districts)

    @property
    def event_rows(self) -> np.ndarray:
        """Rows with an event this month (deaths, need changes, widowhood, arrivals in need)."""
        return self.population.current.event_rows

    @property
    def needy_rows(self) -> np.ndarray:
        """Living rows needing care (state 2+) this month, in key order."""
        return self.population.current.needy

    # -- agents -------------------------------------------------------------------------------
    @property
    def deciders(self) -> mesa.agent.AgentSet:
        """This month's deciders (residents with an event, or waiting too long) as Resident
        agents in a Mesa AgentSet (views on their rows)."""
        agents = _bind(self, self._residents, Resident, self._decider_rows)
        return mesa.agent.AgentSet(agents, random=self.random)

    @property
    def families(self) -> mesa.agent.AgentSet:
        """This month's households whose capacity changed a decision (deciders who lost a
        carer), as a Mesa AgentSet."""
        rows = self._decider_rows
        widowed = rows[(self.pop.event[rows] & EVENT_WIDOWED) != 0]
        return mesa.agent.AgentSet(_bind(self, self._families, Family, widowed), random=self.random)

    def resident(self, row: int) -> Resident:
        """A Resident agent for inspecting one person (a view, not kept in `model.agents`)."""
        if not 0 <= row < self.pop.size:
            raise ValueError(f"person key must be in [0, {self.pop.size - 1}], got {row}")
        return Resident(self, row)

    # -- results ------------------------------------------------------------------------------
    def metrics(self) -> pd.DataFrame:
        """One row per (month, district) and per month for the city ('Taiyuan'), in persons."""
        names = list(self.geo.districts["name_en"])
        sums = self._sums if self.care else ()
        return metrics_frame(self._months, names, self.scale, self._counts, COUNTS, sums)


def _bind(model: CareModel, pool: list, cls: type, rows: np.ndarray) -> list:
    """Views of `cls` bound to `rows` (pooled objects, rebound each call)."""
    while len(pool) < rows.size:
        pool.append(cls(model, -1))
    views = pool[: rows.size]
    for view, row in zip(views, rows.tolist(), strict=True):
        view.row = row
    return views
