"""Components and helpers of the planners' web app (app.py is the thin Solara entry point).

Everything that holds state lives inside components (`solara.use_reactive` / `use_state`), so each
browser session has its own levers, runs and results. The only module-level store is a small
cache of plan-baseline metric frames keyed by (seed, scale, until): those are deterministic, so
sharing them between sessions is safe and makes the side-by-side comparison cheap.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import solara

from sim.app.i18n import DEFAULT_LANG, tr
from sim.kpis.frame import CITY
from sim.kpis.registry import KPIS, PLAN_TARGETS, REASON_NAMES, in_view
from sim.params.levers import GROUP_KEYS, group_label, levers

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = ROOT / "scenarios"
PLAN_UNTIL = "2020-12"
LONG_UNTIL = "2035-12"
REASONS = REASON_NAMES
DEFAULT_SCALE = float(os.environ.get("ELDERCARE_APP_SCALE", "10"))
SCALE_CHOICES = sorted({1.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, DEFAULT_SCALE})


# ---------------------------------------------------------------------------------------------
# Targets and KPIs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    kpi: str
    value: float
    percent: bool  # show as a percentage


TARGETS = tuple(Target(k.name, k.target, k.kind == "share") for k in PLAN_TARGETS)
TARGET_BY_KPI = {t.kpi: t for t in TARGETS}
PERCENT_KPIS = frozenset(k.name for k in KPIS if k.kind == "share")
SERIES_KPIS = in_view("series")
MAP_KPIS = in_view("map")


def fmt_value(kpi: str, value: float) -> str:
    """A KPI value for display ('—' when missing)."""
    if value is None or value != value:
        return "—"
    if kpi in PERCENT_KPIS:
        return f"{100 * value:.1f}%"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}"


# ---------------------------------------------------------------------------------------------
# Levers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lever:
    """A slider over one lever's parameter (`sim.params.declare.Lever`).

    mode 'value': the parameter itself. mode 'total': a yearly tuple shown as the 2020 stock
    (`base` parameter + sum of the tuple); moving the slider scales the tuple. mode 'sum': a
    yearly tuple shown as its 2016-2020 sum, scaled the same way.
    """

    path: str
    mode: str = "value"
    base: str | None = None
    label_zh: str = ""
    label_en: str = ""
    acts: str = "behaviour"

    def label(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label_zh


def _slider(info) -> Lever:
    lv = info.lever
    return Lever(info.path, lv.mode, lv.base, lv.label_zh, lv.label_en, lv.acts)


LEVER_GROUPS: tuple[tuple[str, tuple[Lever, ...]], ...] = tuple(
    (key, tuple(_slider(i) for i in levers() if i.lever.group == key)) for key in GROUP_KEYS
)
ALL_LEVERS: tuple[Lever, ...] = tuple(lv for _, group in LEVER_GROUPS for lv in group)
LEVER_PATHS = frozenset(lv.path for lv in ALL_LEVERS)


@cache
def param_info() -> dict[str, Any]:
    """ParamInfo of every leaf parameter by dotted path."""
    from sim.params.sections import Params

    return {info.path: info for info in Params().describe()}


@dataclass(frozen=True)
class SliderSpec:
    lo: float
    hi: float
    step: float
    default: float
    integer: bool
    unit: str
    source: str


@cache
def slider_spec(lever: Lever) -> SliderSpec:
    """Range, step and plan value of a lever, from the parameter's declared range."""
    info = param_info()[lever.path]
    unit, source = info.unit, info.source
    if lever.mode == "value":
        default = info.default
        integer = isinstance(default, int) and not isinstance(default, bool)
        lo, hi = float(info.lo), float(info.hi)
        span = hi - lo
        step = 1.0 if integer else _nice_step(span)
        return SliderSpec(lo, hi, step, float(default), integer, unit, source)
    added = info.default
    base = float(param_info()[lever.base].default) if lever.base else 0.0
    n = len(added)
    hi_sum = min(float(info.hi) * n, max(3.0 * sum(added), 1000.0))
    step = float(max(1, 10 ** max(0, int(math.log10(max(hi_sum, 1))) - 3)))
    return SliderSpec(base, base + hi_sum, step, base + sum(added), True, unit, source)


