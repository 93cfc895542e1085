"""The model's Mesa agents: views on the state the subsystems keep in numpy columns and tables.

What Mesa does here (docs/ODD.md, "Mesa in this model"): `CareModel` is a `mesa.Model` (its
clock, its random-number registry and its agent registry, `model.agents`). The persistent actors are
registered agents: every `Facility` (a view on one entry of the facility table) and every
`ServiceTeam` (a view on one entry of the team table). Residents and their families are far too
many to be Python objects (~0.64 M in 2016, ~1.3 M by 2035), so their state lives in columns and
a `Resident` (or `Family`) agent is a view on one row, materialised for the residents who decide
this month (`CareModel.deciders`, an AgentSet) and for inspection. Those views are pooled and
rebound each month (creating a Mesa agent costs ~10 us and tens of thousands decide each month),
and kept out of `model.agents`, which therefore holds only the persistent agents.
"""

from __future__ import annotations

from typing import Any, Protocol

import mesa
import numpy as np

from sim.care.choice import probabilities
from sim.care.kinds import CARE_OPTIONS, FACILITY_KINDS, kind_prices
from sim.population.families import CHILD_NONE, EXTERNAL_SPOUSE, NO_SPOUSE, family_care_capacity
from sim.population.health import STATE_NAMES
from sim.population.kernel import EVENT_NEED, EVENT_WIDOWED

CHILD_PLACES = ("none", "co-resident", "same district", "elsewhere in the city", "away")
INCOME_CLASSES = ("special hardship (三无/五保)", "minimum living (低保)", "low", "middle", "high")


class ModelState(Protocol):
    """What the views read of the model (the attributes `CareModel` has)."""

    pop: Any
    geo: Any
    params: Any
    places: Any
    teams: Any
    choice: Any
    scale: float
    month: int


def _column(name: str) -> property:
    def get(self):
        return getattr(self.model.pop, name)[self.row].item()

    def set_(self, value):
        getattr(self.model.pop, name)[self.row] = value

    return property(get, set_, doc=f"this resident's `{name}` column")


class _View(mesa.Agent):
    """An agent that views a row of the model's columns and is not kept in `model.agents`."""

    model: ModelState

    def __init__(self, model: mesa.Model, row: int, *, registered: bool = False):
        super().__init__(model)
        if not registered:
            model.deregister_agent(self)
        self.row = row


class Resident(_View):
    """An elderly resident: a view on one row of the population columns."""

    age_m = _column("age_m")
    sex = _column("sex")
    district = _column("district")
    neigh = _column("neigh")
    urban = _column("urban")
    income = _column("income")
    health = _column("health")
    medical = _column("medical")
    spouse = _column("spouse")
    n_children = _column("n_children")
    child_place = _column("child_place")
    alive = _column("alive")
    event = _column("event")

    @property
    def key(self) -> int:
        """Stable person key (the row; rows are never reused)."""
        return self.row

    @property
    def need_changed(self) -> bool:
        return bool(self.event & EVENT_NEED)

    @property
    def widowed_this_month(self) -> bool:
        return bool(self.event & EVENT_WIDOWED)

    def choice_probabilities(self) -> dict[str, float]:
        """This month's probability of each care arrangement for this resident (the same
        compiled logit the model applies to every decider)."""
        choice = self.model.choice
        rows = np.array([self.row])
        probs = probabilities(choice.utilities(choice.option_features(rows)))[0]
        return {o.name: p for o, p in zip(CARE_OPTIONS, probs.round(4).tolist(), strict=True)}

    def describe(self) -> dict:
        """Readable summary for the app's inspector and for debugging."""
        pop = self.model.pop
        return {
            "person_key": self.row,
            "age": round(self.age_m / 12, 1),
            "sex": ("male", "female")[self.sex],
            "district": self.model.geo.districts.loc[self.district, "name_en"],
            "neighbourhood": self.model.geo.neighbourhoods.loc[self.neigh, "name"],
            "urban": self.urban,
            "income_class": INCOME_CLASSES[self.income],
            "health": STATE_NAMES[self.health],
            "medical_need": self.medical,
            "spouse": {NO_SPOUSE: "none", EXTERNAL_SPOUSE: "under 60 / not in the population"}.get(
                self.spouse, f"resident {self.spouse}"
            ),
            "children": self.n_children,
            "nearest_child": CHILD_PLACES[self.child_place],
            "alive": self.alive,
            "arrangement": CARE_OPTIONS[pop.arrangement[self.row]].name,
            "facility": int(pop.facility[self.row]),
            "waiting_for": int(pop.queue_facility[self.row]),
            "voucher": bool(pop.voucher[self.row]),
        }


