"""Chinese and English labels for the planners' app (Chinese is the default language).

`tr(key, lang)` returns the label; an unknown key falls back to the key itself so a missing
translation is visible but never crashes the page. District names come from the packaged
geography (name_zh / name_en).
"""

from __future__ import annotations

from functools import cache

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

LABELS: dict[str, tuple[str, str]] = {
    # page
    "title": ("太原市养老服务规划模拟", "Taiyuan elderly-care planning simulator"),
    "subtitle": (
        "太原市民政事业发展“十三五”规划 (2016-2020) 的政策杠杆与结果",
        "Levers and results of Taiyuan's 13th Five-Year civil-affairs plan (2016-2020)",
    ),
    "language": ("语言", "Language"),
    "levers": ("政策杠杆", "Policy levers"),
    "plan_value": ("规划值", "plan"),
    "scenario": ("情景", "Scenario"),
    "scenario_custom": ("(自定义)", "(custom)"),
    "load_scenario": ("载入情景", "Load scenario"),
    "reset_plan": ("恢复规划值", "Reset to plan"),
    "extra_overrides": ("情景中的其他参数", "Other parameters set by the scenario"),
    "run": ("运行", "Run"),
    "cancel": ("取消", "Cancel"),
    "running": ("运行中", "Running"),
    "until": ("模拟至", "Run until"),
    "scale": ("比例 (每行代表人数)", "Scale (persons per simulated resident)"),
    "scale_hint": ("1 = 全市 (较慢)", "1 = full city (slower)"),
    "seed": ("随机种子", "Seed"),
    "seed_range": ("随机种子须为 0 至 {hi} 的整数", "Seed: a whole number from 0 to {hi}"),
    "replications": ("重复次数", "Replications"),
    "seeds_used": ("使用的种子", "Seeds used"),
    "compare_plan": ("与规划基线对比 (相同种子)", "Compare with the plan baseline (same seeds)"),
    "not_run": ("尚未运行。请设置杠杆后点击“运行”。", "Not run yet. Set the levers and press Run."),
    "results": ("结果", "Results"),
    "kpis": ("2020年目标指标", "2020 targets"),
    "target": ("目标", "target"),
    "met": ("达标", "met"),
    "not_met": ("未达标", "not met"),
    "baseline": ("规划基线", "plan baseline"),
    "time_series": ("时间序列", "Time series"),
    "kpi": ("指标", "Indicator"),
    "map": ("分区地图", "District map"),
    "map_month": ("月份", "Month"),
    "diagnostics": ("诊断", "Diagnostics"),
    "why_unmet": ("需求为何未满足 (人)", "Why needs go unmet (persons)"),
    "why_empty": ("床位为何空置 (张)", "Why beds stand empty (beds)"),
    "comparison": ("与规划基线比较", "Comparison with the plan baseline"),
    "scenario_col": ("当前情景", "this scenario"),
    "difference": ("差值 (配对)", "difference (paired)"),
    "range": ("范围", "range"),
    "compare_hint": (
        "勾选“与规划基线对比”后运行即可比较。",
        "Tick 'Compare with the plan baseline' and run to compare.",
    ),
    "inspect": ("查看个体", "Inspect"),
    "facility": ("机构", "Facility"),
    "resident": ("居民", "Resident"),
    "index": ("编号", "Index"),
    "export": ("导出", "Export"),
    "export_csv": ("下载结果 CSV", "Download results CSV"),
    "export_toml": ("下载设置 (情景 TOML)", "Download settings (scenario TOML)"),
    "progress": ("进度", "Progress"),
    "elapsed": ("用时", "elapsed"),
    "error": ("错误", "Error"),
    "district": ("区县", "District"),
    "value": ("数值", "Value"),
    "city": ("太原市", "Taiyuan"),
    "mean_of_seeds": ("种子平均", "mean over seeds"),
    "band": ("各种子范围", "range over seeds"),
    "month": ("月份", "Month"),
    # lever groups
    "g_beds": ("公办与民办养老床位 (2020年)", "Public and private beds by 2020"),
    "g_medical": ("医养结合床位", "Integrated medical-care beds"),
    "g_community": ("社区养老服务中心与日间照料中心", "Community centres and day-care centres"),
    "g_teams": ("服务队伍与服务券", "Service teams and vouchers"),
    "g_prices": ("价格", "Prices"),
    "g_eligibility": ("补贴资格与补贴", "Subsidy eligibility"),
    # levers
    "l_public_beds": ("公办床位 2020年总数", "Public beds, 2020 total"),
    "l_private_beds": ("民办床位 2020年总数", "Private beds, 2020 total"),
    "l_construction_subsidy": ("民办新建床位建设补贴", "Construction subsidy per new private bed"),
    "l_operating_subsidy": ("民办床位运营补贴", "Operating subsidy per occupied private bed"),
    "l_beds_after_2020": ("2021年后每年新增床位 (公/民/医)", "Beds added yearly after 2020"),
    "l_medical_beds": ("医养结合床位 2020年总数", "Integrated beds, 2020 total"),
    "l_medical_converted": ("由民办床位转换的比例", "Share converted from private beds"),
    "l_homes_medical_2015": ("2015年有医疗服务的养老院比例", "Homes with medical service, 2015"),
    "l_medical_staff_share": ("服务队伍医护人员比例", "Medically qualified share of team hours"),
    "l_centres": ("新建社区养老服务中心 (2016-2020)", "New community centres 2016-2020"),
    "l_centres_after": ("2021年后每年新建社区中心", "Community centres added yearly after 2020"),
    "l_urban_day_care": ("城市日间照料中心 2020年总数", "Urban day-care centres, 2020 total"),
    "l_rural_day_care": ("新建农村日间照料中心 (2016-2020)", "New rural day-care centres 2016-20"),
    "l_centre_places": ("每个社区中心日间名额", "Day places per community centre"),
    "l_day_care_places": ("每个日间照料中心名额", "Places per day-care centre"),
    "l_teams_added": ("新增服务队伍 (2016-2020)", "Service teams added 2016-2020"),
    "l_staff_per_team": ("每队护理员", "Care workers per team"),
    "l_voucher": ("居家养老服务券 (每月)", "Home-care voucher per month"),
    "l_price_public": ("公办养老院价格", "Public nursing-home price"),
    "l_price_private": ("民办养老院价格", "Private nursing-home price"),
    "l_price_medical": ("医养结合床位价格", "Integrated medical-care bed price"),
    "l_price_home_hour": ("居家服务每小时价格", "Home-care price per hour"),
    "l_price_day": ("日间照料价格", "Day-care price"),
    "l_voucher_state": ("服务券所需评估等级 (3=部分失能)", "Voucher: minimum assessed state"),
    "l_voucher_age": ("服务券不限收入的年龄", "Voucher: age without income test"),
    "l_voucher_income": ("服务券收入等级上限 (1=低保)", "Voucher: highest income class"),
    "l_nursing_subsidy": ("失能护理补贴", "Nursing subsidy (severely disabled, poor)"),
    "l_old_age_allowance": ("高龄津贴 (80+)", "Old-age allowance (80+)"),
    "l_carer_allowance": ("家庭照护者津贴", "Family carer allowance"),
    # KPIs
    "medical_care_demand_met": ("医疗照护需求满足率", "Medical-care demand met"),
    "beds_per_1000": ("每千名老人床位", "Beds per 1,000 elderly"),
    "private_bed_share": ("民办床位占比", "Private bed share"),
    "beds_medical": ("医养结合床位", "Integrated medical-care beds"),
    "beds_public": ("公办床位", "Public beds"),
    "beds_private": ("民办床位", "Private beds"),
    "unmet_need_share": ("照护需求未满足比例", "Share of dependents with unmet need"),
    "empty_beds": ("空置床位", "Empty beds"),
    "occupancy_public": ("公办床位入住率", "Occupancy, public"),
    "occupancy_private": ("民办床位入住率", "Occupancy, private"),
    "occupancy_medical": ("医养床位入住率", "Occupancy, integrated"),
    "team_utilisation": ("服务队伍利用率", "Team utilisation"),
    "coverage_community_centre": ("社区中心覆盖率", "Community-centre coverage"),
    "coverage_day_care": ("日间照料覆盖率", "Day-care coverage"),
    "share_family_only": ("仅家庭照护占比", "Share family care only"),
    "share_home_services": ("居家服务占比", "Share home services"),
    "share_community": ("社区照护占比", "Share community care"),
    "share_institution": ("机构养老占比", "Share institutions"),
    "share_medical_bed": ("医养床位占比", "Share integrated beds"),
    "spending_total": ("财政支出 (元/月)", "Public spending (yuan/month)"),
    "residents_60plus": ("60岁以上人口", "Residents 60+"),
    "queue_length": ("排队人数", "Queue length"),
    # reasons
    "r_not_eligible": ("不符合资格", "not eligible"),
    "r_no_vacancy": ("无空位", "no vacancy"),
    "r_distance": ("距离太远", "too far"),
    "r_price": ("价格过高", "price"),
    "r_no_medical": ("无医疗服务", "no medical service"),
    "r_preference": ("偏好", "preference"),
}


def tr(key: str, lang: str = DEFAULT_LANG) -> str:
    """The label of `key` in `lang` ('zh' or 'en'); unknown keys are returned unchanged."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


@cache
def district_names() -> tuple[tuple[str, str], ...]:
    """(name_zh, name_en) of the 10 districts in model order (code 0..9)."""
    from sim.population.geography import load_geography

    d = load_geography().districts
    return tuple(zip(d["name_zh"], d["name_en"], strict=True))


def district_label(code_or_en: int | str, lang: str = DEFAULT_LANG, both: bool = False) -> str:
    """District name by code or English name; `both` gives '小店区 Xiaodian'."""
    names = district_names()
    if isinstance(code_or_en, str):
        if code_or_en in ("Taiyuan", "太原市"):
            zh, en = LABELS["city"]
        else:
            zh, en = next(p for p in names if code_or_en in p)
    else:
        zh, en = names[int(code_or_en)]
    if both:
        return f"{zh} {en}"
    return en if lang == "en" else zh
