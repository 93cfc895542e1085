"""CareModel: the Mesa model of elderly-care demand and supply in Taiyuan, one step per month.

Month order (DESIGN.md section 5): policy, demography (entrants, then deaths inside the kernel),
health and medical-need transitions, family events, decisions, matching, care and metrics,
ageing. Resident state lives in numpy columns (population.Population); `Resident` agents are
materialised for the residents with an event this month.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import mesa
import numpy as np
import pandas as pd

from sim.care.facilities import (
    CENTRE,
    DAY_URBAN,
    RESIDENTIAL,
    Facility,
    FacilityMarket,
    build_facilities,
)
from sim.care.month import care_month
from sim.care.teams import team_hours_by_district
from sim.core.agents import Family, Resident
from sim.engine.calendar import decimal_year, month_index
from sim.kpis.frame import care_frame, population_frame
from sim.params.sections import Params
from sim.population.columns import (
    Population,
    add_entrants,
    district_elderly_weights,
    expected_entrant_rows,
    fill_entrants,
    synthesise,
)
from sim.population.demography import hazard_for_year
from sim.population.geography import load_geography
from sim.population.health import build_tables, sex_hazard_factor
from sim.population.kernel import (
    C_65,
    C_80,
    EVENT_WIDOWED,
    Parts,
    month_kernel,
    step_population,
    stock_counts,
)


class CareModel(mesa.Model):
    """Taiyuan's elderly residents, families and care system from 2016-01 onwards.

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
        self.seed = int(seed)
        self.scale = float(scale)
        self.params = params or Params()
        self.care_enabled = care
        self._death_prob: dict[int, np.ndarray] = {}
        self.geo = load_geography()
        self.tables = build_tables(self.params.health.settings(self.params.demography.max_hazard))
        self.pop = synthesise(self.params, self.geo, self.tables, self.seed, self.scale)
        self.month = 0  # the next month to simulate (0 = 2016-01)
        self._entrants_expected = 0.0
        self._ahead: _MonthAhead | None = None
        self._last_month_of_run = -1  # inside run_until: its last month (-1 outside)
        self._progress: Callable[[int], None] | None = None
        self._worker: ThreadPoolExecutor | None = None  # inside run_until
        self._finishing: list[Future] = []  # this run's monthly sums being completed
        self._parts: Parts | None = None  # the month ahead's kernel buffers, inside run_until
        self._lists = Parts(2)  # the kernel's event and needy rows, copied out after its merge
        self._months: list[int] = []
        self._counts: list[np.ndarray] = []
        self._event_rows = np.zeros(0, dtype=np.int64)
        self._stock = stock_counts(self.pop, len(self.geo.districts))
        self._resident_pool: list[Resident] = []
        self._decider_rows = np.zeros(0, dtype=np.int64)
        self._agents_stale = False  # deciders recorded but not yet bound to Resident agents
        self._decider_agents: list[Resident] = []
        self._family_pool: list[Family] = []
        self._family_agents: list[Family] = []
        self.needy_rows = np.zeros(0, dtype=np.int64)
        self._care: list[np.ndarray] = []
        self._yearly: dict[str, tuple[int, np.ndarray]] = {}
        weights = district_elderly_weights(self.geo)
        self.facilities = build_facilities(self.params, self.geo, weights, self.seed, self.scale)
        self.market = FacilityMarket(self.facilities, self.geo, self.params)
        self.facility_agents = [Facility(self, i) for i in range(self.facilities.size)]
        # whether each facility is a bed (nursing home or integrated bed) rather than a day place
        self.residential_facility = np.isin(self.facilities.kind, RESIDENTIAL)

    # -- time ---------------------------------------------------------------------------------
    def step(self) -> None:
        """Simulate one calendar month."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            self._clear_events()
            n_new, self._entrants_expected = self._entrants_due(self.month)
            self._add_entrants(self.pop, n_new, self.month)
            month = self._population_month(self.pop, self.month, self._stock)
        else:
            month = ahead.result()
            self.pop.adopt(ahead.pop)
            self._entrants_expected = ahead.entrants_expected
        self._event_rows, self.needy_rows, self._stock = month.event_rows, month.needy, month.stock
        if self.care_enabled:
            if self.month < self._last_month_of_run:
                self._ahead = _MonthAhead(self, self._worker, self._parts)
            sums, finish = care_month(self)
            self._care.append(sums)
            if self._worker is None:
                finish()
            else:  # after the kernel of next month, on the worker, while next month's care runs
                self._finishing.append(self._worker.submit(finish))
        else:
            self.set_deciders(self._event_rows[self.pop.alive[self._event_rows]])
        self._months.append(self.month)
        self._counts.append(month.counts)
        self.month += 1
        if self._progress is not None:
            self._progress(1)

    def run_until(self, until: str | float, progress: Callable[[int], None] | None = None) -> None:
        """Run through the calendar month `until` ('YYYY-MM', inclusive); `progress(1)` is called
        after each month. Within the run a worker thread takes work off the month on the main
        thread: the population kernel of the next month (`_MonthAhead`, whose chunks the calling
        thread shares once its care is done) and the care delivered to the persons in need of
        the month just run, with the sums over them (`care.care_month`)."""
        last = month_index(until) if isinstance(until, str) else int(until) - 1
        if last < self.month:
            return
        self._last_month_of_run, self._progress = last, progress
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="care-model")
        self._parts = Parts()
        try:
            self.run_for(last + 1 - self.month)
        finally:
            finishing = self._stop_worker()
        for done in finishing:
            done.result()  # re-raises an error of the worker's

    def _stop_worker(self) -> list[Future]:
        """End of a run: wait for the worker (dropping a month ahead, left only by a month that
        failed) and return the run's monthly sums completed on it."""
        self._last_month_of_run, self._progress = -1, None
        if self._ahead is not None:
            self._ahead.drop()
            self._ahead = None
        self._worker.shutdown(wait=True)
        self._worker, self._parts = None, None
        finishing, self._finishing = self._finishing, []
        return finishing

    # -- mechanisms ---------------------------------------------------------------------------
    def _entrants_due(self, month: int) -> tuple[int, float]:
        """Deterministic count of entrant rows in `month` (the carried sum of expected entrants,
        floored) and the new carried sum."""
        expected = expected_entrant_rows(self.params.demography, self.scale, month)
        carried = self._entrants_expected + expected
        return int(carried) - int(self._entrants_expected), carried

    def _add_entrants(self, pop: Population, n: int, month: int) -> None:
        """Append and draw `n` entrants of `month` (on this thread)."""
        if n:
            add_entrants(pop, n, month, self.params, self.geo, self.tables, self.seed)

    def _population_month(self, pop: Population, month: int, stock: np.ndarray) -> PopulationMonth:
        """Run the population kernel on `pop` for `month` (in parallel), updating `stock`."""
        arguments, outputs = self._kernel_call(pop, month, stock)
        pop.n_alive, n_events, n_needy = step_population(*arguments)
        return outputs.month(n_events, n_needy)

    def _kernel_call(
        self, pop: Population, month: int, stock: np.ndarray
    ) -> tuple[tuple, KernelOutputs]:
        """The arguments of `step_population` / `month_kernel` for `month` on `pop`, with new
        outputs (`stock` is updated in place)."""
        hp = self.params.health
        lists = self._lists.get(pop.n_alive)
        out = KernelOutputs(
            stock, np.zeros_like(stock), np.zeros((stock.shape[0], 2), dtype=np.int64), *lists
        )
        arguments = (
            pop.alive_idx,
            pop.n_alive,
            pop.alive,
            pop.age_m,
            pop.sex,
            pop.district,
            pop.health,
            pop.medical,
            pop.spouse,
            pop.entry_month,
            pop.death_month,
            self.death_probabilities(int(decimal_year(month))),
            self.tables.monthly_cum,
            medical_onset_rates(hp.medical_need_prevalence, hp.medical_need_remission_per_month),
            hp.medical_need_remission_per_month,
            1 - np.exp(-self.params.households.external_spouse_hazard / 12),
            self.seed,
            month,
            out.stock,
            out.flows,
            out.aged,
            pop.event,
            out.event_rows,
            out.needy,
        )
        return arguments, out

    def death_probabilities(self, year: int) -> np.ndarray:
        """Monthly death probability [sex, age, state] in a calendar year."""
        if year not in self._death_prob:
            d = self.params.demography
            hazard = hazard_for_year(year + 0.5, d.max_hazard) * d.mortality_scale
            by_sex = hazard[None, :] * sex_hazard_factor(d.female_share_by_age)
            self._death_prob[year] = 1 - np.exp(-by_sex[:, :, None] * self.tables.mortality_rr / 12)
        return self._death_prob[year]

    def _clear_events(self) -> None:
        """Clear last month's event bits in place, before a month run on this thread (a month
        run ahead starts from columns copied without them)."""
        self.pop.event[self._event_rows] = 0

    # -- care system helpers (used by sim.care.choice and sim.care.month) --------------------
    @property
    def event_rows(self) -> np.ndarray:
        """Rows with an event this month (deaths, need changes, widowhood, reviews)."""
        return self._event_rows

    def refresh_facility_state(self, queued_rows: np.ndarray) -> None:
        """Queues, free places and waits for this month; `queued_rows` are those in a queue."""
        self.market.refresh(self.month, self.pop.queue_facility[queued_rows].astype(np.int64))

    def record_exits(self, facilities: np.ndarray) -> None:
        self.market.record_exits(facilities)

    def facility_medical_capable(self) -> np.ndarray:
        return self.market.medical_now

    def covering_centre(self) -> np.ndarray:
        return self.market.covering

    def prices(self) -> np.ndarray:
        """Monthly price by facility kind (yuan)."""
        m = self.params.money
        return np.array(
            [
                m.price_public_home,
                m.price_private_home,
                m.price_medical_bed,
                m.price_day_care,
                m.price_day_care,
                m.price_day_care,
            ]
        )

    def team_hours_by_district(self) -> np.ndarray:
        """Home-care team staff hours per month by district (teams change each January)."""
        return self._yearly_value("team_hours", self._team_hours)

    def _team_hours(self) -> np.ndarray:
        year = int(decimal_year(self.month))
        weights = district_elderly_weights(self.geo) * self.geo.districts["urban_share"].to_numpy()
        return team_hours_by_district(self.params.services, year, weights)

    def coverage_sums(self) -> np.ndarray:
        """(urban elderly near a community centre, near a day-care centre, urban elderly) by
        district, refreshed each January."""
        return self._yearly_value("coverage", self._coverage)

    def poor_80plus_by_district(self) -> np.ndarray:
        """Residents 80+ in income classes 0-2 (old-age allowance), refreshed each January."""
        return self._yearly_value("poor_80plus", self._poor_80plus)

    def _yearly_value(self, name: str, compute) -> np.ndarray:
        year = self.month // 12
        if name not in self._yearly or self._yearly[name][0] != year:
            self._yearly[name] = (year, compute())
        return self._yearly[name][1]

    def _coverage(self) -> np.ndarray:
        """Living urban residents are counted per neighbourhood (a resident's neighbourhood lies
        in their district), then weighted by whether the neighbourhood is covered."""
        nb_district = self.geo.neighbourhoods["district"].to_numpy()
        urban = self.pop.count_living(self.pop.urban, self.pop.neigh, nb_district.size)
        covered = (
            self.market.covered_by(CENTRE, self.month),
            self.market.covered_by(DAY_URBAN, self.month),
            True,
        )
        n_d = len(self.geo.districts)
        return np.stack(
            [np.bincount(nb_district, weights=urban * c, minlength=n_d) for c in covered]
        )

    def _poor_80plus(self) -> np.ndarray:
        """Flags from whole columns (cheaper than gathering the living rows), counted over the
        living."""
        pop = self.pop
        poor_80 = (pop.age_m >= 960) & (pop.income <= 2)
        return pop.count_living(poor_80, pop.district, len(self.geo.districts)).astype(float)

    def set_deciders(self, rows: np.ndarray) -> None:
        """Record this month's deciders; their Resident agents (and a Family agent for each
        decider who lost a carer) are materialised when `deciders` or `families` is read."""
        self._decider_rows = rows
        self._agents_stale = True

    # -- agents -------------------------------------------------------------------------------
    def materialise(self, rows: np.ndarray) -> list[Resident]:
        """Resident agents bound to `rows` (pooled objects, rebound each call)."""
        return self._bind(self._resident_pool, Resident, rows)

    def _bind(self, pool: list, cls: type, rows: np.ndarray) -> list:
        while len(pool) < rows.size:
            pool.append(cls(self, -1))
        agents = pool[: rows.size]
        for agent, row in zip(agents, rows.tolist(), strict=True):
            agent.row = row
        return agents

    def _materialise_deciders(self) -> None:
        if not self._agents_stale:
            return
        rows = self._decider_rows
        self._decider_agents = self.materialise(rows)
        widowed = rows[(self.pop.event[rows] & EVENT_WIDOWED) != 0]
        self._family_agents = self._bind(self._family_pool, Family, widowed)
        self._agents_stale = False

    @property
    def families(self) -> mesa.agent.AgentSet:
        """This month's households whose capacity changed a decision (deciders who lost a
        carer), as a Mesa AgentSet."""
        self._materialise_deciders()
        return mesa.agent.AgentSet(self._family_agents, random=self.random)

    @property
    def deciders(self) -> mesa.agent.AgentSet:
        """This month's deciders (residents with an event, or waiting too long) as Resident
        agents in a Mesa AgentSet."""
        self._materialise_deciders()
        return mesa.agent.AgentSet(self._decider_agents, random=self.random)

    def resident(self, row: int) -> Resident:
        """A Resident agent for inspecting one person (a fresh agent, not from the pool)."""
        if not 0 <= row < self.pop.size:
            raise ValueError(f"person key must be in [0, {self.pop.size - 1}], got {row}")
        return Resident(self, row)

    # -- results ------------------------------------------------------------------------------
    def metrics(self) -> pd.DataFrame:
        """One row per (month, district) and per month for the city ('Taiyuan'), in persons."""
        names = list(self.geo.districts["name_en"])
        frame = population_frame(self._months, self._counts, names, self.scale)
        return care_frame(frame, self._care, self.scale)


