"""Facilities: nursing homes (public, private), integrated medical-care beds, community centres
and day-care centres, their build-out over time, and admission from queues.

Facility state is held in `FacilityTable` arrays (one entry per facility, hundreds to a few
thousand); `Facility` Mesa agents are views on those entries. Capacities are in beds (persons);
in resident rows a facility holds capacity / scale, allocated by largest remainder so the city's
rows add up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa
import numpy as np

from sim.engine.jit import kernel
from sim.engine.rng import Stream, stable_order, uniforms
from sim.params.policy import INSTITUTIONS_2015
from sim.population.geography import Geography, allocate_largest_remainder

if TYPE_CHECKING:
    from sim.params.sections import Params

PUBLIC, PRIVATE, MEDICAL, CENTRE, DAY_URBAN, DAY_RURAL = range(6)
KIND_NAMES = (
    "public_home",
    "private_home",
    "medical_bed",
    "community_centre",
    "day_care",
    "rural_day_care",
)
RESIDENTIAL = (PUBLIC, PRIVATE, MEDICAL)
HORIZON_YEAR = 2035
_SLACK_KM = 1e-6  # widens the x window past any rounding of coordinates


@dataclass
class FacilityTable:
    """One entry per facility (open or scheduled)."""

    kind: np.ndarray  # int8, PUBLIC..DAY_RURAL
    district: np.ndarray  # int8
    neigh: np.ndarray  # int32 neighbourhood id
    capacity: np.ndarray  # int32 beds or day places (persons)
    capacity_rows: np.ndarray  # int32 resident rows at the model's scale
    open_month: np.ndarray  # int16, model month it opens (<= -1: open at the start)
    medical_draw: np.ndarray  # float64 keyed uniform deciding when a home gains medical service
    occupancy: np.ndarray  # int32 rows currently admitted / using

    @property
    def size(self) -> int:
        return self.kind.size

    def is_open(self, month: int) -> np.ndarray:
        return self.open_month <= month

    def medical_capable(self, month: int, homes_share: float) -> np.ndarray:
        """Integrated beds always; homes once their draw falls under the year's share."""
        homes = np.isin(self.kind, (PUBLIC, PRIVATE)) & (self.medical_draw < homes_share)
        return (self.kind == MEDICAL) | homes


def _yearly_additions(params: Params) -> dict[int, dict[int, int]]:
    """Beds or centres added per kind and calendar year (2016..HORIZON_YEAR)."""
    pol = params.policy
    out: dict[int, dict[int, int]] = {k: {} for k in range(6)}
    after = pol.beds_added_per_year_after_2020
    for i, year in enumerate(range(2016, HORIZON_YEAR + 1)):
        in_plan = i < 5
        medical = pol.medical_beds_added[i] if in_plan else after[2]
        converted = round(medical * pol.medical_beds_converted_share)
        private = (pol.private_beds_added[i] if in_plan else after[1]) - converted
        out[PUBLIC][year] = pol.public_beds_added[i] if in_plan else after[0]
        out[PRIVATE][year] = max(private, 0)
        out[MEDICAL][year] = medical
        out[CENTRE][year] = (
            pol.community_centres_added[i]
            if in_plan
            else pol.community_centres_added_per_year_after_2020
        )
        out[DAY_URBAN][year] = params.policy.urban_day_care_added[i] if in_plan else 0
        out[DAY_RURAL][year] = params.policy.rural_day_care_added[i] if in_plan else 0
    return out