def _nice_step(span: float) -> float:
    raw = span / 1000.0
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def scaled_tuple(default: tuple[int, ...], total: int, hi: float) -> list[int]:
    """`default` rescaled to sum to `total` (largest remainder; equal split if default is 0)."""
    n = len(default)
    total = max(0, total)
    weights = np.asarray(default, dtype=float)
    if weights.sum() <= 0:
        weights = np.ones(n)
    exact = weights / weights.sum() * total
    out = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - out), kind="stable")[: total - int(out.sum())]:
        out[i] += 1
    return [int(min(v, hi)) for v in out]


def flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'policy': {'x': 1}} -> {'policy.x': 1}."""
    out: dict[str, Any] = {}
    for k, v in nested.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, v in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = list(v) if isinstance(v, tuple) else v
    return out


def lever_value_from_flat(lever: Lever, flat: dict[str, Any]) -> float:
    """The slider value a set of (flat) parameter overrides implies for `lever`."""
    info = param_info()[lever.path]
    value = flat.get(lever.path, info.default)
    if lever.mode == "value":
        return float(value)
    base = float(flat.get(lever.base, param_info()[lever.base].default)) if lever.base else 0.0
    return base + float(sum(value))


def levers_to_overrides(values: dict[str, float], extras: dict[str, Any]) -> dict[str, Any]:
    """Nested parameter overrides from lever values (by path) on top of a scenario's overrides.

    `extras` is the loaded scenario (flat); a lever left where the scenario put it keeps the
    scenario's exact value (a yearly tuple is not rescaled).
    """
    flat = dict(extras)
    for lever in ALL_LEVERS:
        if lever.path not in values:
            continue
        v = values[lever.path]
        if lever.path in extras and abs(v - lever_value_from_flat(lever, extras)) < 1e-9:
            continue
        info = param_info()[lever.path]
        spec = slider_spec(lever)
        if lever.mode == "value":
            flat[lever.path] = round(v) if spec.integer else float(v)
        else:
            base = (
                float(flat.get(lever.base, param_info()[lever.base].default)) if lever.base else 0
            )
            flat[lever.path] = scaled_tuple(info.default, round(v - base), float(info.hi))
    return unflatten(flat)


def seed_problem(seed: int, replications: int, lang: str) -> str:
    """'' if the run's seeds (seed, seed + 1, ... one per replication) are valid, else the
    allowed range in `lang`, to show instead of the model's ValueError or OverflowError."""
    from sim.experiments.scenario import SEED_LIMIT

    hi = SEED_LIMIT - max(int(replications), 1)
    ok = isinstance(seed, int) and 0 <= seed <= hi
    return "" if ok else tr("seed_range", lang).format(hi=f"{hi:,}")


def make_params(overrides: dict[str, Any]):
    from sim.params.sections import Params

    return Params().with_overrides(overrides)


# ---------------------------------------------------------------------------------------------
# Scenarios and export
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    description: str
    until: str
    seed: int
    overrides: dict[str, Any]


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario_info(name: str) -> ScenarioInfo:
    """A shipped scenario via sim.experiments.scenario if present, else a plain TOML read (with
    extends)."""
    try:
        from sim.experiments.scenario import load_scenario
    except ImportError:
        load_scenario = None
    if load_scenario is not None:
        sc = load_scenario(name)
        return ScenarioInfo(sc.name, sc.description, sc.until, sc.seed, dict(sc.overrides))
    data = tomllib.loads((SCENARIO_DIR / f"{name}.toml").read_text(encoding="utf-8"))
    params: dict[str, Any] = {}
    until, seed = PLAN_UNTIL, 1
    if data.get("extends"):
        parent = load_scenario_info(str(data["extends"]))
        params, until, seed = flatten(parent.overrides), parent.until, parent.seed
    params.update(flatten(data.get("params", {})))
    return ScenarioInfo(
        data.get("name", name),
        data.get("description", ""),
        data.get("until", until),
        int(data.get("seed", seed)),
        unflatten(params),
    )


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float):
        return repr(float(v))
    return str(v)


