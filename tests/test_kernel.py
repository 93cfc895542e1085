"""The parallel population kernel against a plain serial reference, and across thread counts.

The reference is the kernel's specification written as one serial loop over the living rows in
key order (the kernel's own form before it ran in parallel chunks). The compiled kernel must give
the same columns, counts and lists bit for bit, whatever the number of numba threads; only the
order of the event rows is free.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import pytest

from sim.core.model import CareModel
from sim.engine.rng import Stream, uniforms
from sim.params.sections import Params
from sim.population.care_effects import N_STATUS, care_effects, scaled_probability
from sim.population.columns import KERNEL_COLUMNS
from sim.population.demography import N_AGES
from sim.population.health import N_STATES
from sim.population.kernel import (
    C_60,
    C_65,
    C_80,
    C_DEATHS,
    C_EMIGRANTS,
    C_ENTRANTS,
    C_IMMIGRANTS,
    C_MEDICAL,
    C_NEED_CHANGED,
    C_STATE0,
    C_WIDOWED,
    EVENT_ARRIVED,
    EVENT_DIED,
    EVENT_LEFT,
    EVENT_NEED,
    EVENT_SPOUSE_LEFT,
    EVENT_WIDOWED,
    N_CHUNKS,
    N_COUNTS,
    NEED_LEVEL,
    Columns,
    KernelOutputs,
    MonthKernel,
    MonthRates,
    Parts,
    _cell_tables,
    _quiet_table,
    _worsened,
    month_kernel,
    step_population,
)

SCALE = 100  # ~24k rows: a few hundred per chunk
MONTHS = 3
WRITTEN = KERNEL_COLUMNS[1:]  # all but alive_idx, compared up to the living count


def _copy(inputs: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in inputs.items()}


def _arguments(a: dict) -> tuple:
    """The kernel's records (columns, living count, rates, outputs) from the flat inputs."""
    columns = Columns(**{name: a[name] for name in Columns._fields})
    rates = MonthRates(**{name: a[name] for name in MonthRates._fields})
    outputs = KernelOutputs(a["stock"], a["flows"], a["aged"], a["event_rows"], a["needy_rows"])
    return columns, a["n_alive"], rates, outputs


def _flat(columns: Columns, n_alive: int, rates: MonthRates, outputs: KernelOutputs) -> dict:
    """The flat inputs of the kernel's records (as `_arguments` takes them)."""
    lists = {"event_rows": outputs.event_rows, "needy_rows": outputs.needy}
    stock = {"stock": outputs.stock, "flows": outputs.flows, "aged": outputs.aged}
    return {**columns._asdict(), "n_alive": n_alive, **rates._asdict(), **stock, **lists}


def _run_kernel(inputs: dict, threads: int, alone: bool = False) -> dict:
    """The compiled kernel on copies of the inputs with `threads` numba threads (or `alone`:
    on the calling thread, as the month ahead runs it)."""
    a = _copy(inputs)
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        a["result"] = step_population(*_arguments(a), alone=alone)
    finally:
        numba.set_num_threads(before)
    return a


