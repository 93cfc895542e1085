"""Model months: month 0 is 2016-01, when the care system starts (the plan's end-2015 baseline).

The population starts earlier, at the 2010 census (2010-11-01): months FIRST_MONTH (2010-11) to
-1 (2015-12) are the population's alone, so the stock the care system starts from is a
projection from the census, not an interpolation.

The last month the data cover is 2035-12 (LAST_MONTH): the facility schedules end with 2035
(`care.facilities.HORIZON_YEAR`) and the population's columns are sized to it
(`population.columns.PLAN_MONTHS`); past it a run would have no schedule and extrapolate.
"""

from __future__ import annotations

import re
from collections.abc import Callable

START_YEAR = 2016
FIRST_MONTH = -62  # 2010-11, the month of the 2010 census (held on its first day)
CARE_START = 0  # 2016-01
LAST_YEAR = 2035
LAST_MONTH = (LAST_YEAR - START_YEAR) * 12 + 11  # 2035-12
_LABEL = re.compile(r"^(\d{4})-(\d{2})$")


def month_index(label: str) -> int:
    """Model month of a 'YYYY-MM' label (2016-01 -> 0), 2010-11..2035-12; ValueError names the
    allowed form and range."""
    return _bounded(label, FIRST_MONTH, "the model start (the 2010 census)")


def until_index(label: str) -> int:
    """Model month of the last month of a run ('YYYY-MM'): a run ends in 2016-01..2035-12, when
    the care system runs and the data cover it; ValueError names the allowed range."""
    return _bounded(label, CARE_START, "the care system starts")


def _bounded(label: str, first: int, what_first: str) -> int:
    match = _LABEL.match(str(label))
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month {label!r} must look like YYYY-MM, e.g. 2020-12")
    year, month = int(match.group(1)), int(match.group(2))
    index = (year - START_YEAR) * 12 + month - 1
    allowed = f"allowed {month_label(first)}..{month_label(LAST_MONTH)}"
    if index < first:
        raise ValueError(f"month {label!r} is before {what_first}; {allowed}")
    if index > LAST_MONTH:
        raise ValueError(f"month {label!r} is past the last month the data cover; {allowed}")
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
