"""Facilities: nursing homes (public, private), integrated medical-care beds, community centres
and day-care centres, and the schedule that opens them over time.

Facility state is held in `FacilityTable` arrays (one entry per facility, hundreds to a few
thousand); `Facility` Mesa agents (sim.core.agents) are views on those entries. Capacities are in
beds (persons); in resident rows a facility holds capacity / scale, drawn so each facility's rows
depend on itself only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.care.kinds import (
    CENTRE,
    DAY_RURAL,
    DAY_URBAN,
    FACILITY_KINDS,
    HOMES,
    MEDICAL,
    PRIVATE,
    PUBLIC,
)
from sim.engine.calendar import FIRST_MONTH
from sim.engine.rng import Stream, uniforms
from sim.params.policy import INSTITUTIONS_2015
from sim.params.sections import Params
from sim.population.geography import Geography, allocate_largest_remainder

HORIZON_YEAR = 2035


@dataclass
class FacilityTable:
    """One entry per facility (open or scheduled)."""

    kind: np.ndarray  # int8, PUBLIC..DAY_RURAL
    district: np.ndarray  # int8
    neigh: np.ndarray  # int32 neighbourhood id
    capacity: np.ndarray  # int32 beds or day places (persons)
    capacity_rows: np.ndarray  # int32 resident rows at the model's scale
    open_month: np.ndarray  # int16, model month it opens (STOCK_2015: the end-2015 stock)
    medical_draw: np.ndarray  # float64 keyed uniform deciding when a home gains medical service
    occupancy: np.ndarray  # int32 rows currently admitted / using

    @property
    def size(self) -> int:
        return self.kind.size

    def is_open(self, month: int) -> np.ndarray:
        return self.open_month <= month

    def medical_capable(self, month: int, homes_share: float) -> np.ndarray:
        """Integrated beds always; homes once their draw falls under the year's share."""
        homes = np.isin(self.kind, HOMES) & (self.medical_draw < homes_share)
        return (self.kind == MEDICAL) | homes


def _yearly_additions(params: Params) -> dict[int, dict[int, int]]:
    """Beds or centres added per kind and calendar year (2016..HORIZON_YEAR)."""
    pol = params.policy
    out: dict[int, dict[int, int]] = {k.code: {} for k in FACILITY_KINDS}
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


PLAN_YEARS = 5  # 2016-2020
# The end-2015 stock opens with the population (2010-11): the care system runs with it from then
# to 2015-12 (`CareModel`), so 2016 starts from the residents that supply sustains.
STOCK_2015 = FIRST_MONTH


def over_plan_years(total: int) -> np.ndarray:
    """`total` split into five yearly steps 2016..2020, as even as whole numbers allow."""
    return allocate_largest_remainder(int(total), np.ones(PLAN_YEARS))


def build_facilities(
    params: Params, geo: Geography, elderly_weights: np.ndarray, seed: int, scale: float
) -> FacilityTable:
    """The end-2015 stock and every facility the policy schedule opens up to HORIZON_YEAR.

    Spread over districts (assumed, no district breakdown was published): public and integrated
    beds by the district's estimated 60+ population, private beds by its urban 60+ population,
    community and urban day-care centres by urban communities, rural day care at the largest
    villages of over `rural_village_min_pop` registered people. Supply added in one district
    (`params.districts`) comes on top, in even steps over 2016-2020.
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

    def add_homes(kind: int, beds: int, homes: int, weights: np.ndarray) -> None:
        """The 2015 stock: `homes` homes spread over the districts by `weights`, the beds over
        the homes, so the count of homes is the plan's exactly."""
        per_district = allocate_largest_remainder(int(homes), weights)
        sizes = allocate_largest_remainder(
            int(beds), np.repeat(weights / np.maximum(per_district, 1), per_district)
        )
        districts = np.repeat(np.arange(per_district.size), per_district)
        rows.extend(
            (kind, int(d), int(b), STOCK_2015) for d, b in zip(districts, sizes, strict=True)
        )

    add_homes(PUBLIC, pol.public_beds_2015, pol.public_homes_2015, elderly_weights)
    n_private_2015 = INSTITUTIONS_2015 - pol.public_homes_2015
    add_homes(PRIVATE, pol.private_beds_2015, n_private_2015, elderly_weights * urban_share)
    medical_size = svc.medical_beds_per_institution
    add_beds(MEDICAL, pol.medical_beds_2015, elderly_weights, medical_size, STOCK_2015)
    for d, n in enumerate(allocate_largest_remainder(pol.urban_day_care_2015, community_weight)):
        rows.extend((DAY_URBAN, d, svc.day_care_places, STOCK_2015) for _ in range(n))
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
    added = params.districts
    n_d = len(geo.districts)
    for kind, name, size in (
        (PUBLIC, "public_beds", svc.facility_beds_mean),
        (PRIVATE, "private_beds", svc.facility_beds_mean),
        (MEDICAL, "medical_beds", svc.medical_beds_per_institution),
    ):
        for d, total in enumerate(added.added(name)):
            for i, beds in enumerate(over_plan_years(total)):
                add_beds(kind, beds, np.eye(n_d)[d], size, i * 12)
    for kind, name, places in (
        (CENTRE, "community_centres", svc.centre_places),
        (DAY_URBAN, "urban_day_care", svc.day_care_places),
    ):
        for d, total in enumerate(added.added(name)):
            for i, n in enumerate(over_plan_years(total)):
                rows.extend((kind, d, places, i * 12) for _ in range(n))
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
    ids = _stable_keys(kind, district, np.maximum(open_month, -1))
    neigh = _place(geo, kind, district, ids, seed, rural_sites, open_month, pol)
    district = nb["district"].to_numpy()[neigh].astype(np.int8)  # an explicit site's district
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


def _place(geo, kind, district, ids, seed, rural_sites, open_month, policy) -> np.ndarray:
    """Neighbourhood of each facility: a keyed draw among the district's communities (urban kinds)
    or among all its neighbourhoods (public homes, integrated beds); rural centres at villages.
    The new community and urban day-care centres take the explicit sites of `policy` first
    (`centre_sites`, `day_care_sites`, e.g. from `eldercare site`), in opening order; sites
    beyond the number the schedule opens are not used."""
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
    for code, sites in ((CENTRE, policy.centre_sites), (DAY_URBAN, policy.day_care_sites)):
        new = np.flatnonzero((kind == code) & (open_month >= 0))
        new = new[np.argsort(open_month[new], kind="stable")][: len(sites)]
        out[new] = np.asarray(sites[: new.size], dtype=np.int32)
    return out