def _serial_reference(inputs: dict) -> dict:
    """The kernel's specification, one living row after another in key order (plain Python)."""
    a = _copy(inputs)
    alive_idx, n_alive, seed, month = a["alive_idx"], a["n_alive"], a["seed"], a["month"]
    alive, age_m, sex, district = a["alive"], a["age_m"], a["sex"], a["district"]
    health, medical, spouse, event = a["health"], a["medical"], a["spouse"], a["event"]
    entry_month, death_month, left_month = a["entry_month"], a["death_month"], a["left_month"]
    onset, leave_prob, effects = a["medical_onset"], a["leave_prob"], a["effects"]
    # the tables of each care status (`care_effects`): the same transforms the kernel's tables
    # make, so that the values compare exactly; checked on their own in test_care_effects.py
    death_by_status = [
        scaled_probability(a["death_prob"], m) if st else a["death_prob"]
        for st, m in enumerate(effects.death)
    ]
    cum_by_status = [_worsened(a["health_cum"], m) for m in effects.worsening]
    received = dict(zip(*(x.tolist() for x in a["care_received"]), strict=True))
    stock, flows, aged = a["stock"], a["flows"], a["aged"]
    living = alive_idx[:n_alive].copy()
    draws = {
        s: dict(zip(living.tolist(), uniforms(seed, s, living, month).tolist(), strict=True))
        for s in (Stream.LIFE, Stream.SPOUSE)
    }
    events: list[int] = []
    needy: list[int] = []
    kept: list[int] = []

    def mark(row: int, bit: int) -> None:
        if event[row] == 0:
            events.append(row)
        event[row] |= bit

    for i in living.tolist():
        d, h = int(district[i]), int(health[i])
        new = entry_month[i] == month
        if new:  # turning 60, or moving in at any age: counted at the age drawn, not aged
            years = int(age_m[i]) // 12
            flows[d, C_ENTRANTS if age_m[i] == 720 else C_IMMIGRANTS] += 1
            stock[d, C_60] += 1
            stock[d, C_65] += years >= 65
            stock[d, C_80] += years >= 80
            stock[d, C_STATE0 + h] += 1
            stock[d, C_MEDICAL] += bool(medical[i])
        else:
            years = int(age_m[i]) // 12
            status = received.get(i, 0)
            death_prob, cum = death_by_status[status], cum_by_status[status]
            ai, s = min(years - 60, death_prob.shape[1] - 1), int(sex[i])
            u, p_death = draws[Stream.LIFE][i], death_prob[s, ai, h]
            p_exit = min(p_death + leave_prob[s, ai], 1.0)
            if u < p_exit:  # died, or moved out of the city
                died = u < p_death
                alive[i] = False
                if died:
                    death_month[i] = month
                else:
                    left_month[i] = month
                mark(i, EVENT_DIED if died else EVENT_LEFT)
                flows[d, C_DEATHS if died else C_EMIGRANTS] += 1
                stock[d, C_60] -= 1
                stock[d, C_STATE0 + h] -= 1
                stock[d, C_65] -= years >= 65
                stock[d, C_80] -= years >= 80
                stock[d, C_MEDICAL] -= bool(medical[i])
                j = int(spouse[i])
                if j >= 0:
                    spouse[j] = -1
                    mark(j, EVENT_WIDOWED if died else EVENT_SPOUSE_LEFT)
                continue
            # the same uniform, conditioned on staying alive in the city, then on the new state
            v = min((u - p_exit) * (1.0 / (1.0 - p_exit)), 1.0 - 2.0**-53)
            new_h = 0
            while v >= cum[s, ai, h, new_h] and new_h < N_STATES - 1:
                new_h += 1
            low = cum[s, ai, h, new_h - 1] if new_h > 0 else 0.0
            high = cum[s, ai, h, new_h]
            if new_h == h:
                u = (v - low) * (1.0 / (high - low))
            else:
                u = (v - low) / (high - low) if v < high else 1.0
            if new_h != h:
                health[i] = new_h
                stock[d, C_STATE0 + h] -= 1
                stock[d, C_STATE0 + new_h] += 1
            changed = NEED_LEVEL[new_h] != NEED_LEVEL[h]
            cared = NEED_LEVEL[new_h] > 0  # a medical change is a need change with a care need
            if medical[i] and u < a["medical_remission"]:
                medical[i], changed = False, changed or cared
                stock[d, C_MEDICAL] -= 1
            elif not medical[i] and u < onset[new_h]:
                medical[i], changed = True, changed or cared
                stock[d, C_MEDICAL] += 1
            if spouse[i] == -2 and draws[Stream.SPOUSE][i] < a["external_spouse_death"]:
                spouse[i] = -1
                mark(i, EVENT_WIDOWED)
            if changed:
                mark(i, EVENT_NEED)
                flows[d, C_NEED_CHANGED] += 1
        if NEED_LEVEL[health[i]] > 0:
            needy.append(i)
            if new:
                mark(i, EVENT_ARRIVED)
        if not new:
            age_m[i] += 1
            aged[d, 0] += age_m[i] == 65 * 12
            aged[d, 1] += age_m[i] == 80 * 12
        kept.append(i)
    for row in events:
        flows[district[row], C_WIDOWED] += bool(event[row] & EVENT_WIDOWED and alive[row])
    alive_idx[: len(kept)] = kept
    a["event_rows"][: len(events)] = events
    a["needy_rows"][: len(needy)] = needy
    a["result"] = (len(kept), len(events), len(needy))
    return a


