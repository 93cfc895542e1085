"""Geography of Taiyuan: the 10 county-level units and their synthetic neighbourhoods.

Why this module exists: care supply (day-care centres, institutions) and demand (older people)
live in places, and access falls with distance. The model needs districts with real populations
and boundaries, and neighbourhoods (urban communities / administrative villages) with locations.

SYNTHETIC POINTS: the neighbourhood *counts* are real (515 communities and 998 villages in 2015,
from the plan in ``data/neighbourhood_counts.csv``) but their split across districts and their
locations are synthetic. Counts are allocated in proportion to the 2024 urban / rural population,
and points are drawn deterministically inside the real district polygons. Village sizes are drawn
from an assumed distribution. Do not read any single point as a real place.

Data files (all under ``data/`` next to this module, no run-time dependency outside the package):
``districts.csv``, ``neighbourhood_counts.csv``, ``taiyuan_districts.geojson``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from sim.engine.districts import DISTRICTS

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

DISTRICT_CODES: tuple[str, ...] = tuple(name_en for _, _, name_en in DISTRICTS)
"""District ``name_en`` in code order: ``DISTRICT_CODES[code]``."""

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius; 1 degree of latitude = 111.195 km

# Assumed: sd of the normal around the district centroid from which urban communities are drawn,
# as a fraction of sqrt(area). Urban communities cluster around the built-up core; 0.25 keeps
# most points within the central half of a compact district. Not calibrated.
CONCENTRATION_SD_FRACTION = 0.25

# Assumed: registered village sizes were not found; chosen so that roughly 30% of villages exceed
# 1,000 people, matching the plan's 300 rural day-care centres for every village of over 1,000
# people; plausible range median 500-900.
VILLAGE_POP_MEDIAN = 700.0
VILLAGE_POP_SIGMA = 0.6

DEFAULT_SEED = 20160101

_STREAM_COMMUNITY = 0
_STREAM_VILLAGE = 1
_STREAM_VILLAGE_POP = 2

_DISTRICT_COLUMNS = (
    "code",
    "name_en",
    "name_zh",
    "adcode",
    "unit_type",
    "area_km2",
    "centroid_lon",
    "centroid_lat",
    "pop_2024",
    "urban_2024",
    "rural_2024",
    "deaths_2024",
    "death_rate_permille_2024",
    "source",
)
_COUNT_COLUMNS = ("kind", "count", "year", "source")

Ring = np.ndarray  # (k, 2) closed ring of lon/lat vertices


@dataclass(frozen=True, eq=False)
class Geography:
    """Districts and neighbourhoods. Shared via a cache: treat the frames as read-only.

    ``districts``: index ``code`` 0..9, the columns of ``districts.csv`` plus ``urban_share``.
    ``neighbourhoods``: index 0..N-1; columns ``district`` (code), ``kind`` ('community' or
    'village'), ``lon``, ``lat``, ``x_km``, ``y_km``, ``registered_pop`` (villages only, else 0)
    and ``name``.
    """

    districts: pd.DataFrame
    neighbourhoods: pd.DataFrame


def _read_csv(name: str, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a packaged CSV and fail loudly, naming file and column, if the schema drifts."""
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"packaged data file missing: {path}")
    df = pd.read_csv(path)
    for col in required:
        if col not in df.columns:
            raise ValueError(f"{path.name}: required column {col!r} is missing")
    return df


@functools.lru_cache(maxsize=1)
def _districts() -> pd.DataFrame:
    """District table, validated against ``DISTRICT_CODES``."""
    df = _read_csv("districts.csv", _DISTRICT_COLUMNS)
    df = df.set_index("code", drop=False).sort_index()
    df.index.name = None
    if tuple(df["name_en"]) != DISTRICT_CODES or list(df["code"]) != list(range(10)):
        raise ValueError(
            f"districts.csv: expected codes 0..9 named {DISTRICT_CODES}, got {list(df['name_en'])}"
        )
    if not (df["urban_2024"] + df["rural_2024"] == df["pop_2024"]).all():
        raise ValueError("districts.csv: urban_2024 + rural_2024 != pop_2024")
    df["urban_share"] = df["urban_2024"] / df["pop_2024"]
    return df


