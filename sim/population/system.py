"""The population subsystem: demography, health and families of the residents.

At the start it synthesises the end-2015 residents (`synthesis`); each month it appends the
entrants turning 60 and runs the population kernel (deaths, health and medical-need transitions,
widowhood, ageing, counts by district; `kernel`). Within a pipelined run (`sim.engine.runner`)
next month's entrants and kernel start on the worker thread while this month's care runs
(`MonthAhead`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sim.engine.calendar import decimal_year
from sim.engine.subsystem import Subsystem
from sim.params.sections import Params
from sim.population.columns import KERNEL_COLUMNS, Population
from sim.population.demography import hazard_for_year
from sim.population.geography import Geography
from sim.population.health import build_tables, sex_hazard_factor
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
from sim.population.synthesis import (
    add_entrants,
    expected_entrant_rows,
    fill_entrants,
    synthesise,
)


def medical_onset_rates(prevalence: tuple[float, ...], remission: float) -> np.ndarray:
    """Monthly onset by state so that, within a state, onset/(onset+remission) = prevalence."""
    p = np.clip(np.asarray(prevalence, dtype=float), 0, 0.999)
    return remission * p / (1 - p)


class PopulationSystem(Subsystem):
    """The residents' columns and their monthly dynamics (see the module docstring)."""

    # the kernel writes these in existing rows; entrants are new rows, past every other's
    writes = frozenset(KERNEL_COLUMNS)
    # what the month ahead reads while this month's care runs: the kernel's columns
    reads_ahead = frozenset(
        ("alive_idx", "alive", "age_m", "sex", "district", "health", "medical", "spouse",
         "entry_month", "death_month", "event")
    )  # fmt: skip

    def __init__(self, params: Params, geo: Geography, seed: int, scale: float):
        self.params, self.geo, self.seed, self.scale = params, geo, seed, scale
        self._death_prob: dict[int, np.ndarray] = {}
        self._entrants_expected = 0.0  # the carried sum of expected entrant rows
        self._lists = Parts(2)  # the kernel's event and needy rows, copied out after its merge
        self._parts: Parts | None = None  # the month ahead's kernel buffers, inside a run
        self.current: PopulationMonth | None = None

    def init(self) -> None:
        self.tables = build_tables(self.params.health.settings(self.params.demography.max_hazard))
        self.pop: Population = synthesise(self.params, self.geo, self.tables, self.seed, self.scale)
        self._stock = stock_counts(self.pop, len(self.geo.districts))
        self._event_rows = np.zeros(0, dtype=np.int64)

    # -- months ---------------------------------------------------------------------------------
    def month(self, month: int) -> PopulationMonth:
        """Run `month` here: last month's event bits cleared, entrants appended and drawn, the
        kernel's chunks on all cores."""
        self.pop.event[self._event_rows] = 0
        n_new, self._entrants_expected = self._entrants_due(month)
        if n_new:
            add_entrants(self.pop, n_new, month, self.params, self.geo, self.tables, self.seed)
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
        self._entrants_expected = ahead.entrants_expected
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
    def _entrants_due(self, month: int) -> tuple[int, float]:
        """Deterministic count of entrant rows in `month` (the carried sum of expected entrants,
        floored) and the new carried sum."""
        expected = expected_entrant_rows(self.params.demography, self.scale, month)
        carried = self._entrants_expected + expected
        return int(carried) - int(self._entrants_expected), carried

    def _outputs(self, pop: Population, stock: np.ndarray) -> KernelOutputs:
        """New outputs for a month of `pop` (`stock` is updated in place)."""
        lists = self._lists.get(pop.n_alive)
        flows = np.zeros_like(stock)
        aged = np.zeros((stock.shape[0], 2), dtype=np.int64)
        return KernelOutputs(stock, flows, aged, *lists)

    def _rates(self, month: int) -> MonthRates:
        hp = self.params.health
        return MonthRates(
            death_prob=self.death_probabilities(int(decimal_year(month))),
            health_cum=self.tables.monthly_cum,
            medical_onset=medical_onset_rates(
                hp.medical_need_prevalence, hp.medical_need_remission_per_month
            ),
            medical_remission=hp.medical_need_remission_per_month,
            external_spouse_death=1 - np.exp(-self.params.households.external_spouse_hazard / 12),
            seed=self.seed,
            month=month,
        )

    def death_probabilities(self, year: int) -> np.ndarray:
        """Monthly death probability [sex, age, state] in a calendar year."""
        if year not in self._death_prob:
            d = self.params.demography
            hazard = hazard_for_year(year + 0.5, d.max_hazard) * d.mortality_scale
            by_sex = hazard[None, :] * sex_hazard_factor(d.female_share_by_age)
            self._death_prob[year] = 1 - np.exp(-by_sex[:, :, None] * self.tables.mortality_rr / 12)
        return self._death_prob[year]

    # -- for the care system and inspection ------------------------------------------------------
    @property
    def stock(self) -> np.ndarray:
        """Stock counts [district, C_60..C_MEDICAL] carried into the next month."""
        return self._stock


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
        n_new, self.entrants_expected = system._entrants_due(month)
        self.pop = pop.successor(n_new)
        entrants = self.pop.append(n_new)
        self._outputs = system._outputs(self.pop, system.stock.copy())
        self._kernel = month_kernel(
            kernel_columns(self.pop), self.pop.n_alive, system._rates(month), self._outputs,
            source=pop.as_source(),
        )  # fmt: skip
        self._kernel.parts = parts.get(self.pop.n_alive)
        # the caller's chunks end before the entrants' positions (the worker draws the entrants)
        self.caller_limit = int(np.searchsorted(self._kernel.bounds[1:], pop.n_alive, "right"))
        self._future = worker.submit(self._run, system, entrants, month)

    def _run(self, system: PopulationSystem, entrants: np.ndarray, month: int) -> None:
        fill_entrants(
            self.pop, entrants, month, system.params, system.geo, system.tables, system.seed
        )
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