def build_facilities(
    params: Params, geo: Geography, elderly_weights: np.ndarray, seed: int, scale: float
) -> FacilityTable:
    """The end-2015 stock and every facility the policy schedule opens up to HORIZON_YEAR.

    Spread over districts (assumed, no district breakdown was published): public and integrated
    beds by the district's estimated 60+ population, private beds by its urban 60+ population,
    community and urban day-care centres by urban communities, rural day care at the largest
    villages of over `rural_village_min_pop` registered people.
    """
    pol, svc = params.policy, params.services
    urban_share = geo.districts["urban_share"].to_numpy()
    nb = geo.neighbourhoods
    communities = nb[nb["kind"] == "community"]
    community_weight = np.bincount(communities["district"], minlength=len(geo.districts)) + 0.0
    rows: list[tuple[int, int, int, int]] = []  # kind, district, beds, open month

    def add_beds(kind: int, beds: int, weights: np.ndarray, mean_size: int, month: int) -> None:
        for d, b in enumerate(allocate_largest_remainder(int(beds), weights)):
            if b <= 0:
                continue
            n = max(1, round(b / mean_size))
            for size in allocate_largest_remainder(int(b), np.ones(n)):
                rows.append((kind, d, int(size), month))

    add_beds(
        PUBLIC,
        pol.public_beds_2015,
        elderly_weights,
        pol.public_beds_2015 // pol.public_homes_2015 or 1,
        -1,
    )
    n_private_2015 = INSTITUTIONS_2015 - pol.public_homes_2015
    add_beds(
        PRIVATE,
        pol.private_beds_2015,
        elderly_weights * urban_share,
        pol.private_beds_2015 // n_private_2015 or 1,
        -1,
    )
    add_beds(MEDICAL, pol.medical_beds_2015, elderly_weights, svc.medical_beds_per_institution, -1)
    for d, n in enumerate(allocate_largest_remainder(pol.urban_day_care_2015, community_weight)):
        rows.extend((DAY_URBAN, d, svc.day_care_places, -1) for _ in range(n))
    additions = _yearly_additions(params)
    for year, beds in additions[PUBLIC].items():
        add_beds(PUBLIC, beds, elderly_weights, svc.facility_beds_mean, (year - 2016) * 12)
    for year, beds in additions[PRIVATE].items():
        add_beds(
            PRIVATE, beds, elderly_weights * urban_share, svc.facility_beds_mean, (year - 2016) * 12
        )
    for year, beds in additions[MEDICAL].items():
        add_beds(
            MEDICAL, beds, elderly_weights, svc.medical_beds_per_institution, (year - 2016) * 12
        )
    for year, n_new in additions[CENTRE].items():
        for d, n in enumerate(allocate_largest_remainder(int(n_new), community_weight)):
            rows.extend((CENTRE, d, svc.centre_places, (year - 2016) * 12) for _ in range(n))
    for year, n_new in additions[DAY_URBAN].items():
        for d, n in enumerate(allocate_largest_remainder(int(n_new), community_weight)):
            rows.extend((DAY_URBAN, d, svc.day_care_places, (year - 2016) * 12) for _ in range(n))
    rural_sites = _rural_sites(geo, svc.rural_village_min_pop)
    n_rural = 0
    for year, n_new in additions[DAY_RURAL].items():
        for _ in range(int(n_new)):
            if n_rural < rural_sites.size:
                d = int(nb.loc[rural_sites[n_rural], "district"])
                rows.append((DAY_RURAL, d, svc.day_care_places, (year - 2016) * 12))
                n_rural += 1

    kind = np.array([r[0] for r in rows], dtype=np.int8)
    district = np.array([r[1] for r in rows], dtype=np.int8)
    capacity = np.array([r[2] for r in rows], dtype=np.int32)
    open_month = np.array([r[3] for r in rows], dtype=np.int16)
    ids = _stable_keys(kind, district, open_month)
    neigh = _place(geo, kind, district, ids, seed, rural_sites)
    # rows at this scale: capacity / scale rounded up with a keyed probability, so each facility's
    # rows depend on itself only (adding facilities changes no other facility) and sum to the
    # capacity in expectation; at scale 1 they equal the capacity exactly
    draw = uniforms(seed, Stream.FACILITY, ids, 2)
    cap_rows = np.floor(capacity / scale + draw).astype(np.int32)
    return FacilityTable(
        kind=kind,
        district=district,
        neigh=neigh,
        capacity=capacity,
        capacity_rows=cap_rows,
        open_month=open_month,
        medical_draw=uniforms(seed, Stream.FACILITY, ids, 0),
        occupancy=np.zeros(kind.size, dtype=np.int32),
    )


def _rural_sites(geo: Geography, min_pop: int) -> np.ndarray:
    """Villages over `min_pop` registered people, largest first (sites for rural day care)."""
    nb = geo.neighbourhoods
    big = nb[(nb["kind"] == "village") & (nb["registered_pop"] > min_pop)]
    return big.sort_values("registered_pop", ascending=False, kind="stable").index.to_numpy()


