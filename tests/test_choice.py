"""Care choice: the Gumbel-max draw reproduces the logit, the fused kernels agree with the
per-function API, and family care capacity counts a spouse only outside a bed (scale 50)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.care.choice import PREFERENCE, REASONS, probabilities, reason_tallies
from sim.care.kinds import (
    CENTRE,
    DAY_URBAN,
    N_OPTIONS,
    OPTION_KIND,
    PUBLIC,
    RESIDENTIAL_OPTIONS,
)
from sim.core.agents import Family
from sim.core.model import CareModel
from sim.engine.rng import Stream, uniforms
from sim.population.families import CHILD_NONE, family_care_capacity

SCALE = 50
N_SEEDS = 20


@pytest.fixture(scope="module")
def model() -> CareModel:
    m = CareModel(seed=5, scale=SCALE)
    m.run_until("2018-06")
    return m


def test_choice_frequencies_match_logit(model: CareModel) -> None:
    """Over every resident in need and 20 draw seeds, each option is chosen as often as the
    logit probabilities say (within 5 standard deviations), and never when unavailable."""
    rows, choosing = model.needy_rows, model.choice
    prob = probabilities(choosing.utilities(choosing.option_features(rows)))
    counts = np.zeros(N_OPTIONS)
    with pytest.MonkeyPatch.context() as mp:
        for seed in range(N_SEEDS):
            mp.setattr(choosing, "seed", 1000 + seed)
            choice, _ = choosing.choose(rows)
            assert (prob[np.arange(rows.size), choice] > 0).all()
            counts += np.bincount(choice, minlength=N_OPTIONS)
    expected = N_SEEDS * prob.sum(axis=0)
    sd = np.sqrt(N_SEEDS * (prob * (1 - prob)).sum(axis=0))
    assert rows.size > 1500
    assert (np.abs(counts - expected) <= 5 * sd + 1e-9).all(), (counts, expected, sd)


def test_choose_is_gumbel_max_of_utilities(model: CareModel) -> None:
    """For 20 draw seeds, the choice is exactly the argmax of utility plus -log(-log(u)) with u
    keyed by (seed, CHOICE, person, option), the person's lasting taste, over all options
    (choose draws lazily), and the facilities of the options are option_features'."""
    rows, choosing = model.needy_rows, model.choice
    f = choosing.option_features(rows)
    util = choosing.utilities(f)
    with pytest.MonkeyPatch.context() as mp:
        for seed in range(N_SEEDS):
            mp.setattr(choosing, "seed", 2000 + seed)
            keys = np.arange(N_OPTIONS)
            u = np.column_stack([uniforms(choosing.seed, Stream.CHOICE, rows, k) for k in keys])
            choice, facility = choosing.choose(rows)
            expected = np.argmax(util - np.log(-np.log(u + 1e-300)), axis=1)
            np.testing.assert_array_equal(choice, expected)
    np.testing.assert_array_equal(facility, f.facility)


def test_reason_tallies_match_per_resident_reasons(model: CareModel) -> None:
    """The one-pass tallies over the dependents' entries of the residents in need equal
    bincounts of binding_reasons and option_reason over their rows."""
    pop, n_d, needy, choosing = model.pop, model.n_districts, model.needy_rows, model.choice
    people = choosing.people(needy)
    entries = np.flatnonzero(pop.health[needy] >= 3)
    flagged = np.random.default_rng(0).random(needy.size) < 0.3
    binding, residential = reason_tallies(choosing.reason_inputs(), people, entries, flagged, n_d)
    rows, unmet = needy[entries], flagged[entries]
    f = choosing.option_features(rows)
    district = pop.district[rows].astype(np.int64)

    def tally(mask: np.ndarray, reason: np.ndarray) -> np.ndarray:
        codes = district[mask] * len(REASONS) + reason[mask]
        return np.bincount(codes, minlength=n_d * len(REASONS)).reshape(n_d, len(REASONS))

    np.testing.assert_array_equal(binding, tally(unmet, choosing.binding_reasons(f)))
    facility = pop.facility[rows]
    kind = np.where(facility >= 0, model.places.table.kind[np.maximum(facility, 0)], -1)
    for r, option in enumerate(RESIDENTIAL_OPTIONS):
        outside = kind != OPTION_KIND[option]
        expected = tally(outside, choosing.option_reason(f, option))
        np.testing.assert_array_equal(residential[r], expected, err_msg=str(option))
    assert binding.sum() == unmet.sum()
    assert (binding[:, :PREFERENCE].sum() > 0) and (residential.sum() > 0)


def test_spouse_in_a_bed_gives_no_family_care(model: CareModel) -> None:
    """A resident's family capacity counts their spouse's hours only while the spouse lives
    outside a nursing home or medical bed (a day centre place does not stop them caring)."""
    pop, p, fac = model.pop, model.params, model.places.table
    fam, pol = p.family, p.policy
    factor = np.asarray(fam.spouse_health_factor)
    rows = pop.alive_rows()
    partner = pop.spouse[rows]
    candidates = rows[(partner >= 0) & (pop.child_place[rows] == CHILD_NONE)]
    candidates = candidates[
        (factor[pop.health[pop.spouse[candidates]]] > 0)
        & (pop.facility[pop.spouse[candidates]] < 0)
    ]
    row = candidates[:1]
    spouse = int(pop.spouse[row[0]])
    allowance = pol.carer_allowance / 100 * pol.carer_hours_per_100_yuan
    spouse_hours = fam.spouse_hours * factor[pop.health[spouse]]

    def capacity() -> float:
        hours = family_care_capacity(pop, row, fam, pol, model.places.residential)
        assert Family(model, int(row[0])).care_hours() == hours[0]
        return float(hours[0])

    assert capacity() == pytest.approx(spouse_hours + allowance)
    home = int(np.flatnonzero(fac.kind == PUBLIC)[0])
    day = int(np.flatnonzero(np.isin(fac.kind, (CENTRE, DAY_URBAN)))[0])
    try:
        pop.facility[spouse] = day
        assert capacity() == pytest.approx(spouse_hours + allowance)
        pop.facility[spouse] = home
        assert capacity() == 0.0
    finally:
        pop.facility[spouse] = -1
