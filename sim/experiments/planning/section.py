"""An optimisation result as a section of a report, in Chinese or English, read from the folder
`eldercare optimise` wrote (manifest.json, summary.json, trials.csv, pareto.png): what was
searched, the answer in words (the least-cost mix, or which constraint no candidate met), the
chosen plan's re-run on new seeds, the plan's beds-per-1,000 rule at equal service, the chart,
the mix lever by lever and the Pareto set.

    from sim.experiments.planning.section import optimise_section
    html_fragment = optimise_section("out/least_cost", lang="zh")   # a <section>, inline image

Every figure is a model outcome: a mean over the search's runs (variants x seeds) at its scale,
or the share of those runs in which a constraint holds.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from sim.experiments.batch import infos_by_path
from sim.experiments.results import OutputError, read_manifest
from sim.kpis.registry import BY_NAME

KIND = "optimise"
CITY = "Taiyuan"

WORDS: dict[str, tuple[str, str]] = {
    "title": ("优化结果", "Optimisation"),
    "searched": (
        "在 {levers} 个政策杠杆的取值范围内搜索 {n} 个候选方案；每个方案在人口方案 {variants} "
        "与随机种子 {seeds} 上运行 (各方案使用相同的运行，共同随机数)，规模 1:{scale}，至 {until}；"
        "搜索器 {sampler}。用时 {wall} (其中搜索 {search})。",
        "{n} candidates searched within the ranges of {levers} levers; each run on the demographic "
        "variants {variants} x seeds {seeds} (the same runs for every candidate: common random "
        "numbers), scale 1:{scale}, to {until}; sampler {sampler}. Wall time {wall} (the search "
        "{search}).",
    ),
    "values_note": (
        "数值为模型结果：上述运行的均值；约束为其成立的运行比例。",
        "Figures are model outcomes: means over those runs; for a constraint, the share of runs "
        "in which it holds.",
    ),
    "goals": ("目标与约束", "Objectives and constraints"),
    "of_rule": (" (规则在同样运行中的水平)", " (the rule's value on the same runs)"),
    "minimise": ("最小化", "minimise"),
    "maximise": ("最大化", "maximise"),
    "constraint": (
        "{label} {cmp} {target}，至少 {p} 的运行成立",
        "{label} {cmp} {target} in at least {p} of the runs",
    ),
    "answer": ("结论", "The answer"),
    "chosen": (
        "满足全部约束的最低成本方案为第 {trial} 号候选：{objectives}。",
        "The least-cost mix that meets every constraint is candidate {trial}: {objectives}.",
    ),
    "confirmed": (
        "以搜索未用过的随机种子 {seeds} 复核：{verdict}。",
        "On seeds the search never used ({seeds}): {verdict}.",
    ),
    "none": ("没有候选方案满足全部约束。", "No candidate met every constraint."),
    "unreachable": (
        "在杠杆范围内，没有任何候选方案达到：{names} (搜索所见的最好值：{best})。"
        "帕累托前沿为满足其余约束的方案。",
        "None reached, within the levers' ranges: {names} (the best the search saw: {best}). The "
        "Pareto set is of the candidates meeting the other constraints.",
    ),
    "closest": (
        "最接近约束的方案为第 {trial} 号候选：{objectives}。",
        "The candidate closest to the constraints is number {trial}: {objectives}.",
    ),
    "recheck": (
        "第 {trial} 号方案在规模 1:{scale}、新随机种子 {seeds} 上重跑 "
        "(共 {runs} 次运行，含各人口方案)：{held}；{verdict}。",
        "Candidate {trial} re-run at scale 1:{scale} on new seeds {seeds} (every variant; runs: "
        "{runs}): {held}; {verdict}.",
    ),
    "held": (
        "{label} 在 {share} 的运行中成立 (均值 {mean}，{lo}–{hi})",
        "{label} held in {share} of the runs (mean {mean}, {lo}–{hi})",
    ),
    "meets": ("满足约束", "it meets the constraints"),
    "misses": ("未满足约束", "it does not meet the constraints"),
    "rule": (
        "规划的每千名老人 {ratio} 张床位规则 (同样的运行)：{cost}，{service}；"
        "约束成立比例 {held} ({feasible})。",
        "The plan's rule of {ratio} beds per 1,000 elderly (the same runs): {cost}, {service}; "
        "its constraints held in {held} of the runs ({feasible}).",
    ),
    "rule_feasible": ("满足约束", "feasible"),
    "rule_infeasible": ("不满足约束", "not feasible"),
    "match": (
        "在同等或更好的服务下 (各服务目标不低于规则，约束成立比例不低于规则)，"
        "第 {trial} 号方案支出 {cost}，比规则{more_less} {saving} ({share})。",
        "At equal or better service (every service objective at least the rule's, each "
        "constraint held at least as often), candidate {trial} costs {cost}: {saving} "
        "({share}) {more_less} than the rule.",
    ),
    "less": ("少", "less"),
    "more": ("多", "more"),
    "no_match": ("没有候选方案达到规则的服务水平。", "No candidate matches the rule's service."),
    "mix": ("方案的杠杆取值", "The mix, lever by lever"),
    "lever": ("杠杆", "Lever"),
    "value": ("取值", "Value"),
    "range": ("搜索范围", "Range searched"),
    "default": ("默认值 (规划原文)", "Default (the plan as written)"),
    "mean": ("各次运行均值", "mean over the runs"),
    "front": ("帕累托前沿 (成本与服务)", "Pareto set (cost against service)"),
    "trial": ("候选", "Candidate"),
    "feasible": ("满足约束", "Feasible"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "chart": ("各候选方案的成本与服务", "Cost against service, every candidate"),
    "sum_years": ("{years} 年合计", "sum over {years}"),
    "after_2020": (
        ("2020年后每年新增公办床位", "public beds added each year after 2020"),
        ("2020年后每年新增民办床位", "private beds added each year after 2020"),
        ("2020年后每年新增医养结合床位", "integrated beds added each year after 2020"),
    ),
    "each": ("每个区县", "each district"),
    "city": ("全市", "city"),
    "million": ("{v} 百万元", "{v} M yuan"),
}


def word(key: str, lang: str, **kw: Any) -> str:
    zh, en = WORDS[key]
    return (en if lang == "en" else zh).format(**kw) if kw else (en if lang == "en" else zh)


def optimise_section(folder: str | Path, lang: str = "zh") -> str:
    """The optimisation in `folder` as an HTML <section> (the chart inline) in `lang` ('zh' or
    'en'). OutputError if the folder holds no finished optimisation."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("kind") != KIND:
        raise OutputError(folder, "holds no eldercare optimise output")
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        trials = pd.read_csv(folder / "trials.csv")
    except FileNotFoundError:
        raise OutputError(folder, "holds an optimisation that has not finished") from None
    png = chart(manifest, summary, trials, lang)
    return _section(manifest, summary, trials, png, lang)


