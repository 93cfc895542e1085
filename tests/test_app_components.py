"""Browser-less tests of the planners' app: levers, KPI cards, map, scenarios and export."""

from __future__ import annotations

import os
import tomllib

import ipyvuetify as v
import numpy as np
import pandas as pd
import pytest
import solara

os.environ.setdefault("ELDERCARE_APP_WARMUP", "0")

from sim.app import components as ac
from sim.app.i18n import district_label, tr
from sim.params.sections import Params


def _classes(widget) -> str:
    return getattr(widget, "class_", "") or ""


def _with_class(rc, widget_type, css: str) -> list:
    return [w for w in rc.find(widget_type).widgets if css in _classes(w).split()]


@pytest.fixture(scope="module")
def result() -> ac.RunResult:
    """Two seeds of the plan at a coarse scale, with the (CRN-paired) baseline."""
    return ac.run_replications({}, [1, 2], 1000.0, "2020-12", compare=True)


def test_every_lever_path_exists_and_shows_the_plan_value():
    info = ac.param_info()
    for lever in ac.ALL_LEVERS:
        assert lever.path in info, lever.path
        assert lever.label("zh") and lever.label("en"), lever.path
        spec = ac.slider_spec(lever)
        assert spec.lo <= spec.default <= spec.hi, lever.path
    spec = ac.slider_spec(next(lv for lv in ac.ALL_LEVERS if lv.path == "policy.public_beds_added"))
    assert spec.default == 4424 + 3600  # the plan's 2020 total of public beds


def test_lever_panel_renders_groups_and_reports_changes():
    changes = []
    _, rc = solara.render(ac.LeverPanel({}, changes.append, "en", None), handle_error=False)
    sliders = rc.find(v.Slider).widgets
    assert len(sliders) == len(ac.ALL_LEVERS)
    texts = [w.children[0] for w in _with_class(rc, v.Html, "lever-value")]
    assert any("plan: 6,700 beds" in t for t in texts)  # integrated beds, 2020 total
    # move the integrated-beds slider to the 2015 stock: no beds added 2016-2020
    medical = next(
        i for i, lv in enumerate(ac.ALL_LEVERS) if lv.path == "policy.medical_beds_added"
    )
    sliders[medical].v_model = 966
    assert changes[-1] == {"policy.medical_beds_added": 966.0}
    overrides = ac.levers_to_overrides(changes[-1], {})
    assert overrides == {"policy": {"medical_beds_added": [0, 0, 0, 0, 0]}}
    Params().with_overrides(overrides)


def test_lever_panel_chinese_labels():
    _, rc = solara.render(ac.LeverPanel({}, lambda _: None, "zh", None), handle_error=False)
    texts = [w.children[0] for w in rc.find(v.Html).widgets if w.children]
    medical = next(lv for lv in ac.ALL_LEVERS if lv.path == "policy.medical_beds_added")
    assert medical.label("zh") in texts
    assert any("规划值" in t for t in texts)


def test_scaled_tuple_keeps_the_total_and_shape():
    assert ac.scaled_tuple((720, 720, 720, 720, 720), 7200, 10000) == [1440] * 5
    out = ac.scaled_tuple((1146, 1147, 1147, 1147, 1147), 1001, 10000)
    assert sum(out) == 1001
    assert ac.scaled_tuple((0, 0, 0, 0, 0), 10, 2000) == [2, 2, 2, 2, 2]


@pytest.mark.parametrize("name", ac.scenario_names())
def test_every_shipped_scenario_round_trips_through_the_levers(name):
    info = ac.load_scenario_info(name)
    flat = ac.flatten(info.overrides)
    values = {lv.path: ac.lever_value_from_flat(lv, flat) for lv in ac.ALL_LEVERS}
    rebuilt = ac.levers_to_overrides(values, flat)
    assert ac.make_params(rebuilt) == ac.make_params(info.overrides)


def test_settings_toml_is_a_loadable_scenario():
    overrides = ac.levers_to_overrides({"policy.private_beds_added": 20000.0}, {})
    text = ac.settings_toml("mine", "test", "2020-12", 7, 10.0, overrides)
    data = tomllib.loads(text)
    assert data["seed"] == 7 and data["until"] == "2020-12"
    assert sum(data["params"]["policy"]["private_beds_added"]) == 20000 - 3224
    try:
        from sim.experiments.scenario import loads_scenario
    except ImportError:
        return
    sc = loads_scenario(text)
    assert sc.params == ac.make_params(overrides)


