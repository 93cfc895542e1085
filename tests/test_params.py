"""Tests for sim.params: defaults, override validation, declared ranges."""

from __future__ import annotations

import math

import pytest

from sim.params.declare import ParamError, ParamInfo
from sim.params.sections import Params


@pytest.fixture(scope="module")
def infos() -> list[ParamInfo]:
    return Params().describe()


def _raises(overrides: dict) -> ParamError:
    with pytest.raises(ParamError) as err:
        Params().with_overrides(overrides)
    return err.value


def test_defaults_validate(infos: list[ParamInfo]) -> None:
    p = Params()
    assert Params().with_overrides({}) == p
    # re-applying every default through validation gives an equal object
    nested: dict = {}
    for info in infos:
        head, *rest = info.path.split(".")
        node = nested.setdefault(head, {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = list(info.default) if isinstance(info.default, tuple) else info.default
    assert Params().with_overrides(nested) == p
    assert Params().with_overrides(p.to_dict()) == p


def test_override_applies_and_copies() -> None:
    p = Params()
    before = p.demography.mortality_scale
    q = p.with_overrides({"demography": {"mortality_scale": 1.2}})
    assert q.demography.mortality_scale == 1.2
    assert p.demography.mortality_scale == before  # original untouched
    assert q.health == p.health
    r = p.with_overrides({"health": {"unable_selfcare_pct": [2, 3]}})
    assert r.health.unable_selfcare_pct == (2.0, 3.0)
    assert isinstance(r.health.unable_selfcare_pct, tuple)
    s = p.with_overrides({"demography": {"census_2010_60plus": 466_700.0}})
    assert s.demography.census_2010_60plus == 466_700
    assert isinstance(s.demography.census_2010_60plus, int)


def test_unknown_key_suggests_close_match() -> None:
    e = _raises({"demography": {"census_2010_60plu": 1}})
    assert e.path == "demography.census_2010_60plu"
    assert "unknown" in e.message
    assert "did you mean 'demography.census_2010_60plus'" in str(e)


def test_unknown_section_suggests_close_match() -> None:
    e = _raises({"demografy": {"census_2010_60plus": 466_800}})
    assert e.path == "demografy"
    assert "did you mean 'demography'" in str(e)


def test_unknown_key_without_close_match_lists_allowed() -> None:
    e = _raises({"demography": {"xyzzy": 1}})
    assert e.path == "demography.xyzzy"
    assert "allowed" in e.message
    assert "mortality_scale" in e.message


def test_section_must_be_a_table() -> None:
    e = _raises({"demography": 3})
    assert e.path == "demography"


@pytest.mark.parametrize(
    ("overrides", "path", "fragment"),
    [
        ({"demography": {"mortality_scale": "high"}}, "demography.mortality_scale", "number"),
        ({"demography": {"mortality_scale": None}}, "demography.mortality_scale", "number"),
        ({"demography": {"mortality_scale": True}}, "demography.mortality_scale", "number"),
        (
            {"demography": {"census_2010_60plus": 466_800.5}},
            "demography.census_2010_60plus",
            "whole",
        ),
        ({"health": {"unable_selfcare_pct": 2.0}}, "health.unable_selfcare_pct", "list of 2"),
        ({"health": {"unable_selfcare_pct": [2.0, "x"]}}, "health.unable_selfcare_pct", "number"),
    ],
)
def test_wrong_type(overrides: dict, path: str, fragment: str) -> None:
    e = _raises(overrides)
    assert e.path == path
    assert fragment in e.message
    assert str(e).startswith(path + ":")


@pytest.mark.parametrize(
    ("overrides", "path", "lo", "hi"),
    [
        ({"demography": {"mortality_scale": 3.0}}, "demography.mortality_scale", 0.8, 1.2),
        ({"demography": {"mortality_scale": 0.1}}, "demography.mortality_scale", 0.8, 1.2),
        (
            {"demography": {"census_2010_60plus": 1}},
            "demography.census_2010_60plus",
            466_590,
            467_010,
        ),
        ({"health": {"unable_selfcare_pct": [1.0, 20.0]}}, "health.unable_selfcare_pct", 0.5, 8),
        ({"income": {"urban_shares": [0.2, 0.2, 0.2, 0.2, -0.1]}}, "income.urban_shares", 0.0, 1.0),
    ],
)
def test_out_of_range_names_allowed_range(overrides: dict, path: str, lo: float, hi: float) -> None:
    e = _raises(overrides)
    assert e.path == path
    assert "out of range" in e.message
    assert f"[{lo}, {hi}]" in e.message


def test_nan_rejected() -> None:
    e = _raises({"demography": {"mortality_scale": math.nan}})
    assert e.path == "demography.mortality_scale"


@pytest.mark.parametrize("value", [[1.0], [1.0, 2.0, 3.0], []])
def test_tuple_of_wrong_length(value: list) -> None:
    e = _raises({"health": {"unable_selfcare_pct": value}})
    assert e.path == "health.unable_selfcare_pct"
    assert "list of 2" in e.message


def test_param_error_is_value_error() -> None:
    assert issubclass(ParamError, ValueError)


def test_every_default_within_its_range(infos: list[ParamInfo]) -> None:
    assert len(infos) >= 20
    paths = [i.path for i in infos]
    assert len(paths) == len(set(paths))
    for info in infos:
        assert info.lo <= info.hi, info.path
        values = info.default if isinstance(info.default, tuple) else (info.default,)
        assert len(values) > 0 or info.any_length, info.path
        for v in values:
            assert info.lo <= v <= info.hi, f"{info.path}: {v} outside [{info.lo}, {info.hi}]"


def test_every_param_has_a_source(infos: list[ParamInfo]) -> None:
    for info in infos:
        assert isinstance(info.source, str), info.path
        assert info.source.strip(), f"{info.path} has no source"


def test_assumed_flag_follows_source(infos: list[ParamInfo]) -> None:
    for info in infos:
        assert info.assumed == ("assumed" in info.source.lower()), info.path
    assert any(i.assumed for i in infos)
    assert any(not i.assumed for i in infos)


def test_every_source_mentioning_assumed_is_flagged(infos: list[ParamInfo]) -> None:
    unflagged = [i.path for i in infos if "assumed" in i.source.lower() and not i.assumed]
    assert unflagged == []


@pytest.mark.parametrize(
    "path",
    ["income.urban_shares", "income.rural_shares", "households.child_place_if_not_coresident"],
)
def test_share_vectors_sum_to_one(infos: list[ParamInfo], path: str) -> None:
    info = {i.path: i for i in infos}[path]
    assert sum(info.default) == pytest.approx(1.0, abs=1e-9)
