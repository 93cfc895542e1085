"""Every figure the model reports, declared once: its name, labels, unit, direction, the plan's
target, whether it is an input, a fitted value or a model outcome, and how it is computed from
the month's raw counts and sums.

The metrics frame (`sim.kpis.frame`), the care system's raw sums (`CARE_SUMS`), the report, the
app's cards, selects and labels, and the command line's KPI lists all read this table; adding a
KPI from quantities the model already counts is one entry here (and its test).

Raw quantities: the population kernel's monthly counts (named by `sim.population.kernel.COUNTS`)
and the care system's sums (`CARE_SUMS` below), per district and month, in resident rows (a row is
`scale` persons) except the facility capacities (`beds_*`), which are in beds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sim.engine.districts import DISTRICTS

Role = Literal["input", "fitted", "outcome"]
Kind = Literal["share", "count", "amount", "rate"]

PLAN = "太原市民政事业发展'十三五'规划 (2016-2020), 四(二)"
INPUT_NOTE = "set by the supply schedule (a lever), not a model outcome"
MEDICAL_DEMAND = (
    "the plan's 医养服务需求: residents partially or fully dependent with a chronic condition "
    "needing regular medical care"
)
INTEGRATED_CARE = (
    "integrated care: a bed of an integrated medical-care institution, or home care or "
    "community day care with medical visits granted in full"
)

# Dimensions of the diagnostics: why a dependent goes without formal care, why a bed stands empty
# (the first binding reason, in this order; `sim.care.choice` computes them).
REASONS: tuple[tuple[str, str, str], ...] = (
    ("not_eligible", "不符合资格", "not eligible"),
    ("no_vacancy", "无空位", "no vacancy"),
    ("distance", "距离太远", "too far"),
    ("price", "价格过高", "price"),
    ("no_medical", "无医疗服务", "no medical service"),
    ("preference", "偏好", "preference"),
)
REASON_NAMES = tuple(name for name, _, _ in REASONS)
# Items of public spending, yuan per month.
SPENDING: tuple[tuple[str, str, str], ...] = (
    ("construction", "建设补贴", "construction subsidy"),
    ("operating", "运营补贴", "operating subsidy"),
    ("public_homes", "公办机构运营", "public homes' running cost"),
    ("vouchers", "居家服务券", "home-care vouchers"),
    ("nursing_subsidy", "护理补贴", "nursing subsidy"),
    ("old_age_allowance", "高龄津贴", "old-age allowance"),
    ("carer_allowance", "照护者津贴", "carer allowance"),
)
SPENDING_NAMES = tuple(name for name, _, _ in SPENDING)


@dataclass(frozen=True)
class RawSum:
    """One raw care sum per district and month. `counted`: a sum of whole numbers (persons),
    which the compiled tally adds in integers."""

    name: str
    description: str
    counted: bool = False


CARE_SUMS: tuple[RawSum, ...] = (
    RawSum(
        "med_demand", "the plan's medical-care demand: dependency and a chronic condition", True
    ),
    RawSum("med_demand_met", "of them, with integrated care", True),
    RawSum("med_demand_met_beds", "of them, in an integrated bed", True),
    RawSum("med_broad_met", "residents with a chronic condition, with integrated care", True),
    RawSum("hospital", "hospital admissions expected of those with a chronic condition"),
    RawSum("hospital_unmet", "of them, attributable to unmet need for daily help"),
    RawSum("hospital_averted", "hospital admissions averted by integrated care"),
    RawSum("deaths_unmet", "deaths expected, attributable to unmet need for daily help"),
    RawSum("beds_public", "public nursing-home beds open (beds)"),
    RawSum("beds_private", "private nursing-home beds open (beds)"),
    RawSum("beds_medical", "integrated medical-care beds open (beds)"),
    RawSum("occ_public", "public beds occupied (rows)"),
    RawSum("occ_private", "private beds occupied (rows)"),
    RawSum("occ_medical", "integrated beds occupied (rows)"),
    RawSum("cap_public", "public beds open (rows)"),
    RawSum("cap_private", "private beds open (rows)"),
    RawSum("cap_medical", "integrated beds open (rows)"),
    RawSum("admissions", "admitted to a bed, by the bed's district (not the end-2015 residents)"),
    RawSum("admissions_65plus", "admitted to a bed aged 65+, by the resident's district"),
    *(
        RawSum(f"admitted_from_{key}", f"admitted to a bed here from {en}")
        for key, _, en in DISTRICTS
    ),
    RawSum("bed_exits_death", "residents leaving a bed by death, by the bed's district"),
    RawSum("bed_exits_alive", "residents leaving a bed alive (another arrangement, or moved away)"),
    RawSum("stays_ended", "stays ended this month that began in 2016-01 or later"),
    RawSum("stay_months", "the months those stays lasted"),
    RawSum("queue", "residents waiting for a bed"),
    RawSum(
        "empty_beside_queues",
        "empty beds here, with no one waiting here, while others wait in other districts (rows)",
    ),
    RawSum("wait_sum", "months waited so far by those waiting"),
    RawSum("in_need", "residents needing care (state 2+; not a medical need alone)", True),
    RawSum("n_family", "of them, with family care only", True),
    RawSum("n_home", "of them, with home services", True),
    RawSum("n_community", "of them, with community or day care", True),
    RawSum("n_institution", "of them, in a nursing home", True),
    RawSum("n_medical_bed", "of them, in an integrated medical-care bed", True),
    RawSum("dependents", "dependents (partially or fully)", True),
    RawSum("dependents_unmet", "of them, with care hours unmet", True),
    RawSum("unmet_hours", "care hours needed and not given"),
    RawSum("family_hours", "care hours given by families"),
    RawSum("overloaded", "family carers above the overload hours", True),
    RawSum("team_used", "team hours granted"),
    RawSum("team_capacity", "team hours available"),
    RawSum("cov_centre", "urban elderly within a community centre's radius"),
    RawSum("cov_day", "urban elderly within a day-care centre's radius"),
    RawSum("urban_elderly", "urban elderly"),
    *(RawSum(f"spend_{name}", f"public spending: {en} (yuan/month)") for name, _, en in SPENDING),
    *(RawSum(f"unmet_reason_{name}", f"unmet dependents: {en}") for name, _, en in REASONS),
    *(RawSum(f"empty_reason_{name}", f"empty beds: {en}") for name, _, en in REASONS),
)
CARE_SUM_NAMES = tuple(s.name for s in CARE_SUMS)


class Raw:
    """The month-by-district raw quantities a KPI formula reads: `r[name]` in resident rows (or
    beds), `r.persons(name)` in persons (rows x scale)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], scale: float):
        self._arrays, self.scale = arrays, scale

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    def persons(self, name: str) -> np.ndarray:
        return self._arrays[name] * self.scale


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, missing (NaN) where den is not positive."""
    return np.asarray(num, dtype=float) / np.where(den > 0, den, np.nan)


def _persons(name: str) -> Callable[[Raw], np.ndarray]:
    return lambda r: r.persons(name)


def _rows(name: str) -> Callable[[Raw], np.ndarray]:
    return lambda r: r[name]


def _share(num: str, den: str) -> Callable[[Raw], np.ndarray]:
    return lambda r: ratio(r[num], r[den])


def _beds(r: Raw) -> np.ndarray:
    return r["beds_public"] + r["beds_private"] + r["beds_medical"]


def _occupied(r: Raw) -> np.ndarray:
    return r["occ_public"] + r["occ_private"] + r["occ_medical"]


def _capacity(r: Raw) -> np.ndarray:
    return r["cap_public"] + r["cap_private"] + r["cap_medical"]


def _spending_total(r: Raw) -> np.ndarray:
    return sum(r.persons(f"spend_{name}") for name in SPENDING_NAMES)


@dataclass(frozen=True)
class KPI:
    """One reported figure. `better`: the direction a planner wants it to move (None: neither).
    `target` and `comparison`: the plan's 2020 target (`value comparison target` is met).
    `views`: where the app and the command line show it ('key' = the headline list of batch
    summaries, comparisons and reports; 'series' and 'map' = the app's selects; 'summary' = the
    population table `eldercare` prints with no subcommand)."""

    name: str
    label_zh: str
    label_en: str
    unit: str
    kind: Kind
    role: Role
    formula: Callable[[Raw], np.ndarray] = field(repr=False)
    better: Literal["higher", "lower"] | None = None
    target: float | None = None
    comparison: Literal[">=", ">", "<=", "="] | None = None
    source: str = ""
    views: frozenset[str] = frozenset()
    care: bool = True  # needs the care system (False: the population's own counts)

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_zh

    def meets(self, value: float) -> bool | None:
        """Whether `value` meets the plan's target (None: no target, or no value)."""
        if self.target is None or value != value:
            return None
        return {
            ">=": value >= self.target,
            ">": value > self.target,
            "<=": value <= self.target,
            "=": bool(np.isclose(value, self.target, rtol=1e-9)),
        }[self.comparison]