def _section(
    manifest: dict, summary: dict, trials: pd.DataFrame, png: bytes | None, lang: str
) -> str:
    e = html.escape
    objectives, constraints = manifest["objectives"], _constraints(manifest, summary)
    searched = trials[trials["trial"].astype(str) != "rule"]
    phases = summary.get("phase_seconds", {})
    parts = [
        f"<section class='optimise'><h2>{word('title', lang)}: {e(manifest['name'])}</h2>",
        f"<p class='desc'>{e(manifest.get('description', ''))}</p>",
        "<p>"
        + e(
            word(
                "searched",
                lang,
                levers=len(manifest["decisions"]),
                n=len(searched),
                variants=", ".join(manifest["variants"]) or "—",
                seeds=", ".join(str(s) for s in manifest["seeds"]),
                scale=f"{manifest['scale']:g}",
                until=manifest["until"],
                sampler=manifest["sampler"],
                wall=_duration(summary.get("seconds", math.nan), lang),
                search=_duration(phases.get("search", math.nan), lang),
            )
        )
        + "</p>",
        f"<p class='note'>{e(word('values_note', lang))}</p>",
        f"<h3>{word('goals', lang)}</h3><ul>",
    ]
    for m in objectives:
        parts.append(f"<li>{word(m['goal'], lang)} {e(_measure(m, lang))}</li>")
    for m in constraints:
        target = _number(m["target"], m, lang)
        if m.get("rule_target"):
            target += word("of_rule", lang)
        text = word(
            "constraint",
            lang,
            label=_measure(m, lang),
            cmp=m["goal"],
            target=target,
            p=f"{m['probability']:.0%}",
        )
        parts.append(f"<li>{e(text)}</li>")
    parts.append(f"</ul><h3>{word('answer', lang)}</h3>")
    parts.extend(f"<p>{e(p)}</p>" for p in _answer(manifest, summary, trials, lang))
    if png is not None:
        data = base64.b64encode(png).decode()
        parts.append(f"<img alt='{e(word('chart', lang))}' src='data:image/png;base64,{data}'>")
    shown = summary.get("chosen")
    if shown is None:
        shown = summary.get("closest")
    if shown is not None:
        parts.append(f"<h3>{word('mix', lang)} ({word('trial', lang)} {shown})</h3>")
        parts.append(_mix_table(manifest, _row(trials, shown), lang))
    parts.append(f"<h3>{word('front', lang)}</h3>{_front_table(manifest, summary, trials, lang)}")
    parts.append("</section>")
    return "".join(parts)


