"""Chinese and English labels for the planners' app (Chinese is the default language).

The page's own labels are here; the KPIs', the reasons' and the levers' come from their
registries (sim.kpis.registry, sim.params.levers).

`tr(key, lang)` returns the label; an unknown key falls back to the key itself so a missing
translation is visible but never crashes the page. District names come from the packaged
geography (name_zh / name_en).
"""

from __future__ import annotations

from functools import cache

from sim.kpis.registry import BY_NAME, REASONS

_REASON_LABELS = {name: (zh, en) for name, zh, en in REASONS}

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
}


def tr(key: str, lang: str = DEFAULT_LANG) -> str:
    """The label of `key` in `lang` ('zh' or 'en'): the page's labels, a KPI's (from the KPI
    registry) or a reason's ('r_' + name); unknown keys are returned unchanged."""
    pair = LABELS.get(key)
    if pair is None and key in BY_NAME:
        pair = BY_NAME[key].label_zh, BY_NAME[key].label_en
    if pair is None and key.startswith("r_"):
        pair = _REASON_LABELS.get(key[2:])
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
