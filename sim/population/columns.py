"""Resident columns: one numpy array per attribute, one row per person.

Row index = stable person key: rows are only appended (entrants) and never reused, so a person's
key, and with it every keyed random draw, is the same in every scenario.
"""

from __future__ import annotations

import copy

import numba
import numpy as np

from sim.population.kernel import KernelColumns, Source

NO_MONTH = int(np.iinfo(np.int16).min)  # "never" in the month columns (months may be negative)
COLUMNS: dict[str, tuple[type, int]] = {
    "alive": (np.bool_, False),
    "age_m": (np.int16, 0),  # age in completed months
    "sex": (np.int8, 0),  # 0 male, 1 female
    "district": (np.int8, 0),
    "neigh": (np.int16, 0),
    "urban": (np.bool_, False),
    "income": (np.int8, 0),  # 0 三无/五保, 1 低保, 2 low, 3 middle, 4 high
    "health": (np.int8, 0),  # 0..4, see health.STATE_NAMES
    "medical": (np.bool_, False),
    "spouse": (np.int32, -1),  # row of spouse, -1 none, -2 spouse outside the 60+ population
    "n_children": (np.int8, 0),
    "child_place": (np.int8, 0),  # families.CHILD_* codes
    "entry_month": (np.int16, -1),  # month of arrival; calendar.FIRST_MONTH - 1 = at the start
    "death_month": (np.int16, NO_MONTH),  # month of death (NO_MONTH: alive or moved out)
    "left_month": (np.int16, NO_MONTH),  # month the resident moved out of Taiyuan
    "event": (np.uint8, 0),  # this month's event bits (kernels.EVENT_*), cleared after decisions
    "arrangement": (np.int8, 0),  # care.kinds.CARE_OPTIONS code; 0 = family care only
    "facility": (np.int32, -1),  # residential facility (bed) or day centre in use
    "queue_facility": (np.int32, -1),  # facility applied to, waiting
    "queue_since": (np.int16, NO_MONTH),  # month the application was made
    "bed_since": (np.int16, NO_MONTH),  # month admitted to the bed in use
    "assessed": (np.int8, -1),  # health state at the last assessment (-1 never assessed)
    "voucher": (np.bool_, False),  # eligible for the home-care voucher
}


# The columns the population kernel writes in rows that already exist, and alive_idx.
KERNEL_COLUMNS = (
    "alive_idx",
    "alive",
    "age_m",
    "health",
    "medical",
    "spouse",
    "death_month",
    "left_month",
    "event",
)
# Those of them a month run ahead keeps its own copies of (the rest only its merge writes).
AHEAD_COLUMNS = KernelColumns._fields
# Rows fit in 32 bits; alive_idx is read, copied and compacted every month, so half the bytes
# of int64 is half the memory traffic.
ALIVE_IDX_DTYPE = np.int32


def _column(n: int, fill, dtype) -> np.ndarray:
    """A column of `n` rows holding `fill`. Zeros come from the OS untouched, page by page as
    rows are first written (most rows are entrants of later months): filling them now would
    make the build pay for the whole run's rows."""
    return np.zeros(n, dtype=dtype) if fill == 0 else np.full(n, fill, dtype=dtype)


class Population:
    """Resident state as numpy columns with amortised growth for entrants.

    A successor (`successor`, `adopt`) lets the population kernel advance the next month on
    other copies of the columns it writes while this month's care still reads these ones.
    """

    def __init__(self, capacity: int):
        self.size = 0
        self.n_alive = 0
        self.alive_idx = np.zeros(capacity, dtype=ALIVE_IDX_DTYPE)  # living rows in key order
        for name, (dtype, fill) in COLUMNS.items():
            setattr(self, name, _column(capacity, fill, dtype))
        self._spare: dict[str, np.ndarray] = {}  # the month before's AHEAD_COLUMNS

    @property
    def capacity(self) -> int:
        return self.alive.size

    def reserve(self, n: int) -> None:
        """Make room for `n` more rows, growing every column by half at least."""
        if self.size + n <= self.capacity:
            return
        new_cap = max(self.capacity * 3 // 2, self.size + n)
        for name, (dtype, fill) in COLUMNS.items():
            old = getattr(self, name)
            grown = _column(new_cap, fill, dtype)
            grown[: old.size] = old
            setattr(self, name, grown)
        grown_idx = np.zeros(new_cap, dtype=ALIVE_IDX_DTYPE)
        grown_idx[: self.n_alive] = self.alive_idx[: self.n_alive]
        self.alive_idx = grown_idx
        self._spare = {}

    def append(self, n: int) -> np.ndarray:
        """Reserve `n` new rows and return their indices (= person keys)."""
        self.reserve(n)
        rows = np.arange(self.size, self.size + n)
        self.alive_idx[self.n_alive : self.n_alive + n] = rows
        self.n_alive += n
        self.size += n
        return rows

    def successor(self, n_new: int) -> Population:
        """A population for next month that shares every column except AHEAD_COLUMNS: those are
        other arrays (last month's, after an `adopt`), holding only the rows appended to the
        successor until its kernel copies in this one's (`as_source`). Rows appended to the
        successor (at most `n_new`, reserved here) lie past this population's rows and living
        count, so writing them leaves this month's state untouched; the other columns the
        kernel changes are written only by its merge."""
        self.reserve(n_new)
        nxt = copy.copy(self)
        for name in AHEAD_COLUMNS:
            own = getattr(self, name)
            spare = self._spare.pop(name, None)
            if spare is None:
                fill = COLUMNS[name][1] if name in COLUMNS else 0
                spare = _column(own.size, fill, own.dtype)
            setattr(nxt, name, spare)
        nxt._spare = {}
        return nxt

    def as_source(self) -> Source:
        """This month's kernel columns, for the kernel of a successor to copy from (the kernel
        copies them chunk by chunk, each chunk just before it runs)."""
        columns = KernelColumns(*(getattr(self, name) for name in AHEAD_COLUMNS))
        return Source(columns, self.size, self.n_alive)

    def adopt(self, successor: Population) -> None:
        """Become the successor (next month), keeping this month's kernel columns as spares."""
        self._spare = {name: getattr(self, name) for name in AHEAD_COLUMNS}
        for name in (*AHEAD_COLUMNS, "size", "n_alive"):
            setattr(self, name, getattr(successor, name))

    def __getstate__(self) -> dict:
        return {name: value for name, value in self.__dict__.items() if name != "_spare"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _spare={})

    def alive_rows(self) -> np.ndarray:
        """Rows of the living residents, in key order."""
        return self.alive_idx[: self.n_alive]

    def count_living(self, where: np.ndarray, by: np.ndarray, n: int) -> np.ndarray:
        """Living residents whose `where` column is set, counted by the value of the `by` column
        (0..n-1); one compiled pass over the living rows instead of gathering them."""
        return _count_living(self.alive_idx, self.n_alive, where, by, n)


@numba.njit(cache=True, nogil=True)
def _count_living(
    alive_idx: np.ndarray, n_alive: int, where: np.ndarray, by: np.ndarray, n: int
) -> np.ndarray:
    counts = np.zeros(n, dtype=np.int64)
    for k in range(n_alive):
        row = alive_idx[k]
        if where[row]:
            value = by[row]
            if value < 0 or value >= n:
                raise IndexError("count_living: a value of `by` is outside 0..n-1")
            counts[value] += 1
    return counts
