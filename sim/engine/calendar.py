"""Model months: month 0 is 2016-01, the first month after the plan's end-2015 baseline."""

from __future__ import annotations

import re
from collections.abc import Callable

START_YEAR = 2016
_LABEL = re.compile(r"^(\d{4})-(\d{2})$")


def month_index(label: str) -> int:
    """Model month of a 'YYYY-MM' label (2016-01 -> 0); ValueError names the allowed form."""
    match = _LABEL.match(str(label))
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month {label!r} must look like YYYY-MM, e.g. 2020-12")
    year, month = int(match.group(1)), int(match.group(2))
    index = (year - START_YEAR) * 12 + month - 1
    if index < 0:
        raise ValueError(f"month {label!r} is before the model start 2016-01")
    return index


def month_label(index: int) -> str:
    """'YYYY-MM' of a model month."""
    return f"{START_YEAR + index // 12}-{index % 12 + 1:02d}"


def decimal_year(index: int) -> float:
    """Calendar time at the middle of a model month, e.g. 2016-01 -> 2016.04."""
    return START_YEAR + (index + 0.5) / 12.0


class EachYear[T]:
    """A value computed at most once per calendar year, for quantities that change each
    January (team hours, the centres' coverage): `compute(month)` on the first call in a year."""

    def __init__(self, compute: Callable[[int], T]):
        self._compute = compute
        self._year: int | None = None
        self._value: T | None = None

    def __call__(self, month: int) -> T:
        if month // 12 != self._year:
            self._year, self._value = month // 12, self._compute(month)
        return self._value
