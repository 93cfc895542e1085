"""The app's "optimise" panel: the least public spending that meets a medical-care target, a budget
and an unmet-need level in chosen districts, searched in the background (`eldercare optimise`'s
machinery, in memory), with the Pareto chart, the chosen plan's allocation by district on the map
and its scenario file to download.

The levers and their ranges, the objectives and the horizon are those of the shipped spec
(scenarios/optimise/least_cost_2025.toml); the panel sets the constraints, the levers searched,
the number of candidates and whether the demographic variants are run. Its labels (zh, en) are
here; KPIs' come from the registry through `sim.app.i18n.tr`.
"""

from __future__ import annotations

import itertools
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import solara

from sim.app.i18n import DEFAULT_LANG, district_label, tr

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios" / "optimise" / "least_cost_2025.toml"
MAP_KPIS = ("beds_per_1000", "medical_care_demand_met", "unmet_need_share")
_ids = itertools.count(1)

LABELS: dict[str, tuple[str, str]] = {
    "optimise": (
        "优化: 达标的最低财政支出",
        "Optimise: the least public spending that meets targets",
    ),
    "target": ("医养服务需求满足率目标", "medical-care demand met, target"),
    "budget": ("支出上限 (百万元, 0 = 不设)", "spending cap (million yuan, 0 = none)"),
    "districts": ("需控制未满足需求的区县", "districts where unmet need is capped"),
    "unmet": ("未满足需求比例上限", "unmet-need share, at most"),
    "levers": ("参与优化的政策杠杆", "levers searched"),
    "trials": ("候选方案数", "candidates"),
    "variants": ("包含人口高/低方案", "include the low and high demography"),
    "start": ("开始优化", "Optimise"),
    "cancel": ("取消", "Cancel"),
    "running": ("优化中", "Optimising"),
    "pareto": ("帕累托前沿 (支出与服务)", "Pareto set (spending against service)"),
    "chosen": ("选定方案", "Chosen plan"),
    "none": ("没有候选方案满足全部约束。", "No candidate meets every constraint."),
    "unreachable": (
        "在杠杆范围内没有候选方案达到: ",
        "No candidate reaches, within the levers' ranges: ",
    ),
    "closest": ("最接近约束的方案", "Closest to the constraints"),
    "allocation": ("选定方案的分区结果", "The chosen plan by district"),
    "export": ("下载选定方案 (情景 TOML)", "Download the chosen plan (scenario TOML)"),
    "rule": ("每千名老人40张床位规则", "the 40 beds per 1,000 rule"),
    "saving": ("同等服务下较规则节省", "saving against the rule at equal service"),
    "note": (
        "每个候选方案在相同随机种子下运行 (共同随机数); 数值为模型结果。",
        "Every candidate runs on the same seeds (common random numbers); figures are model "
        "outcomes.",
    ),
}


def t(key: str, lang: str) -> str:
    """This panel's label, else the app's (KPIs and districts included)."""
    pair = LABELS.get(key)
    return (pair[1] if lang == "en" else pair[0]) if pair else tr(key, lang)


def shipped_levers() -> list[str]:
    """The decision variables of the shipped spec, in its order."""
    with open(SHIPPED, "rb") as f:
        return list(tomllib.load(f)["levers"])


@dataclass(frozen=True)
class PanelRequest:
    """What the planner set: the constraints, the levers searched, the size of the search."""

    target: float = 0.8
    budget_million: float = 0.0  # 0: no cap on spending over the spec's period
    districts: tuple[str, ...] = ()  # English names
    unmet: float = 0.35
    levers: tuple[str, ...] = ()  # empty: all of the shipped spec's
    trials: int = 24
    variants: bool = False
    seed: int = 1
    scale: float = 10.0
    id: int = field(default_factory=lambda: next(_ids))


