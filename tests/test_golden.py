"""Golden regression: the plan scenario's metrics (scale 10, 2016-01..2020-12, seeds 1 and 2)
must equal the stored files exactly. A change meant to move results regenerates them with
`python tests/golden/regenerate.py` and says why in its commit message."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.golden.regenerate import SEEDS, golden_metrics, golden_path


@pytest.mark.parametrize("seed", SEEDS)
def test_plan_metrics_equal_the_golden_file(seed: int) -> None:
    expected = pd.read_parquet(golden_path(seed))
    pd.testing.assert_frame_equal(golden_metrics(seed), expected, check_exact=True)
