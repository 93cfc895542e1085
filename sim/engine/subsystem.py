"""The lifecycle every subsystem of the model shares (in the spirit of Starsim's modules and
Vivarium's components).

A subsystem is built with what it needs (parameters, the population's columns, other
subsystems), never the model. The model calls, in its order: `init()` once before the first
month; `step(month)` each month, which changes the state; `results(month)` once every subsystem
has stepped, which writes the month's results now or returns the work that completes them
(`Deferred`; the runner may run it on another thread while the next month runs, so it must read
only what this month handed it); `finalize()` at the end of a run. `writes` declares the
population columns a subsystem writes (the runner checks them against what runs ahead, and a
test checks the declaration).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

Deferred = Callable[[], None]


class Subsystem:
    """Base class: every step of the lifecycle does nothing unless overridden."""

    writes: ClassVar[frozenset[str]] = frozenset()

    def init(self) -> None:
        """Build the subsystem's state before the first month."""

    def step(self, month: Any) -> None:
        """Advance the state by one month (`month`: the month's context)."""

    def results(self, month: Any) -> Deferred | None:
        """Write the month's results, or return the work that completes them."""
        return None

    def finalize(self) -> None:
        """End of a run."""
