"""Scenario files: shipped ones load and run; bad files raise ScenarioError naming the field."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.experiments.results import simulate
from sim.experiments.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    available,
    load_scenario,
    loads_scenario,
    scenario_from_dict,
)
from sim.params.sections import Params

SHIPPED = (
    "plan_2016_2020",
    "frozen_2015",
    "plan_delayed",
    "medical_integration_push",
    "home_and_community_first",
    "ageing_2035",
)


def test_all_shipped_scenarios_present_with_header_comment() -> None:
    assert set(SHIPPED) <= set(available())
    for name in SHIPPED:
        text = (SCENARIO_DIR / f"{name}.toml").read_text(encoding="utf-8")
        assert text.startswith("#"), name


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_loads_and_runs(name: str) -> None:
    sc = load_scenario(name)
    assert sc.name == name and sc.description
    assert Params().with_overrides(sc.overrides) == sc.params
    until = "2016-03"
    frame = simulate(sc.params, 1, 200, until)
    city = frame[(frame["district"] == "Taiyuan") & (frame["month"] == until)]
    assert len(city) == 1 and city["residents_60plus"].iloc[0] > 0


def test_scenario_contents() -> None:
    plan = load_scenario("plan_2016_2020")
    assert plan.overrides == {} and plan.params == Params() and plan.until == "2020-12"
    frozen = load_scenario("frozen_2015").params.policy
    assert (
        sum(frozen.public_beds_added + frozen.private_beds_added + frozen.medical_beds_added) == 0
    )
    delayed = load_scenario("plan_delayed").params.policy
    assert sum(delayed.private_beds_added) * 2 == pytest.approx(
        sum(Params().policy.private_beds_added), abs=1
    )
    push = load_scenario("medical_integration_push").params
    assert sum(push.policy.medical_beds_added) == 2 * sum(Params().policy.medical_beds_added)
    home = load_scenario("home_and_community_first").params
    assert sum(home.services.teams_added) > 0 and home.policy.voucher_amount > 200
    ageing = load_scenario("ageing_2035")
    assert ageing.until == "2035-12"
    assert ageing.params.policy.community_centres_added_per_year_after_2020 == 20


def test_ageing_2035_runs_past_2020_briefly() -> None:
    sc = load_scenario("ageing_2035")
    frame = simulate(sc.params, 1, 200, "2016-02")
    assert frame["month"].iloc[0] == "2010-11"  # the population alone from the census
    assert set(frame.dropna(subset=["beds_per_1000"])["month"]) == {"2016-01", "2016-02"}


def test_extends_deep_merges(tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text(
        'name="b"\nseed=7\n[params.money]\nprice_public_home=1500.0\nprice_day_care=600.0\n'
    )
    child = tmp_path / "child.toml"
    child.write_text('extends="base.toml"\nname="c"\n[params.money]\nprice_day_care=700.0\n')
    sc = load_scenario(child)
    assert sc.seed == 7 and sc.name == "c"
    assert sc.params.money.price_public_home == 1500.0 and sc.params.money.price_day_care == 700.0
    # extending a shipped scenario by name
    grand = tmp_path / "g.toml"
    grand.write_text('extends="frozen_2015"\n[params.policy]\nvoucher_amount=300.0\n')
    g = load_scenario(grand)
    assert sum(g.params.policy.private_beds_added) == 0 and g.params.policy.voucher_amount == 300


def _err(text: str, tmp_path: Path, name: str = "bad.toml") -> ScenarioError:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def test_bad_files_name_file_and_field(tmp_path: Path) -> None:
    e = _err("name = \n", tmp_path)
    assert "bad.toml" in str(e) and "malformed TOML" in str(e)
    e = _err('descripton = "x"\n', tmp_path)
    assert e.field == "descripton" and "did you mean 'description'" in str(e)
    e = _err("[params.money]\nprice_privat_home = 3000.0\n", tmp_path)
    assert e.field == "params.money.price_privat_home" and "price_private_home" in str(e)
    e = _err('[params.money]\nprice_private_home = "cheap"\n', tmp_path)
    assert e.field == "params.money.price_private_home" and "expected a number" in str(e)
    e = _err("[params.money]\nprice_private_home = 99999.0\n", tmp_path)
    assert "out of range" in str(e) and "1500" in str(e)
    e = _err('until = "2020-13"\n', tmp_path)
    assert e.field == "until"
    e = _err("scale = 0.5\n", tmp_path)
    assert e.field == "scale"
    e = _err('extends = "plan_2016_202"\n', tmp_path)
    assert e.field == "extends" and "plan_2016_2020" in str(e)
    e = _err('extends = "bad.toml"\n', tmp_path)
    assert "circular" in str(e)
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "missing.toml")
    assert "missing.toml" in str(info.value)
    with pytest.raises(ScenarioError) as info:
        load_scenario("frozen_2016")
    assert "frozen_2015" in str(info.value)
    for err in (e, info.value):
        assert "\n" not in str(err)


_keys = st.sampled_from(
    ["name", "description", "extends", "until", "seed", "scale", "params", "money", "policy",
     "price_private_home", "voucher_amount", "teams_added", "x", "nmae"]
)  # fmt: skip
_scalars = (
    st.none().map(lambda _: "s")
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["2020-12", "2016-01", "plan_2016_2020", "frozen_2015", "1999-01"])
    | st.sampled_from(["2035-12", "2036-01", "2099-12", "9999-12", 2**63, 2**64, 1e6, 1e9])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys | st.text(max_size=8), _values, max_size=6))
def test_fuzz_scenario_dicts(data: dict) -> None:
    try:
        sc = scenario_from_dict(data, "<fuzz>")
    except ScenarioError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(sc.params, Params)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "é中", max_size=200))
def test_fuzz_scenario_text(text: str) -> None:
    try:
        loads_scenario(text, "fuzz.toml")
    except ScenarioError as err:
        assert str(err).startswith("fuzz.toml")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["[params.money]", "[params.policy]", "[params]", "[sweep]", ""]),
            st.sampled_from(
                [
                    "price_private_home",
                    "voucher_amount",
                    "public_beds_added",
                    "until",
                    "seed",
                    "scale",
                    "name",
                    "teams_added",
                ]
            ),
            st.sampled_from(
                [
                    "1",
                    "-3",
                    "2.5e3",
                    '"x"',
                    "[1,2,3,4,5]",
                    "true",
                    "nan",
                    '"2020-12"',
                    "{a=1}",
                    "1e400",
                    "99999999999999999999",
                    '"2099-12"',
                    '"9999-12"',
                    "18446744073709551616",
                    "1e9",
                    "[" * 5000 + "]" * 5000,
                    "{a=" * 400 + "1" + "}" * 400,
                    "[" * 20 + "]" * 20,
                ]
            ),
        ),
        max_size=6,
    )
)
def test_fuzz_scenario_toml_lines(lines: list[tuple[str, str, str]]) -> None:
    text = "\n".join(f"{h}\n{k} = {v}" for h, k, v in lines)
    try:
        loads_scenario(text, "fuzz.toml")
    except ScenarioError as err:
        assert "fuzz.toml" in str(err) and "\n" not in str(err)


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ('until = "2099-12"\n', "until", "allowed 2016-01..2035-12"),
        ('until = "9999-12"\n', "until", "past the last month the data cover"),
        ('until = "2035-12"\nseed = 9223372036854775808\n', "seed", "2**63"),
        ("scale = 1e9\n", "scale", "[1, 1e6]"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "toml", "nested deeper than 16"),
        ("[params]\nx = " + "{a=" * 400 + "1" + "}" * 400 + "\n", "toml", "nested deeper"),
        ("[params.policy]\nvoucher_amount = " + "[" * 16 + "]" * 16 + "\n", "toml", "nested"),
    ],
)
def test_limits_of_scenario_files(tmp_path: Path, text: str, field: str, needle: str) -> None:
    e = _err(text, tmp_path)
    assert e.field == field and needle in str(e) and "\n" not in str(e)
    assert load_scenario(_path(tmp_path, 'until = "2035-12"\n')).until == "2035-12"


def _path(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ok.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_calendar_ends_where_the_data_end() -> None:
    from sim import CareModel
    from sim.care.facilities import HORIZON_YEAR
    from sim.engine.calendar import LAST_MONTH, month_label

    assert month_label(LAST_MONTH) == f"{HORIZON_YEAR}-12"
    with pytest.raises(ValueError, match=r"allowed 2016-01\.\.2035-12"):
        CareModel(seed=1, scale=1000).run_until("2036-01")
