"""Running a month ahead: within `run_until`, the population kernel of the next month runs on
another thread while this month's care runs (sim.population.system.MonthAhead, started by the
runner, sim.engine.runner). It must give exactly what
stepping one month at a time gives, leave no thread behind when a month fails, and leave a model
that steps, pickles and runs on as before."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pandas as pd
import pytest

import sim.care.choice
import sim.care.diagnostics
import sim.population.synthesis
import sim.population.system
from sim.core.model import CareModel
from sim.population.columns import COLUMNS
from sim.population.kernel import N_CHUNKS

SCALE, SEED, MONTHS = 20, 4, 30


def _state(model: CareModel) -> dict[str, np.ndarray]:
    pop = model.pop
    columns = {name: getattr(pop, name)[: pop.size].copy() for name in COLUMNS}
    return {**columns, "alive_idx": pop.alive_rows().copy(), "stock": model.population.stock.copy()}


def _assert_same_model(a: CareModel, b: CareModel) -> None:
    pd.testing.assert_frame_equal(a.metrics(), b.metrics())
    assert (a.pop.size, a.pop.n_alive, a.month) == (b.pop.size, b.pop.n_alive, b.month)
    for name, column in _state(a).items():
        np.testing.assert_array_equal(column, _state(b)[name], err_msg=name)
    np.testing.assert_array_equal(a.needy_rows, b.needy_rows)
    np.testing.assert_array_equal(np.sort(a.event_rows), np.sort(b.event_rows))


@pytest.fixture(scope="module")
def stepped() -> CareModel:
    """The reference: one month at a time (no month runs ahead)."""
    model = CareModel(seed=SEED, scale=SCALE)
    for _ in range(MONTHS):
        model.step()
    return model


def test_run_until_equals_stepping(stepped: CareModel) -> None:
    ahead_runs = []
    original = sim.population.system.MonthAhead.__init__

    def counted(self, system, month, *args):
        ahead_runs.append(month)
        original(self, system, month, *args)

    model = CareModel(seed=SEED, scale=SCALE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sim.population.system.MonthAhead, "__init__", counted)
        model.run_until(MONTHS // 2)  # two runs: the first leaves no month ahead behind
        model.run_until(MONTHS)
    assert len(ahead_runs) == MONTHS - 2  # every month but the last of each run ran ahead
    _assert_same_model(model, stepped)


def test_columns_grown_mid_run_give_the_same_result(stepped: CareModel) -> None:
    """A run past the plan period grows the columns as entrants arrive (Population.reserve,
    which also drops the spare columns of the month ahead): made to happen here within the
    test's months by a population built with room for its first residents and a few months
    of entrants only."""
    grown = []
    reserve = sim.population.columns.Population.reserve

    def recorded(self, n):
        capacity = self.capacity
        reserve(self, n)
        grown.append(self.capacity > capacity)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sim.population.synthesis, "_capacity", lambda n, demography, scale: n + 4000)
        patch.setattr(sim.population.columns.Population, "reserve", recorded)
        model = CareModel(seed=SEED, scale=SCALE)
        model.run_until(MONTHS)
    assert any(grown) and not any(grown[:3])  # grown in a month ahead, not while built
    _assert_same_model(model, stepped)


def test_progress_is_reported_each_month() -> None:
    reported = []
    CareModel(seed=SEED, scale=SCALE).run_until("2016-06", progress=reported.append)
    assert reported == [1] * 6


def test_a_failing_month_leaves_no_thread() -> None:
    """An error in this month's care stops the run; the month ahead's thread is joined and its
    work dropped, so the model is left as stepping one month at a time leaves it."""
    failing_month = 5
    original = sim.care.choice.Choice.step

    def choice_step(self, month):
        if month.month == failing_month:
            raise RuntimeError("care failed")
        return original(self, month)

    threads_before = threading.active_count()
    ahead, stepped = CareModel(seed=SEED, scale=SCALE), CareModel(seed=SEED, scale=SCALE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sim.care.choice.Choice, "step", choice_step)
        with pytest.raises(RuntimeError, match="care failed"):
            ahead.run_until(MONTHS)
        with pytest.raises(RuntimeError, match="care failed"):
            for _ in range(MONTHS):
                stepped.step()
    assert ahead.runner._ahead is None
    assert threading.active_count() == threads_before
    assert ahead.population._expected == stepped.population._expected
    _assert_same_model(ahead, stepped)


def test_pickled_model_runs_on(stepped: CareModel) -> None:
    model = CareModel(seed=SEED, scale=SCALE)
    model.run_until(MONTHS // 3)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.pop._spare == {}  # last month's columns are not saved
    copy.run_until(MONTHS)
    _assert_same_model(copy, stepped)


def test_an_error_on_the_worker_reaches_the_caller() -> None:
    def add_reasons(*args):
        raise RuntimeError("tally failed")

    model = CareModel(seed=SEED, scale=SCALE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sim.care.diagnostics, "add_reasons", add_reasons)
        with pytest.raises(RuntimeError, match="tally failed"):
            model.run_until(3)
    assert model.runner._worker is None and model.runner._finishing == []


def test_the_caller_never_runs_an_entrant_the_worker_has_not_drawn() -> None:
    """Even when the worker is late, the caller's chunks end before the month's entrants, here
    made to span several chunks: it runs all the chunks before them and leaves the rest to the
    worker. The results stay those of stepping."""
    extra_entrants = 60  # a month, at scale 500 (~1,400 rows in 2016, ~22 rows a chunk)
    system = sim.population.system
    arrivals_due = system.PopulationSystem._arrivals_due
    original_init, original_run = system.MonthAhead.__init__, system.MonthAhead._run
    spans, caller_ran = [], []

    def more_entrants(self, month):
        due = arrivals_due(self, month)
        return due._replace(entrants=due.entrants + extra_entrants)

    def checked_init(self, population, month, worker, parts):
        n_before = population.pop.n_alive
        original_init(self, population, month, worker, parts)
        bounds = self._kernel.bounds
        assert bounds[self.caller_limit] <= n_before < bounds[self.caller_limit + 1]
        spans.append(np.count_nonzero(bounds[1:] > n_before))  # chunks holding entrants
        claim = self._kernel.claim_chunks

        def recorded_claim(from_top: bool, limit: int = N_CHUNKS) -> int:
            ran = claim(from_top, limit)
            if not from_top:
                caller_ran.append((ran, limit))
            return ran

        self._kernel.claim_chunks = recorded_claim

    def late_run(self, *args):
        threading.Event().wait(0.05)  # the caller claims first
        original_run(self, *args)

    ahead, stepped = CareModel(seed=SEED, scale=500), CareModel(seed=SEED, scale=500)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(system.PopulationSystem, "_arrivals_due", more_entrants)
        patch.setattr(system.MonthAhead, "__init__", checked_init)
        patch.setattr(system.MonthAhead, "_run", late_run)
        ahead.run_until(12)
        for _ in range(12):
            stepped.step()
    assert len(caller_ran) == 11 and all(ran == limit > 0 for ran, limit in caller_ran)
    assert min(spans) >= 2
    _assert_same_model(ahead, stepped)