def _stable_keys(kind: np.ndarray, district: np.ndarray, open_month: np.ndarray) -> np.ndarray:
    """A key per facility from (kind, opening month, district, rank within those), so adding
    facilities of one kind or year leaves every other facility's keyed draws unchanged (CRN)."""
    group = (kind.astype(np.int64) * 1000 + open_month.astype(np.int64) + 1) * 100 + district
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    rank = np.empty(kind.size, dtype=np.int64)
    rank[order] = np.arange(kind.size) - np.repeat(starts, np.diff(np.r_[starts, kind.size]))
    return group * 10_000 + rank


def _place(geo, kind, district, ids, seed, rural_sites) -> np.ndarray:
    """Neighbourhood of each facility: a keyed draw among the district's communities (urban kinds)
    or among all its neighbourhoods (public homes, integrated beds); rural centres at villages."""
    nb = geo.neighbourhoods
    nb_district = nb["district"].to_numpy()
    is_community = (nb["kind"] == "community").to_numpy()
    u = uniforms(seed, Stream.FACILITY, ids, 1)
    out = np.zeros(kind.size, dtype=np.int32)
    rural = kind == DAY_RURAL
    out[rural] = rural_sites[: rural.sum()]
    urban_kind = np.isin(kind, (PRIVATE, CENTRE, DAY_URBAN))
    for d in np.unique(district):
        for urban_only in (True, False):
            sel = (district == d) & ~rural & (urban_kind == urban_only)
            pool = np.flatnonzero((nb_district == d) & (is_community | (not urban_only)))
            out[sel] = pool[(u[sel] * pool.size).astype(np.int64)]
    return out


def admit(
    table: FacilityTable,
    month: int,
    applicant_rows: np.ndarray,
    applicant_facility: np.ndarray,
    priority: np.ndarray,
    since: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Admit applicants by (priority, application month, keyed tie-break) into free places.

    Returns a boolean mask over the applicants: admitted this month. Never exceeds capacity.
    """
    if applicant_rows.size == 0:
        return np.zeros(0, dtype=bool)
    free = np.where(table.is_open(month), table.capacity_rows - table.occupancy, 0).clip(0)
    tie = uniforms(seed, Stream.QUEUE_TIE, applicant_rows, month)
    order = _admission_order(applicant_facility, priority, since, tie)
    fac_sorted = applicant_facility[order]
    starts = np.r_[0, np.flatnonzero(np.diff(fac_sorted)) + 1]
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    admitted = np.zeros(applicant_rows.size, dtype=bool)
    admitted[order] = rank < free[fac_sorted]
    table.occupancy += np.bincount(applicant_facility[admitted], minlength=table.size)
    return admitted


def _admission_order(
    facility: np.ndarray, priority: np.ndarray, since: np.ndarray, tie: np.ndarray
) -> np.ndarray:
    """np.lexsort((tie, since, priority, facility)): by facility, priority, application month,
    then the keyed tie-break. The first three are whole numbers (an index, a class, a month),
    packed into one integer key, so it takes two stable sorts instead of four."""
    keys = [np.asarray(k).astype(np.int64) for k in (facility, priority, since)]
    keys = [k - k.min() for k in keys]
    priority_span, since_span = (int(k.max()) + 1 for k in keys[1:])
    packed = (keys[0] * priority_span + keys[1]) * since_span + keys[2]
    order = stable_order(tie)
    return order[np.argsort(packed[order], kind="stable")]


class Facility(mesa.Agent):
    """A facility as a Mesa agent: a view on one entry of the model's FacilityTable."""

    def __init__(self, model: mesa.Model, index: int):
        super().__init__(model)
        self.index = index

    @property
    def table(self) -> FacilityTable:
        return self.model.facilities

    @property
    def kind(self) -> str:
        return KIND_NAMES[self.table.kind[self.index]]

    def describe(self) -> dict:
        """Readable summary for the app's inspector."""
        t, m = self.table, self.model
        month = m.month - 1 if m.month > 0 else 0
        return {
            "facility": self.index,
            "kind": self.kind,
            "district": m.geo.districts.loc[int(t.district[self.index]), "name_en"],
            "neighbourhood": m.geo.neighbourhoods.loc[int(t.neigh[self.index]), "name"],
            "capacity": int(t.capacity[self.index]),
            "in_use": int(t.occupancy[self.index] * m.scale),
            "opens": int(t.open_month[self.index]),
            "open": bool(t.is_open(month)[self.index]),
            "medical_service": bool(m.facility_medical_capable()[self.index]),
            "price_yuan_month": float(m.prices()[t.kind[self.index]]),
        }


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
