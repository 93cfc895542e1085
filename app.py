"""Planners' web app for the Taiyuan elderly-care model (Solara).

Run offline (see scripts/prepare_app_assets.sh):
    SOLARA_ASSETS_PROXY_CACHE_DIR=.solara-assets SOLARA_TELEMETRY_MIXPANEL_ENABLE=False \
        solara run app.py --no-check-version
Environment (optional): ELDERCARE_APP_SCALE (default scale, 10), ELDERCARE_APP_REPLICATIONS
(default replications, 3), ELDERCARE_APP_WARMUP=0 to skip compiling the model at start-up.
"""

from __future__ import annotations

import itertools
import os
import threading

import solara

import sim
from sim.app.components import (
    ALL_LEVERS,
    DEFAULT_SCALE,
    LONG_UNTIL,
    MAP_KPIS,
    PLAN_UNTIL,
    SCALE_CHOICES,
    SERIES_KPIS,
    Diagnostics,
    DistrictMap,
    Inspector,
    KpiCards,
    KpiSelect,
    LeverPanel,
    comparison_frame,
    csv_bytes,
    flatten,
    lever_value_from_flat,
    levers_to_overrides,
    load_scenario_info,
    make_params,
    scenario_names,
    seed_problem,
    settings_toml,
    slider_spec,
    time_series_figure,
    warm_up,
)
from sim.app.i18n import DEFAULT_LANG, tr
from sim.app.optimise_panel import OptimisePanel
from sim.app.optimise_panel import t as panel_label

DEFAULT_REPLICATIONS = int(os.environ.get("ELDERCARE_APP_REPLICATIONS", "3"))
LANG_LABELS = {"zh": "中文", "en": "English"}
_run_ids = itertools.count(1)
sim.configure()

if os.environ.get("ELDERCARE_APP_WARMUP", "1") != "0":
    # compile the numba kernels / health tables in the background so the first run is fast
    threading.Thread(target=warm_up, daemon=True, name="eldercare-warmup").start()


@solara.component
def Page():
    # all state is per session (per browser tab / kernel)
    lang = solara.use_reactive(DEFAULT_LANG)
    values = solara.use_reactive({})  # lever path -> slider value (only when set)
    extras = solara.use_reactive({})  # other overrides from a loaded scenario (flat)
    scenario = solara.use_reactive("")
    seed = solara.use_reactive(1)
    replications = solara.use_reactive(DEFAULT_REPLICATIONS)
    scale = solara.use_reactive(DEFAULT_SCALE)
    until = solara.use_reactive(PLAN_UNTIL)
    compare = solara.use_reactive(True)
    request = solara.use_reactive(None)
    progress = solara.use_reactive(0.0)
    result = solara.use_reactive(None)
    error = solara.use_reactive("")
    series_kpi = solara.use_reactive("medical_care_demand_met")
    map_kpi = solara.use_reactive("beds_per_1000")
    map_month = solara.use_reactive(PLAN_UNTIL)
    L = lang.value

    req = request.value

    def work(cancel: threading.Event):
        if req is None:
            return
        from sim.app.components import run_replications

        try:
            res = run_replications(
                req["overrides"],
                req["seeds"],
                req["scale"],
                req["until"],
                req["compare"],
                progress=progress.set,
                cancelled=cancel.is_set,
            )
        except Exception as exc:
            error.set(f"{type(exc).__name__}: {exc}")
            return
        if res is not None:
            result.set(res)
            if map_month.value not in set(res.frames[0]["month"]):
                map_month.set(PLAN_UNTIL)

    task = solara.use_thread(
        work, dependencies=[req["id"] if req else None], intrusive_cancel=False
    )
    running = req is not None and task.state == solara.ResultState.RUNNING

    try:
        overrides = levers_to_overrides(values.value, extras.value)
        make_params(overrides)
        param_error = ""
    except ValueError as exc:
        overrides, param_error = {}, str(exc)
    seed_error = seed_problem(seed.value, replications.value, L)

    def on_run():
        error.set("")
        progress.set(0.0)
        seeds = [int(seed.value) + k for k in range(int(replications.value))]
        request.set(
            {
                "id": next(_run_ids),
                "overrides": overrides,
                "seeds": seeds,
                "scale": float(scale.value),
                "until": until.value,
                "compare": bool(compare.value),
            }
        )

    def on_scenario(name: str):
        scenario.set(name)
        if not name:
            return
        info = load_scenario_info(name)
        flat = flatten(info.overrides)
        new_values = {}
        for lv in ALL_LEVERS:
            v = lever_value_from_flat(lv, flat)
            if abs(v - slider_spec(lv).default) > 1e-9:
                new_values[lv.path] = v
        extras.set(flat)
        values.set(new_values)
        until.set(info.until)
        seed.set(info.seed)

    def on_reset():
        values.set({})
        extras.set({})
        scenario.set("")

    solara.Title(tr("title", L))
    with solara.Column(style="padding: 12px; max-width: 1500px"):
        with solara.Row(style="align-items: center; justify-content: space-between"):
            with solara.Column(gap="0px"):
                solara.HTML("h2", unsafe_innerHTML=tr("title", L), classes=["app-title"])
                solara.Text(tr("subtitle", L), style="color: #555")
            with solara.Row(style="align-items: center"):
                solara.Text(tr("language", L))
                solara.ToggleButtonsSingle(
                    value=LANG_LABELS[L],
                    values=list(LANG_LABELS.values()),
                    on_value=lambda v: lang.set("zh" if v == "中文" else "en"),
                    classes=["lang-toggle"],
                )
        with solara.Columns([4, 8]):
            with solara.Column(classes=["lever-panel"]):
                with solara.Card(tr("scenario", L)):
                    solara.Select(
                        tr("scenario", L),
                        values=["", *scenario_names()],
                        value=scenario.value,
                        on_value=on_scenario,
                    )
                    solara.Button(tr("reset_plan", L), on_click=on_reset, text=True)
                with solara.Card(tr("levers", L)):
                    LeverPanel(values.value, values.set, L, extras.value)
            with solara.Column():
                with solara.Card(tr("run", L)):
                    with solara.Row(style="flex-wrap: wrap; gap: 16px; align-items: center"):
                        solara.ToggleButtonsSingle(
                            value=until.value,
                            values=[PLAN_UNTIL, LONG_UNTIL],
                            on_value=until.set,
                        )
                        solara.Select(
                            tr("scale", L),
                            values=SCALE_CHOICES,
                            value=float(scale.value),
                            on_value=scale.set,
                            style="max-width: 220px",
                        )
                        solara.InputInt(
                            tr("seed", L), value=seed, style="max-width: 110px", classes=["seed"]
                        )
                        solara.SliderInt(
                            f"{tr('replications', L)}: {replications.value}",
                            value=replications,
                            min=1,
                            max=5,
                        )
                        solara.Checkbox(label=tr("compare_plan", L), value=compare)
                    solara.Text(tr("scale_hint", L), style="font-size: 12px; color: #666")
                    with solara.Row(style="align-items: center"):
                        solara.Button(
                            tr("run", L),
                            on_click=on_run,
                            color="primary",
                            disabled=running or bool(param_error) or bool(seed_error),
                            classes=["run-button"],
                        )
                        if running:
                            solara.Button(
                                tr("cancel", L), on_click=lambda: request.set(None), text=True
                            )
                    if running:
                        RunProgress(progress, L)
                    if param_error:
                        solara.Error(param_error)
                    if seed_error:
                        solara.Error(seed_error)
                    if error.value:
                        solara.Error(f"{tr('error', L)}: {error.value}")
                res = result.value
                if res is None:
                    solara.Info(tr("not_run", L))
                else:
                    Results(res, L, series_kpi, map_kpi, map_month, scenario.value)
                with solara.Details(panel_label("optimise", L)):
                    OptimisePanel(L, float(scale.value), int(seed.value))


