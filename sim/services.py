"""Home-care service teams dispatched through the 12349 platform.

Team hours are a district budget (teams x staff x productive hours). Requests are served in
priority order: assessed voucher holders (government-purchased services) first, then others,
with a keyed tie-break, so the allocation never exceeds capacity and does not depend on array
order (beyond float rounding in sums of hours). Only the few requests where a district's hours run
out are sorted (see `dispatch`).
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


# Requests are served in the order of one float key per request: district, then priority, then the
# keyed tie-break in [0, 1). Hours go to whole blocks of that order at a time: first the
# (district, priority) groups, then, in the one group per district where the hours run out, bins
# of the tie-break; only the requests of the bin where the hours run out are sorted.
_TIE_BINS = 1024  # a power of two, so key * _TIE_BINS is exact and the bins follow the key order


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
    sorting them all: most requests lie in groups that are served in full or not at all.
    """
    if rows.size == 0:
        return np.zeros(0)
    levels = int(priority.max()) + 1
    group = np.asarray(district, dtype=np.int64) * levels + priority
    demand = np.bincount(group, weights=request, minlength=capacity.size * levels)
    whole, partial, left = _fill_blocks(capacity, demand.reshape(capacity.size, levels))
    granted = np.where(whole[group], request, 0.0)
    short = np.flatnonzero(partial[group])  # requests of the groups where the hours run out
    g = group[short]
    key = g * 2.0 + uniforms(seed, Stream.DISPATCH, rows[short], month)
    tie_bin = np.floor(key * _TIE_BINS).astype(np.int64) - g * (2 * _TIE_BINS)
    slot = (np.cumsum(partial) - 1)[g]
    granted[short] = _serve_by_bins(left[partial], slot, tie_bin, key, request[short])
    return granted


def _serve_by_bins(
    hours: np.ndarray, slot: np.ndarray, tie_bin: np.ndarray, key: np.ndarray, request: np.ndarray
) -> np.ndarray:
    """Grants when `hours[slot]` serve each slot's requests in `key` order, given bins
    0.._TIE_BINS that follow that order: only the bin where a slot's hours run out is sorted."""
    block = slot * (_TIE_BINS + 1) + tie_bin
    demand = np.bincount(block, weights=request, minlength=hours.size * (_TIE_BINS + 1))
    whole, partial, left = _fill_blocks(hours, demand.reshape(hours.size, _TIE_BINS + 1))
    granted = np.where(whole[block], request, 0.0)
    last = np.flatnonzero(partial[block])
    granted[last] = _serve_in_order(left[block[last]], block[last], request[last], key[last])
    return granted


def _fill_blocks(
    hours: np.ndarray, demand: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Serve blocks of requests in order: slot s has `hours[s]` for its blocks `demand[s, :]`.

    Returns, flat over (slot, block): whether the block is served in full, whether it is the block
    where the slot's hours run out, and the hours left when the block's turn comes.
    """
    through = np.cumsum(demand, axis=1)
    whole = through <= hours[:, None]
    partial = np.zeros_like(whole)
    short = np.flatnonzero(~whole.all(axis=1))
    partial[short, np.argmin(whole[short], axis=1)] = True
    before = np.hstack([np.zeros((demand.shape[0], 1)), through[:, :-1]])
    return whole.ravel(), partial.ravel(), (hours[:, None] - before).ravel()


def _serve_in_order(
    hours: np.ndarray, block: np.ndarray, request: np.ndarray, key: np.ndarray
) -> np.ndarray:
    """Grants when the requests of each block share `hours` (the same for all of the block's
    requests) in increasing `key` order, each taking what it asks for while hours last."""
    order = np.argsort(key, kind="stable")
    b, req = block[order], request[order]
    cum = np.cumsum(req)
    starts = np.r_[0, np.flatnonzero(np.diff(b)) + 1]
    before_block = np.repeat(np.r_[0.0, cum][starts], np.diff(np.r_[starts, b.size]))
    out = np.empty(order.size)
    out[order] = np.clip(hours[order] - (cum - req - before_block), 0.0, req)
    return out