@functools.lru_cache(maxsize=1)
def _neighbourhood_counts() -> dict[str, int]:
    """Total communities / villages (2015 plan baseline)."""
    df = _read_csv("neighbourhood_counts.csv", _COUNT_COLUMNS)
    counts = dict(zip(df["kind"], df["count"].astype(int), strict=True))
    for kind in ("community", "village"):
        if kind not in counts:
            raise ValueError(f"neighbourhood_counts.csv: no row with kind {kind!r}")
    return counts


@functools.lru_cache(maxsize=1)
def district_geojson() -> dict:
    """The packaged GeoJSON FeatureCollection (10 features, property ``code`` 0..9)."""
    path = DATA_DIR / "taiyuan_districts.geojson"
    if not path.is_file():
        raise FileNotFoundError(f"packaged data file missing: {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    for i, feat in enumerate(data.get("features", [])):
        for key in ("code", "adcode", "name_zh", "name_en"):
            if key not in feat.get("properties", {}):
                raise ValueError(f"{path.name}: feature {i} lacks property {key!r}")
    return data


@functools.lru_cache(maxsize=1)
def _district_rings() -> dict[int, list[Ring]]:
    """All rings (outer boundaries and holes) of every district, keyed by code."""
    rings: dict[int, list[Ring]] = {}
    for feat in district_geojson()["features"]:
        geom = feat["geometry"]
        polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        rings[int(feat["properties"]["code"])] = [
            np.asarray(ring, dtype=float) for poly in polys for ring in poly
        ]
    return rings


def _in_rings(lon: np.ndarray, lat: np.ndarray, rings: list[Ring]) -> np.ndarray:
    """Even-odd ray casting over all rings: holes and multiple parts are handled by parity."""
    inside = np.zeros(lon.shape, dtype=bool)
    px, py = lon[:, None], lat[:, None]
    for ring in rings:
        x1, y1 = ring[:, 0], ring[:, 1]
        x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
        straddles = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        crossings = np.count_nonzero(straddles & (px < x_cross), axis=1)
        inside ^= crossings % 2 == 1
    return inside


def in_district(code: int, lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """Boolean mask: which lon/lat points fall inside district ``code``'s polygon."""
    lon_a = np.atleast_1d(np.asarray(lon, dtype=float))
    lat_a = np.atleast_1d(np.asarray(lat, dtype=float))
    return _in_rings(lon_a, lat_a, _district_rings()[int(code)])


def allocate_largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights``, summing exactly to ``total``.

    Hamilton's method: floor the quotas, then hand out the remainder by largest fractional part
    (ties to the lower index). A zero weight always gets 0.
    """
    w = np.asarray(weights, dtype=float)
    if total < 0 or w.ndim != 1 or w.size == 0:
        raise ValueError("need total >= 0 and a non-empty 1-D weights array")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    quotas = total * w / w.sum()
    alloc = np.floor(quotas).astype(np.int64)
    remainder = int(total - alloc.sum())
    order = np.argsort(-(quotas - alloc), kind="stable")
    alloc[order[:remainder]] += 1
    return alloc


def _rng(seed: int, code: int, stream: int) -> np.random.Generator:
    """Independent reproducible stream per (seed, district, purpose)."""
    return np.random.default_rng(np.random.SeedSequence([seed, code, stream]))


def points_in_district(code: int, n: int, seed: int, stream: int, concentrated: bool) -> np.ndarray:
    """Deterministic (n, 2) lon/lat points inside district ``code`` (rejection sampling).

    ``concentrated``: normal around the centroid (stand-in for the population centre) with sd
    ``CONCENTRATION_SD_FRACTION * sqrt(area_km2)`` km; otherwise uniform over the polygon.
    Points that also fall in a neighbour's polygon (simplified borders can overlap) are rejected.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if n == 0:
        return np.empty((0, 2))
    row = _districts().loc[int(code)]
    rings = _district_rings()
    own = rings[int(code)]
    allv = np.vstack(own)
    lon_min, lat_min = allv.min(axis=0)
    lon_max, lat_max = allv.max(axis=0)
    lon0, lat0 = float(row["centroid_lon"]), float(row["centroid_lat"])
    sd_km = CONCENTRATION_SD_FRACTION * np.sqrt(float(row["area_km2"]))
    km_per_deg_lat = np.radians(1.0) * EARTH_RADIUS_KM
    sd_lat = sd_km / km_per_deg_lat
    sd_lon = sd_km / (km_per_deg_lat * np.cos(np.radians(lat0)))
    rng = _rng(seed, code, stream)
    out: list[np.ndarray] = []
    got = 0
    for _ in range(10_000):
        m = max(64, 4 * (n - got))
        if concentrated:
            lon = rng.normal(lon0, sd_lon, m)
            lat = rng.normal(lat0, sd_lat, m)
        else:
            lon = rng.uniform(lon_min, lon_max, m)
            lat = rng.uniform(lat_min, lat_max, m)
        ok = _in_rings(lon, lat, own)
        for other, other_rings in rings.items():
            if other != int(code) and ok.any():
                ok &= ~_in_rings(lon, lat, other_rings)
        pts = np.column_stack([lon[ok], lat[ok]])[: n - got]
        out.append(pts)
        got += len(pts)
        if got == n:
            return np.vstack(out)
    raise RuntimeError(f"could not place {n} points in district {code} ({DISTRICT_CODES[code]})")


def distance_km(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Great-circle (haversine) distance in km, vectorised with numpy broadcasting."""
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2)
    )
    a = (
        np.sin((phi2 - phi1) / 2.0) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _project_km(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float) -> np.ndarray:
    """Local equirectangular projection (km) so Euclidean distances within the city are right
    to well under 1% (Taiyuan spans < 1 degree of latitude)."""
    k = np.radians(1.0) * EARTH_RADIUS_KM
    return np.column_stack([(lon - lon0) * k * np.cos(np.radians(lat0)), (lat - lat0) * k])


@functools.lru_cache(maxsize=8)
def load_geography(seed: int = DEFAULT_SEED) -> Geography:
    """Districts plus synthetic neighbourhoods; deterministic for a given ``seed`` (cached)."""
    districts = _districts().copy()
    counts = _neighbourhood_counts()
    n_comm = allocate_largest_remainder(counts["community"], districts["urban_2024"].to_numpy())
    n_vill = allocate_largest_remainder(counts["village"], districts["rural_2024"].to_numpy())
    lon0 = float(districts["centroid_lon"].mean())
    lat0 = float(districts["centroid_lat"].mean())

    frames: list[pd.DataFrame] = []
    for code, name in enumerate(DISTRICT_CODES):
        for kind, n, stream, concentrated, tag in (
            ("community", int(n_comm[code]), _STREAM_COMMUNITY, True, "C"),
            ("village", int(n_vill[code]), _STREAM_VILLAGE, False, "V"),
        ):
            if n == 0:
                continue
            pts = points_in_district(code, n, seed, stream, concentrated)
            if kind == "village":
                pop_rng = _rng(seed, code, _STREAM_VILLAGE_POP)
                pop = np.rint(
                    pop_rng.lognormal(np.log(VILLAGE_POP_MEDIAN), VILLAGE_POP_SIGMA, n)
                ).astype(np.int64)
            else:
                pop = np.zeros(n, dtype=np.int64)
            frames.append(
                pd.DataFrame(
                    {
                        "district": code,
                        "kind": kind,
                        "lon": pts[:, 0],
                        "lat": pts[:, 1],
                        "registered_pop": pop,
                        "name": [f"{name}-{tag}{i:03d}" for i in range(n)],
                    }
                )
            )
    nb = pd.concat(frames, ignore_index=True)
    xy = _project_km(nb["lon"].to_numpy(), nb["lat"].to_numpy(), lon0, lat0)
    nb.insert(4, "x_km", xy[:, 0])
    nb.insert(5, "y_km", xy[:, 1])
    nb["district"] = nb["district"].astype(np.int64)
    return Geography(districts=districts, neighbourhoods=nb)
