"""Supply added in one district: every supply lever of the plan can also be set per district.

The city-wide levers (`PolicyParams`, `ServiceParams`) spread their supply over the districts by
today's rule (`care.facilities`, `care.teams`); these add to one district on top of that, spread
evenly over 2016-2020 like the plan's yearly steps. A path names the kind and the district, e.g.
`districts.medical_beds.xiaodian` (`engine.districts` lists the keys), in scenario files
(`[params.districts.medical_beds] xiaodian = 2000`), batch sweeps, the app and the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass

from sim.engine.districts import DISTRICTS
from sim.params.declare import Lever, param

_ADDED = "lever: added in this district by 2020 (evenly over 2016-2020) on top of the city schedule"


def _by_district(name: str, label_zh: str, label_en: str, unit: str, hi: int) -> type:
    """A frozen dataclass with one whole-number field per district (default 0)."""
    return make_dataclass(
        name,
        [
            (key, int, param(0, 0, hi, _ADDED, unit,
                             lever=Lever("districts", f"{zh} {label_zh}", f"{en}: {label_en}",
                                         acts="supply")))
            for key, zh, en in DISTRICTS
        ],
        frozen=True,
    )  # fmt: skip


PublicBeds = _by_district("PublicBeds", "新增公办床位", "public beds added", "beds", 20000)
PrivateBeds = _by_district("PrivateBeds", "新增民办床位", "private beds added", "beds", 20000)
MedicalBeds = _by_district(
    "MedicalBeds", "新增医养结合床位", "integrated beds added", "beds", 20000
)
CommunityCentres = _by_district(
    "CommunityCentres", "新增社区养老服务中心", "community centres added", "centres", 400
)
UrbanDayCare = _by_district(
    "UrbanDayCare", "新增城市日间照料中心", "urban day-care centres added", "centres", 400
)
Teams = _by_district("Teams", "新增服务队伍", "service teams added", "teams", 2000)


@dataclass(frozen=True)
class DistrictParams:
    """Supply added per district, by kind (all none by default: the plan as written)."""

    public_beds: PublicBeds = field(default_factory=PublicBeds)
    private_beds: PrivateBeds = field(default_factory=PrivateBeds)
    medical_beds: MedicalBeds = field(default_factory=MedicalBeds)
    community_centres: CommunityCentres = field(default_factory=CommunityCentres)
    urban_day_care: UrbanDayCare = field(default_factory=UrbanDayCare)
    teams: Teams = field(default_factory=Teams)

    def added(self, kind: str) -> tuple[int, ...]:
        """Amounts of `kind` (a field name) by district code."""
        table = getattr(self, kind)
        return tuple(getattr(table, key) for key, _, _ in DISTRICTS)