def medical_onset_rates(prevalence: tuple[float, ...], remission: float) -> np.ndarray:
    """Monthly onset by state so that, within a state, onset/(onset+remission) = prevalence."""
    p = np.clip(np.asarray(prevalence, dtype=float), 0, 0.999)
    return remission * p / (1 - p)


class KernelOutputs(NamedTuple):
    """The arrays the population kernel fills (or, for `stock`, updates); the lists of rows are
    buffers kept from month to month (`CareModel._lists`)."""

    stock: np.ndarray
    flows: np.ndarray
    aged: np.ndarray
    event_rows: np.ndarray
    needy: np.ndarray

    def month(self, n_events: int, n_needy: int) -> PopulationMonth:
        """The month's results, given the lengths of the lists the kernel returned (copied out
        of the buffers, which the next month's kernel reuses)."""
        counts = self.stock + self.flows
        self.stock[:, C_65] += self.aged[:, 0]
        self.stock[:, C_80] += self.aged[:, 1]
        event_rows, needy = self.event_rows[:n_events].copy(), self.needy[:n_needy].copy()
        return PopulationMonth(event_rows, needy, counts, self.stock)


class PopulationMonth(NamedTuple):
    """What the population kernel produced for one month."""

    event_rows: np.ndarray  # rows with an event (deaths, need changes, widowhood, reviews)
    needy: np.ndarray  # living rows in need (state 2+ or medical need), in key order
    counts: np.ndarray  # [district, kernels column] of the month
    stock: np.ndarray  # the stock carried into the next month