@solara.component
def RunProgress(progress: solara.Reactive[float], L: str):
    # reads the reactive here so that progress ticks re-render only this small component
    solara.ProgressLinear(value=100 * progress.value)
    solara.Text(f"{tr('running', L)}… {100 * progress.value:.0f}%", classes=["run-progress"])


@solara.component
def Results(res, L, series_kpi, map_kpi, map_month, scenario_name):
    seeds_text = ", ".join(str(s) for s in res.seeds)
    solara.Text(
        f"{tr('seeds_used', L)}: {seeds_text} · {tr('scale', L)}: {res.scale:g} · "
        f"{res.until} · {tr('elapsed', L)} {res.seconds:.1f} s",
        classes=["run-info"],
    )
    with solara.Card(tr("kpis", L), classes=["kpi-section"]):
        KpiCards(res.frames, res.baseline, L)
    with solara.Columns([7, 5]):
        with solara.Card(tr("time_series", L)):
            KpiSelect(tr("kpi", L), SERIES_KPIS, series_kpi.value, series_kpi.set, L)
            solara.FigureMatplotlib(
                time_series_figure(res.frames, series_kpi.value, res.baseline, L),
                format="png",
            )
        with solara.Card(tr("map", L), classes=["map-card"]):
            months = [m for m in res.frames[0]["month"].unique() if m.endswith("-12")]
            month = map_month.value if map_month.value in months else months[-1]
            with solara.Row():
                KpiSelect(tr("kpi", L), MAP_KPIS, map_kpi.value, map_kpi.set, L)
                solara.Select(
                    tr("map_month", L), values=months, value=month, on_value=map_month.set
                )
            DistrictMap(res.frames, map_kpi.value, month, L)
    with solara.Card(tr("diagnostics", L)):
        Diagnostics(res.frames, L)
    with solara.Card(tr("comparison", L)):
        if res.baseline:
            solara.DataFrame(comparison_frame(res, L), items_per_page=20)
        else:
            solara.Text(tr("compare_hint", L))
    with solara.Columns([6, 6]):
        with solara.Card(tr("inspect", L)):
            Inspector(res.model, L)
        with solara.Card(tr("export", L)):
            solara.FileDownload(
                lambda: csv_bytes(res),
                filename=f"eldercare_results_seed{res.seeds[0]}.csv",
                label=tr("export_csv", L),
            )
            solara.FileDownload(
                lambda: settings_toml(
                    scenario_name or "app_settings",
                    "Settings exported from the planners' app",
                    res.until,
                    res.seeds[0],
                    res.scale,
                    res.overrides,
                ),
                filename=f"{scenario_name or 'app_settings'}.toml",
                label=tr("export_toml", L),
            )
