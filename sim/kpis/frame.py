"""Monthly metrics: one row per (month, district), plus district == 'Taiyuan' for the city.

The population kernel and the care system fill count and sum arrays [district, column] each
month; `metrics_frame` turns the stored arrays into a tidy DataFrame of every KPI in the
registry (`sim.kpis.registry`), in persons (rows x scale), in the registry's order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.engine.calendar import month_label
from sim.kpis.registry import CARE_SUM_NAMES, KPIS, Raw

CITY = "Taiyuan"


def _with_city(monthly: Sequence[np.ndarray]) -> np.ndarray:
    """[month, district + city, column]: the districts' arrays and their sum."""
    stacked = np.stack(monthly)
    return np.concatenate([stacked, stacked.sum(axis=1, keepdims=True)], axis=1)


def metrics_frame(
    months: Sequence[int],
    districts: Sequence[str],
    scale: float,
    counts: Sequence[np.ndarray],
    count_names: Sequence[str],
    care: Sequence[np.ndarray] = (),
) -> pd.DataFrame:
    """The KPIs of each month: `counts` are the population's [district, count_names] arrays of
    `months`, `care` the care system's [district, CARE_SUMS] arrays (none: a population-only run,
    whose frame holds the population's KPIs only)."""
    shown = [k for k in KPIS if care or not k.care]
    if not months:
        return pd.DataFrame(columns=["month", "district", *(k.name for k in shown)])
    arrays = {}
    for names, monthly in ((count_names, counts), (CARE_SUM_NAMES, care)):
        if len(monthly):
            values = _with_city(monthly)
            arrays.update({name: values[:, :, i].reshape(-1) for i, name in enumerate(names)})
    names = [*districts, CITY]
    columns = {
        "month": np.repeat([month_label(m) for m in months], len(names)),
        "district": np.tile(names, len(months)),
    }
    raw = Raw(arrays, scale)
    columns.update({k.name: k.formula(raw) for k in shown})
    return pd.DataFrame(columns)
