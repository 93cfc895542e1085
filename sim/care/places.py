"""The places subsystem: the facilities open each month (`facilities`), who holds a bed or a day
place, the queues, and the market choosers see (`market`); and the facility-side sums (beds,
occupancy, coverage, subsidies to private homes).

Each month it frees the places and queue entries of those who died, then refreshes the market
(queues, free places, expected waits, medical capability, and each January the centres'
coverage) before anyone decides.
"""

from __future__ import annotations

import numpy as np

from sim.care.facilities import build_facilities
from sim.care.kinds import CENTRE, DAY_URBAN, FACILITY_KINDS, OPTION_KIND, PRIVATE, RESIDENTIAL
from sim.care.market import FacilityMarket
from sim.care.month import CareMonth
from sim.care.queues import waiting
from sim.engine.calendar import EachYear
from sim.engine.subsystem import Subsystem
from sim.kpis.registry import CARE_SUM_NAMES
from sim.params.sections import Params
from sim.population.columns import NO_MONTH, Population
from sim.population.geography import Geography
from sim.population.kernel import EVENT_DIED, EVENT_EXIT
from sim.population.synthesis import district_elderly_weights

_IDX = {name: i for i, name in enumerate(CARE_SUM_NAMES)}
# the month's bed exits by the bed's district: these columns of the sums, in this order
_EXIT_SUMS = [_IDX[name] for name in ("bed_exits_death", "bed_exits_alive", "stays_ended")]
_STAY_MONTHS = _IDX["stay_months"]
# the residential kinds whose beds the sums count, by the name the sums use
_BED_SUMS = {k.code: k.key for k in FACILITY_KINDS if k.residential}


