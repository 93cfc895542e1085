"""This month's facility market: free places, queues, expected waits, medical capability, the
facility each neighbourhood's residents would apply to (in any district), and the community
centre covering it."""

from __future__ import annotations

import numpy as np

from sim.care.facilities import FacilityTable
from sim.care.kinds import CENTRE, DAY_RURAL, DAY_URBAN, RESIDENTIAL
from sim.engine.jit import kernel
from sim.params.sections import Params
from sim.population.geography import Geography

_SLACK_KM = 1e-6  # widens the x window past any rounding of coordinates


class FacilityMarket:
    """This month's view of the facilities that choices need: free places, queues, expected waits,
    medical capability and the community centre covering each neighbourhood.

    The distances behind the choice of facility change only when facilities open (at most a few
    times a year), so they are kept until the set of open facilities changes; each month only the
    wait term is new. Coverage measures only the pairs that can be within a centre's radius.
    """

    def __init__(self, table: FacilityTable, geo: Geography, params: Params):
        self.table, self.geo, self.params = table, geo, params
        nb = geo.neighbourhoods
        self._x, self._y = nb["x_km"].to_numpy(), nb["y_km"].to_numpy()
        # expected departures per month, the basis of the wait a chooser expects (smoothed
        # exponentially; services.expected_exits_*)
        self.exits_ema = np.full(table.size, params.services.expected_exits_start)
        self._exited = np.zeros(table.size)
        self._coverage_year: int | None = None
        self.covering = np.full(len(nb), -1, dtype=np.int64)
        self.medical_now = np.zeros(table.size, dtype=bool)
        self.free = np.zeros(table.size)
        self.queue = np.zeros(table.size)
        self.wait = np.zeros(table.size)
        self.opened_near = np.zeros(len(nb), dtype=bool)  # a bed opened nearby this month
        self._best: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._choice_kept: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def record_exits(self, facilities: np.ndarray) -> None:
        self._exited += np.bincount(facilities, minlength=self._exited.size)

    def refresh(self, month: int, queue_facility: np.ndarray) -> None:
        """Update queues, free places, expected waits and (each January) coverage for `month`."""
        t, svc = self.table, self.params.services
        weight = svc.expected_exits_weight
        self.exits_ema = (1 - weight) * self.exits_ema + weight * self._exited
        self._exited[:] = 0
        queue = np.bincount(queue_facility, minlength=t.size)
        open_now = t.is_open(month)
        free = np.where(open_now, t.capacity_rows - t.occupancy, 0)
        wait = np.maximum(queue - free, 0) / np.maximum(self.exits_ema, svc.expected_exits_floor)
        self.free, self.queue, self.wait = free, queue, wait
        self._best = {kind: self._best_by_neighbourhood(kind, month) for kind in RESIDENTIAL}
        share = _interpolate(month, self.params.policy)
        self.medical_now = t.medical_capable(month, share)
        self.opened_near = self._opened_near(month)
        if month // 12 != self._coverage_year:
            self._coverage_year = month // 12
            self.covering = self._covering_centres(month)

    def _opened_near(self, month: int) -> np.ndarray:
        """Neighbourhoods within `choice.new_place_radius_km` of a residential facility that
        opens this month."""
        t = self.table
        near = np.zeros(self._x.size, dtype=bool)
        opening = (t.open_month == month) & np.isin(t.kind, RESIDENTIAL) & (t.capacity_rows > 0)
        radius = float(self.params.choice.new_place_radius_km)
        for kind in np.unique(t.kind[opening]):
            neigh, facility, _ = self._pairs_within(int(kind), month, radius)
            near[neigh[t.open_month[facility] == month]] = True
        return near

    def pick(self, kind: int, entry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each applicant the open facility of `kind` anywhere in the city with the best
        distance-and-wait utility this month; returns (facility or -1, km). `entry` is a
        neighbourhood, plus the number of neighbourhoods for a resident whose nearest child
        lives elsewhere in the city (distance weighs `choice.child_in_city_distance` as much).

        Taking the best of the available facilities means an added facility can only make the
        option better for anyone, which keeps policy comparisons monotone.
        """
        best, km = self._best[kind]
        return best[entry], km[entry]

    def _best_by_neighbourhood(self, kind: int, month: int) -> tuple[np.ndarray, np.ndarray]:
        choice = self.params.choice
        n = self._x.size
        best = np.full(2 * n, -1, dtype=np.int64)
        km = np.zeros(2 * n)
        pool, dist = self._choice_set(kind, month)
        if pool.size:
            per_km, per_month = float(choice.distance_per_km), float(choice.wait_per_month)
            for variant, weight in enumerate((1.0, float(choice.child_in_city_distance))):
                part = slice(variant * n, (variant + 1) * n)
                _pick_best(pool, dist, self.wait, per_km * weight, per_month, best[part], km[part])
        return best, km

    def _choice_set(self, kind: int, month: int) -> tuple[np.ndarray, np.ndarray]:
        """The open facilities of `kind` (in any district: families look across district lines)
        and their km from every neighbourhood; kept until one opens."""
        t = self.table
        ok = t.is_open(month) & (t.kind == kind) & (t.capacity_rows > 0)
        kept = self._choice_kept.get(kind)
        if kept is None or not np.array_equal(kept[0], ok):
            pool = np.flatnonzero(ok)
            kept = (ok, pool, self._km(np.arange(self._x.size)[:, None], pool[None, :]))
            self._choice_kept[kind] = kept
        return kept[1], kept[2]

    def _km(self, neigh: np.ndarray, facility: np.ndarray) -> np.ndarray:
        """km between neighbourhoods and facilities (arrays broadcast against each other)."""
        at = self.table.neigh[facility]
        return np.hypot(self._x[neigh] - self._x[at], self._y[neigh] - self._y[at])

    def _pairs_within(
        self, kind: int, month: int, radius: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(neighbourhood, facility, km) of every pair of a neighbourhood and an open facility of
        `kind` at most `radius` km apart. Only facilities within `radius` along x are measured
        (a pair's km is never less than its x distance), so this costs far less than all pairs."""
        t = self.table
        ids = np.flatnonzero(t.is_open(month) & (t.kind == kind))
        fx = self._x[t.neigh[ids]]
        by_x = np.argsort(fx, kind="stable")
        lo = np.searchsorted(fx[by_x], self._x - (radius + _SLACK_KM), side="left")
        n = np.searchsorted(fx[by_x], self._x + (radius + _SLACK_KM), side="right") - lo
        neigh = np.repeat(np.arange(self._x.size), n)
        within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        facility = ids[by_x[np.repeat(lo, n) + within]]
        km = self._km(neigh, facility)
        near = km <= radius
        return neigh[near], facility[near], km[near]

    def _covering_centres(self, month: int) -> np.ndarray:
        """Per neighbourhood the nearest open centre within its radius (-1 if none; the lowest
        facility id among equally near ones)."""
        t, svc = self.table, self.params.services
        out = np.full(self._x.size, -1, dtype=np.int64)
        best_km = np.full(self._x.size, np.inf)
        for kind, radius in (
            (CENTRE, svc.community_radius_km),
            (DAY_URBAN, svc.day_care_radius_km),
        ):
            neigh, facility, km = self._pairs_within(kind, month, radius)
            order = np.lexsort((facility, km, neigh))
            first = order[np.diff(neigh[order], prepend=-1) != 0]  # nearest, then lowest id
            neigh, facility, km = neigh[first], facility[first], km[first]
            better = km < best_km[neigh]
            out[neigh[better]], best_km[neigh[better]] = facility[better], km[better]
        rural = np.flatnonzero(t.is_open(month) & (t.kind == DAY_RURAL))
        out[t.neigh[rural]] = rural
        return out

    def covered_by(self, kind: int, month: int) -> np.ndarray:
        """Neighbourhoods within the radius of an open facility of `kind` (for coverage KPIs)."""
        svc = self.params.services
        radius = svc.community_radius_km if kind == CENTRE else svc.day_care_radius_km
        covered = np.zeros(self._x.size, dtype=bool)
        covered[self._pairs_within(kind, month, radius)[0]] = True
        return covered


@kernel
def _pick_best(pool, dist, wait, per_km, per_month, best, km):
    """For each neighbourhood i, the facility of `pool` with the highest score
    per_km * km + per_month * wait (the first on ties) and its km (dist[i, j] to pool[j])."""
    for i in range(dist.shape[0]):
        pick, top = 0, -np.inf
        for j in range(pool.size):
            score = per_km * dist[i, j] + per_month * wait[pool[j]]
            if score > top:
                pick, top = j, score
        best[i], km[i] = pool[pick], dist[i, pick]


def _interpolate(month: int, policy) -> float:
    """Share of nursing homes with medical service in `month` (linear 2015 -> 2022, then flat)."""
    years = min(max((month + 0.5) / 12, 0.0), 7.0)
    return (
        policy.homes_medical_share_2015
        + (policy.homes_medical_share_2022 - policy.homes_medical_share_2015) * years / 7.0
    )