# -- the chart -------------------------------------------------------------------------------------
CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", "SimHei")


def _cjk_font() -> str | None:
    from matplotlib import font_manager

    for name in CJK_FONTS:
        try:
            font_manager.findfont(name, fallback_to_default=False)
        except ValueError:
            continue
        return name
    return None


CHART_LABELS: dict[str, tuple[str, str]] = {
    "all": ("候选方案", "candidates"),
    "feasible": ("满足约束", "feasible"),
    "front": ("帕累托前沿", "Pareto set"),
    "chosen": ("选定方案", "chosen"),
    "closest": ("最接近约束", "closest"),
    "rule": ("每千名老人 {r} 张床位规则", "{r} beds per 1,000 rule"),
}


def chart(manifest: dict, summary: dict, trials: pd.DataFrame, lang: str) -> bytes | None:
    """Cost against the first service objective (PNG): every candidate, the feasible ones, the
    Pareto set, the chosen (or closest) one and the rule; labels in `lang` (English if no
    Chinese font is installed). None with a single objective."""
    import matplotlib

    matplotlib.use("Agg")
    objectives = manifest["objectives"]
    if len(objectives) < 2 or not all(_label_of(m) in trials for m in objectives[:2]):
        return None
    font = _cjk_font() if lang != "en" else None
    lang = lang if lang == "en" or font else "en"
    rc = {"font.sans-serif": [font, *matplotlib.rcParams["font.sans-serif"]]} if font else {}
    with matplotlib.rc_context(rc):
        return _draw(objectives[0], objectives[1], summary, trials, lang)


