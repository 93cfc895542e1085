"""This month's facility market: free places, queues, expected waits, medical capability, the
facility each neighbourhood's residents would apply to, and the community centre covering it."""

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
        self._nb_district = nb["district"].to_numpy()
        # expected departures per month, the basis of the wait a chooser expects (smoothed
        # exponentially; services.expected_exits_*)
        self.exits_ema = np.full(table.size, params.services.expected_exits_start)
        self._exited = np.zeros(table.size)
        self._coverage_month = -1
        self.covering = np.full(len(nb), -1, dtype=np.int64)
        self.medical_now = np.zeros(table.size, dtype=bool)
        self.free = np.zeros(table.size)
        self.queue = np.zeros(table.size)
        self.wait = np.zeros(table.size)
        self._best: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._choice_kept: dict[int, tuple[np.ndarray, list]] = {}

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
        if month // 12 != self._coverage_month // 12 or self._coverage_month < 0:
            self._coverage_month = month
            self.covering = self._covering_centres(month)

    def pick(self, kind: int, neigh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each applicant (by neighbourhood) the open facility of `kind` in their district
        (the whole city if the district has none) with the best distance-and-wait utility this
        month; returns (facility or -1, km).

        Taking the best of the available facilities means an added facility can only make the
        option better for anyone, which keeps policy comparisons monotone.
        """
        best, km = self._best[kind]
        return best[neigh], km[neigh]

    def _best_by_neighbourhood(self, kind: int, month: int) -> tuple[np.ndarray, np.ndarray]:
        choice = self.params.choice
        best = np.full(self._x.size, -1, dtype=np.int64)
        km = np.zeros(self._x.size)
        per_km, per_month = float(choice.distance_per_km), float(choice.wait_per_month)
        for sel, pool, dist in self._choice_sets(kind, month):
            _pick_best(sel, pool, dist, self.wait, per_km, per_month, best, km)
        return best, km

    def _choice_sets(
        self, kind: int, month: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per district: its neighbourhoods, the open facilities of `kind` they choose from (the
        district's own, else the whole city's) and the km between them; kept until one opens."""
        t = self.table
        ok = t.is_open(month) & (t.kind == kind) & (t.capacity_rows > 0)
        kept = self._choice_kept.get(kind)
        if kept is None or not np.array_equal(kept[0], ok):
            kept = (ok, self._district_sets(np.flatnonzero(ok)))
            self._choice_kept[kind] = kept
        return kept[1]

    def _district_sets(self, city: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The choice sets of every district given the open facilities `city` (none if empty)."""
        if city.size == 0:
            return []
        sets = []
        for d in np.unique(self._nb_district):
            local = city[self.table.district[city] == d]
            pool = local if local.size else city
            sel = np.flatnonzero(self._nb_district == d)
            sets.append((sel, pool, self._km(sel[:, None], pool[None, :])))
        return sets

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
def _pick_best(sel, pool, dist, wait, per_km, per_month, best, km):
    """For each neighbourhood sel[i], the facility of `pool` with the highest score
    per_km * km + per_month * wait (the first on ties) and its km (dist[i, j] to pool[j])."""
    for i in range(sel.size):
        pick, top = 0, -np.inf
        for j in range(pool.size):
            score = per_km * dist[i, j] + per_month * wait[pool[j]]
            if score > top:
                pick, top = j, score
        best[sel[i]], km[sel[i]] = pool[pick], dist[i, pick]


def _interpolate(month: int, policy) -> float:
    """Share of nursing homes with medical service in `month` (linear 2015 -> 2022, then flat)."""
    years = min(max((month + 0.5) / 12, 0.0), 7.0)
    return (
        policy.homes_medical_share_2015
        + (policy.homes_medical_share_2022 - policy.homes_medical_share_2015) * years / 7.0
    )