class Places(Subsystem):
    """Facilities, places, queues and the market (see the module docstring)."""

    writes = frozenset(("facility", "queue_facility", "queue_since", "bed_since"))  # the exits

    def __init__(self, params: Params, geo: Geography, pop: Population, seed: int, scale: float):
        self.params, self.geo, self.pop, self.seed, self.scale = params, geo, pop, seed, scale
        self._coverage = EachYear(self._coverage_sums)

    def init(self) -> None:
        weights = district_elderly_weights(self.geo)
        self.table = build_facilities(self.params, self.geo, weights, self.seed, self.scale)
        self.market = FacilityMarket(self.table, self.geo, self.params)
        # whether each facility is a bed (nursing home or integrated bed) rather than a day place
        self.residential = np.isin(self.table.kind, RESIDENTIAL)

    def step(self, month: CareMonth) -> None:
        """Free the places and queue entries of those who died or moved away; refresh the
        market."""
        pop = self.pop
        n_d = month.sums.shape[0]
        self._exits = np.zeros((n_d, len(_EXIT_SUMS)), dtype=np.int64)
        self._stay_months = np.zeros(n_d, dtype=np.int64)
        exit_bits = month.bits[(month.bits & EVENT_EXIT) != 0]
        dead = month.events[(month.bits & EVENT_EXIT) != 0]
        self.leave_beds(dead, pop.facility[dead], (exit_bits & EVENT_DIED) != 0, month.month)
        self.release(dead)
        pop.queue_facility[dead] = -1
        pop.queue_since[dead] = NO_MONTH
        month.queued = waiting(pop.queue_facility, month.needy)
        self.market.refresh(month.month, pop.queue_facility[month.queued].astype(np.int64))

    def leave_beds(
        self, rows: np.ndarray, held: np.ndarray, died: np.ndarray | bool, month: int
    ) -> None:
        """Count the stays that end: `rows` leave the places `held` (-1 none; day places are not
        counted), by death where `died`. A stay begun before 2016 (`bed_since` < 0) counts as
        an exit, not in the lengths: its start is not known."""
        bed = (held >= 0) & self.residential[np.maximum(held, 0)]
        rows, held = rows[bed], held[bed]
        died = np.broadcast_to(died, bed.shape)[bed]
        district = self.table.district[held].astype(np.int64)
        since = self.pop.bed_since[rows].astype(np.int64)
        known = since >= 0
        n_d = self._exits.shape[0]
        self._exits[:, 0] += np.bincount(district[died], minlength=n_d)
        self._exits[:, 1] += np.bincount(district[~died], minlength=n_d)
        self._exits[:, 2] += np.bincount(district[known], minlength=n_d)
        self._stay_months += np.bincount(
            district[known], weights=month - since[known], minlength=n_d
        ).astype(np.int64)
        self.pop.bed_since[rows] = NO_MONTH

    def release(self, rows: np.ndarray) -> None:
        """Free the bed or day place of `rows`."""
        pop, fac = self.pop, self.table
        holding = rows[pop.facility[rows] >= 0]
        f = pop.facility[holding]
        fac.occupancy -= np.bincount(f, minlength=fac.size)
        self.market.record_exits(f)
        pop.facility[holding] = -1

    def results(self, month: CareMonth) -> None:
        """Beds, places in use, coverage and the facility-side spending by district."""
        fac, out, n_d = self.table, month.sums, month.sums.shape[0]
        open_now = fac.is_open(month.month)
        fd = fac.district.astype(np.int64)
        for kind, name in _BED_SUMS.items():
            sel = open_now & (fac.kind == kind)
            beds = np.bincount(fd[sel], weights=fac.capacity[sel], minlength=n_d)
            out[:, _IDX[f"beds_{name}"]] = beds
            out[:, _IDX[f"cap_{name}"]] = np.bincount(
                fd[sel], weights=fac.capacity_rows[sel], minlength=n_d
            )
            out[:, _IDX[f"occ_{name}"]] = np.bincount(
                fd[sel], weights=fac.occupancy[sel], minlength=n_d
            )
        out[:, _EXIT_SUMS] = self._exits
        out[:, _STAY_MONTHS] = self._stay_months
        cov = self._coverage(month.month)
        out[:, _IDX["cov_centre"]], out[:, _IDX["cov_day"]], out[:, _IDX["urban_elderly"]] = cov
        pol = self.params.policy
        opening = (fac.open_month == month.month) & (fac.kind == PRIVATE)
        new_beds = np.bincount(fd[opening], weights=fac.capacity[opening], minlength=n_d)
        out[:, _IDX["spend_construction"]] = (
            new_beds * pol.construction_subsidy_per_bed / self.scale
        )
        out[:, _IDX["spend_operating"]] = (
            out[:, _IDX["occ_private"]] * pol.operating_subsidy_per_bed
        )

    def _coverage_sums(self, month: int) -> np.ndarray:
        """(urban elderly near a community centre, near a day-care centre, urban elderly) by
        district. Living urban residents are counted per neighbourhood (a resident's
        neighbourhood lies in their district), then weighted by whether it is covered."""
        nb_district = self.geo.neighbourhoods["district"].to_numpy()
        urban = self.pop.count_living(self.pop.urban, self.pop.neigh, nb_district.size)
        covered = (
            self.market.covered_by(CENTRE, month),
            self.market.covered_by(DAY_URBAN, month),
            True,
        )
        n_d = len(self.geo.districts)
        return np.stack(
            [np.bincount(nb_district, weights=urban * c, minlength=n_d) for c in covered]
        )

    def empty_beds(self, month: int, n_districts: int) -> np.ndarray:
        """Empty beds [residential option, district] of the facilities open in `month`."""
        fac = self.table
        open_now = fac.is_open(month)
        empty = np.empty((len(OPTION_KIND), n_districts))
        for n, kind in enumerate(OPTION_KIND.values()):
            sel = open_now & (fac.kind == kind)
            empty[n] = np.bincount(
                fac.district[sel].astype(np.int64),
                weights=(fac.capacity_rows - fac.occupancy)[sel],
                minlength=n_districts,
            )
        return empty