def _population(name: str, zh: str, en: str, role: Role, views: str = "") -> KPI:
    """A count of the population kernel, in persons."""
    return KPI(name, zh, en, "persons", "count", role, _persons(name), views=_views(views),
               care=False)  # fmt: skip


def _views(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STATES = (
    ("healthy", "健康", "healthy"),
    ("basically_healthy", "基本健康", "basically healthy"),
    ("unhealthy_selfcare", "不健康但生活能自理", "unhealthy, self-caring"),
    ("partially_dependent", "部分失能", "partially dependent"),
    ("fully_dependent", "完全失能", "fully dependent"),
)
_FITTED_LEVEL = "fitted: the census level of the states is a calibration target"
_SHARES = (
    ("family_only", "n_family", "仅家庭照护占比", "share with family care only", "outcome"),
    ("home_services", "n_home", "居家服务占比", "share with home services", "outcome"),
    ("community", "n_community", "社区照护占比", "share with community care", "outcome"),
    ("institution", "n_institution", "机构养老占比", "share in nursing homes", "fitted"),
    ("medical_bed", "n_medical_bed", "医养床位占比", "share in integrated beds", "fitted"),
)

KPIS: tuple[KPI, ...] = (
    _population("residents_60plus", "60岁及以上人口", "residents 60+", "fitted",
                "series summary"),
    _population("residents_65plus", "65岁及以上人口", "residents 65+", "outcome", "summary"),
    _population("residents_80plus", "80岁及以上人口", "residents 80+", "outcome", "summary"),
    *(_population(name, zh, en, "fitted", "summary" if "dependent" in name else "")
      for name, zh, en in _STATES),
    _population("medical_need", "需定期医疗照护的老人", "residents with a medical need", "fitted",
                "summary"),
    _population("deaths", "死亡人数", "deaths", "fitted", "summary"),
    _population("entrants", "新满60岁人数", "residents turning 60", "fitted", "summary"),
    _population("widowed", "丧偶人数", "widowed", "outcome"),
    _population("emigrants", "迁出人数", "residents moving out of Taiyuan", "fitted"),
    _population("immigrants", "迁入人数", "residents 60+ moving in", "fitted"),
    _population("need_changed", "照护需求变化人数", "need changed", "outcome"),
    KPI("medical_care_demand", "医养服务需求 (人)", "medical-care demand (persons)", "persons",
        "count", "outcome", _persons("med_demand"),
        source=f"{MEDICAL_DEMAND}; the definition is need.medical_demand_min_state and "
        "need.capable_homes_integrated", views=_views("series map")),
    KPI("medical_care_demand_met", "医养服务需求满足率", "medical-care demand met", "share",
        "share", "outcome", _share("med_demand_met", "med_demand"), "higher", 0.80, ">=",
        f"{PLAN}: integrated capacity meets about 80% of demand. Demand: {MEDICAL_DEMAND}; met: "
        f"{INTEGRATED_CARE}", _views("key series map")),
    KPI("medical_care_demand_met_beds_only", "医养服务需求满足率 (仅床位)",
        "medical-care demand met by integrated beds", "share", "share", "outcome",
        _share("med_demand_met_beds", "med_demand"), "higher",
        source=f"{MEDICAL_DEMAND}, in an integrated bed"),
    KPI("medical_care_demand_met_broad", "医养服务需求满足率 (广义)",
        "medical-care demand met, broad (all with a chronic condition)", "share", "share",
        "outcome", _share("med_broad_met", "medical_need"), "higher",
        source=f"everyone with a chronic condition needing regular medical care (the medical "
        f"flag, multimorbidity), met by {INTEGRATED_CARE}", views=_views("series")),
    KPI("beds_public", "公办床位", "public beds", "beds", "count", "input", _rows("beds_public"),
        source=INPUT_NOTE),
    KPI("beds_private", "民办床位", "private beds", "beds", "count", "input",
        _rows("beds_private"), source=INPUT_NOTE),
    KPI("beds_medical", "医养结合床位", "integrated medical-care beds", "beds", "count", "input",
        _rows("beds_medical"), "higher", 6700.0, ">=", f"{PLAN}: 6,700 beds; {INPUT_NOTE}",
        _views("key series map")),
    KPI("beds_per_1000", "每千名老人床位", "beds per 1,000 elderly", "beds per 1,000", "rate",
        "input", lambda r: ratio(_beds(r) * 1000, r.persons("residents_60plus")), "higher",
        40.0, ">=", f"{PLAN}: 40 beds per 1,000 elderly; beds are {INPUT_NOTE}",
        _views("key series map")),
    KPI("private_bed_share", "民办床位占比", "private share of nursing-home beds", "share",
        "share", "input", lambda r: ratio(r["beds_private"], r["beds_public"] + r["beds_private"]),
        "higher", 0.60, ">", f"{PLAN}: over 60%; {INPUT_NOTE}", _views("key series map")),
    *(KPI(f"occupancy_{kind}", f"{zh}入住率", f"occupancy, {en}", "share", "share", "outcome",
          _share(f"occ_{kind}", f"cap_{kind}"), views=_views(views))
      for kind, zh, en, views in (("public", "公办床位", "public", ""),
                                  ("private", "民办床位", "private", "key series"),
                                  ("medical", "医养床位", "integrated", "series"))),
    KPI("empty_beds", "空置床位", "empty beds", "beds", "count", "outcome",
        lambda r: (_capacity(r) - _occupied(r)) * r.scale, "lower", views=_views("key series map")),
    KPI("empty_beds_beside_queues", "他区排队时的空置床位",
        "empty beds while other districts queue", "beds", "count", "outcome",
        _persons("empty_beside_queues"), "lower",
        source="empty beds in a district where no one waits, in a month when residents of "
        "other districts wait for a bed", views=_views("series map")),
    KPI("residents_in_institutions", "机构中的老人", "residents in institutions", "persons",
        "count", "outcome", lambda r: _occupied(r) * r.scale),
    KPI("admissions", "入住人数", "admissions to a bed", "persons/month", "count", "outcome",
        _persons("admissions"), views=_views("series")),
    KPI("admission_rate_65plus", "65岁及以上年入住率",
        "admissions to a bed per 65+ resident a year", "1/year", "rate", "fitted",
        lambda r: ratio(r["admissions_65plus"] * 12, r["residents_65plus"]),
        source="fitted (calibration stage 'choice'): CLHLS 65+ 2008-2011, 0.8% admitted in 3 "
        "years (validity_reference.csv)"),
    *(KPI(f"admissions_from_{key}", f"来自{zh}的入住", f"admissions from {en}", "persons/month",
          "count", "outcome", _persons(f"admitted_from_{key}")) for key, zh, en in DISTRICTS),
    KPI("bed_exits_death", "离院人数: 去世", "bed exits by death", "persons/month", "count",
        "outcome", _persons("bed_exits_death"), views=_views("series")),
    KPI("bed_exits_alive", "离院人数: 在世", "bed exits alive", "persons/month", "count",
        "outcome", _persons("bed_exits_alive"), views=_views("series")),
    KPI("bed_exits_death_share", "离院中去世比例", "share of bed exits that are deaths", "share",
        "share", "outcome",
        lambda r: ratio(r["bed_exits_death"], r["bed_exits_death"] + r["bed_exits_alive"])),
    KPI("completed_stay_months_mean", "已结束入住的平均月数", "mean length of the stays ended",
        "months", "amount", "outcome", _share("stay_months", "stays_ended"),
        source="stays begun in 2016-01 or later (the end-2015 residents' start is not known)"),
    KPI("expected_stay_months", "预期入住月数", "expected length of stay (residents / exits)",
        "months", "amount", "outcome",
        lambda r: ratio(_occupied(r), r["bed_exits_death"] + r["bed_exits_alive"]),
        source="Little's law: residents in beds / bed exits per month"),
    KPI("queue_length", "排队人数", "residents waiting for a bed", "persons", "count", "outcome",
        _persons("queue"), "lower"),
    KPI("mean_wait_months", "平均已等待月数", "mean months waited so far", "months", "amount",
        "outcome", _share("wait_sum", "queue"), "lower"),
    *(KPI(f"share_{name}", zh, en, "share", "share", role, _share(count, "in_need"),
          views=_views({"institution": "key series", "home_services": "key"}.get(name, "")))
      for name, count, zh, en, role in _SHARES),
    KPI("unmet_need_share", "照护需求未满足比例", "share of dependents with unmet need",
        "share", "share", "outcome", _share("dependents_unmet", "dependents"), "lower",
        views=_views("key series map")),
    KPI("unmet_care_hours", "未满足照护小时", "unmet care hours", "hours/month", "amount",
        "outcome", _persons("unmet_hours"), "lower"),
    KPI("deaths_attributable_unmet", "未满足需求导致的死亡 (预期)",
        "deaths attributable to unmet need (expected)", "persons/month", "amount", "outcome",
        _persons("deaths_unmet"), "lower",
        source="expected excess deaths of dependents with unmet need over the same people with "
        "their need met (health.unmet_need_death_hr), applied two months later",
        views=_views("series")),
    KPI("hospital_admissions", "住院人次 (预期)", "hospital admissions (expected)",
        "persons/month", "amount", "outcome", _persons("hospital"), "lower",
        source="residents with a chronic condition at health.hospital_rate_chronic (CHARLS), "
        "times the ratios for unmet need and integrated care", views=_views("series")),
    KPI("hospital_admissions_attributable_unmet", "未满足需求导致的住院 (预期)",
        "hospital admissions attributable to unmet need (expected)", "persons/month", "amount",
        "outcome", _persons("hospital_unmet"), "lower"),
    KPI("hospital_admissions_averted_integrated", "医养结合避免的住院 (预期)",
        "hospital admissions averted by integrated care (expected)", "persons/month", "amount",
        "outcome", _persons("hospital_averted"), "higher"),
    KPI("family_care_hours", "家庭照护小时", "family care hours", "hours/month", "amount",
        "outcome", _persons("family_hours")),
    KPI("carers_overloaded", "超负荷家庭照护者", "family carers overloaded", "persons",
        "count", "outcome", _persons("overloaded"), "lower"),
    KPI("team_utilisation", "服务队伍利用率", "team utilisation", "share", "share", "outcome",
        _share("team_used", "team_capacity"), views=_views("series map")),
    KPI("coverage_community_centre", "社区中心覆盖率", "community-centre coverage", "share",
        "share", "input", _share("cov_centre", "urban_elderly"), "higher",
        source=f"centres placed by the schedule; {INPUT_NOTE}", views=_views("series map")),
    KPI("coverage_day_care", "日间照料覆盖率", "day-care coverage", "share", "share", "input",
        _share("cov_day", "urban_elderly"), "higher",
        source=f"centres placed by the schedule; {INPUT_NOTE}", views=_views("series map")),
    *(KPI(f"spending_{name}", f"财政支出: {zh}", f"public spending: {en}", "yuan/month",
          "amount", "outcome", _persons(f"spend_{name}")) for name, zh, en in SPENDING),
    KPI("spending_total", "财政支出合计", "public spending, total", "yuan/month", "amount",
        "outcome", _spending_total, views=_views("key series")),
    *(KPI(f"{what}_reason_{name}", f"{prefix}: {zh}", f"{prefix_en}: {en}", unit, "count",
          "outcome", _persons(f"{what}_reason_{name}"))
      for name, zh, en in REASONS
      for what, prefix, prefix_en, unit in (("unmet", "未满足原因", "unmet because", "persons"),
                                            ("empty", "空床原因", "empty because", "beds"))),
)  # fmt: skip
BY_NAME: dict[str, KPI] = {k.name: k for k in KPIS}
PLAN_TARGETS: tuple[KPI, ...] = tuple(k for k in KPIS if k.target is not None)


def in_view(view: str) -> tuple[str, ...]:
    """Names of the KPIs shown in `view` ('key', 'series', 'map'), in registry order; the plan's
    targets come first."""
    chosen = [k.name for k in KPIS if view in k.views]
    return tuple(sorted(chosen, key=lambda n: BY_NAME[n].target is None))


def kpi(name: str) -> KPI:
    """The KPI called `name` (KeyError naming the allowed names otherwise)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown KPI {name!r}; allowed: {', '.join(BY_NAME)}") from None
