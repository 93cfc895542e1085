"""Care-arrangement choice: options, eligibility, multinomial-logit utilities, binding reasons.

Materialised residents (with their family) choose among the arrangements they may use:
0 family care only, 1 home services, 2 community / day care, 3 public home, 4 private home,
5 integrated medical-care bed. `option_features` computes, for many residents at once, what each
option would mean for them (availability, net price against budget, distance, expected wait,
medical capability); `choose` draws the choice with a keyed uniform; `binding_reasons` says why a
dependent without formal care does not use the option that suits them best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.facilities import MEDICAL, PRIVATE, PUBLIC
from sim.families import family_care_capacity, lives_alone
from sim.kernels import NEED_LEVEL
from sim.rng import Stream, uniforms

if TYPE_CHECKING:
    from sim.model import CareModel

FAMILY, HOME, COMMUNITY, PUBLIC_HOME, PRIVATE_HOME, MEDICAL_BED = range(6)
RESIDENTIAL_OPTIONS = (PUBLIC_HOME, PRIVATE_HOME, MEDICAL_BED)
OPTION_KIND = {PUBLIC_HOME: PUBLIC, PRIVATE_HOME: PRIVATE, MEDICAL_BED: MEDICAL}
REASONS = ("not_eligible", "no_vacancy", "distance", "price", "no_medical", "preference")
NOT_ELIGIBLE, NO_VACANCY, DISTANCE, PRICE, NO_MEDICAL, PREFERENCE = range(6)
TOO_FAR_KM = 8.0  # assumed: beyond this a facility counts as out of reach for the diagnostic


@dataclass
class OptionFeatures:
    """What each option means for each resident: arrays [n, 6] (or [n])."""

    rows: np.ndarray
    need_hours: np.ndarray
    family_hours: np.ndarray  # capacity
    budget: np.ndarray
    available: np.ndarray
    vacancy: np.ndarray  # a place is free now (or a short queue)
    net_price: np.ndarray
    km: np.ndarray
    wait: np.ndarray
    capable: np.ndarray  # medically capable
    facility: np.ndarray  # facility the resident would use (-1 none)


def option_features(model: CareModel, rows: np.ndarray) -> OptionFeatures:
    """Evaluate all six options for `rows` this month."""
    pop, p = model.pop, model.params
    n = rows.size
    health = pop.health[rows]
    need = np.asarray(p.need.care_hours_by_state)[health]
    family = family_care_capacity(pop, rows, p.family, p.policy, model.in_residence)
    gap = np.maximum(need - family, 0.0)
    income = np.where(
        pop.urban[rows],
        np.asarray(p.money.urban_income)[pop.income[rows]],
        np.asarray(p.money.rural_income)[pop.income[rows]],
    )
    helpers = np.minimum(pop.n_children[rows], 2)
    # floor of 50 yuan/month (assumed) keeps the affordability ratio finite for zero incomes
    budget = np.maximum(income * (1 + p.money.family_support_share * helpers), 50.0)
    voucher = np.where(pop.voucher[rows], p.policy.voucher_amount, 0.0)

    available = np.zeros((n, 6), dtype=bool)
    vacancy = np.ones((n, 6), dtype=bool)
    net = np.zeros((n, 6))
    km = np.zeros((n, 6))
    wait = np.zeros((n, 6))
    capable = np.zeros((n, 6), dtype=bool)
    facility = np.full((n, 6), -1, dtype=np.int64)
    available[:, FAMILY] = True

    district = pop.district[rows].astype(np.int64)
    teams = model.team_hours_by_district()
    available[:, HOME] = pop.urban[rows] & (teams[district] > 0)
    net[:, HOME] = np.maximum(gap * p.money.price_home_care_hour - voucher, 0.0)
    capable[:, HOME] = model.params.services.medical_staff_share > 0

    centre = model.covering_centre()[pop.neigh[rows]]
    available[:, COMMUNITY] = centre >= 0
    facility[:, COMMUNITY] = centre
    fac = model.facilities
    free_places = fac.capacity_rows - fac.occupancy
    vacancy[:, COMMUNITY] = np.where(centre >= 0, free_places[np.maximum(centre, 0)] > 0, False)
    net[:, COMMUNITY] = np.maximum(p.money.price_day_care - voucher, 0.0)

    medical_now = model.facility_medical_capable()
    prices = model.prices()
    market = model.market
    for option, kind in OPTION_KIND.items():
        f, distance = market.pick(kind, pop.neigh[rows])
        ok = f >= 0
        available[:, option] = ok
        fi = np.maximum(f, 0)
        facility[:, option] = f
        wait[:, option] = np.where(ok, market.wait[fi], 0.0)
        vacancy[:, option] = ok & (market.free[fi] - market.queue[fi] > 0)
        km[:, option] = distance
        capable[:, option] = ok & medical_now[fi]
        net[:, option] = prices[kind]
    net[:, PUBLIC_HOME] = np.where(pop.income[rows] == 0, 0.0, net[:, PUBLIC_HOME])
    return OptionFeatures(
        rows, need, family, budget, available, vacancy, net, km, wait, capable, facility
    )


def utilities(model: CareModel, f: OptionFeatures) -> np.ndarray:
    """Multinomial-logit utilities [n, 6]; unavailable options get -inf."""
    pop, c = model.pop, model.params.choice
    rows = f.rows
    level = NEED_LEVEL[pop.health[rows]].astype(np.float64)
    medical = pop.medical[rows]
    gap_share = np.where(
        f.need_hours > 0,
        np.maximum(f.need_hours - f.family_hours, 0) / np.maximum(f.need_hours, 1e-9),
        0.0,
    )
    day_cover = np.minimum(1.0, model.params.services.day_care_hours / np.maximum(f.need_hours, 1))
    cover = np.column_stack(
        [
            np.zeros(rows.size),
            np.ones(rows.size),
            day_cover,
            np.ones(rows.size),
            np.ones(rows.size),
            np.ones(rows.size),
        ]
    )
    u = np.zeros((rows.size, 6)) + np.asarray(c.constants)[None, :]
    u += c.need_gap * gap_share[:, None] * cover
    residential = np.zeros(6, dtype=bool)
    residential[list(RESIDENTIAL_OPTIONS)] = True
    u[:, residential] += (
        c.dependency_institution * np.maximum(level - 1, 0)
        + c.living_alone_institution * lives_alone(pop, rows)
    )[:, None]
    u += c.medical_capable * (medical[:, None] & f.capable)
    u += c.price_per_1000 * f.net_price / 1000
    u += c.unaffordable * np.maximum(f.net_price - f.budget[:, None], 0) / f.budget[:, None]
    u += c.distance_per_km * f.km + c.wait_per_month * f.wait
    u[:, FAMILY] = 0.0
    no_need = (level == 0) & ~medical
    u[no_need, 1:] = -np.inf
    u[~f.available] = -np.inf
    return u


def choose(model: CareModel, rows: np.ndarray) -> tuple[np.ndarray, OptionFeatures]:
    """Chosen option per resident and the features.

    The logit draw is a Gumbel-max over one keyed uniform per (person, month, option): the same
    probabilities as the logit, and a lever that improves one option moves people only into
    that option, so CRN-paired scenario differences are monotone and low-noise.
    """
    f = option_features(model, rows)
    util = utilities(model, f)
    gumbel = np.column_stack(
        [
            -np.log(
                -np.log(uniforms(model.seed, Stream.CHOICE, rows, model.month * 8 + j) + 1e-300)
            )
            for j in range(util.shape[1])
        ]
    )
    return np.argmax(util + gumbel, axis=1), f


def probabilities(util: np.ndarray) -> np.ndarray:
    """Logit probabilities row by row (unavailable options have probability 0)."""
    top = util.max(axis=1, keepdims=True)
    e = np.exp(util - top)
    return e / e.sum(axis=1, keepdims=True)


def option_reason(model: CareModel, f: OptionFeatures, option: int) -> np.ndarray:
    """First binding reason why each resident does not use `option` (PREFERENCE if none binds)."""
    pop = model.pop
    reason = np.full(f.rows.size, PREFERENCE, dtype=np.int8)
    checks = [
        (~f.available[:, option] & (option in (HOME, COMMUNITY)), NOT_ELIGIBLE),
        (~f.available[:, option] | ~f.vacancy[:, option], NO_VACANCY),
        (f.km[:, option] > TOO_FAR_KM, DISTANCE),
        (f.net_price[:, option] > f.budget, PRICE),
        (pop.medical[f.rows] & ~f.capable[:, option], NO_MEDICAL),
    ]
    for mask, code in reversed(checks):
        reason[mask] = code
    return reason


def binding_reasons(model: CareModel, f: OptionFeatures) -> np.ndarray:
    """Reason for each resident's best formal option (highest utility ignoring availability)."""
    util = utilities(
        model, OptionFeatures(**{**f.__dict__, "available": np.ones_like(f.available)})
    )
    util[:, FAMILY] = -np.inf
    best = util.argmax(axis=1)
    out = np.full(f.rows.size, PREFERENCE, dtype=np.int8)
    for option in range(1, 6):
        sel = best == option
        if sel.any():
            out[sel] = option_reason(model, f, option)[sel]
    return out
