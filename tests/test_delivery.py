"""The compiled tally of care delivered against a direct count from the resident columns."""

from __future__ import annotations

import numpy as np
import pytest

from sim import CareModel
from sim.delivery import IDX, KIND_SUM, deliver_and_measure


@pytest.fixture(scope="module")
def model() -> CareModel:
    m = CareModel(seed=11, scale=40)
    m.run_until("2019-06")
    return m


def test_tally_matches_a_count_from_the_columns(model: CareModel) -> None:
    pop, fac, needy = model.pop, model.facilities, model.needy_rows
    out, unmet_family_only = deliver_and_measure(model, needy)
    n_d = out.shape[0]
    d = pop.district[needy].astype(np.int64)

    def by_district(weights) -> np.ndarray:
        return np.bincount(d, weights=np.asarray(weights, dtype=float), minlength=n_d)

    f = pop.facility[needy]
    bed = (f >= 0) & model.residential_facility[np.maximum(f, 0)]
    capable_bed = bed & model.facility_medical_capable()[np.maximum(f, 0)]
    queued = pop.queue_facility[needy] >= 0
    dependent = pop.health[needy] >= 3
    expected = {
        "in_need": by_district(np.ones(needy.size)),
        "dependents": by_district(dependent),
        "med_need": by_district(pop.medical[needy]),
        "med_met_beds": by_district(pop.medical[needy] & capable_bed),
        "queue": by_district(queued),
        "wait_sum": by_district(np.where(queued, model.month - pop.queue_since[needy], 0)),
        "spend_carer_allowance": by_district(
            (dependent & (f < 0)) * model.params.policy.carer_allowance
        ),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(out[:, IDX[name]], value, rtol=1e-12, err_msg=name)
    assert out[:, IDX["queue"]].sum() > 0 and out[:, IDX["med_met_beds"]].sum() > 0
    # the diagnostics explain exactly the dependents left with unmet need and no formal care
    assert unmet_family_only.sum() <= out[:, IDX["dependents_unmet"]].sum()
    assert not (unmet_family_only & ~dependent).any() and not (unmet_family_only & bed).any()
    # beds in use by district equal the residents holding them
    for kind, kind_name in KIND_SUM.items():
        holding = (f >= 0) & (fac.kind[np.maximum(f, 0)] == kind)
        assert out[:, IDX[f"occ_{kind_name}"]].sum() >= holding.sum()