def _assert_same(got: dict, expected: dict) -> None:
    n_kept, n_events, n_needy = expected["result"]
    assert got["result"] == expected["result"]
    np.testing.assert_array_equal(got["alive_idx"][:n_kept], expected["alive_idx"][:n_kept])
    np.testing.assert_array_equal(got["needy_rows"][:n_needy], expected["needy_rows"][:n_needy])
    rows = got["event_rows"][:n_events]
    assert np.unique(rows).size == n_events  # each row once
    np.testing.assert_array_equal(np.sort(rows), np.sort(expected["event_rows"][:n_events]))
    for name in (*WRITTEN, "stock", "flows", "aged"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.fixture(scope="module")
def months() -> list[dict]:
    """The kernel's inputs in the first MONTHS months of a small population-only run, as the
    model passes them (recorded on the way in)."""
    recorded = []

    def recorder(*args):
        recorded.append(_copy(_flat(*args)))
        return step_population(*args)

    model = CareModel(seed=3, scale=SCALE, care=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sim.population.system.step_population", recorder)
        model.run_for(MONTHS)
    return recorded


def _with_care(inputs: dict) -> dict:
    """The inputs with care received by a fifth of the living (every status code), and effects
    far from 1, so that the status cells are exercised."""
    a = dict(inputs)
    living = a["alive_idx"][: a["n_alive"]]
    rng = np.random.default_rng(a["month"] + 1)
    rows = np.sort(rng.choice(living, living.size // 5, replace=False)).astype(np.int64)
    a["care_received"] = (rows, rng.integers(0, N_STATUS, rows.size).astype(np.uint8))
    strong = Params().with_overrides({"health": {
        "unmet_need_death_hr": 1.9, "unmet_need_worsening_hr": 1.5,
        "integrated_care_death_hr": 0.8,
    }})  # fmt: skip
    a["effects"] = care_effects(strong.health)
    return a


@pytest.mark.parametrize(("threads", "alone"), [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("care", [False, True])
def test_kernel_matches_serial_reference(
    months: list[dict], threads: int, alone: bool, care: bool
) -> None:
    for inputs in months:
        assert inputs["n_alive"] > 50 * N_CHUNKS
        inputs = _with_care(inputs) if care else inputs
        _assert_same(_run_kernel(inputs, threads, alone), _serial_reference(inputs))


def test_quiet_intervals_are_quiet_in_the_row_arithmetic(months: list[dict]) -> None:
    """Every uniform the quiet table lets skip the transitions (ends, random points and the
    last float inside) leaves the person alive, in the same state and with the same medical
    need in the kernel's own arithmetic, for every cell; and the table skips most rows."""
    a = months[0]
    _, cells, _ = _cell_tables(
        a["death_prob"],
        a["leave_prob"],
        a["health_cum"],
        a["medical_onset"],
        _with_care(a)["effects"],
    )
    quiet = _quiet_table(cells, a["medical_remission"])
    _, p, scale, low, high, stay_scale, onset = cells.T
    rng = np.random.default_rng(0)
    for medical in (0, 1):
        start, stop = quiet[medical::2, 0], quiet[medical::2, 1]
        some = start < stop
        assert np.median(np.where(some, stop - start, 0.0)) > 0.5
        threshold = np.full(p.shape, a["medical_remission"]) if medical else onset
        inside = rng.random((200, p.size)) * (stop - start)
        for u in (start, np.nextafter(stop, 0.0), *(start + inside)):
            v = np.minimum((u - p) * scale, 1.0 - 2.0**-53)
            w = (v - low) * stay_scale
            kept = (u >= p) & (low <= v) & (v < high) & (w >= threshold)
            assert kept[some].all()


def test_kernel_identical_with_one_and_two_threads(months: list[dict]) -> None:
    for inputs in months:
        one, two = _run_kernel(inputs, 1), _run_kernel(inputs, 2)
        assert one["result"] == two["result"]
        n_kept, n_events, n_needy = one["result"]
        for name, n in (("alive_idx", n_kept), ("event_rows", n_events), ("needy_rows", n_needy)):
            np.testing.assert_array_equal(one[name][:n], two[name][:n], err_msg=name)
        for name in (*WRITTEN, "stock", "flows", "aged"):
            np.testing.assert_array_equal(one[name], two[name], err_msg=name)


def _couples(n_rows: int) -> dict:
    """A hand-made population where state 4 always dies and nobody changes state: couples who
    both die, one of whom dies, spouses outside who die, entrants, rows in every chunk."""
    rng = np.random.default_rng(5)
    health = rng.choice([0, 2, 4], size=n_rows, p=[0.5, 0.25, 0.25]).astype(np.int8)
    spouse = np.full(n_rows, -1, dtype=np.int32)
    spouse[rng.random(n_rows) < 0.2] = -2
    pairs = rng.permutation(n_rows)[: n_rows // 4 * 2].reshape(-1, 2)
    spouse[pairs[:, 0]], spouse[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
    death_prob = np.zeros((2, N_AGES, N_STATES))
    death_prob[:, :, 4] = 1.0
    cum = np.broadcast_to(np.tril(np.ones((N_STATES, N_STATES))).T, (2, N_AGES, N_STATES, N_STATES))
    month = 7
    entry_month = np.where(rng.random(n_rows) < 0.05, month, -1).astype(np.int16)
    stock = np.zeros((3, N_COUNTS), dtype=np.int64)
    return {
        "alive_idx": np.arange(n_rows, dtype=np.int64),
        "n_alive": n_rows,
        "alive": np.ones(n_rows, dtype=bool),
        "age_m": rng.integers(720, 1320, size=n_rows).astype(np.int16),
        "sex": rng.integers(0, 2, size=n_rows).astype(np.int8),
        "district": rng.integers(0, 3, size=n_rows).astype(np.int8),
        "health": health,
        "medical": rng.random(n_rows) < 0.1,
        "spouse": spouse,
        "entry_month": entry_month,
        "death_month": np.full(n_rows, -1, dtype=np.int16),
        "left_month": np.full(n_rows, -1, dtype=np.int16),
        "leave_prob": np.full((2, N_AGES), 0.05),  # some move out, some with a spouse
        "death_prob": death_prob,
        "health_cum": np.ascontiguousarray(cum),
        "medical_onset": np.full(N_STATES, 0.01),
        "medical_remission": 0.02,
        "external_spouse_death": 0.5,
        "seed": 9,
        "month": month,
        "effects": care_effects(Params().health),
        "care_received": (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8)),
        "stock": stock,
        "flows": np.zeros_like(stock),
        "aged": np.zeros((3, 2), dtype=np.int64),
        "event": np.zeros(n_rows, dtype=np.uint8),
        "event_rows": np.full(n_rows, -9, dtype=np.int64),
        "needy_rows": np.full(n_rows, -9, dtype=np.int64),
    }


@pytest.mark.parametrize("n_rows", [0, 1, 7, N_CHUNKS + 3, 5000])
def test_widowhood_and_small_populations(n_rows: int) -> None:
    inputs = _couples(n_rows)
    expected = _serial_reference(inputs)
    for threads in (1, 2):
        _assert_same(_run_kernel(inputs, threads), expected)
    _assert_same(_run_kernel(inputs, 2, alone=True), expected)
    if n_rows == 5000:  # couples who both died: the first in key order keeps the link
        pairs = np.array([(a, b) for a, b in enumerate(inputs["spouse"]) if a < b]).T
        died = expected["death_month"] == inputs["month"]
        both = died[pairs[0]] & died[pairs[1]]
        assert both.sum() > 10
        first, second = pairs[:, both]
        assert (expected["spouse"][first] == second).all()
        assert (expected["spouse"][second] == -1).all()
        assert (expected["event"][first] == EVENT_DIED).all()
        assert (expected["event"][second] == EVENT_DIED | EVENT_WIDOWED).all()
        assert expected["flows"][:, C_WIDOWED].sum() > 0
        # one spouse moved out, the other stayed: no longer married, a carer lost, not widowed
        left = expected["left_month"] == inputs["month"]
        stayed = pairs[1][left[pairs[0]] & expected["alive"][pairs[1]]]
        assert stayed.size > 10
        assert (expected["spouse"][stayed] == -1).all()
        assert (expected["event"][stayed] & EVENT_SPOUSE_LEFT).all()
        assert not (expected["event"][stayed] & EVENT_WIDOWED).any()


def test_concurrent_calls_from_threads() -> None:
    """Models may run in threads (the app does): concurrent calls must neither crash numba's
    threading layer nor mix their results."""
    inputs = _couples(3000)
    expected = _serial_reference(inputs)
    results: list[dict] = []

    def work() -> None:
        for _ in range(5):
            a = _copy(inputs)
            a["result"] = step_population(*_arguments(a))
            results.append(a)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20
    for got in results:
        _assert_same(got, expected)


@pytest.mark.parametrize("limit", [0, 1, N_CHUNKS // 3, N_CHUNKS])
@pytest.mark.parametrize("together", [True, False])
def test_claimed_chunks_run_each_chunk_once(months: list[dict], limit: int, together: bool) -> None:
    """Two threads claiming chunks from either end (the one from the first chunk up stopping
    at `limit`), at the same time or one after the other, run every chunk exactly once between
    them: the serial result."""
    for inputs in months:
        a = _copy(inputs)
        kernel = month_kernel(*_arguments(a))
        kernel.parts = Parts().get(a["n_alive"])
        from_bottom, from_top = _claim_from_both_ends(kernel, limit, together)
        assert from_bottom <= limit and from_bottom + from_top == kernel.n_chunks
        if not together:  # the bottom claimed first: as many as it may
            assert from_bottom == min(limit, kernel.n_chunks)
        a["result"] = kernel.merge()
        _assert_same(a, _serial_reference(inputs))


def _claim_from_both_ends(kernel: MonthKernel, limit: int, together: bool) -> tuple[int, int]:
    """Chunks run by this thread claiming from the bottom (up to `limit`) and by another from
    the top, started at once or after this thread is done."""
    from_top = []
    top = threading.Thread(target=lambda: from_top.append(kernel.claim_chunks(True)))
    if together:
        top.start()
    from_bottom = kernel.claim_chunks(False, limit)
    if not together:
        top.start()
    top.join()
    return from_bottom, from_top[0]


@pytest.mark.parametrize("split", [0, 1, N_CHUNKS // 3, N_CHUNKS - 1, N_CHUNKS])
def test_chunks_shared_between_two_threads(months: list[dict], split: int) -> None:
    """The month ahead runs chunks 0..split-1 on the worker and the rest on the calling thread,
    at the same time; any split gives the serial result."""
    for inputs in months:
        a = _copy(inputs)
        kernel = month_kernel(*_arguments(a))
        kernel.parts = Parts().get(a["n_alive"])
        worker = threading.Thread(target=kernel.run_chunks, args=(0, split))
        worker.start()
        kernel.run_chunks(split, kernel.n_chunks)
        worker.join()
        a["result"] = kernel.merge()
        _assert_same(a, _serial_reference(inputs))
