"""Model months: month 0 is 2016-01, the first month after the plan's end-2015 baseline.

The last month the data cover is 2035-12: the facility schedules end with 2035
(`care.facilities.HORIZON_YEAR`) and the population's columns are sized for 2016-01..2035-12
(`population.columns.PLAN_MONTHS`); past it a run would have no schedule and extrapolate.
"""

from __future__ import annotations

import re

START_YEAR = 2016
LAST_YEAR = 2035
FIRST_MONTH = f"{START_YEAR}-01"
LAST_MONTH = f"{LAST_YEAR}-12"
LAST_INDEX = (LAST_YEAR - START_YEAR) * 12 + 11
_LABEL = re.compile(r"^(\d{4})-(\d{2})$")


def month_index(label: str) -> int:
    """Model month of a 'YYYY-MM' label (2016-01 -> 0); ValueError names the allowed range."""
    match = _LABEL.match(str(label))
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month {label!r} must look like YYYY-MM, e.g. 2020-12")
    year, month = int(match.group(1)), int(match.group(2))
    index = (year - START_YEAR) * 12 + month - 1
    allowed = f"allowed {FIRST_MONTH}..{LAST_MONTH}"
    if index < 0:
        raise ValueError(f"month {label!r} is before the model start {FIRST_MONTH}; {allowed}")
    if index > LAST_INDEX:
        raise ValueError(f"month {label!r} is past the last month the data cover; {allowed}")
    return index


def month_label(index: int) -> str:
    """'YYYY-MM' of a model month."""
    return f"{START_YEAR + index // 12}-{index % 12 + 1:02d}"


def decimal_year(index: int) -> float:
    """Calendar time at the middle of a model month, e.g. 2016-01 -> 2016.04."""
    return START_YEAR + (index + 0.5) / 12.0
