"""The plan's levers (../shared/DESIGN.md section 7): build-out, subsidies, vouchers, teams.

Defaults are the plan as written (太原市民政事业发展'十三五'规划, section 四(二)): yearly steps
from the end-2015 stock to the 2020 targets. Reconciling the plan's two 2015 bed figures: section
一 counts 11,148 beds in 50 institutions; section 四 builds the 2020 target on an institutional
base of 7,648. We take 7,648 as the public + private nursing-home base (8,024 - 3,600 = 4,424
public; 16,976 - 13,752 = 3,224 private), 966 integrated medical-care beds (6,700 - 5,734), and
read the remaining 11,148 - 7,648 - 966 = 2,534 as short-stay beds in community facilities, which
the model does not count as institutional beds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.params.declare import Lever, param

PLAN = "太原市民政事业发展'十三五'规划 (2016-2020)"
INSTITUTIONS_2015 = 50  # elderly-care institutions at the end of 2015 (PLAN section 一)
NEIGHBOURHOODS = 515 + 998  # urban communities + administrative villages (PLAN section 一(一)2)
_FIVE = "per year 2016-2020"


@dataclass(frozen=True)
class PolicyParams:
    """Capacity build-out, subsidies, vouchers and eligibility."""

    public_beds_2015: int = param(
        4424, 0, 20000, f"derived: 8,024 - 3,600 ({PLAN} 四(二)1)", "beds"
    )
    private_beds_2015: int = param(
        3224, 0, 40000, f"derived: 16,976 - 13,752 ({PLAN} 四(二)1)", "beds"
    )
    medical_beds_2015: int = param(
        966, 0, 10000, f"derived: 6,700 - 5,734 ({PLAN} 四(二)1)", "beds"
    )
    public_homes_2015: int = param(
        20,
        1,
        INSTITUTIONS_2015 - 1,
        f"assumed: public homes among the {INSTITUTIONS_2015} institutions of 2015 (the rest "
        "private; no split published)",
        "homes",
        "1-49 is only what the count allows; plausible 10-35, which keeps the mean home between "
        "126 and 442 public beds and 107 and 215 private beds (4,424 and 3,224 beds)",
        plausible=(10, 35),
    )
    public_beds_added: tuple[int, ...] = param(
        (720, 720, 720, 720, 720),
        0,
        10000,
        f"{PLAN} 四(二)1: +3,600 public beds, {_FIVE}",
        "beds",
        lever=Lever(
            "beds",
            "公办床位 2020年总数",
            "public beds, 2020 total",
            "total",
            "policy.public_beds_2015",
            "supply",
        ),
    )
    private_beds_added: tuple[int, ...] = param(
        (2750, 2750, 2750, 2751, 2751),
        0,
        20000,
        f"{PLAN} 四(二)1: +13,752 private beds, {_FIVE}",
        "beds",
        lever=Lever(
            "beds",
            "民办床位 2020年总数",
            "private beds, 2020 total",
            "total",
            "policy.private_beds_2015",
            "supply",
        ),
    )
    medical_beds_added: tuple[int, ...] = param(
        (1146, 1147, 1147, 1147, 1147),
        0,
        10000,
        f"{PLAN} 四(二)1: +5,734 integrated medical-care beds, {_FIVE}",
        "beds",
        lever=Lever(
            "medical",
            "医养结合床位 2020年总数",
            "integrated beds, 2020 total",
            "total",
            "policy.medical_beds_2015",
            "supply",
        ),
    )
    medical_beds_converted_share: float = param(
        0.0,
        0.0,
        1.0,
        "assumed: share of new integrated beds converted from private nursing-home beds "
        "(the plan allows new building, renovation, expansion or conversion)",
        lever=Lever(
            "medical", "由民办床位转换的比例", "share converted from private beds", acts="supply"
        ),
    )
    beds_added_per_year_after_2020: tuple[int, int, int] = param(
        (0, 0, 0),
        0,
        20000,
        "public / private / integrated beds added each year 2021+ (no Taiyuan 2021-2035 bed "
        "target was found: held flat by default)",
        "beds",
    )
    community_centres_added: tuple[int, ...] = param(
        (79, 79, 79, 79, 80),
        0,
        400,
        f"{PLAN} 四(二): 396 new community centres, {_FIVE}",
        lever=Lever(
            "community",
            "新建社区养老服务中心 (2016-2020)",
            "new community centres 2016-2020",
            "sum",
            acts="supply",
        ),
    )
    urban_day_care_2015: int = param(
        350, 0, 2000, f"{PLAN} 一(一)2: 350 day-care centres built 2011-2015 (taken as urban)"
    )
    urban_day_care_added: tuple[int, ...] = param(
        (58, 58, 58, 58, 58),
        0,
        400,
        f"{PLAN} 四(二): 290 urban day-care centres, {_FIVE}",
        lever=Lever(
            "community",
            "城市日间照料中心 2020年总数",
            "urban day-care centres, 2020 total",
            "total",
            "policy.urban_day_care_2015",
            "supply",
        ),
    )
    rural_day_care_added: tuple[int, ...] = param(
        (60, 60, 60, 60, 60),
        0,
        400,
        f"{PLAN} 四(二): 300 rural day-care centres (villages over 1,000 people), {_FIVE}",
        lever=Lever(
            "community",
            "新建农村日间照料中心 (2016-2020)",
            "new rural day-care centres 2016-2020",
            "sum",
            acts="supply",
        ),
    )
    community_centres_added_per_year_after_2020: int = param(
        0,
        0,
        200,
        "assumed: the 2023-2025 action plan's 100 centres are not added by default (lever)",
        lever=Lever(
            "community",
            "2021年后每年新建社区中心",
            "community centres added yearly after 2020",
            acts="supply",
        ),
    )
    homes_medical_share_2015: float = param(
        0.3,
        0.0,
        1.0,
        "assumed: nursing homes with on-site or contracted medical service, 2015",
        lever=Lever(
            "medical",
            "2015年有医疗服务的养老院比例",
            "homes with medical service, 2015",
            acts="supply",
        ),
    )
    homes_medical_share_2022: float = param(
        1.0,
        0.0,
        1.0,
        "all 69 Taiyuan institutions had medical-care integration by end-2022 "
        "(supply_taiyuan.csv, China Daily 2023-03-22)",
    )
    construction_subsidy_per_bed: float = param(
        5000.0,
        0.0,
        30000.0,
        "assumed: one-off subsidy per new private bed (Suqian 2017 reference 5,000 yuan/bed, "
        "prices_incomes.csv)",
        "yuan",
        lever=Lever(
            "beds",
            "民办新建床位建设补贴",
            "construction subsidy per new private bed",
            acts="spending",
        ),
    )
    operating_subsidy_per_bed: float = param(
        100.0,
        0.0,
        600.0,
        "assumed: monthly subsidy per occupied private bed",
        "yuan/month",
        lever=Lever(
            "beds",
            "民办床位运营补贴",
            "operating subsidy per occupied private bed",
            acts="spending",
        ),
    )
    public_bed_cost: float = param(
        1800.0, 800.0, 4000.0, "assumed: monthly operating cost of a public bed", "yuan/month"
    )
    voucher_amount: float = param(
        200.0,
        0.0,
        1500.0,
        "assumed: monthly home-care voucher for eligible elderly",
        "yuan/month",
        lever=Lever("teams", "居家养老服务券 (每月)", "home-care voucher per month"),
    )
    voucher_min_state: int = param(
        3,
        2,
        4,
        "assumed: assessed state needed for a voucher (3 = partially dependent)",
        lever=Lever(
            "eligibility", "服务券所需评估等级 (3=部分失能)", "voucher: minimum assessed state"
        ),
    )
    voucher_min_age: int = param(
        80,
        60,
        100,
        "assumed: age from which the voucher does not require low income",
        lever=Lever("eligibility", "服务券不限收入的年龄", "voucher: age without income test"),
    )
    voucher_max_income_class: int = param(
        1,
        0,
        4,
        "assumed: income class up to which any age qualifies (1 = 低保)",
        lever=Lever("eligibility", "服务券收入等级上限 (1=低保)", "voucher: highest income class"),
    )
    nursing_subsidy: float = param(
        100.0,
        0.0,
        1000.0,
        f"assumed amount: nursing subsidy for severely disabled low-income elderly ({PLAN} "
        "四(二)); the fully dependent up to 低保 receive it (care.benefits), and it adds to "
        "what their household can pay for care",
        "yuan/month",
        lever=Lever("eligibility", "失能护理补贴", "nursing subsidy (severely disabled, poor)"),
    )
    old_age_allowance: float = param(
        50.0,
        0.0,
        500.0,
        f"assumed amount: allowance for 80+ ({PLAN} 四(二)); the 80+ up to low income receive it "
        "(care.benefits), and it adds to what their household can pay for care",
        "yuan/month",
        lever=Lever("eligibility", "高龄津贴 (80+)", "old-age allowance (80+)"),
    )
    carer_allowance: float = param(
        0.0,
        0.0,
        1000.0,
        "lever: monthly allowance to family carers of dependents",
        "yuan/month",
        lever=Lever("eligibility", "家庭照护者津贴", "family carer allowance"),
    )
    carer_hours_per_100_yuan: float = param(
        4.0,
        0.0,
        15.0,
        "assumed: extra family care hours per 100 yuan of carer allowance",
        "h/month",
    )
    centre_sites: tuple[int, ...] = param(
        (),
        0,
        NEIGHBOURHOODS - 1,
        "derived: `eldercare site` (need-weighted maximal coverage); the neighbourhoods of the "
        "community centres the schedule opens, in opening order (empty: all placed by the "
        f"district rule); indices 0..{NEIGHBOURHOODS - 1} of the {NEIGHBOURHOODS} neighbourhoods",
        "neighbourhood",
        any_length=True,
    )
    day_care_sites: tuple[int, ...] = param(
        (),
        0,
        NEIGHBOURHOODS - 1,
        "derived: `eldercare site`; the neighbourhoods of the urban day-care centres the schedule "
        "opens, in opening order (empty: all placed by the district rule)",
        "neighbourhood",
        any_length=True,
    )


@dataclass(frozen=True)
class ServiceParams:
    """Home-care teams (12349 platform), day care and community centres, queues."""

    teams_2015: int = param(760, 0, 5000, f"{PLAN} 一(一)2: 760 service teams")
    teams_added: tuple[int, ...] = param(
        (0, 0, 0, 0, 0),
        0,
        2000,
        f"the plan sets no team target: held at 760 ({_FIVE})",
        lever=Lever(
            "teams",
            "新增服务队伍 (2016-2020)",
            "service teams added 2016-2020",
            "sum",
            acts="supply",
        ),
    )
    staff_per_team: float = param(
        4.0,
        1.0,
        15.0,
        "assumed: care workers per team (1-15)",
        lever=Lever("teams", "每队护理员", "care workers per team", acts="supply"),
    )
    package_hours_by_state: tuple[float, ...] = param(
        (0.0, 0.0, 13.0, 22.0, 30.0),
        0.0,
        120.0,
        "assumed: hours a month of the home-care package bought through 12349, by assessed state "
        "0-4, after Shanghai's LTCI home care: 3 / 5 / 7 one-hour visits a week at levels 2-3 / "
        "4 / 5-6, about 13 / 22 / 30 h a month (validity_reference.csv; Hefei 2013: 26-35 h); "
        "Taiyuan's packages not found (ranges 0, 0, 8-26, 13-44, 20-60)",
        "h/month",
        plausible=((0.0, 0.0, 8.0, 13.0, 20.0), (0.0, 0.0, 26.0, 44.0, 60.0)),
    )
    hours_per_staff: float = param(
        120.0,
        60.0,
        176.0,
        "assumed: productive client hours per worker per month",
        "h/month",
        "176 is every paid hour of a full-time month (22 days x 8 h); travel between clients "
        "and records take part of it: plausible 80-150 (assumed)",
        plausible=(80.0, 150.0),
    )
    medical_staff_share: float = param(
        0.15,
        0.0,
        1.0,
        "assumed: share of team hours from medically qualified staff",
        lever=Lever(
            "medical",
            "服务队伍医护人员比例",
            "medically qualified share of team hours",
            acts="supply",
        ),
    )
    day_care_places: int = param(
        20,
        5,
        100,
        "assumed: daily places per day-care centre",
        lever=Lever(
            "community", "每个日间照料中心名额", "places per day-care centre", acts="supply"
        ),
    )
    centre_places: int = param(
        40,
        10,
        200,
        "assumed: day places per community centre (the largest, Nanguanfang, serves ~150/day; "
        "supply_taiyuan.csv)",
        lever=Lever(
            "community", "每个社区中心日间名额", "day places per community centre", acts="supply"
        ),
    )
    day_care_hours: float = param(
        80.0, 20.0, 200.0, "assumed: care hours per month a day place provides", "h/month"
    )
    community_radius_km: float = param(
        1.0, 0.3, 2.0, f"{PLAN} 四(二): community centre radius 500-1,000 m", "km"
    )
    day_care_radius_km: float = param(
        0.5, 0.2, 1.5, f"{PLAN} 四(二): urban day-care radius 200-500 m", "km"
    )
    rural_village_min_pop: int = param(
        1000, 300, 3000, f"{PLAN} 四(二): rural day care in every village of over 1,000 people"
    )
    facility_beds_mean: int = param(
        150,
        30,
        600,
        "assumed: beds per new nursing home (2015: 7,648 beds / 50 homes = 153)",
        doc="plausible 80-300: about half to twice the 2015 mean (assumed)",
        plausible=(80, 300),
    )
    medical_beds_per_institution: int = param(
        34, 5, 200, f"derived: 6,700 beds / 200 medical institutions ({PLAN} 四(二))"
    )
    max_wait_months: int = param(
        6,
        1,
        36,
        "assumed: months in a queue before reconsidering",
        doc="plausible 3-12 (assumed): 1 and 36 are bounds of the code, not of patience",
        plausible=(3, 12),
    )
    expected_exits_start: float = param(
        0.5,
        0.05,
        5.0,
        "assumed: departures per month a chooser expects from a facility before any are seen "
        "(the basis of the expected wait)",
        "rows/month",
    )
    expected_exits_weight: float = param(
        0.2, 0.05, 1.0, "assumed: weight of the latest month in the smoothed departures"
    )
    expected_exits_floor: float = param(
        0.05,
        0.01,
        1.0,
        "assumed: lowest expected departures per month (keeps the expected wait finite)",
        "rows/month",
    )
