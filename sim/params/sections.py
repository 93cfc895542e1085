"""All model parameters in one place, each with its range, unit and source (or 'assumed').

`Params()` is the plan as written; scenarios and calibration change fields through
`Params().with_overrides({...})`, which validates every key, type and range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim.params.choice import ChoiceParams
from sim.params.declare import Lever, ParamError, apply_overrides, describe, param, to_dict
from sim.params.districts import DistrictParams
from sim.params.fitted import FittedFileError, fitted_overrides, fitted_path
from sim.params.policy import PolicyParams, ServiceParams

_CENSUS_2010 = "太原市2010年第六次全国人口普查主要数据公报 (population_context.csv)"
_FIT = (
    "fitted (calibration/calibrate.py, stage 'population', jointly with {other}) to the 2020 "
    "census 60+ and the 2021 deaths at 60+ on the deterministic projection"
)


@dataclass(frozen=True)
class DemographyParams:
    """The population's start, entrants, net migration and mortality (sim/population/
    demography.py, lifetable.py). Residents as the census counts them, throughout."""

    census_2010_60plus: int = param(
        466_800,
        466_590,
        467_010,
        f"derived: 11.11% (the 2020 share 16.11% less the +5.00 pp change stated in the 2020 "
        f"bulletin) x 4,201,591 residents ({_CENSUS_2010}); the share's rounding leaves +/- 210",
        "persons",
    )
    census_2010_65plus: int = param(333_395, 333_395, 333_395, _CENSUS_2010, "persons")
    entry_share: float = param(
        0.004135,
        0.002,
        0.008,
        _FIT.format(other="net_migration_rate")
        + ": Taiyuan residents turning 60 as a share of China's persons turning 60 (WPP 2022 "
        "annual groups, cohorts recovered in demography.china_turning_60)",
    )
    net_migration_rate: float = param(
        -0.00622,
        -0.02,
        0.04,
        _FIT.format(other="entry_share")
        + "; net migration per person-year at 60 (negative: out-migration). Range assumed, "
        "bounded above by the all-age net migration of 2010-2020 (about +2%/year: census "
        "4,201,591 -> 5,304,061 less natural increase)",
        "1/year",
    )
    migration_age_decline: float = param(
        0.0,
        0.0,
        0.15,
        "assumed: the net migration rate falls by this much per year of age past 60 (0 = the same "
        "rate at all ages; no Taiyuan or China age profile found)",
        "1/year of age",
    )
    entry_share_after_2020: float = param(
        1.0,
        0.85,
        1.15,
        "assumed: multiplier on entry_share for the cohorts turning 60 from 2021 (born 1961 on), "
        "whose Taiyuan share of China no census has measured (range 0.85-1.15; the variants)",
    )
    mortality_scale: float = param(
        1.0,
        0.8,
        1.2,
        "assumed 1.0 = WPP 2024 China by sex (lifetable.py); Taiyuan's level not known "
        "(range 0.8-1.2)",
    )
    mortality_improvement: float = param(
        1.0,
        0.5,
        1.5,
        "assumed: multiplier on WPP 2024's decline of log death rates after 2021 (1 = WPP "
        "medium; range 0.5-1.5, the variants)",
    )
    initial_old_age_tilt: float = param(
        0.0,
        -0.03,
        0.03,
        "assumed: exponential tilt per year of age of WPP China's 2010 age shape within 65+ (no "
        "Taiyuan 2010 age table found; 0 = China's shape)",
        "1/year of age",
    )
    female_share_shift: float = param(
        0.0,
        -0.03,
        0.03,
        "assumed: added to WPP China's female share at every age, start and entrants (the Shanghai "
        "2010 census shares 0.490-0.579 lie within +/-0.03 of WPP China's)",
    )
    urban_elderly_factor: float = param(
        1.0,
        0.8,
        1.1,
        "assumed: elderly urban share relative to the district's 2024 urbanisation (range 0.8-1.1)",
    )
    max_hazard: float = param(
        1.2,
        0.8,
        2.0,
        "assumed: cap on the annual death hazard where the Gompertz continuation past WPP's last "
        "closed group (95-99) would exceed it (range 0.8-2)",
        "1/year",
    )


@dataclass(frozen=True)
class HealthSettings:
    """The health parameters that shape the tables (a hashable subset of HealthParams; read by
    sim.population.health.build_tables)."""

    healthy_or_basic_pct: tuple[float, float]
    unable_selfcare_pct: tuple[float, float]
    full_dependency_share: float
    exchange_per_month: float
    recovery_scale: float
    full_dependency_mortality_ratio: float
    full_dependency_recovery_ratio: float
    reference_year: float
    max_hazard: float  # cap on the annual death hazard (DemographyParams.max_hazard)


@dataclass(frozen=True)
class HealthParams:
    """Health-state levels and dynamics (see sim/population/health.py for the derivation)."""

    healthy_or_basic_pct: tuple[float, float] = param(
        (87.8, 85.4),
        70,
        95,
        "Shaanxi 2020 census, men / women 60+ (health_status.csv)",
        "%",
        "a neighbouring province's figure for Taiyuan: plausible within the +/- 2 pp its "
        "calibration target allows (healthy_or_basic_share_2020)",
        plausible=((85.8, 83.4), (89.8, 87.4)),
    )
    unable_selfcare_pct: tuple[float, float] = param(
        (1.8, 2.3), 0.5, 8, "Shaanxi 2020 census, men / women 60+ (health_status.csv)", "%"
    )
    full_dependency_share: float = param(
        0.423,
        0.2,
        0.7,
        "derived: severe 1.1 / (moderate 1.5 + severe 1.1), Barthel SW China 2020 "
        "(behaviour_reference.csv)",
        doc="plausible within the +/- 0.08 its calibration target allows (full_dependency_share)",
        plausible=(0.343, 0.503),
    )
    exchange_per_month: float = param(
        1 / 24,
        1 / 60,
        1 / 6,
        "assumed: monthly churn between 'healthy' and 'basically healthy' (self-rated)",
        "1/month",
    )
    recovery_scale: float = param(
        1.0, 0.3, 1.5, "assumed 1.0 = CLHLS recovery rates (not yet calibrated)"
    )
    full_dependency_mortality_ratio: float = param(
        1.5, 1.0, 2.5, "assumed: hazard of full vs partial dependents (range 1.0-2.5)"
    )
    full_dependency_recovery_ratio: float = param(
        0.5,
        0.25,
        1.0,
        "assumed: full dependents regain partial dependency at this share of the "
        "CLHLS partial-dependent recovery rate (no source separates them)",
    )
    medical_need_prevalence: tuple[float, ...] = param(
        (0.42, 0.485, 0.645, 0.745, 0.815),
        0.0,
        0.99,
        "a chronic condition needing regular medical care, taken as multimorbidity (two or more "
        "chronic conditions), by health state 0-4. The level is fitted (calibration stage "
        "'medical') to the 60+ in 2015: 50.5% multimorbid (4th Sample Survey of the Aged "
        "Population 2015, n=224,142; CHARLS 2015: 49.6%; validity_reference.csv); the gradient "
        "by state is assumed (odds 1, 1.3, 2.5, 4, 6 relative to 'healthy'; no survey by "
        "dependency found; ranges 0.2-0.6, 0.3-0.7, 0.4-0.85, 0.5-0.95, 0.6-0.98)",
        doc="uncertainty: the level within its target's tolerance; the gradient's log odds "
        "ratios times 0.5-1.5 (sim.experiments.uncertainty.GRADIENT_RANGE)",
    )
    dependency_onset_trend: float = param(
        0.0,
        -0.05,
        0.02,
        "assumed 0 (no trend) in the central projection: relative change per year after 2020 of "
        "the onset of dependency (< 0 compression, > 0 expansion). Evidence of decline: ADL "
        "disability prevalence -3.1%/year in CHNS 1997-2006, ADL incidence 64.2 -> 46.6 per 1,000 "
        "person-years between the CLHLS 2002 and 2008 cohorts (validity_reference.csv); no source "
        "for expansion (upper end assumed)",
        "1/year",
    )
    medical_need_remission_per_month: float = param(
        1 / 120,
        1 / 240,
        1 / 12,
        "assumed: multimorbidity rarely resolves; once in 10 years on average (range 1/240-1/12)",
        "1/month",
    )

    unmet_need_death_hr: float = param(
        1.10,
        1.0,
        1.96,
        "death hazard of a dependent whose needs for help with daily activities go unmet, "
        "relative to met: about +10% 3-year mortality with unmet long-term-care need (CLHLS "
        "65+, Zhen et al. 2015; validity_reference.csv); range to 1.96 (NLTCS, He et al. 2015, "
        "1 ADL disability)",
        plausible=(1.0, 1.96),
    )
    unmet_need_worsening_hr: float = param(
        1.10,
        1.0,
        1.5,
        "assumed: hazard of a partially dependent person with unmet need becoming fully "
        "dependent, relative to met (no source found; taken as the mortality ratio; range "
        "1.0-1.5)",
    )
    integrated_care_death_hr: float = param(
        1.0,
        0.8,
        1.0,
        "assumed 1.0: death hazard with integrated medical care relative to without (no causal "
        "Chinese estimate found; CLHLS's 1.25 for living in an institution, Feng et al. 2017, "
        "reflects who moves in; range 0.8-1.0)",
    )
    reference_unmet_share: float = param(
        0.45,
        0.2,
        0.9,
        "assumed: share of dependents with unmet need in the populations the life table and the "
        "transition rates describe; the met and unmet ratios average 1 at it (range 0.2-0.9: "
        "NLTCS 21%, this model's 2016-2020 figure about 0.45, Nanjing 2017 93% incl. IADL; "
        "validity_reference.csv)",
    )
    hospital_rate_chronic: float = param(
        0.339,
        0.2,
        0.5,
        "hospital admissions a year of older people with two or more chronic diseases (CHARLS "
        "2011-2020, Fan et al. 2024; validity_reference.csv)",
        "1/year",
        "no interval published with it: the declared range 0.2-0.5 is assumed",
        plausible=(0.2, 0.5),
    )
    unmet_need_hospital_rr: float = param(
        1.14,
        1.01,
        1.28,
        "hospital admissions with insufficient help for daily activities relative to sufficient "
        "(NLTCS, Xu et al. 2012, HR 1.14, CI 1.01-1.28; validity_reference.csv)",
        plausible=(1.01, 1.28),
    )
    integrated_care_hospital_rr: float = param(
        0.78,
        0.6,
        1.0,
        "hospital admissions with integrated medical care relative to without: the 医养结合 "
        "pilots' difference-in-differences, -0.0738 on 0.339 a year for two or more chronic "
        "diseases (CHARLS, Fan et al. 2024; validity_reference.csv); range 0.6-1.0",
        plausible=(0.6, 1.0),
    )

    def settings(self, max_hazard: float) -> HealthSettings:
        """The hashable subset that determines the transition tables (with the demography's cap
        on the death hazard, `DemographyParams.max_hazard`)."""
        return HealthSettings(
            healthy_or_basic_pct=self.healthy_or_basic_pct,
            unable_selfcare_pct=self.unable_selfcare_pct,
            full_dependency_share=self.full_dependency_share,
            exchange_per_month=self.exchange_per_month,
            recovery_scale=self.recovery_scale,
            full_dependency_mortality_ratio=self.full_dependency_mortality_ratio,
            full_dependency_recovery_ratio=self.full_dependency_recovery_ratio,
            reference_year=2020.8,
            max_hazard=max_hazard,
        )


@dataclass(frozen=True)
class HouseholdParams:
    """Marriage, children and where they live at the start and for entrants."""

    married_share_by_age: tuple[float, ...] = param(
        (0.86, 0.81, 0.73, 0.61, 0.46, 0.30),
        0.0,
        1.0,
        "assumed: married with spouse alive at 60-64/65-69/70-74/75-79/80-84/85+ (no Taiyuan "
        "marital table found; ranges +/-0.1)",
        plausible=((0.76, 0.71, 0.63, 0.51, 0.36, 0.20), (0.96, 0.91, 0.83, 0.71, 0.56, 0.40)),
    )
    childless_share: float = param(0.03, 0.0, 0.1, "assumed: 60+ with no living child (0-0.1)")
    mean_children_by_age: tuple[float, ...] = param(
        (2.2, 2.7, 3.2, 3.6, 4.0, 4.2),
        1.0,
        6.0,
        "assumed: living children by age group as above, following China's cohort fertility "
        "(ranges +/-0.5)",
        plausible=((1.7, 2.2, 2.7, 3.1, 3.5, 3.7), (2.7, 3.2, 3.7, 4.1, 4.5, 4.7)),
    )
    coresident_child_share: float = param(
        0.487,
        0.3,
        0.7,
        "derived: 1 - empty-nest share 51.3% (China 2015, living_arrangements.csv)",
        doc="a national figure for Taiyuan: plausible within the +/- 0.05 its calibration target "
        "allows (empty_nest_share)",
        plausible=(0.437, 0.537),
    )
    child_place_if_not_coresident: tuple[float, float, float] = param(
        (0.45, 0.30, 0.25),
        0.0,
        1.0,
        "assumed: nearest non-coresident child in the same district / elsewhere in the city / "
        "away (ranges 0.3-0.6 / 0.2-0.4 / 0.1-0.4)",
        doc="plausible: from nearer (0.6, 0.3, 0.1) to farther (0.3, 0.3, 0.4), within those "
        "ranges and summing to one",
        plausible=((0.6, 0.3, 0.1), (0.3, 0.3, 0.4)),
    )
    external_spouse_hazard: float = param(
        0.006, 0.002, 0.012, "assumed: annual death hazard of a spouse under 60", "1/year"
    )


@dataclass(frozen=True)
class IncomeParams:
    """Income classes of the elderly: 0 三无/五保, 1 低保, 2 low, 3 middle, 4 high."""

    urban_shares: tuple[float, ...] = param(
        (0.004, 0.025, 0.20, 0.58, 0.191),
        0.0,
        1.0,
        "assumed: no Taiyuan breakdown found; special hardship and dibao shares are plausible "
        "for a northern provincial capital (ranges 0-0.01, 0.01-0.05, ...)",
        doc="plausible: from richer (0, 0.01, 0.15, 0.61, 0.23) to poorer (0.01, 0.04, 0.25, "
        "0.55, 0.15), each summing to one, the default their middle (assumed)",
        plausible=((0.0, 0.01, 0.15, 0.61, 0.23), (0.01, 0.04, 0.25, 0.55, 0.15)),
    )
    rural_shares: tuple[float, ...] = param(
        (0.02, 0.08, 0.60, 0.25, 0.05),
        0.0,
        1.0,
        "assumed: rural elderly mostly on the basic resident pension (ranges 0.01-0.04, 0.04-0.12, "
        "...)",
        doc="plausible: from richer (0.01, 0.04, 0.57, 0.30, 0.08) to poorer (0.03, 0.12, 0.63, "
        "0.20, 0.02), each summing to one, the default their middle (assumed)",
        plausible=((0.01, 0.04, 0.57, 0.30, 0.08), (0.03, 0.12, 0.63, 0.20, 0.02)),
    )


@dataclass(frozen=True)
class NeedParams:
    """Care need in hours per month by health state, and medical supervision hours."""

    care_hours_by_state: tuple[float, ...] = param(
        (0.0, 0.0, 12.0, 90.0, 200.0),
        0.0,
        400.0,
        "assumed: help with daily activities per month for states 0-4 (ranges 0, 0, 4-30, "
        "45-150, 120-300)",
        "h/month",
        plausible=((0.0, 0.0, 4.0, 45.0, 120.0), (0.0, 0.0, 30.0, 150.0, 300.0)),
    )
    medical_hours: float = param(
        4.0,
        1.0,
        16.0,
        "assumed: medical supervision needed per month by a person with medical "
        "need (a visit a week)",
        "h/month",
    )
    medical_demand_min_state: int = param(
        3,
        2,
        4,
        "definition: the plan's medical-care demand (医养服务需求) counts those with a chronic "
        "condition needing regular medical care in this health state or worse (3 = partially "
        "dependent: dependency together with a condition, as the plan's 6,700 beds for about "
        "80% imply some 8,400 people)",
    )
    capable_homes_integrated: bool = param(
        False,
        0,
        1,
        "definition: whether a nursing home with medical service counts as integrated care "
        "(false: only the integrated institutions' beds, which the plan's 6,700 counts, and "
        "medical care delivered with home care)",
    )


@dataclass(frozen=True)
class FamilyParams:
    """Informal care hours per month that relatives can give, and carer overload."""

    spouse_hours: float = param(
        120.0, 40.0, 200.0, "assumed: a healthy resident spouse (ranges 40-200)", "h/month"
    )
    external_spouse_hours: float = param(
        60.0, 20.0, 120.0, "assumed: a working-age spouse (under 60)", "h/month"
    )
    spouse_health_factor: tuple[float, ...] = param(
        (1.0, 0.9, 0.5, 0.0, 0.0),
        0.0,
        1.0,
        "assumed: share of spouse hours available by the spouse's own health state 0-4",
        doc="plausible: from (1, 0.8, 0.3, 0, 0) to (1, 1, 0.7, 0.2, 0) (assumed; a fully "
        "dependent spouse gives no care)",
        plausible=((1.0, 0.8, 0.3, 0.0, 0.0), (1.0, 1.0, 0.7, 0.2, 0.0)),
    )
    child_hours_by_place: tuple[float, ...] = param(
        (0.0, 60.0, 25.0, 12.0, 0.0),
        0.0,
        150.0,
        "assumed: hours from the nearest child: none / co-resident / same district / elsewhere "
        "in the city / away (ranges 0, 30-100, 10-40, 4-20, 0)",
        "h/month",
        plausible=((0.0, 30.0, 10.0, 4.0, 0.0), (0.0, 100.0, 40.0, 20.0, 0.0)),
    )
    extra_child_factor: float = param(
        0.25, 0.0, 0.6, "assumed: each further child (up to two) adds this share of the hours"
    )
    overload_hours: float = param(
        120.0,
        60.0,
        200.0,
        "assumed: family care above this is an overloaded carer (~4 h/day)",
        "h/month",
    )


@dataclass(frozen=True)
class MoneyParams:
    """Incomes of the elderly and prices of care (yuan per month unless stated)."""

    urban_income: tuple[float, ...] = param(
        (0.0, 496.0, 1500.0, 3300.0, 6500.0),
        0.0,
        20000.0,
        "classes 0-4; 低保 496 = plan 2015 urban minimum-living standard (section 一); others "
        "assumed (Taiyuan pensions NOT FOUND; Taiyuan wage 86,541/yr 2020 as an upper guide)",
        "yuan/month",
        "plausible: classes 2-4 within +/-30% (assumed; 0-1 as sourced); 0-20,000 is only a bound",
        plausible=((0.0, 496.0, 1050.0, 2310.0, 4550.0), (0.0, 496.0, 1950.0, 4290.0, 8450.0)),
    )
    rural_income: tuple[float, ...] = param(
        (0.0, 411.0, 400.0, 1100.0, 2800.0),
        0.0,
        20000.0,
        "classes 0-4; 低保 411 = plan 2015 rural standard; low ~ resident basic pension 174 "
        "(China 2020) plus other income, assumed; others assumed",
        "yuan/month",
        "plausible: classes 2-4 within +/-30% (assumed; 0-1 as sourced); 0-20,000 is only a bound",
        plausible=((0.0, 411.0, 280.0, 770.0, 1960.0), (0.0, 411.0, 520.0, 1430.0, 3640.0)),
    )
    family_support_share: float = param(
        0.5,
        0.0,
        1.5,
        "assumed: children's contribution to care costs as a share of the elder's income per "
        "child nearby (cap two children)",
    )
    price_public_home: float = param(
        1200.0,
        600.0,
        3000.0,
        "assumed: Taiyuan fees NOT FOUND (range 600-3000)",
        "yuan/month",
        lever=Lever("prices", "公办养老院价格", "public nursing-home price"),
    )
    price_private_home: float = param(
        2600.0,
        1500.0,
        6000.0,
        "assumed: Suqian 2017 private nursing care 1,500-2,500 yuan/month (prices_incomes.csv) "
        "raised for Taiyuan; range 1500-6000",
        "yuan/month",
        lever=Lever("prices", "民办养老院价格", "private nursing-home price"),
    )
    price_medical_bed: float = param(
        3800.0,
        2000.0,
        8000.0,
        "assumed: integrated medical-care bed (range 2000-8000)",
        "yuan/month",
        lever=Lever("prices", "医养结合床位价格", "integrated medical-care bed price"),
    )
    price_home_care_hour: float = param(
        30.0,
        15.0,
        60.0,
        "assumed: home-care service hour (range 15-60)",
        "yuan/h",
        lever=Lever("prices", "居家服务每小时价格", "home-care price per hour"),
    )
    price_day_care: float = param(
        500.0,
        200.0,
        1200.0,
        "assumed: day care / community centre with meals (Dalian 2024 meal delivery 900/month "
        "for reference; range 200-1200)",
        "yuan/month",
        lever=Lever("prices", "日间照料价格", "day-care price"),
    )
    budget_floor: float = param(
        50.0,
        0.0,
        500.0,
        "assumed: lowest monthly budget counted in the affordability of care (keeps the ratio "
        "finite for residents without income)",
        "yuan/month",
        "0-500 is a technical bound (0 makes the ratio infinite); plausible 10-200, below the "
        "smallest sourced income (低保 411-496)",
        plausible=(10.0, 200.0),
    )


@dataclass(frozen=True)
class Params:
    """Every parameter of the model; the defaults are the plan as written."""

    demography: DemographyParams = field(default_factory=lambda: _fitted("demography"))
    health: HealthParams = field(default_factory=lambda: _fitted("health"))
    households: HouseholdParams = field(default_factory=lambda: _fitted("households"))
    income: IncomeParams = field(default_factory=lambda: _fitted("income"))
    need: NeedParams = field(default_factory=lambda: _fitted("need"))
    family: FamilyParams = field(default_factory=lambda: _fitted("family"))
    money: MoneyParams = field(default_factory=lambda: _fitted("money"))
    policy: PolicyParams = field(default_factory=lambda: _fitted("policy"))
    services: ServiceParams = field(default_factory=lambda: _fitted("services"))
    choice: ChoiceParams = field(default_factory=lambda: _fitted("choice"))
    districts: DistrictParams = field(default_factory=lambda: _fitted("districts"))

    @classmethod
    def declared(cls) -> Params:
        """The declared defaults, without the fitted file (the starting point of calibration)."""
        return cls(**{name: section() for name, section in SECTIONS.items()})

    def with_overrides(self, overrides: dict[str, Any]) -> Params:
        """A validated copy with nested overrides applied."""
        return apply_overrides(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def describe(self):
        return describe(self)


SECTIONS = {
    "demography": DemographyParams,
    "health": HealthParams,
    "households": HouseholdParams,
    "income": IncomeParams,
    "need": NeedParams,
    "family": FamilyParams,
    "money": MoneyParams,
    "policy": PolicyParams,
    "services": ServiceParams,
    "choice": ChoiceParams,
    "districts": DistrictParams,
}


def _fitted(section: str) -> Any:
    """A section's declared defaults with the fitted file's values applied (params/fitted.py)."""
    overrides = fitted_overrides()
    unknown = sorted(set(overrides) - set(SECTIONS))
    if unknown:
        raise FittedFileError(f"{fitted_path()}: params.{unknown[0]}: unknown parameter section")
    try:
        return apply_overrides(SECTIONS[section](), overrides.get(section, {}), f"{section}.")
    except ParamError as err:
        raise FittedFileError(f"{fitted_path()}: params.{err}") from err
