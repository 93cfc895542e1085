"""Home-care service teams dispatched through the 12349 platform.

Team hours are a district budget (teams x staff x productive hours). Requests are served in
priority order: assessed voucher holders (government-purchased services) first, then others,
with a keyed tie-break, so the allocation never exceeds capacity and does not depend on array
order.
"""

from __future__ import annotations

import numpy as np

from sim.geography import allocate_largest_remainder
from sim.rng import Stream, uniforms


def teams_in_year(services, year: int) -> int:
    """Service teams in a calendar year: the 2015 stock plus the yearly additions to date."""
    added = services.teams_added[: max(0, min(year, 2020) - 2015)]
    return services.teams_2015 + int(sum(added))


def team_hours_by_district(services, year: int, weights: np.ndarray) -> np.ndarray:
    """Monthly staff hours per district (teams placed in proportion to `weights`)."""
    teams = allocate_largest_remainder(teams_in_year(services, year), weights)
    return teams * services.staff_per_team * services.hours_per_staff


def dispatch(
    capacity: np.ndarray,
    rows: np.ndarray,
    district: np.ndarray,
    request: np.ndarray,
    priority: np.ndarray,
    seed: int,
    month: int,
) -> np.ndarray:
    """Hours granted to each request; per district the sum never exceeds `capacity[district]`."""
    if rows.size == 0:
        return np.zeros(0)
    tie = uniforms(seed, Stream.DISPATCH, rows, month)
    # one float key (district, then priority, then the keyed tie-break in [0, 1)) sorts faster
    # than a three-key lexsort and gives the same order
    levels = int(priority.max()) + 1
    order = np.argsort((district * levels + priority) * 2.0 + tie, kind="stable")
    d, req = district[order], request[order]
    cum = np.cumsum(req)
    starts = np.r_[0, np.flatnonzero(np.diff(d)) + 1]
    before_group = np.repeat(np.r_[0.0, cum][starts], np.diff(np.r_[starts, d.size]))
    used_before = cum - req - before_group
    granted = np.clip(capacity[d] - used_before, 0.0, req)
    out = np.empty(rows.size)
    out[order] = granted
    return out