class _MonthAhead:
    """Next month's entrants and population kernel, run by the worker thread and, once this
    month's care is done, by the calling thread too.

    Care has no feedback on health, deaths, widowhood or ageing, and never writes the columns the
    kernel writes (population.KERNEL_COLUMNS) or reads besides them (sex, district, entry month).
    So while this month's care reads the current columns, the kernel can advance a successor
    population whose copies of the columns its row loop writes (population.AHEAD_COLUMNS) are
    other arrays; the rest (alive_idx, alive, spouse, death_month) only the merge writes, once
    this month's care is done. The next step adopts the successor. The entrants' rows are
    reserved here, past the current ones. The worker draws them and then claims the kernel's
    chunks from the last one down, copying the current columns chunk by chunk as it goes;
    `result` claims them from the first one up, never one with an entrant among them, and
    merges once all have run (`MonthKernel.claim_chunks`). So neither thread waits for the
    other by more than a chunk, however long this month's care takes. Which thread runs which
    chunk does not change the results: they are those of running the months one after the
    other (tests/test_month_ahead.py checks every column and metric).
    """

    def __init__(self, model: CareModel, worker: ThreadPoolExecutor, parts: Parts):
        pop, month = model.pop, model.month + 1
        n_new, self.entrants_expected = model._entrants_due(month)
        self.pop = pop.successor(n_new)
        entrants = self.pop.append(n_new)
        arguments, self._outputs = model._kernel_call(self.pop, month, model._stock.copy())
        self._kernel = month_kernel(*arguments, source=pop.as_source())
        self._kernel.parts = parts.get(self.pop.n_alive)
        # the caller's chunks end before the entrants' positions (the worker draws the entrants)
        self.caller_limit = int(np.searchsorted(self._kernel.bounds[1:], pop.n_alive, "right"))
        self._future = worker.submit(self._run, model, entrants, month)

    def _run(self, model: CareModel, entrants: np.ndarray, month: int) -> None:
        fill_entrants(self.pop, entrants, month, model.params, model.geo, model.tables, model.seed)
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
