"""Mesa agents over the resident columns: `Resident` and `Family` are views, not copies.

A `Resident` reads and writes its row of the numpy columns through properties, so the agent and
the vectorised kernel always agree. Agents are materialised only for the residents who must decide
something this month (and for inspection); the objects are pooled and rebound to new rows each
month, because creating and registering a Mesa agent costs ~10 us and thousands decide monthly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from sim.params.choice import OPTIONS
from sim.population.families import CHILD_NONE, EXTERNAL_SPOUSE, NO_SPOUSE, family_care_capacity
from sim.population.health import STATE_NAMES
from sim.population.kernel import EVENT_NEED, EVENT_WIDOWED

if TYPE_CHECKING:
    from sim.core.model import CareModel

CHILD_PLACES = ("none", "co-resident", "same district", "elsewhere in the city", "away")
INCOME_CLASSES = ("special hardship (三无/五保)", "minimum living (低保)", "low", "middle", "high")


def _column(name: str) -> property:
    def get(self):
        return getattr(self.model.pop, name)[self.row].item()

    def set_(self, value):
        getattr(self.model.pop, name)[self.row] = value

    return property(get, set_, doc=f"this resident's `{name}` column")


class Resident(mesa.Agent):
    """An elderly resident: a view on one row of the population columns."""

    model: CareModel
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

    def __init__(self, model: CareModel, row: int):
        super().__init__(model)
        self.row = row

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
        vectorised logit the model applies to every decider)."""
        from sim.care.choice import option_features, probabilities, utilities

        rows = np.array([self.row])
        probs = probabilities(utilities(self.model, option_features(self.model, rows)))[0]
        return dict(zip(OPTIONS, probs.round(4).tolist(), strict=True))

    def describe(self) -> dict:
        """Readable summary for the app's inspector and for debugging."""
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
            "arrangement": OPTIONS[self.model.pop.arrangement[self.row]],
            "facility": int(self.model.pop.facility[self.row]),
            "waiting_for": int(self.model.pop.queue_facility[self.row]),
            "voucher": bool(self.model.pop.voucher[self.row]),
        }


class Family(mesa.Agent):
    """A household: the resident, a spouse if any, and the children (by nearest location)."""

    model: CareModel

    def __init__(self, model: CareModel, row: int):
        super().__init__(model)
        self.row = row

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
            m.pop, rows, m.params.family, m.params.policy, m.residential_facility
        )
        return float(hours[0])
