"""The kinds of facility and the care options, each declared once in a table.

Every other module reads these tables (and the integer codes derived from them, which the
compiled loops use) instead of counting on an order: a facility kind or a care option is added
here, with its labels, and in the mechanisms that treat it differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class FacilityKind:
    """A kind of facility. `key`: its short name in the KPIs (`beds_public`, ...).
    `residential`: a bed one lives in (else a day place). `always_medical`: medically capable
    from opening (integrated beds); nursing homes gain medical service over time
    (`policy.homes_medical_share_*`); day places never. `price`: the `MoneyParams` field of its
    monthly price. `ownership` 'mixed': integrated beds are built, renovated or converted by
    either (the plan's private share counts nursing homes only)."""

    code: int
    name: str
    key: str
    label_zh: str
    label_en: str
    residential: bool
    ownership: Literal["public", "private", "mixed", "community"]
    always_medical: bool
    price: str


FACILITY_KINDS: tuple[FacilityKind, ...] = (
    FacilityKind(0, "public_home", "public", "公办养老机构", "public nursing home",
                 residential=True, ownership="public", always_medical=False,
                 price="price_public_home"),
    FacilityKind(1, "private_home", "private", "民办养老机构", "private nursing home",
                 residential=True, ownership="private", always_medical=False,
                 price="price_private_home"),
    FacilityKind(2, "medical_bed", "medical", "医养结合机构", "integrated medical-care institution",
                 residential=True, ownership="mixed", always_medical=True,
                 price="price_medical_bed"),
    FacilityKind(3, "community_centre", "centre", "社区养老服务中心", "community service centre",
                 residential=False, ownership="community", always_medical=False,
                 price="price_day_care"),
    FacilityKind(4, "day_care", "day", "日间照料中心", "day-care centre",
                 residential=False, ownership="community", always_medical=False,
                 price="price_day_care"),
    FacilityKind(5, "rural_day_care", "rural_day", "农村日间照料中心", "rural day-care centre",
                 residential=False, ownership="community", always_medical=False,
                 price="price_day_care"),
)  # fmt: skip
PUBLIC, PRIVATE, MEDICAL, CENTRE, DAY_URBAN, DAY_RURAL = (k.code for k in FACILITY_KINDS)
KIND_NAMES = tuple(k.name for k in FACILITY_KINDS)
RESIDENTIAL = tuple(k.code for k in FACILITY_KINDS if k.residential)
HOMES = tuple(k.code for k in FACILITY_KINDS if k.residential and not k.always_medical)
# by kind code: a bed (compiled code reads these tables)
KIND_RESIDENTIAL = np.array([k.residential for k in FACILITY_KINDS])


def kind_prices(money) -> np.ndarray:
    """Monthly list price by facility kind code (yuan), from the `MoneyParams` `money`."""
    return np.array([getattr(money, k.price) for k in FACILITY_KINDS])


@dataclass(frozen=True)
class CareOption:
    """A care arrangement a resident may choose. `kind`: the facility kind that provides it (the
    residential options), else None."""

    code: int
    name: str
    label_zh: str
    label_en: str
    kind: int | None = None

    @property
    def residential(self) -> bool:
        return self.kind is not None and FACILITY_KINDS[self.kind].residential


CARE_OPTIONS: tuple[CareOption, ...] = (
    CareOption(0, "family_only", "仅家庭照护", "family care only"),
    CareOption(1, "home_services", "居家上门服务", "home services"),
    CareOption(2, "community", "社区或日间照料", "community or day care"),
    CareOption(3, "public_home", "公办养老院", "public nursing home", PUBLIC),
    CareOption(4, "private_home", "民办养老院", "private nursing home", PRIVATE),
    CareOption(5, "medical_bed", "医养结合床位", "integrated medical-care bed", MEDICAL),
)
FAMILY, HOME, COMMUNITY, PUBLIC_HOME, PRIVATE_HOME, MEDICAL_BED = (o.code for o in CARE_OPTIONS)
N_OPTIONS = len(CARE_OPTIONS)
OPTION_NAMES = tuple(o.name for o in CARE_OPTIONS)
RESIDENTIAL_OPTIONS = tuple(o.code for o in CARE_OPTIONS if o.residential)
OPTION_KIND = {o.code: o.kind for o in CARE_OPTIONS if o.residential}
# by option code: residential (compiled code reads these tables)
OPTION_RESIDENTIAL = np.array([o.residential for o in CARE_OPTIONS])
# by facility kind code: the residential option it provides (-1: a day place)
OPTION_OF_KIND = np.full(len(FACILITY_KINDS), -1, dtype=np.int8)
OPTION_OF_KIND[list(OPTION_KIND.values())] = list(OPTION_KIND)
