"""The population subsystem: demography, health and families of the residents.

At the start it synthesises the residents of the 2010 census (`synthesis`); each month it appends
the arrivals (those turning 60, and newcomers when net migration is positive) and runs the
population kernel (deaths and moves out of Taiyuan, health and medical-need transitions,
widowhood, ageing, counts by district; `kernel`). Death rates are the life table's (WPP 2024
China by sex, `lifetable`) spread over the health states by relative risks that keep the table's
average at every age and sex (`health`). Within a pipelined run (`sim.engine.runner`) next
month's arrivals and kernel start on the worker thread while this month's care runs
(`MonthAhead`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from sim.engine.calendar import EachYear, decimal_year
from sim.engine.subsystem import Subsystem
from sim.params.sections import Params
from sim.population.care_effects import LAG, CareStatus, care_effects
from sim.population.columns import KERNEL_COLUMNS, Population
from sim.population.demography import AGE_MIN, N_AGES
from sim.population.geography import Geography
from sim.population.health import build_tables
from sim.population.kernel import (
    KernelOutputs,
    MonthRates,
    Parts,
    PopulationMonth,
    kernel_columns,
    month_kernel,
    step_population,
    stock_counts,
)
from sim.population.lifetable import life_expectancy
from sim.population.rates import (
    death_probabilities,
    leave_probabilities,
    medical_onset_rates,
    transitions_cum,
)
from sim.population.synthesis import (
    arrivals,
    expected_entrant_rows,
    fill_new_rows,
    newcomer_weights,
    synthesise,
)


class PopulationSystem(Subsystem):
    """The residents' columns and their monthly dynamics (see the module docstring)."""

    # the kernel writes these in existing rows; entrants are new rows, past every other's
    writes = frozenset(KERNEL_COLUMNS)
    # the care received reaches the kernel this many months later (`care_effects`)
    care_lag = LAG
    # what the month ahead reads while this month's care runs: the kernel's columns
    reads_ahead = frozenset(
        ("alive_idx", "alive", "age_m", "sex", "district", "health", "medical", "spouse",
         "entry_month", "death_month", "left_month", "event")
    )  # fmt: skip

    def __init__(self, params: Params, geo: Geography, seed: int, scale: float):
        self.params, self.geo, self.seed, self.scale = params, geo, seed, scale
        self._death_prob: dict[int, np.ndarray] = {}
        self._expected = (0.0, 0.0)  # carried sums of expected entrant and newcomer rows
        self._newcomers = EachYear(self._newcomer_weights)
        self._lists = Parts(2)  # the kernel's event and needy rows, copied out after its merge
        self._parts: Parts | None = None  # the month ahead's kernel buffers, inside a run
        self.current: PopulationMonth | None = None
        self.care_status = CareStatus()  # the care received, recorded by the care system
        self._effects = care_effects(params.health)

    def init(self) -> None:
        self.tables = build_tables(self.params.health.settings(self.params.demography.max_hazard))
        self.pop: Population = synthesise(self.params, self.geo, self.tables, self.seed, self.scale)
        self._stock = stock_counts(self.pop, len(self.geo.districts))
        self._event_rows = np.zeros(0, dtype=np.int64)

    # -- months ---------------------------------------------------------------------------------
    def month(self, month: int) -> PopulationMonth:
        """Run `month` here: last month's event bits cleared, arrivals appended and drawn, the
        kernel's chunks on all cores."""
        self.pop.event[self._event_rows] = 0
        due = self._arrivals_due(month)
        self._expected = due.expected
        if due.rows:
            self._fill_arrivals(self.pop, self.pop.append(due.rows), due, month)
        outputs = self._outputs(self.pop, self._stock)
        self.pop.n_alive, n_events, n_needy = step_population(
            kernel_columns(self.pop), self.pop.n_alive, self._rates(month), outputs
        )
        return self._became(outputs.month(n_events, n_needy))

    def start_ahead(self, month: int, worker: ThreadPoolExecutor) -> MonthAhead:
        return MonthAhead(self, month, worker, self._parts)

    def adopt(self, ahead: MonthAhead) -> PopulationMonth:
        """Finish the month started ahead and become it."""
        result = ahead.result()
        self.pop.adopt(ahead.pop)
        self._expected = ahead.due.expected
        return self._became(result)

    def begin_run(self) -> None:
        self._parts = Parts()

    def end_run(self) -> None:
        self._parts = None

    def results(self, month: int) -> None:
        """The month's counts are `current.counts` (recorded by the model)."""

    def _became(self, result: PopulationMonth) -> PopulationMonth:
        self._event_rows, self._stock, self.current = result.event_rows, result.stock, result
        return result

    # -- the kernel's inputs --------------------------------------------------------------------
    def _arrivals_due(self, month: int) -> Arrivals:
        """The deterministic counts of arrival rows in `month`: for entrants and for newcomers,
        the carried sum of expected rows, floored."""
        carried_e, carried_n = self._expected
        entrants = carried_e + expected_entrant_rows(self.params.demography, self.scale, month)
        weights = self._newcomers(month)
        newcomers = carried_n + float(weights.sum())
        n_e, n_n = int(entrants) - int(carried_e), int(newcomers) - int(carried_n)
        return Arrivals(n_e, n_n, weights, (entrants, newcomers))

    def _newcomer_weights(self, month: int) -> np.ndarray:
        """Expected newcomer rows per month by sex and age, from the stock each January."""
        return newcomer_weights(self.pop, self.params.demography)

    def _fill_arrivals(self, pop: Population, rows: np.ndarray, due: Arrivals, month: int) -> None:
        new = arrivals(
            due.entrants, due.weights, due.newcomers, month, rows, self.params.demography,
            self.geo, self.seed,
        )  # fmt: skip
        fill_new_rows(pop, new, month, self.params, self.geo, self.tables, self.seed)

    def _outputs(self, pop: Population, stock: np.ndarray) -> KernelOutputs:
        """New outputs for a month of `pop` (`stock` is updated in place)."""
        lists = self._lists.get(pop.n_alive)
        flows = np.zeros_like(stock)
        aged = np.zeros((stock.shape[0], 2), dtype=np.int64)
        return KernelOutputs(stock, flows, aged, *lists)

    def _rates(self, month: int) -> MonthRates:
        hp, year = self.params.health, int(decimal_year(month))
        return MonthRates(
            death_prob=self.death_probabilities(year),
            leave_prob=leave_probabilities(self.params.demography),
            health_cum=transitions_cum(hp, self.params.demography, year),
            medical_onset=medical_onset_rates(
                hp.medical_need_prevalence, hp.medical_need_remission_per_month
            ),
            medical_remission=hp.medical_need_remission_per_month,
            external_spouse_death=1 - np.exp(-self.params.households.external_spouse_hazard / 12),
            seed=self.seed,
            month=month,
            effects=self._effects,
            care_received=self.care_status.for_kernel(month),
        )

    def death_probabilities(self, year: int) -> np.ndarray:
        """Monthly death probability [sex, age, state] in a calendar year: the life table's
        hazard by sex and age (times mortality_scale) times the state's relative risk."""
        if year not in self._death_prob:
            self._death_prob[year] = death_probabilities(self.params.demography, self.tables, year)
        return self._death_prob[year]

    def life_expectancy_at_60(self, year: int) -> np.ndarray:
        """Period life expectancy at 60 by sex [male, female] implied by the model in `year`:
        the death probabilities of the year averaged over the health states of the living at
        each sex and age (the state mix of the population now; the open age closes the table)."""
        pop = self.pop
        rows = pop.alive_rows()
        sex, health = pop.sex[rows].astype(np.int64), pop.health[rows].astype(np.int64)
        age = np.minimum(pop.age_m[rows] // 12 - AGE_MIN, N_AGES - 1).astype(np.int64)
        q = self.death_probabilities(year)  # [sex, age, state], monthly
        mix = np.zeros(q.shape)
        np.add.at(mix, (sex, age, health), 1.0)
        weights = mix / np.maximum(mix.sum(axis=2, keepdims=True), 1.0)
        hazard = -12 * np.log1p(-q)  # back to annual hazards by state
        average = (hazard * weights).sum(axis=2)
        empty = mix.sum(axis=2) == 0  # no one of that sex and age: the table's average
        average[empty] = (hazard * self.tables.prevalence).sum(axis=2)[empty]
        return np.array([life_expectancy(average[s]) for s in range(2)])

    # -- for the care system and inspection ------------------------------------------------------
    @property
    def stock(self) -> np.ndarray:
        """Stock counts [district, C_60..C_MEDICAL] carried into the next month."""
        return self._stock


class Arrivals(NamedTuple):
    """A month's arrival rows: entrants turning 60, then newcomers (drawn from `weights` [sex,
    age]); `expected` the carried sums after the month."""

    entrants: int
    newcomers: int
    weights: np.ndarray
    expected: tuple[float, float]

    @property
    def rows(self) -> int:
        return self.entrants + self.newcomers


class MonthAhead:
    """Next month's entrants and population kernel, run by the worker thread and, once this
    month's care is done, by the calling thread too.

    Care has no feedback on health, deaths, widowhood or ageing, and never writes the columns the
    kernel reads (`PopulationSystem.reads_ahead`; the runner checks the care subsystems'
    declarations). So while this month's care reads the current columns, the kernel can advance
    a successor population whose copies of the columns its row loop writes
    (columns.AHEAD_COLUMNS) are other arrays; the rest (alive_idx, alive, spouse, death_month)
    only the merge writes, once this month's care is done. The next step adopts the successor.
    The entrants' rows are reserved here, past the current ones. The worker draws them and then
    claims the kernel's chunks from the last one down, copying the current columns chunk by
    chunk as it goes; `result` claims them from the first one up, never one with an entrant
    among them, and merges once all have run (`MonthKernel.claim_chunks`). So neither thread
    waits for the other by more than a chunk, however long this month's care takes. Which thread
    runs which chunk does not change the results: they are those of running the months one
    after the other (tests/test_month_ahead.py checks every column and metric).
    """

    def __init__(
        self, system: PopulationSystem, month: int, worker: ThreadPoolExecutor, parts: Parts
    ):
        pop = system.pop
        self.due = system._arrivals_due(month)
        self.pop = pop.successor(self.due.rows)
        rows = self.pop.append(self.due.rows)
        self._outputs = system._outputs(self.pop, system.stock.copy())
        self._kernel = month_kernel(
            kernel_columns(self.pop), self.pop.n_alive, system._rates(month), self._outputs,
            source=pop.as_source(),
        )  # fmt: skip
        self._kernel.parts = parts.get(self.pop.n_alive)
        # the caller's chunks end before the entrants' positions (the worker draws the entrants)
        self.caller_limit = int(np.searchsorted(self._kernel.bounds[1:], pop.n_alive, "right"))
        self._future = worker.submit(self._run, system, rows, month)

    def _run(self, system: PopulationSystem, rows: np.ndarray, month: int) -> None:
        system._fill_arrivals(self.pop, rows, self.due, month)
        self._kernel.claim_chunks(from_top=True)

    def result(self) -> PopulationMonth:
        """Run the chunks this thread claims, wait for the worker (re-raising its error), merge."""
        self._kernel.claim_chunks(from_top=False, limit=self.caller_limit)
        self._future.result()
        self.pop.n_alive, n_events, n_needy = self._kernel.merge()  # after this month's care
        return self._outputs.month(n_events, n_needy)

    def drop(self) -> None:
        """Wait for the worker and drop its work (the run stopped on an error)."""
        self._future.exception()