class Family(_View):
    """A household: the resident, a spouse if any, and the children (by nearest location)."""

    @property
    def members(self) -> list[int]:
        """Rows of the household's residents aged 60+ (the resident and a resident spouse)."""
        spouse = self.model.pop.spouse[self.row]
        return [self.row] + ([int(spouse)] if spouse >= 0 else [])

    @property
    def has_child_nearby(self) -> bool:
        place = self.model.pop.child_place[self.row]
        return CHILD_NONE < place <= 3

    def care_hours(self) -> float:
        """Informal care hours per month this household can give the resident."""
        m = self.model
        rows = np.array([self.row])
        hours = family_care_capacity(
            m.pop, rows, m.params.family, m.params.policy, m.places.residential
        )
        return float(hours[0])


class Facility(_View):
    """A facility (nursing home, integrated beds, community or day-care centre): a view on one
    entry of the facility table. Registered in `model.agents`."""

    def __init__(self, model: mesa.Model, index: int):
        super().__init__(model, index, registered=True)

    @property
    def index(self) -> int:
        return self.row

    @property
    def kind(self) -> str:
        return FACILITY_KINDS[self.model.places.table.kind[self.row]].name

    def describe(self) -> dict:
        """Readable summary for the app's inspector."""
        m, i = self.model, self.row
        t = m.places.table
        month = m.month - 1 if m.month > 0 else 0
        return {
            "facility": i,
            "kind": self.kind,
            "district": m.geo.districts.loc[int(t.district[i]), "name_en"],
            "neighbourhood": m.geo.neighbourhoods.loc[int(t.neigh[i]), "name"],
            "capacity": int(t.capacity[i]),
            "in_use": int(t.occupancy[i] * m.scale),
            "opens": int(t.open_month[i]),
            "open": bool(t.is_open(month)[i]),
            "medical_service": bool(m.places.market.medical_now[i]),
            "price_yuan_month": float(kind_prices(m.params.money)[t.kind[i]]),
        }


class ServiceTeam(_View):
    """A home-care service team of the 12349 platform: a view on one entry of the team table
    (the district it serves this year, or none before it is formed). Its staff, monthly hours
    and medically qualified share are the services' parameters; its district's teams share
    their hours out among the requests each month (`sim.care.teams.dispatch`). Registered in
    `model.agents`."""

    def __init__(self, model: mesa.Model, index: int):
        super().__init__(model, index, registered=True)

    @property
    def district(self) -> int:
        """The district served this year (-1: not formed yet)."""
        return int(self.model.teams.table.district[self.row])

    @property
    def staff(self) -> float:
        return float(self.model.params.services.staff_per_team)

    @property
    def monthly_hours(self) -> float:
        svc = self.model.params.services
        return float(svc.staff_per_team * svc.hours_per_staff) if self.district >= 0 else 0.0

    @property
    def medical_share(self) -> float:
        return float(self.model.params.services.medical_staff_share)

    def describe(self) -> dict:
        d = self.district
        return {
            "team": self.row,
            "district": self.model.geo.districts.loc[d, "name_en"] if d >= 0 else "not formed",
            "staff": self.staff,
            "monthly_hours": self.monthly_hours,
            "medically_qualified_share": self.medical_share,
        }