def _draw(x_m: dict, y_m: dict, summary: dict, trials: pd.DataFrame, lang: str) -> bytes:
    import io

    from matplotlib.figure import Figure

    x_scale = 1e6 if BY_NAME[x_m["kpi"]].unit.startswith("yuan") else 1.0
    y_scale = 100.0 if BY_NAME[y_m["kpi"]].kind == "share" else 1.0

    def xy(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        x = frame[_label_of(x_m)].astype(float) / x_scale
        return x, frame[_label_of(y_m)].astype(float) * y_scale

    def lab(key: str, **kw: Any) -> str:
        zh, en = CHART_LABELS[key]
        return (en if lang == "en" else zh).format(**kw)

    is_rule = trials["trial"].astype(str) == "rule"
    searched = trials[~is_rule]
    numbers = searched["trial"].astype(int)
    feasible = searched["feasible"].map(_true)
    on_front = numbers.isin([int(t) for t in summary.get("pareto", [])])
    fig = Figure(figsize=(7.5, 4.5), dpi=100)
    ax = fig.add_subplot()
    ax.scatter(*xy(searched), color="#bbbbbb", s=14, label=lab("all"))
    if feasible.any():
        ax.scatter(*xy(searched[feasible]), color="C0", s=18, label=lab("feasible"))
    if on_front.any():
        ax.scatter(*xy(searched[on_front]), color="C3", s=30, label=lab("front"))
    for key in ("chosen", "closest"):
        t = summary.get(key)
        if t is not None:
            ax.scatter(*xy(searched[numbers == int(t)]), marker="o", s=140, facecolors="none",
                       edgecolors="k", label=f"{lab(key)} ({t})")  # fmt: skip
    if is_rule.any() and summary.get("rule"):
        rule = lab("rule", r=f"{summary['rule']['ratio']:g}")
        ax.scatter(*xy(trials[is_rule]), marker="*", s=200, color="C2", label=rule)
    unit_x = word("million", lang, v="").strip() if x_scale == 1e6 else BY_NAME[x_m["kpi"]].unit
    unit_y = "%" if y_scale == 100 else BY_NAME[y_m["kpi"]].unit
    ax.set_xlabel(f"{_measure(x_m, lang)} ({unit_x})")
    ax.set_ylabel(f"{BY_NAME[y_m['kpi']].label(lang)} ({unit_y})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


# -- the answer in words ---------------------------------------------------------------------------
def _answer(manifest: dict, summary: dict, trials: pd.DataFrame, lang: str) -> list[str]:
    objectives, constraints = manifest["objectives"], _constraints(manifest, summary)
    out = []
    chosen = summary.get("chosen")
    if chosen is not None:
        out.append(word("chosen", lang, trial=chosen, objectives=_objectives(
            manifest, _row(trials, chosen), lang)))  # fmt: skip
        row = _row(trials, chosen)
        if manifest.get("validation_seeds") and _true(row.get("confirmed")):
            seeds = ", ".join(str(s) for s in manifest["validation_seeds"])
            out.append(word("confirmed", lang, seeds=seeds, verdict=word("meets", lang)))
    else:
        out.append(word("none", lang))
        unreachable = summary.get("unreachable") or []
        if unreachable:
            by_label = {_label_of(m): m for m in constraints}
            names, best = [], []
            for label in unreachable:
                m = by_label.get(label)
                if m is None:
                    continue
                names.append(f"{_measure(m, lang)} {m['goal']} {_number(m['target'], m, lang)}")
                best.append(_best_seen(m, manifest, trials, lang))
            out.append(word("unreachable", lang, names="; ".join(names), best="; ".join(best)))
        closest = summary.get("closest")
        if closest is not None:
            out.append(word("closest", lang, trial=closest, objectives=_objectives(
                manifest, _row(trials, closest), lang)))  # fmt: skip
    again = summary.get("recheck")
    if again:
        by_label = {_label_of(m): m for m in constraints}
        held = "; ".join(
            word(
                "held",
                lang,
                label=_measure(by_label[k], lang),
                share=f"{v:.0%}",
                mean=_number(again["values"][k]["mean"], by_label[k], lang),
                lo=_number(again["values"][k]["min"], by_label[k], lang),
                hi=_number(again["values"][k]["max"], by_label[k], lang),
            )
            for k, v in again["held"].items()
            if k in by_label and k in again.get("values", {})
        )
        out.append(
            word(
                "recheck",
                lang,
                trial=again.get("trial", chosen),
                scale=f"{again['scale']:g}",
                seeds=", ".join(str(s) for s in again["seeds"]),
                runs=again.get("runs", "—"),
                held=held,
                verdict=word("meets" if again["feasible"] else "misses", lang),
            )
        )
    cmp = summary.get("rule")
    if cmp:
        cost = objectives[0]
        service = ", ".join(
            f"{_measure(m, lang)} {_number(v, m, lang)}"
            for m, v in zip(objectives[1:], cmp["rule_service"].values(), strict=False)
        )
        out.append(
            word(
                "rule",
                lang,
                ratio=f"{cmp['ratio']:g}",
                cost=f"{_measure(cost, lang)} {_number(cmp['rule_cost'], cost, lang)}",
                service=service or "—",
                held=", ".join(f"{v:.0%}" for v in cmp["rule_held"].values()) or "—",
                feasible=word("rule_feasible" if cmp["rule_feasible"] else "rule_infeasible", lang),
            )
        )
        match = cmp.get("match")
        if match is None:
            out.append(word("no_match", lang))
        else:
            out.append(
                word(
                    "match",
                    lang,
                    trial=match["trial"],
                    cost=_number(match["cost"], cost, lang),
                    saving=_number(abs(match["saving"]), cost, lang),
                    share=f"{abs(match['saving_share']):.1%}",
                    more_less=word("less" if match["saving"] >= 0 else "more", lang),
                )
            )
    return out


def _constraints(manifest: dict, summary: dict) -> list[dict]:
    """The constraints with their targets resolved (a target "rule" is the rule's value)."""
    return summary.get("constraints") or manifest["constraints"]


def _objectives(manifest: dict, row: dict, lang: str) -> str:
    return ", ".join(
        f"{_measure(m, lang)} {_number(row.get(_label_of(m), math.nan), m, lang)}"
        for m in manifest["objectives"]
    )


def _best_seen(m: dict, manifest: dict, trials: pd.DataFrame, lang: str) -> str:
    """The best value of a constraint's KPI the search saw: the best candidate's mean over its
    runs if the same KPI (district, months) is an objective, else the value in the deciding run
    of the candidate that came closest."""
    searched = trials[trials["trial"].astype(str) != "rule"]
    if searched.empty:
        return "—"
    same = ("kpi", "districts", "first", "last")
    for o in manifest["objectives"]:
        if all(o[k] == m[k] for k in same) and _label_of(o) in searched:
            col = searched[_label_of(o)].astype(float)
            best = col.max() if m["goal"] == ">=" else col.min()
            return f"{_number(best, m, lang)} ({word('mean', lang)})"
    col = f"violation: {_label_of(m)}"
    if col not in searched:
        return "—"
    least = float(searched[col].min())  # minus the deciding run's margin, relative to the target
    target = float(m["target"])
    scale = abs(target) if target else 1.0
    value = target - least * scale if m["goal"] == ">=" else target + least * scale
    return _number(value, m, lang)


# -- tables ----------------------------------------------------------------------------------------
def _mix_table(manifest: dict, row: dict, lang: str) -> str:
    infos = infos_by_path()
    e = html.escape
    head = "".join(f"<th>{word(k, lang)}</th>" for k in ("lever", "value", "range", "default"))
    body = []
    for d in manifest["decisions"]:
        value = row.get(d["name"], math.nan)
        base = _base_value(d, infos)
        body.append(
            f"<tr><td>{e(_lever_label(d, infos, lang))}<br><code>{e(d['name'])}</code></td>"
            f"<td>{_plain(value)}</td><td>{_plain(d['lo'])} – {_plain(d['hi'])}</td>"
            f"<td>{_plain(base)}</td></tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _front_table(manifest: dict, summary: dict, trials: pd.DataFrame, lang: str) -> str:
    e = html.escape
    objectives = manifest["objectives"]
    front = [int(t) for t in summary.get("pareto", [])]
    head = [word("trial", lang), *(_measure(m, lang) for m in objectives), word("feasible", lang)]
    rows = []
    for t in front:
        row = _row(trials, t)
        cells = [str(t), *(_number(row.get(_label_of(m), math.nan), m, lang) for m in objectives)]
        cells.append(word("yes" if _true(row.get("feasible")) else "no", lang))
        rows.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    return f"<table><tr>{th}</tr>{''.join(rows)}</table>"


def _row(trials: pd.DataFrame, trial: int) -> dict:
    sel = trials[trials["trial"].astype(str) == str(trial)]
    return sel.iloc[0].to_dict() if len(sel) else {}


def _true(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "1.0")


# -- labels and numbers ----------------------------------------------------------------------------
def _label_of(m: dict) -> str:
    """The measure's label as trials.csv and summary.json write it (spec.Measure.label)."""
    districts = m["districts"]
    where = "each district" if len(districts) > 1 else districts[0]
    when = m["first"] if m["first"] == m["last"] else f"{m['first']}..{m['last']}"
    stat = "" if m["first"] == m["last"] else f" {m['stat']}"
    return f"{m['kpi']}{stat} {when} {where}"


def _measure(m: dict, lang: str) -> str:
    kpi = BY_NAME[m["kpi"]]
    districts = m["districts"]
    if len(districts) > 1:
        where = word("each", lang)
    elif districts[0] == CITY:
        where = word("city", lang)
    else:
        where = districts[0]
    when = m["first"] if m["first"] == m["last"] else f"{m['first']}–{m['last']}"
    return f"{kpi.label(lang)} ({where}, {when})"


def _number(value: Any, m: dict, lang: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if v != v:
        return "—"
    kpi = BY_NAME[m["kpi"]]
    if kpi.kind == "share":
        return f"{v:.1%}"
    if kpi.unit.startswith("yuan") and abs(v) >= 1e6:
        return word("million", lang, v=f"{v / 1e6:,.1f}")
    return f"{v:,.4g}"


def _plain(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if v != v:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:,.3g}"


_ELEMENT = re.compile(r"(?P<path>[\w.]+)\[(?P<index>\d+)\]")


def _lever_label(d: dict, infos: dict, lang: str) -> str:
    path, index = d["path"], None
    m = _ELEMENT.fullmatch(d["name"])
    if m:
        index = int(m["index"])
    if path == "policy.beds_added_per_year_after_2020" and index is not None and index < 3:
        zh, en = WORDS["after_2020"][index]
        return en if lang == "en" else zh
    info = infos.get(path)
    label = path
    if info is not None and info.lever is not None:
        label = info.lever.label_en if lang == "en" else info.lever.label_zh
        if info.lever.mode == "total":  # shown as the stock it reaches; searched as additions
            label = (
                label.replace(", 2020 total", "") + " added"
                if lang == "en"
                else "新增" + label.replace(" 2020年总数", "")
            )
    if index is not None:
        label += f" [{index}]"
    elements = d.get("elements") or []
    default = info.default if info is not None else ()
    summed = info is not None and info.lever is not None and info.lever.mode == "sum"
    whole = isinstance(default, tuple) and len(elements) == len(default)
    if len(elements) > 1 and not (summed and whole):  # a 'sum' label names its years
        first, last = 2016 + min(elements), 2016 + max(elements)
        label += f" ({word('sum_years', lang, years=f'{first}-{last}')})"
    return label


def _base_value(d: dict, infos: dict) -> Any:
    info = infos.get(d["path"])
    if info is None:
        return math.nan
    default = info.default
    if isinstance(default, tuple):
        elements = d.get("elements") or []
        if elements:
            return sum(default[i] for i in elements)
        m = _ELEMENT.fullmatch(d["name"])
        return default[int(m["index"])] if m else sum(default)
    return default


def _duration(seconds: float, lang: str) -> str:
    if seconds != seconds:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} 秒" if lang != "en" else f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.1f} 分钟" if lang != "en" else f"{minutes:.1f} min"
