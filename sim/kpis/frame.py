"""Monthly metrics: one row per (month, district), plus district == 'Taiyuan' for the city.

The kernel and the care modules fill integer count arrays [district, column] each month; this
module turns the stored arrays into a tidy DataFrame in persons (counts x scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.engine.calendar import month_label
from sim.population.health import STATE_NAMES
from sim.population.kernel import (
    C_60,
    C_65,
    C_80,
    C_DEATHS,
    C_ENTRANTS,
    C_MEDICAL,
    C_NEED_CHANGED,
    C_STATE0,
    C_WIDOWED,
)

CITY = "Taiyuan"
# The plan's 2020 targets (太原市民政事业发展'十三五'规划, 四(二)): KPI -> (target, label).
PLAN_TARGETS: dict[str, tuple[float, str]] = {
    "medical_care_demand_met": (0.80, "medical care demand met (share)"),
    "beds_per_1000": (40.0, "beds per 1,000 elderly"),
    "private_bed_share": (0.60, "private share of nursing-home beds"),
    "beds_medical": (6700.0, "integrated medical-care beds"),
}
POPULATION_COLUMNS: dict[str, int] = {
    "residents_60plus": C_60,
    "residents_65plus": C_65,
    "residents_80plus": C_80,
    **{name: C_STATE0 + k for k, name in enumerate(STATE_NAMES)},
    "medical_need": C_MEDICAL,
    "deaths": C_DEATHS,
    "entrants": C_ENTRANTS,
    "widowed": C_WIDOWED,
    "need_changed": C_NEED_CHANGED,
}


def population_frame(
    months: list[int], counts: list[np.ndarray], districts: list[str], scale: float
) -> pd.DataFrame:
    """Tidy frame of the population counts, districts then the city total, in persons."""
    if not months:
        return pd.DataFrame(columns=["month", "district", *POPULATION_COLUMNS])
    stacked = np.stack(counts)  # [month, district, column]
    with_city = np.concatenate([stacked, stacked.sum(axis=1, keepdims=True)], axis=1)
    n_m, n_d, _ = with_city.shape
    names = [*districts, CITY]
    frame = pd.DataFrame(
        {
            "month": np.repeat([month_label(m) for m in months], n_d),
            "district": np.tile(names, n_m),
        }
    )
    for name, col in POPULATION_COLUMNS.items():
        frame[name] = with_city[:, :, col].reshape(-1) * scale
    return frame


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype(float)


def care_frame(population: pd.DataFrame, care: list[np.ndarray], scale: float) -> pd.DataFrame:
    """Add the care-system KPIs (DESIGN.md section 8) to the population frame."""
    from sim.care.delivery import REASONS, SPENDING, SUMS

    if not care:
        return population
    stacked = np.stack(care)  # [month, district, sum]
    with_city = np.concatenate([stacked, stacked.sum(axis=1, keepdims=True)], axis=1)
    raw = pd.DataFrame(with_city.reshape(-1, len(SUMS)), columns=list(SUMS))
    f = population.reset_index(drop=True).copy()
    persons = {n: raw[n] * scale for n in SUMS}
    f["medical_care_demand_met"] = _ratio(raw["med_met"], raw["med_need"])
    f["medical_care_demand_met_beds_only"] = _ratio(raw["med_met_beds"], raw["med_need"])
    f["beds_public"] = raw["beds_public"]
    f["beds_private"] = raw["beds_private"]
    f["beds_medical"] = raw["beds_medical"]
    beds = raw["beds_public"] + raw["beds_private"] + raw["beds_medical"]
    f["beds_per_1000"] = _ratio(beds * 1000, f["residents_60plus"])
    f["private_bed_share"] = _ratio(raw["beds_private"], raw["beds_public"] + raw["beds_private"])
    for kind in ("public", "private", "medical"):
        f[f"occupancy_{kind}"] = _ratio(raw[f"occ_{kind}"], raw[f"cap_{kind}"])
    cap = raw["cap_public"] + raw["cap_private"] + raw["cap_medical"]
    occ = raw["occ_public"] + raw["occ_private"] + raw["occ_medical"]
    f["empty_beds"] = (cap - occ) * scale
    f["residents_in_institutions"] = occ * scale
    f["queue_length"] = persons["queue"]
    f["mean_wait_months"] = _ratio(raw["wait_sum"], raw["queue"])
    for share, count in (
        ("family_only", "n_family"),
        ("home_services", "n_home"),
        ("community", "n_community"),
        ("institution", "n_institution"),
        ("medical_bed", "n_medical_bed"),
    ):
        f[f"share_{share}"] = _ratio(raw[count], raw["in_need"])
    f["unmet_need_share"] = _ratio(raw["dependents_unmet"], raw["dependents"])
    f["unmet_care_hours"] = persons["unmet_hours"]
    f["family_care_hours"] = persons["family_hours"]
    f["carers_overloaded"] = persons["overloaded"]
    f["team_utilisation"] = _ratio(raw["team_used"], raw["team_capacity"])
    f["coverage_community_centre"] = _ratio(raw["cov_centre"], raw["urban_elderly"])
    f["coverage_day_care"] = _ratio(raw["cov_day"], raw["urban_elderly"])
    spending = [f"spend_{s}" for s in SPENDING]
    for item in SPENDING:
        f[f"spending_{item}"] = persons[f"spend_{item}"]
    f["spending_total"] = sum(persons[s] for s in spending)
    for r in REASONS:
        f[f"unmet_reason_{r}"] = persons[f"unmet_reason_{r}"]
        f[f"empty_reason_{r}"] = persons[f"empty_reason_{r}"]
    return f
