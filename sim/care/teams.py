"""Home-care service teams dispatched through the 12349 platform.

The teams subsystem keeps one entry per team (`TeamTable`; `ServiceTeam` Mesa agents in
sim.core.agents are views on it): each January the year's teams are placed in the districts in
proportion to their urban elderly, and a district's staff hours are its budget for the month
(teams x staff x productive hours). Requests are served in
priority order: assessed voucher holders (government-purchased services) first, then others,
with a keyed tie-break, so the allocation never exceeds capacity and does not depend on array
order (beyond float rounding in sums of hours). Only the few requests where a district's hours run
out are sorted; the rest takes a few compiled passes over the requests (see `dispatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sim.care.facilities import over_plan_years
from sim.care.month import CareMonth
from sim.engine.calendar import EachYear, decimal_year
from sim.engine.jit import kernel, row_function
from sim.engine.rng import Stream, keyed_uniform
from sim.engine.subsystem import Subsystem
from sim.kpis.registry import CARE_SUM_NAMES
from sim.params.sections import Params
from sim.population.geography import Geography, allocate_largest_remainder
from sim.population.synthesis import district_elderly_weights


def teams_in_year(services, year: int) -> int:
    """Service teams in a calendar year: the 2015 stock plus the yearly additions to date."""
    added = services.teams_added[: _plan_years_to(year)]
    return services.teams_2015 + int(sum(added))


def district_teams_in_year(districts, year: int) -> np.ndarray:
    """Teams added in one district (`params.districts.teams`) by a calendar year, by district."""
    steps = [
        over_plan_years(total)[: _plan_years_to(year)].sum() for total in districts.added("teams")
    ]
    return np.array(steps, dtype=np.int64)


def _plan_years_to(year: int) -> int:
    """Plan years (2016..2020) up to and including `year`."""
    return max(0, min(year, 2020) - 2015)


@dataclass
class TeamTable:
    """One entry per team that exists in some year of the plan (the 2015 stock and every team
    added): the district it serves this year (-1: not formed yet). Staff, hours and the
    medically qualified share are the same for every team (`ServiceParams`)."""

    district: np.ndarray

    @property
    def size(self) -> int:
        return self.district.size


class Teams(Subsystem):
    """The service teams: their staff hours by district (each January) and the hours they grant
    to requests (`dispatch`, called by the delivery of care)."""

    def __init__(self, params: Params, geo: Geography, scale: float):
        self.params, self.geo, self.scale = params, geo, scale
        self.hours = EachYear(self._hours)  # staff hours per month by district, in a month

    def init(self) -> None:
        svc = self.params.services
        most = teams_in_year(svc, 2020) + sum(self.params.districts.added("teams"))
        self.table = TeamTable(np.full(most, -1, np.int64))

    def step(self, month: CareMonth) -> None:
        self.hours(month.month)

    def results(self, month: CareMonth) -> None:
        month.sums[:, _TEAM_CAPACITY] = self.hours(month.month) / self.scale

    def _hours(self, month: int) -> np.ndarray:
        """The year's staff hours by district; places the year's teams in the table."""
        svc, year = self.params.services, int(decimal_year(month))
        weights = district_elderly_weights(self.geo) * self.geo.districts["urban_share"].to_numpy()
        teams = allocate_largest_remainder(teams_in_year(svc, year), weights)
        teams += district_teams_in_year(self.params.districts, year)
        self.table.district[:] = -1
        self.table.district[: teams.sum()] = np.repeat(np.arange(teams.size), teams)
        return teams * svc.staff_per_team * svc.hours_per_staff


_TEAM_CAPACITY = CARE_SUM_NAMES.index("team_capacity")


# Requests are served in the order of one float key per request: district, then priority, then the
# keyed tie-break in [0, 1). Hours go to whole blocks of that order at a time: first the
# (district, priority) groups, then, in the one group per district where the hours run out, bins
# of the tie-break; only the requests of the bin where the hours run out are sorted.
_TIE_BINS = 1024  # a power of two, so key * _TIE_BINS is exact and the bins follow the key order
_BINS = _TIE_BINS + 1  # a key 2 * group + tie can round up to the next integer: one bin more
_DISPATCH = int(Stream.DISPATCH)


class _Requests(NamedTuple):
    """By request: district, priority level (0 is served first), hours asked, and the person key
    that draws the tie-break."""

    district: np.ndarray
    priority: np.ndarray
    hours: np.ndarray
    rows: np.ndarray


class _Blocks(NamedTuple):
    """Consecutive blocks of each district's serving order: the hours each asks, flat over
    (district, block); per district the first block not served in full (the number of blocks if
    none) and the hours left when its turn comes."""

    demand: np.ndarray
    cut: np.ndarray
    left: np.ndarray


def dispatch(
    capacity: np.ndarray,
    rows: np.ndarray,
    district: np.ndarray,
    request: np.ndarray,
    priority: np.ndarray,
    seed: int,
    month: int,
) -> np.ndarray:
    """Hours granted to each request; per district the sum never exceeds `capacity[district]`.

    The grants are those of serving every request in key order (up to float rounding), without
    sorting them all: most requests lie in groups, or tie-break bins, served in full or not at
    all. Block sums and running sums add in array order, then in key order, as np.bincount and
    np.cumsum over the blocks do, so the grants do not change with the way they are computed.
    """
    granted = np.empty(rows.size)
    if rows.size == 0:
        return granted
    requests = _Requests(district, priority, request, rows)
    levels = int(priority.max()) + 1
    groups, bins = _blocks(capacity.size, levels), _blocks(capacity.size, _BINS)
    bin_size = np.empty(capacity.size * _BINS, dtype=np.int64)
    n_last = _serve_blocks(requests, capacity, levels, seed, month, groups, bins, bin_size, granted)
    _serve_last_bins(requests, levels, groups, bins, np.empty(n_last, np.int64), granted)
    return granted


def _blocks(n_districts: int, width: int) -> _Blocks:
    """Scratch for `width` blocks per district (filled by the passes)."""
    return _Blocks(
        np.empty(n_districts * width), np.empty(n_districts, np.int64), np.empty(n_districts)
    )


@row_function
def _cut(blocks: _Blocks, d: int, width: int, hours: float) -> None:
    """Serve district d's blocks in order with `hours`: whole while their running sum fits."""
    first, served, b = d * width, 0.0, 0
    while b < width and served + blocks.demand[first + b] <= hours:
        served += blocks.demand[first + b]
        b += 1
    blocks.cut[d] = b
    blocks.left[d] = hours - served