def settings_toml(
    name: str, description: str, until: str, seed: int, scale: float, overrides: dict
) -> str:
    """The current settings as a scenario file readable by sim.experiments.scenario / tomllib."""
    lines = [
        "# Exported from the planners' app",
        f"name = {_toml_value(name)}",
        f"description = {_toml_value(description)}",
        f'until = "{until}"',
        f"seed = {int(seed)}",
        f"scale = {_toml_value(float(scale))}",
    ]
    for section, table in overrides.items():
        lines += ["", f"[params.{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in flatten(table).items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """Metric frames of one scenario over a few seeds (CRN-paired with the baseline if any)."""

    seeds: list[int]
    scale: float
    until: str
    overrides: dict[str, Any]
    frames: list[pd.DataFrame]
    baseline: list[pd.DataFrame] | None = None
    model: Any = None  # the first seed's model, for inspection
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def combined(self) -> pd.DataFrame:
        return pd.concat(
            [f.assign(seed=s) for s, f in zip(self.seeds, self.frames, strict=True)],
            ignore_index=True,
        )


_BASELINE_CACHE: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_BASELINE_LOCK = threading.Lock()


def _run_one(seed, scale, params, until, tick: Callable[[], bool]):
    from sim.core.model import CareModel
    from sim.engine.calendar import month_index

    model = CareModel(seed=seed, scale=scale, params=params)
    last = month_index(until)
    while model.month <= last:
        if tick():
            return None
        model.step()
    return model


def run_replications(
    overrides: dict[str, Any],
    seeds: list[int],
    scale: float,
    until: str,
    compare: bool,
    progress: Callable[[float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> RunResult | None:
    """Run the scenario (and the plan baseline if `compare`) for every seed; None if cancelled."""
    from sim.engine.calendar import month_index

    t0 = time.perf_counter()
    params = make_params(overrides)
    months = month_index(until) + 1
    todo_base = []
    if compare:
        with _BASELINE_LOCK:
            todo_base = [s for s in seeds if (s, scale, until) not in _BASELINE_CACHE]
    total = months * (len(seeds) + len(todo_base))
    done = [0]
    last_report = [0.0]

    def tick() -> bool:
        done[0] += 1
        now = time.perf_counter()
        if progress and (now - last_report[0] > 0.5 or done[0] >= total):
            last_report[0] = now
            progress(min(1.0, done[0] / max(total, 1)))
        return bool(cancelled and cancelled())

    frames, first_model = [], None
    for seed in seeds:
        model = _run_one(seed, scale, params, until, tick)
        if model is None:
            return None
        frames.append(model.metrics())
        if first_model is None:
            first_model = model
    baseline = None
    if compare:
        plan = make_params({})
        for seed in todo_base:
            model = _run_one(seed, scale, plan, until, tick)
            if model is None:
                return None
            with _BASELINE_LOCK:
                _BASELINE_CACHE[(seed, scale, until)] = model.metrics()
                while len(_BASELINE_CACHE) > 24:
                    _BASELINE_CACHE.popitem(last=False)
        with _BASELINE_LOCK:
            baseline = [_BASELINE_CACHE[(s, scale, until)] for s in seeds]
    if progress:
        progress(1.0)
    return RunResult(
        seeds, scale, until, overrides, frames, baseline, first_model, time.perf_counter() - t0
    )


def city_at(frames: list[pd.DataFrame], kpi: str, month: str | None = None) -> np.ndarray:
    """The city value of `kpi` at `month` (default: 2020-12 or the last month) for each seed."""
    out = []
    for f in frames:
        city = f[f["district"] == CITY]
        m = month or (PLAN_UNTIL if PLAN_UNTIL in set(city["month"]) else city["month"].iloc[-1])
        row = city[city["month"] == m]
        out.append(float(row[kpi].iloc[0]) if len(row) else float("nan"))
    return np.asarray(out)


def district_values(frames: list[pd.DataFrame], kpi: str, month: str) -> dict[str, float]:
    """Mean over seeds of `kpi` by district (English name) at `month`."""
    rows = [f[(f["month"] == month) & (f["district"] != CITY)][["district", kpi]] for f in frames]
    both = pd.concat(rows)
    return both.groupby("district", sort=False)[kpi].mean().to_dict()


def warm_up() -> None:
    """Compile the numba kernels and build the health tables once per server process."""
    _run_one(1, 1000.0, make_params({}), "2016-02", lambda: False)


# ---------------------------------------------------------------------------------------------
# Map (inline SVG: works offline, one <path class="district"> per district)
# ---------------------------------------------------------------------------------------------
@cache
def _district_shapes() -> tuple[tuple[int, str, str, tuple], ...]:
    from sim.population.geography import district_geojson

    shapes = []
    for feat in district_geojson()["features"]:
        p, geom = feat["properties"], feat["geometry"]
        polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        rings = tuple(tuple(tuple(pt[:2]) for pt in ring) for poly in polys for ring in poly)
        shapes.append((int(p["code"]), p["name_zh"], p["name_en"], rings))
    return tuple(sorted(shapes))


def _color(x: float) -> str:
    from matplotlib import colormaps

    if x != x:
        return "#cccccc"
    r, g, b, _ = colormaps["YlGnBu"](0.1 + 0.85 * min(max(x, 0.0), 1.0))
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def choropleth_svg(values: dict[str, float], kpi: str, lang: str, width: int = 460) -> str:
    """SVG map of the 10 districts coloured by `values` (keyed by English district name)."""
    shapes = _district_shapes()
    pts = np.array([pt for _, _, _, rings in shapes for ring in rings for pt in ring])
    lon0, lon1 = pts[:, 0].min(), pts[:, 0].max()
    lat0, lat1 = pts[:, 1].min(), pts[:, 1].max()
    kx = math.cos(math.radians((lat0 + lat1) / 2))
    sx = (width - 20) / ((lon1 - lon0) * kx)
    height = int((lat1 - lat0) * sx) + 20 + 40

    def xy(pt):
        return 10 + (pt[0] - lon0) * kx * sx, 10 + (lat1 - pt[1]) * sx

    vals = [v for v in values.values() if v == v]
    vmin, vmax = (min(vals), max(vals)) if vals else (0.0, 1.0)
    span = (vmax - vmin) or 1.0
    parts = [
        f'<svg class="choropleth" xmlns="http://www.w3.org/2000/svg" width="100%" '
        f'viewBox="0 0 {width} {height}" style="font-family:sans-serif; max-width:{width}px">'
    ]
    labels = []
    for code, zh, en, rings in shapes:
        v = values.get(en, float("nan"))
        d = " ".join(
            "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in map(xy, ring)) + " Z" for ring in rings
        )
        name = zh if lang == "zh" else en
        parts.append(
            f'<path class="district" data-code="{code}" data-name="{en}" d="{d}" '
            f'fill="{_color((v - vmin) / span)}" fill-rule="evenodd" stroke="#555" '
            f'stroke-width="0.8"><title>{zh} {en}: {fmt_value(kpi, v)}</title></path>'
        )
        outer = np.array([xy(p) for p in max(rings, key=len)])
        cx, cy = outer.mean(axis=0)
        if np.ptp(outer[:, 0]) < 0.12 * width:  # small urban district: name in the tooltip only
            name = ""
        labels.append(
            f'<text x="{cx:.0f}" y="{cy:.0f}" font-size="10" text-anchor="middle" '
            f'fill="#222">{name}<tspan x="{cx:.0f}" dy="11">{fmt_value(kpi, v)}</tspan></text>'
        )
    parts += labels
    y = height - 28
    parts.append(
        '<defs><linearGradient id="lg"><stop offset="0" stop-color="'
        f'{_color(0)}"/><stop offset="0.5" stop-color="{_color(0.5)}"/><stop offset="1" '
        f'stop-color="{_color(1)}"/></linearGradient></defs>'
        f'<rect x="10" y="{y}" width="200" height="10" fill="url(#lg)" stroke="#555"/>'
        f'<text x="10" y="{y + 22}" font-size="10">{fmt_value(kpi, vmin)}</text>'
        f'<text x="210" y="{y + 22}" font-size="10" text-anchor="end">{fmt_value(kpi, vmax)}'
        f'</text><text x="220" y="{y + 9}" font-size="11">{tr(kpi, lang)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------
@solara.component
def LeverSlider(lever: Lever, value: float, on_value: Callable[[str, float], None], lang: str):
    spec = slider_spec(lever)
    plan = fmt_num(spec.default, spec.integer)
    changed = abs(value - spec.default) > 1e-9
    style = "border-left: 3px solid #e65100; padding-left: 6px" if changed else "padding-left: 9px"
    css = "lever-" + lever.path.replace(".", "-")
    with solara.Column(gap="0px", style=style, classes=["lever", css]):
        solara.Text(lever.label(lang), style="font-size: 13px; font-weight: 500")
        if spec.integer:
            solara.SliderInt(
                "",
                value=round(value),
                min=int(spec.lo),
                max=int(spec.hi),
                step=1,
                on_value=lambda v: on_value(lever.path, float(v)),
            )
        else:
            solara.SliderFloat(
                "",
                value=float(value),
                min=spec.lo,
                max=spec.hi,
                step=spec.step,
                on_value=lambda v: on_value(lever.path, float(v)),
            )
        solara.Text(
            f"{fmt_num(value, spec.integer)}{_unit(spec.unit)} · {tr('plan_value', lang)}: "
            f"{plan}{_unit(spec.unit)}",
            style="font-size: 12px; color: #444; margin-top: -14px",
            classes=["lever-value"],
        )


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def fmt_num(v: float, integer: bool) -> str:
    return f"{round(v):,}" if integer else f"{v:,.4g}"


@solara.component
def LeverPanel(
    values: dict[str, float],
    on_values: Callable[[dict[str, float]], None],
    lang: str = DEFAULT_LANG,
    extras: dict[str, Any] | None = None,
):
    """The levers grouped as the plan groups them; each shows the plan's value."""

    def set_one(path: str, v: float) -> None:
        lever = next(lv for lv in ALL_LEVERS if lv.path == path)
        spec = slider_spec(lever)
        current = values.get(path, lever_value_from_flat(lever, extras or {}))
        if abs(v - current) < (0.5 if spec.integer else spec.step / 2):
            return  # a float slider snapping its value to the step grid, not a user change
        new = dict(values)
        new[path] = v
        if new != values:
            on_values(new)

    for group, sliders in LEVER_GROUPS:
        with solara.Details(group_label(group, lang), expand=group in ("beds", "medical")):
            for lever in sliders:
                v = values.get(lever.path, lever_value_from_flat(lever, extras or {}))
                LeverSlider(lever, v, set_one, lang)
    others = {k: v for k, v in (extras or {}).items() if k not in LEVER_PATHS}
    if others:
        solara.Markdown(
            f"**{tr('extra_overrides', lang)}:** "
            + ", ".join(f"`{k} = {v}`" for k, v in sorted(others.items()))
        )


@solara.component
def KpiCards(
    frames: list[pd.DataFrame], baseline: list[pd.DataFrame] | None = None, lang: str = DEFAULT_LANG
):
    """The four plan targets at 2020-12 (mean over seeds), marked met / not met."""
    with solara.Row(style="flex-wrap: wrap; gap: 12px"):
        for t in TARGETS:
            vals = city_at(frames, t.kpi)
            mean = float(np.nanmean(vals)) if len(vals) else float("nan")
            met = mean >= t.value
            colour = "#2e7d32" if met else "#c62828"
            with (
                solara.Card(
                    style=f"min-width: 220px; border-top: 5px solid {colour}",
                    classes=["kpi-card", f"kpi-{t.kpi}"],
                ),
                solara.Column(gap="2px"),
            ):
                solara.Text(tr(t.kpi, lang), style="font-weight: bold")
                solara.HTML(
                    "div",
                    unsafe_innerHTML=f"<span style='font-size: 26px'>{fmt_value(t.kpi, mean)}"
                    "</span>",
                    classes=["kpi-value"],
                )
                if len(vals) > 1:
                    lo, hi = fmt_value(t.kpi, np.nanmin(vals)), fmt_value(t.kpi, np.nanmax(vals))
                    solara.Text(f"{tr('range', lang)}: {lo} – {hi}", style="font-size: 12px")
                solara.Text(f"{tr('target', lang)}: {fmt_value(t.kpi, t.value)}")
                solara.Text(
                    tr("met", lang) if met else tr("not_met", lang),
                    style=f"color: {colour}; font-weight: bold",
                    classes=["kpi-status", "met" if met else "not-met"],
                )
                if baseline:
                    b = fmt_value(t.kpi, float(np.nanmean(city_at(baseline, t.kpi))))
                    solara.Text(f"{tr('baseline', lang)}: {b}", style="font-size: 12px")


@solara.component
def DistrictMap(frames: list[pd.DataFrame], kpi: str, month: str, lang: str = DEFAULT_LANG):
    """Choropleth of the 10 districts for one KPI and month (mean over seeds)."""
    values = district_values(frames, kpi, month)
    solara.HTML("div", unsafe_innerHTML=choropleth_svg(values, kpi, lang), classes=["map"])


def time_series_figure(
    frames: list[pd.DataFrame],
    kpi: str,
    baseline: list[pd.DataFrame] | None,
    lang: str,
):
    """Mean line, band over seeds, target line and the plan baseline (dashed)."""
    from matplotlib.figure import Figure

    en = lang if _has_cjk_font() else "en"
    fig = Figure(figsize=(7.5, 3.4), dpi=100)
    ax = fig.add_subplot()

    def series(fs):
        wide = pd.concat(
            [f[f["district"] == CITY].set_index("month")[kpi] for f in fs], axis=1
        ).astype(float)
        wide = wide.dropna(how="all")  # care figures start in 2016-01, the population's in 2010
        x = pd.PeriodIndex(wide.index, freq="M").to_timestamp()
        return x, wide.to_numpy()

    pct = 100 if kpi in PERCENT_KPIS else 1
    x, y = series(frames)
    ax.fill_between(x, np.nanmin(y, 1) * pct, np.nanmax(y, 1) * pct, alpha=0.25, color="C0",
                    label=tr("band", en))  # fmt: skip
    ax.plot(x, np.nanmean(y, 1) * pct, color="C0", label=tr("scenario_col", en))
    if baseline:
        bx, by = series(baseline)
        ax.plot(bx, np.nanmean(by, 1) * pct, "--", color="C1", label=tr("baseline", en))
    if kpi in TARGET_BY_KPI:
        ax.axhline(TARGET_BY_KPI[kpi].value * pct, color="C3", lw=1, ls=":",
                   label=tr("target", en))  # fmt: skip
    ax.set_title(tr(kpi, en) + (" (%)" if pct == 100 else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


@cache
def _has_cjk_font() -> bool:
    from matplotlib import font_manager, rcParams

    names = {f.name for f in font_manager.fontManager.ttflist}
    for cand in ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "SimHei"):
        if cand in names:
            rcParams["font.sans-serif"] = [cand, *rcParams["font.sans-serif"]]
            return True
    return False


@solara.component
def Diagnostics(frames: list[pd.DataFrame], lang: str = DEFAULT_LANG):
    """Why needs go unmet and why beds stand empty, city at 2020-12 (mean over seeds)."""
    with solara.Row(style="flex-wrap: wrap; gap: 24px"):
        for prefix, title in (("unmet_reason_", "why_unmet"), ("empty_reason_", "why_empty")):
            vals = {r: float(np.nanmean(city_at(frames, prefix + r))) for r in REASONS}
            top = max(vals.values()) or 1.0
            rows = "".join(
                f"<tr><td style='padding-right:8px'>{tr('r_' + r, lang)}</td>"
                f"<td style='width:220px'><div style='background:#5c6bc0;height:12px;"
                f"width:{200 * v / top:.0f}px'></div></td><td style='text-align:right'>"
                f"{v:,.0f}</td></tr>"
                for r, v in vals.items()
            )
            with solara.Column(classes=[f"diag-{title}"]):
                solara.Text(tr(title, lang), style="font-weight: bold")
                solara.HTML("table", unsafe_innerHTML=rows, style="font-size: 13px")


def comparison_frame(result: RunResult, lang: str) -> pd.DataFrame:
    """KPI at 2020-12: scenario, baseline, paired difference (mean and range over seeds)."""
    rows = []
    kpis = [t.kpi for t in TARGETS] + [
        "unmet_need_share",
        "empty_beds",
        "coverage_community_centre",
        "coverage_day_care",
        "spending_total",
    ]
    for kpi in kpis:
        s = city_at(result.frames, kpi)
        b = city_at(result.baseline, kpi)
        d = s - b
        rows.append(
            {
                tr("kpi", lang): tr(kpi, lang),
                tr("scenario_col", lang): fmt_value(kpi, float(np.nanmean(s))),
                tr("baseline", lang): fmt_value(kpi, float(np.nanmean(b))),
                tr("difference", lang): fmt_value(kpi, float(np.nanmean(d))),
                tr("range", lang): f"{fmt_value(kpi, float(np.nanmin(d)))} – "
                f"{fmt_value(kpi, float(np.nanmax(d)))}",
            }
        )
    return pd.DataFrame(rows)


@solara.component
def Inspector(model: Any, lang: str = DEFAULT_LANG):
    kind, set_kind = solara.use_state("facility")
    index, set_index = solara.use_state(0)
    if model is None:
        return
    n = len(model.facility_agents) if kind == "facility" else model.pop.size
    i = min(max(int(index), 0), n - 1)
    with solara.Row(style="align-items: center; gap: 12px"):
        solara.ToggleButtonsSingle(
            value=kind,
            values=["facility", "resident"],
            on_value=set_kind,
        )
        solara.InputInt(f"{tr('index', lang)} (0–{n - 1})", value=i, on_value=set_index)
    try:
        info = (
            model.facility_agents[i].describe()
            if kind == "facility"
            else model.resident(i).describe()
        )
    except Exception as exc:  # an inspector must never break the page
        solara.Error(str(exc))
        return
    solara.DataFrame(
        pd.DataFrame({"field": list(info), "value": [str(v) for v in info.values()]}),
        items_per_page=20,
    )


def csv_bytes(result: RunResult) -> bytes:
    buf = io.StringIO()
    frame = result.combined()
    if result.baseline:
        base = pd.concat(
            [f.assign(seed=s) for s, f in zip(result.seeds, result.baseline, strict=True)]
        ).assign(run="plan_baseline")
        frame = pd.concat([frame.assign(run="scenario"), base], ignore_index=True)
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


@solara.component
def KpiSelect(label: str, kpis: tuple[str, ...], value: str, on_value, lang: str):
    """A select showing translated KPI names."""
    names = {tr(k, lang): k for k in kpis}
    solara.Select(
        label,
        values=list(names),
        value=tr(value, lang),
        on_value=lambda name: on_value(names.get(name, value)),
    )
