"""Monthly metrics: one row per (month, district), plus district == 'Taiyuan' for the city.

The kernel and the care modules fill integer count arrays [district, column] each month; this
module turns the stored arrays into a tidy DataFrame in persons (counts x scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.calendar import month_label
from sim.health import STATE_NAMES
from sim.kernels import C_60, C_65, C_80, C_DEATHS, C_ENTRANTS, C_MEDICAL, C_STATE0, C_WIDOWED

CITY = "Taiyuan"
POPULATION_COLUMNS: dict[str, int] = {
    "residents_60plus": C_60,
    "residents_65plus": C_65,
    "residents_80plus": C_80,
    **{name: C_STATE0 + k for k, name in enumerate(STATE_NAMES)},
    "medical_need": C_MEDICAL,
    "deaths": C_DEATHS,
    "entrants": C_ENTRANTS,
    "widowed": C_WIDOWED,
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