@row_function
def _tie_bin(key: float, group: int) -> int:
    """Bin 0.._TIE_BINS of a key 2 * group + tie: the bins follow the key order."""
    return np.int64(np.floor(key * _TIE_BINS)) - group * (2 * _TIE_BINS)


@row_function
def _whole_or_none(hours: float, cut: int, block: int) -> float:
    """`hours` for a block before the `cut` block, nothing for one after it. Without a branch:
    (cut - block) * inf is +inf or -inf, and blocks before and after the cut come in random
    order, so a branch would be mispredicted half the time."""
    return min(hours, max(0.0, (cut - block) * np.inf))


@kernel
def _serve_blocks(
    requests: _Requests,
    capacity: np.ndarray,
    levels: int,
    seed: int,
    month: int,
    groups: _Blocks,
    bins: _Blocks,
    bin_size: np.ndarray,
    granted: np.ndarray,
) -> int:
    """Grant the requests of the groups served in full or not at all. For those of the group
    where a district's hours run out, put their key in `granted` and add them up by tie-break
    bin; return how many lie in the cut bins (where the hours run out)."""
    n, n_districts = requests.hours.size, capacity.size
    groups.demand[:] = 0.0
    for i in range(n):
        groups.demand[requests.district[i] * levels + requests.priority[i]] += requests.hours[i]
    for d in range(n_districts):
        _cut(groups, d, levels, capacity[d])
        if groups.cut[d] < levels:
            bins.demand[d * _BINS : (d + 1) * _BINS] = 0.0
            bin_size[d * _BINS : (d + 1) * _BINS] = 0
    for i in range(n):
        d, p = requests.district[i], requests.priority[i]
        if p == groups.cut[d]:
            tie = keyed_uniform(seed, _DISPATCH, requests.rows[i], month)
            granted[i] = (d * levels + p) * 2.0 + tie
        else:
            granted[i] = _whole_or_none(requests.hours[i], groups.cut[d], p)
    # a pass of its own: adding to bins whose index waits on the tie-break hash stalls the loads
    # that follow (twice as slow when this was part of the pass above)
    for i in range(n):
        d, p = requests.district[i], requests.priority[i]
        if p == groups.cut[d]:
            b = d * _BINS + _tie_bin(granted[i], d * levels + p)
            bins.demand[b] += requests.hours[i]
            bin_size[b] += 1
    n_last = 0
    for d in range(n_districts):
        if groups.cut[d] < levels:
            _cut(bins, d, _BINS, groups.left[d])
            if bins.cut[d] < _BINS:
                n_last += bin_size[d * _BINS + bins.cut[d]]
    return n_last


@kernel
def _serve_last_bins(
    requests: _Requests,
    levels: int,
    groups: _Blocks,
    bins: _Blocks,
    last: np.ndarray,
    granted: np.ndarray,
) -> None:
    """Grant the requests whose key `_serve_blocks` left in `granted`: in full before their
    district's cut bin (where the hours run out), nothing after it, and those of the cut bin
    in key order."""
    n_last = 0
    for i in range(requests.hours.size):
        d, p = requests.district[i], requests.priority[i]
        if p != groups.cut[d]:
            continue
        b = _tie_bin(granted[i], d * levels + p)
        if b == bins.cut[d]:
            last[n_last] = i
            n_last += 1
        else:
            granted[i] = _whole_or_none(requests.hours[i], bins.cut[d], b)
    _serve_in_key_order(requests, bins, last, granted)


@kernel
def _serve_in_key_order(
    requests: _Requests, bins: _Blocks, last: np.ndarray, granted: np.ndarray
) -> None:
    """Serve the requests `last` of the cut bins (their keys in `granted`) in key order, ties in
    array order, each taking what it asks while its district's hours last."""
    for j in range(1, last.size):  # a stable insertion sort by key: a bin holds few requests
        i, k = last[j], j
        while k > 0 and granted[last[k - 1]] > granted[i]:
            last[k] = last[k - 1]
            k -= 1
        last[k] = i
    # hours taken by the bin's earlier requests: a running sum over all the cut bins' requests in
    # key order (as np.cumsum), less its value where the district's bin starts
    served, bin_start, district = 0.0, 0.0, -1
    for i in last:
        d, asked = requests.district[i], requests.hours[i]
        if d != district:
            bin_start, district = served, d
        served += asked
        grant = bins.left[d] - (served - asked - bin_start)
        grant = grant if grant > 0.0 else 0.0  # as np.clip(grant, 0.0, asked)
        granted[i] = grant if grant < asked else asked