def test_kpi_cards_mark_targets(result):
    _, rc = solara.render(ac.KpiCards(result.frames, result.baseline, "en"), handle_error=False)
    cards = rc.find(v.Card).widgets
    assert len(cards) == len(ac.TARGETS)
    status = [w.children[0] for w in _with_class(rc, v.Html, "kpi-status")]
    expected = [
        "met" if ac.city_at(result.frames, t.kpi).mean() >= t.value else "not met"
        for t in ac.TARGETS
    ]
    assert status == expected
    values = [w.unsafe_innerHTML for w in rc.find(solara.widgets.HTML).widgets]
    beds = ac.city_at(result.frames, "beds_medical").mean()
    assert any(f"{beds:,.0f}" in h for h in values)


def test_kpi_cards_with_synthetic_frames():
    frame = pd.DataFrame(
        {
            "month": ["2020-12"],
            "district": ["Taiyuan"],
            "medical_care_demand_met": [0.85],
            "beds_per_1000": [35.0],
            "private_bed_share": [0.61],
            "beds_medical": [6000.0],
        }
    )
    _, rc = solara.render(ac.KpiCards([frame], None, "zh"), handle_error=False)
    status = [w.children[0] for w in _with_class(rc, v.Html, "kpi-status")]
    met = {"medical_care_demand_met": True, "beds_per_1000": False, "private_bed_share": True,
           "beds_medical": False}  # fmt: skip
    assert status == ["达标" if met[t.kpi] else "未达标" for t in ac.TARGETS]


def test_map_has_ten_districts_with_both_names(result):
    _, rc = solara.render(
        ac.DistrictMap(result.frames, "beds_per_1000", "2020-12", "zh"), handle_error=False
    )
    svg = rc.find(solara.widgets.HTML).widget.unsafe_innerHTML
    assert svg.startswith("<svg") and svg.count('class="district"') == 10
    for code in range(10):
        assert district_label(code, "zh") in svg
        assert district_label(code, "en") in svg  # tooltips carry both names
    values = ac.district_values(result.frames, "beds_per_1000", "2020-12")
    assert len(values) == 10 and np.all(np.isfinite(list(values.values())))
    _, rc = solara.render(
        ac.DistrictMap(result.frames, "unmet_need_share", "2018-12", "en"), handle_error=False
    )
    assert "Xiaodian" in rc.find(solara.widgets.HTML).widget.unsafe_innerHTML


def test_diagnostics_comparison_and_export(result):
    solara.render(ac.Diagnostics(result.frames, "en"), handle_error=False)
    table = ac.comparison_frame(result, "en")
    assert len(table) >= 4
    # same seeds, same (plan) parameters: the paired difference is exactly zero
    for kpi in ("beds_per_1000", "medical_care_demand_met"):
        diff = ac.city_at(result.frames, kpi) - ac.city_at(result.baseline, kpi)
        assert np.allclose(diff, 0)
    csv = ac.csv_bytes(result).decode()
    assert csv.splitlines()[0].startswith("month,district")
    assert "plan_baseline" in csv and "seed" in csv.splitlines()[0]
    fig = ac.time_series_figure(result.frames, "beds_per_1000", result.baseline, "en")
    assert len(fig.axes[0].lines) >= 3  # scenario, baseline, target


def test_inspector_shows_a_facility_and_a_resident(result):
    _, rc = solara.render(ac.Inspector(result.model, "en"), handle_error=False)
    assert "kind" in str(_table_items(rc))
    toggle = rc.find(v.BtnToggle).widget
    toggle.v_model = 1  # resident
    assert "person_key" in str(_table_items(rc))


def _table_items(rc) -> list:
    from solara.components.datatable import DataTableWidget

    return rc.find(DataTableWidget).widget.items


def _title(rc) -> str:
    return next(w.unsafe_innerHTML for w in rc.find(solara.widgets.HTML).widgets)


def test_page_has_per_session_state_and_a_language_toggle():
    import app

    _, rc1 = solara.render(app.Page(), handle_error=False)
    _, rc2 = solara.render(app.Page(), handle_error=False)
    assert _title(rc1) == _title(rc2) == tr("title", "zh")  # Chinese by default
    rc1.find(v.BtnToggle).widgets[0].v_model = 1  # English in the first page only
    assert _title(rc1) == tr("title", "en")
    assert _title(rc2) == tr("title", "zh")