def panel_spec(req: PanelRequest):
    """The shipped spec with the panel's constraints, levers and size (one seed, no
    confirmation run: the app's search is a first look; the command line confirms)."""
    from sim.experiments.planning.spec import spec_from_dict

    with open(SHIPPED, "rb") as f:
        data: dict[str, Any] = tomllib.load(f)
    until = data["until"]
    if req.levers:
        data["levers"] = {k: v for k, v in data["levers"].items() if k in req.levers}
    constraints: list[dict[str, Any]] = [
        {
            "kpi": "medical_care_demand_met",
            "month": until,
            "target": req.target,
            "probability": 0.9,
        },
    ]
    if req.districts:
        constraints.append(
            {
                "kpi": "unmet_need_share",
                "month": until,
                "target": req.unmet,
                "district": list(req.districts),
                "probability": 0.9,
            }
        )
    if req.budget_million > 0:
        constraints.append(
            {
                "kpi": "spending_total",
                "comparison": "<=",
                "target": req.budget_million * 1e6,
                "probability": 0.9,
            }
        )
    data.pop("recheck", None)  # the full-city re-run is the command line's
    data.update(
        constraints=constraints,
        seeds=[req.seed],
        validation_seeds=[],
        trials=req.trials,
        batch=4,
        scale=req.scale,
        variants=data["variants"] if req.variants else [],
    )
    return spec_from_dict(data, "app: optimise panel", SHIPPED.parent)


@dataclass
class PanelResult:
    outcome: Any  # sim.experiments.planning.output.Outcome
    frame: pd.DataFrame | None  # the chosen plan's run (seed, scale of the search)
    png: bytes


def run_panel(
    req: PanelRequest, progress: Callable[[float], None], cancelled: Callable[[], bool]
) -> PanelResult | None:
    """Search in this thread; None if cancelled."""
    from sim.experiments.planning.optimise import in_memory
    from sim.experiments.planning.output import chart_png
    from sim.experiments.planning.search import Cancelled
    from sim.experiments.results import simulate
    from sim.experiments.scenario import loads_scenario

    spec = panel_spec(req)
    count = {"done": 0, "total": spec.trials * len(spec.evaluations)}

    def tick() -> None:
        count["done"] += 1
        progress(min(count["done"] / max(count["total"], 1), 1.0))

    def planned(n: int) -> None:
        count["total"] += n

    try:
        outcome = in_memory(spec, tick, planned, cancelled)
    except Cancelled:
        return None
    frame = None
    shown = outcome.chosen or outcome.closest
    if shown is not None:
        sc = loads_scenario(outcome.scenario_text(shown, req.seed), "chosen")
        frame = simulate(sc.params, req.seed, req.scale, spec.until)
    return PanelResult(outcome, frame, chart_png(outcome))


@solara.component
def PanelResultView(res: PanelResult, lang: str = DEFAULT_LANG):
    """The Pareto chart, the chosen plan (or, if none meets every constraint, the closest), its
    districts on the map, the download."""
    from sim.app.components import choropleth_svg, district_values

    outcome = res.outcome
    spec = outcome.spec
    map_kpi = solara.use_reactive(MAP_KPIS[0])
    solara.Text(t("pareto", lang), style="font-weight: bold")
    solara.Image(res.png)
    if not outcome.any_feasible:
        unreachable = "; ".join(spec.constraints[j].label for j in outcome.unreachable)
        solara.Warning(
            t("none", lang) + (f" {t('unreachable', lang)}{unreachable}" if unreachable else "")
        )
    front = outcome.table()
    solara.DataFrame(front[front["pareto"] | (front["trial"] == "rule")], items_per_page=10)
    cmp = outcome.rule_comparison()
    if cmp and cmp["match"]:
        solara.Text(
            f"{t('saving', lang)} ({t('rule', lang)}): {cmp['match']['saving_share']:.1%}",
            classes=["optimise-saving"],
        )
    chosen = outcome.chosen or outcome.closest
    if chosen is None or res.frame is None:
        return
    values = ", ".join(f"{k} = {v:,.4g}" for k, v in chosen.values.items())
    what = t("chosen" if chosen is outcome.chosen else "closest", lang)
    solara.Text(f"{what}: #{chosen.number}: {values}", classes=["optimise-chosen"])
    solara.Text(t("allocation", lang), style="font-weight: bold")
    names = {tr(k, lang): k for k in MAP_KPIS}
    solara.Select(
        t("kpi", lang),
        values=list(names),
        value=tr(map_kpi.value, lang),
        on_value=lambda n: map_kpi.set(names.get(n, map_kpi.value)),
    )
    values_by_district = district_values([res.frame], map_kpi.value, spec.until)
    solara.HTML(
        "div",
        unsafe_innerHTML=choropleth_svg(values_by_district, map_kpi.value, lang),
        classes=["optimise-map"],
    )
    solara.FileDownload(
        lambda: outcome.scenario_text(chosen).encode("utf-8"),
        filename=f"{spec.name}_trial{chosen.number}.toml",
        label=t("export", lang),
    )


