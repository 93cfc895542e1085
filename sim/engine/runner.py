"""Running months, serially or pipelined.

Pipelined (`Runner.run`): while the main thread runs this month's care, one worker thread runs
next month's population kernel (`start_ahead`, on other copies of the columns it writes) and
then completes the results this month handed over (`complete`). This is safe only if no care
subsystem writes a column the population reads while it runs ahead, and if the population reads
what care results tell it (the care received, which changes health) no sooner than
`PIPELINE_LAG` months later: the month ahead starts before this month's care and its deferred
results, which the worker runs after it. The runner checks the subsystems' declared `writes`
against the population's `reads_ahead`, and the population's `care_lag`, when it is built, and
refuses to pipeline otherwise. Results are identical to running the months one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from sim.engine.subsystem import Deferred, Subsystem

# months: the kernel of month m runs before month m - 1's deferred results (and after month
# m - 2's, which the worker runs first and `Runner.population_month` waits for)
PIPELINE_LAG = 2


class PipelineError(RuntimeError):
    """A care subsystem writes a column the population reads while it runs a month ahead, or
    the population reads the care results sooner than a pipelined run has them."""


class AheadMonth(Protocol):
    def drop(self) -> None:
        """Wait for the worker and drop its work (the run stopped on an error)."""


class PipelinedPopulation(Protocol):
    """What the runner needs of the population subsystem."""

    reads_ahead: frozenset[str]  # columns its month ahead reads while this month's care runs
    care_lag: int  # months from a month's care results to the kernel month that reads them

    def month(self, month: int) -> Any:
        """Run `month` on this thread; returns the month's result."""

    def start_ahead(self, month: int, worker: ThreadPoolExecutor) -> AheadMonth:
        """Start `month` on the worker (and, later, this thread)."""

    def adopt(self, ahead: AheadMonth) -> Any:
        """Finish a month started ahead and make it current; returns its result."""

    def begin_run(self) -> None: ...

    def end_run(self) -> None: ...


def check_independent(population: PipelinedPopulation, care: Sequence[Subsystem]) -> None:
    """Raise PipelineError if a care subsystem writes a column the month ahead reads, or if the
    population reads the care results sooner than `PIPELINE_LAG` months later."""
    if care and population.care_lag < PIPELINE_LAG:
        raise PipelineError(
            f"the population reads the care received {population.care_lag} month(s) later; a "
            f"pipelined run has it {PIPELINE_LAG} months later"
        )
    for subsystem in care:
        clash = subsystem.writes & population.reads_ahead
        if clash:
            raise PipelineError(
                f"{type(subsystem).__name__} writes {', '.join(sorted(clash))}, which the "
                "population reads while it runs a month ahead"
            )


class Runner:
    """Runs the population's months and completes the care system's results, serially (by
    default) or pipelined within `run`."""

    def __init__(self, population: PipelinedPopulation, care: Sequence[Subsystem]):
        check_independent(population, care)
        self.population, self._pipelined = population, bool(care)
        self._worker: ThreadPoolExecutor | None = None
        self._ahead: AheadMonth | None = None
        self._last = -1  # inside `run`: its last month
        self._finishing: list[Future] = []

    def population_month(self, month: int) -> Any:
        """The population's `month` (taken over from the month ahead if one ran); within a
        pipelined run, start the next month ahead."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._results_done(keep=PIPELINE_LAG - 1)  # the care results the month ahead reads
        result = self.population.month(month) if ahead is None else self.population.adopt(ahead)
        if self._worker is not None and self._pipelined and month < self._last:
            self._ahead = self.population.start_ahead(month + 1, self._worker)
        return result

    def complete(self, work: Sequence[Deferred]) -> None:
        """The month's deferred results, in order: now, or on the worker within a run (after
        the month ahead it was given first)."""
        if self._worker is None:
            _in_order(work)
        else:
            self._finishing.append(self._worker.submit(_in_order, work))

    def run(self, advance: Callable[[int], None], months: int, last: int) -> None:
        """`advance(months)` (the model's steps) pipelined through month `last`; re-raises an
        error of the worker's."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="care-model")
        self._last = last
        self.population.begin_run()
        try:
            advance(months)
        finally:
            finishing = self._stop()
        for done in finishing:
            done.result()

    def _results_done(self, keep: int) -> None:
        """Wait for every month's deferred results but the last `keep` months' (adopting a month
        ahead runs its remaining chunks on this thread, which must not read the care results of
        a month the worker has not completed)."""
        for done in self._finishing[: max(len(self._finishing) - keep, 0)]:
            done.result()

    def _stop(self) -> list[Future]:
        """End of a run: wait for the worker (dropping a month ahead, left only by a month that
        failed) and return the run's completions."""
        self._last = -1
        if self._ahead is not None:
            self._ahead.drop()
            self._ahead = None
        self._worker.shutdown(wait=True)
        self._worker = None
        self.population.end_run()
        finishing, self._finishing = self._finishing, []
        return finishing


def _in_order(work: Sequence[Deferred]) -> None:
    for job in work:
        job()
