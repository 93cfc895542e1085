"""Mesa agents: this month's deciders and families as AgentSets of views on the columns."""

from __future__ import annotations

import numpy as np
import pytest

from sim import CareModel
from sim.core.agents import Family, Resident
from sim.population.kernel import EVENT_ARRIVED, EVENT_NEED, EVENT_WIDOWED


@pytest.fixture(scope="module")
def model() -> CareModel:
    m = CareModel(seed=5, scale=50)
    m.run_until("2017-06")
    return m


def test_deciders_are_the_residents_who_decided_this_month(model: CareModel) -> None:
    pop = model.pop
    rows = np.array([agent.row for agent in model.deciders])
    assert rows.size > 0
    assert all(isinstance(agent, Resident) for agent in model.deciders)
    assert np.array_equal(rows, np.unique(rows)), "each decider once, in key order"
    assert pop.alive[rows].all()
    # every living resident with a need change, a lost carer or an arrival in need is among
    # them; the others waited too long for a bed, reached the voucher age or saw a bed open
    # nearby
    events = model.event_rows[pop.alive[model.event_rows]]
    deciding = events[(pop.event[events] & (EVENT_NEED | EVENT_WIDOWED | EVENT_ARRIVED)) != 0]
    assert np.isin(deciding, rows).all()
    assert deciding.size <= rows.size <= deciding.size + model.needy_rows.size


def test_families_are_the_deciders_who_lost_a_carer(model: CareModel) -> None:
    pop = model.pop
    deciders = {agent.row for agent in model.deciders}
    families = list(model.families)
    assert all(isinstance(f, Family) for f in families)
    widowed = {r for r in deciders if pop.event[r] & EVENT_WIDOWED}
    assert {f.row for f in families} == widowed
    for family in families:
        assert family.members[0] == family.row
        assert family.care_hours() >= 0


def test_agents_are_views_on_the_columns(model: CareModel) -> None:
    agent = next(iter(model.deciders))
    assert agent.health == model.pop.health[agent.row]
    assert agent.age_m == model.pop.age_m[agent.row]
    before = int(model.pop.n_children[agent.row])
    agent.n_children = before + 1
    assert model.pop.n_children[agent.row] == before + 1
    agent.n_children = before


def test_agents_follow_the_month(model: CareModel) -> None:
    first = sorted(agent.row for agent in model.deciders)
    model.step()
    second = sorted(agent.row for agent in model.deciders)
    assert first != second