@solara.component
def OptimisePanel(lang: str = DEFAULT_LANG, scale: float = 10.0, seed: int = 1):
    """Constraints and levers, a run in the background with progress, then the result."""
    from sim.population.geography import DISTRICT_CODES

    all_levers = solara.use_memo(shipped_levers, [])
    target = solara.use_reactive(0.8)
    budget = solara.use_reactive(0.0)
    districts = solara.use_reactive([])
    unmet = solara.use_reactive(0.35)
    levers = solara.use_reactive(list(all_levers))
    trials = solara.use_reactive(24)
    variants = solara.use_reactive(False)
    request = solara.use_reactive(None)
    progress = solara.use_reactive(0.0)
    result = solara.use_reactive(None)
    error = solara.use_reactive("")
    req = request.value

    def work(cancel: threading.Event) -> None:
        if req is None:
            return
        try:
            res = run_panel(req, progress.set, cancel.is_set)
        except Exception as exc:  # shown on the page, never crashing it
            error.set(f"{type(exc).__name__}: {exc}")
            return
        if res is not None:
            result.set(res)

    task = solara.use_thread(work, dependencies=[req.id if req else None], intrusive_cancel=False)
    running = req is not None and task.state == solara.ResultState.RUNNING
    by_label = {district_label(d, lang, both=True): d for d in DISTRICT_CODES}

    def start() -> None:
        error.set("")
        progress.set(0.0)
        request.set(
            PanelRequest(
                float(target.value),
                float(budget.value),
                tuple(districts.value),
                float(unmet.value),
                tuple(levers.value),
                int(trials.value),
                bool(variants.value),
                seed,
                scale,
            )
        )

    with solara.Column(classes=["optimise-panel"]):
        solara.SliderFloat(t("target", lang), value=target, min=0.3, max=0.95, step=0.05)
        solara.InputFloat(t("budget", lang), value=budget)
        solara.SelectMultiple(
            t("districts", lang),
            values=[d for d, c in by_label.items() if c in districts.value],
            all_values=list(by_label),
            on_value=lambda ds: districts.set([by_label[d] for d in ds]),
        )
        solara.SliderFloat(t("unmet", lang), value=unmet, min=0.05, max=0.6, step=0.05)
        solara.SelectMultiple(
            t("levers", lang), values=levers.value, all_values=all_levers, on_value=levers.set
        )
        solara.SliderInt(f"{t('trials', lang)}: {trials.value}", value=trials, min=4, max=120)
        solara.Checkbox(label=t("variants", lang), value=variants)
        solara.Text(t("note", lang), style="font-size: 12px; color: #666")
        with solara.Row():
            solara.Button(
                t("start", lang),
                on_click=start,
                color="primary",
                disabled=running or not levers.value,
                classes=["optimise-run"],
            )
            if running:
                solara.Button(t("cancel", lang), on_click=lambda: request.set(None), text=True)
        if running:
            solara.ProgressLinear(value=100 * progress.value)
            solara.Text(f"{t('running', lang)}… {100 * progress.value:.0f}%")
        if error.value:
            solara.Error(error.value)
        if result.value is not None:
            PanelResultView(result.value, lang)
