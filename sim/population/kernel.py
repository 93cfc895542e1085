"""The fused monthly population kernel: deaths, health and medical-need transitions, widowhood,
counts by district, ageing. One compiled pass over the resident columns (numba), so a month of
the full city costs milliseconds; every draw is keyed by (seed, stream, person, month).

A person's month takes one keyed uniform u (stream LIFE) and uses it three times, each time
conditioned on the outcome so far: death if u < p_death; else v = (u - p_death) / (1 - p_death),
uniform given survival, picks the next health state; w, the position of v within that state's
interval, uniform given the state, decides medical-need onset or remission. The three outcomes have
exactly the probabilities of three independent draws, and the hash, the costliest part of the row,
is computed once instead of three times. A small change in one probability (a scenario's mortality
or disability trend) moves v and w only a little, so the paths of two scenarios stay coupled as
common random numbers should be (../shared/DESIGN.md section 6). Most months nothing happens to a
person; the uniforms for which that is certain form one interval per cell and medical need
(`_quiet_table`), so most rows take one comparison instead of the transition arithmetic.

The pass runs on all cores. The living rows are cut into N_CHUNKS contiguous chunks (a fixed
number: nothing depends on how many threads run them); each chunk lists its event rows, needy
rows and deaths in its own part of the buffers and counts into its own array, and a short serial
merge joins the parts in key order and takes the dead out of the list of the living. The one
thing a row does to another row, widowing the spouse of a person who dies, is left to that merge,
which does it in key order; no row's own processing reads the spouse column of another row, so
the result is exactly that of one serial pass (only the order of the event rows differs).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numba
import numpy as np

from sim.engine.jit import fetch_add, kernel, row_function
from sim.engine.rng import Stream, keyed_uniform
from sim.population.care_effects import (
    DEPENDENT_STATE,
    N_STATUS,
    CareEffects,
    scaled_probability,
)
from sim.population.demography import AGE_MIN
from sim.population.health import STATE_NAMES

# Columns of the per-district count array filled by the kernel.
C_60, C_65, C_80, C_STATE0 = 0, 1, 2, 3  # states occupy 3..7 (the stock: C_60..C_MEDICAL)
C_MEDICAL, C_DEATHS, C_ENTRANTS, C_WIDOWED, C_NEED_CHANGED = 8, 9, 10, 11, 12
C_EMIGRANTS, C_IMMIGRANTS = 13, 14
N_COUNTS = 15
# The names of the count columns, as the KPI registry (sim.kpis.registry) calls them.
COUNTS = (
    "residents_60plus", "residents_65plus", "residents_80plus", *STATE_NAMES, "medical_need",
    "deaths", "entrants", "widowed", "need_changed", "emigrants", "immigrants",
)  # fmt: skip

EVENT_NEED = 1  # care-need level changed, or the medical need of someone with a care need
EVENT_WIDOWED = 2  # spouse died: a carer is lost
EVENT_DIED = 4  # died this month: bed, queue place and team slot are freed
EVENT_ARRIVED = 8  # an entrant or newcomer in need: decides about care on arrival
EVENT_LEFT = 16  # moved out of Taiyuan this month (net out-migration): places are freed
EVENT_SPOUSE_LEFT = 32  # a resident spouse moved out: a carer is lost
EVENT_EXIT = EVENT_DIED | EVENT_LEFT  # no longer a resident
NEED_LEVEL = np.array([0, 0, 1, 2, 3], dtype=np.int8)  # care-need level of each health state

# Enough chunks to share out evenly over any usual core count, few enough that the per-chunk
# counts and the merge stay negligible. Fixed: the results never depend on the thread count.
N_CHUNKS = 64

# numba's workqueue threading layer (`sim.configure()` selects it) must not be entered by two
# threads at once (the app runs models in threads), hence _LOCK.
_LOCK = threading.Lock()

_S_LIFE, _S_SPOUSE = int(Stream.LIFE), int(Stream.SPOUSE)

# Per-chunk counts [chunk, district, column]: the N_COUNTS columns (stock deltas in C_60..
# C_MEDICAL, flows after), then the people turning 65 and 80 at the end of the month.
_AGED_65, _AGED_80 = N_COUNTS, N_COUNTS + 1
_N_CHUNK_COUNTS = N_COUNTS + 2
# Per-chunk sizes [chunk, column]: event rows, needy rows, deaths.
_EVENTS, _NEEDY, _DEATHS = 0, 1, 2
# Columns of the per-cell table (cell = sex, age, state): death probability, the probability of
# death or moving out and 1 / (1 - it), the interval [stay_low, stay_high) of the health uniform v
# that keeps the state and 1 / its width, medical-need onset.
_P_DEATH, _P_EXIT, _SURVIVAL_SCALE, _STAY_LOW, _STAY_HIGH, _STAY_SCALE, _ONSET = range(7)
_N_CELL = 7
_BELOW_ONE = 1.0 - 2.0**-53  # the largest float64 below 1: v stays a uniform on [0, 1)
_QUIET_MARGIN = 1e-11  # narrows the quiet intervals of u (`_quiet_table`)
_M60, _M65, _M80 = 60 * 12, 65 * 12, 80 * 12

# Indices in the loops are unsigned: with the signed int8/int16 columns numba emits negative-index
# wraparound and floor-division sign fixes, which cost more than the loads themselves (and keep
# LLVM from vectorising the joins).
_U = np.uint64
_STATE0 = _U(C_STATE0)

# The row code allocates nothing, so it is compiled without reference counting (sim/engine/jit.py).


# -- tables -------------------------------------------------------------------------------------
class Columns(NamedTuple):
    """The resident columns the kernel reads and writes (population.COLUMNS), and alive_idx."""

    alive_idx: np.ndarray
    alive: np.ndarray
    age_m: np.ndarray
    sex: np.ndarray
    district: np.ndarray
    health: np.ndarray
    medical: np.ndarray
    spouse: np.ndarray
    entry_month: np.ndarray
    death_month: np.ndarray
    left_month: np.ndarray
    event: np.ndarray


class KernelColumns(NamedTuple):
    """The columns the row loop writes. The others the kernel changes (alive_idx, alive, spouse,
    death_month) only the merge writes, so a month run ahead needs its own copies of these four
    only (`Source`)."""

    age_m: np.ndarray
    health: np.ndarray
    medical: np.ndarray
    event: np.ndarray


class Source(NamedTuple):
    """The month before, for a month run on other copies of the `KernelColumns`
    (`month_kernel(source=...)`): its copies, its rows [0, size) and its living count."""

    columns: KernelColumns
    size: int
    n_alive: int


class _Tables(NamedTuple):
    """This month's tables (`_cell_tables`, `_quiet_table`), rates and keys of the draws, and
    the care received `care_effects.LAG` months before: sorted rows and their status codes
    (the cells of status s lie `block * s` past those of status 0)."""

    base: np.ndarray
    cells: np.ndarray
    cum: np.ndarray
    quiet: np.ndarray
    block: int
    status_rows: np.ndarray
    status: np.ndarray
    medical_remission: float
    external_spouse_death: float
    seed: int
    month: int


def _cell_tables(
    death_prob: np.ndarray,
    leave_prob: np.ndarray,
    health_cum: np.ndarray,
    medical_onset: np.ndarray,
    effects: CareEffects,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The monthly tables in the form the row loop reads fastest; cell = (care status, sex, age,
    state).

    base[sex, age in months]: the cell of state 0 and status 0, by lookup instead of
    `min(age_m // 12 - 60, n_ages - 1)` (ages are >= 60, entrants being 60; the last age holds
    everyone older, as in the tables). cells[cell]: what nearly every row reads, side by side:
    death probability, the probability of death or moving out (leave_prob[sex, age] added), the
    interval [stay_low, stay_high) of the health uniform that keeps the state, the medical-need
    onset of the state, and the reciprocals that turn u into v and v into w by a multiplication
    (0 where the interval is empty and never used). cum[cell, to]: the cumulative transition row,
    for the few who change state. Each care status (`care_effects`) has a block of cells with
    the death hazard and the hazard of partial to full dependency scaled by its multipliers;
    status 0 (no status) is the tables as given. Copies of the same float64 values, so every
    comparison is exactly the one made on the original tables.
    """
    n_sex, n_ages, n_states = death_prob.shape
    months = np.arange((AGE_MIN + n_ages) * 12)
    age = np.minimum(np.maximum(months // 12 - AGE_MIN, 0), n_ages - 1)
    base = (np.arange(n_sex)[:, None] * n_ages + age[None, :]) * n_states
    cells, cums = [], []
    for status in range(N_STATUS):
        cum = _worsened(health_cum, effects.worsening[status])
        died = scaled_probability(death_prob, effects.death[status]) if status else death_prob
        cells.append(_status_cells(died, leave_prob, cum, medical_onset))
        cums.append(np.ascontiguousarray(cum, dtype=np.float64).reshape(-1, n_states))
    return base.astype(np.uint32), np.concatenate(cells), np.concatenate(cums)


def _status_cells(
    death_prob: np.ndarray, leave_prob: np.ndarray, health_cum: np.ndarray, onset: np.ndarray
) -> np.ndarray:
    """One status's block of `cells` (see `_cell_tables`), [sex * age * state, _N_CELL]."""
    n_states = death_prob.shape[2]
    states = np.arange(n_states)
    cells = np.empty((*death_prob.shape, _N_CELL))
    cells[..., _P_DEATH] = death_prob
    cells[..., _P_EXIT] = np.minimum(death_prob + leave_prob[:, :, None], 1.0)
    cells[..., _SURVIVAL_SCALE] = _reciprocal(1.0 - cells[..., _P_EXIT])
    cells[..., _STAY_LOW] = np.where(states > 0, health_cum[:, :, states, states - 1], 0.0)
    cells[..., _STAY_HIGH] = health_cum[:, :, states, states]
    cells[..., _STAY_SCALE] = _reciprocal(cells[..., _STAY_HIGH] - cells[..., _STAY_LOW])
    cells[..., _ONSET] = onset
    return cells.reshape(-1, _N_CELL)


def _worsened(health_cum: np.ndarray, multiplier: float) -> np.ndarray:
    """`health_cum` with the hazard of partial to full dependency times `multiplier`: the
    probability taken from staying partially dependent (the table itself for 1)."""
    if multiplier == 1.0:
        return health_cum
    cum = health_cum.copy()
    row = cum[:, :, DEPENDENT_STATE]  # cumulative over `to`, from partial dependency
    p = np.diff(row, prepend=0.0, axis=-1)
    full = DEPENDENT_STATE + 1
    moved = scaled_probability(p[..., full], multiplier)
    moved = np.minimum(moved, p[..., DEPENDENT_STATE] + p[..., full])
    p[..., DEPENDENT_STATE] += p[..., full] - moved
    p[..., full] = moved
    cum[:, :, DEPENDENT_STATE] = np.cumsum(p, axis=-1)
    return cum


def _quiet_table(cells: np.ndarray, medical_remission: float) -> np.ndarray:
    """quiet[2 * cell + medical] = [low, high): the uniforms u that surely leave a person of
    that cell and medical need as they are (alive, same state, same medical need), so the row
    loop can skip the transition arithmetic for them (97 rows in 100 in 2030). In exact
    arithmetic that is u in [p + (stay_low + t (stay_high - stay_low)) (1 - p),
    p + stay_high (1 - p)), with p the probability of death or moving out and t the medical
    threshold (onset, or remission for those with a need).
    The interval is narrowed by _QUIET_MARGIN, far beyond the rounding of the row loop's
    arithmetic (~1e-15), so every u inside is quiet in that arithmetic too; the few near its
    ends take the exact path. Empty where the state cannot be kept."""
    p, low, high = cells[:, _P_EXIT], cells[:, _STAY_LOW], cells[:, _STAY_HIGH]
    out = np.empty((cells.shape[0], 2, 2))
    for medical, threshold in enumerate((cells[:, _ONSET], np.full(p.shape, medical_remission))):
        keep_from = low + threshold * (high - low)
        out[:, medical, 0] = p + keep_from * (1 - p) + _QUIET_MARGIN
        out[:, medical, 1] = p + high * (1 - p) - _QUIET_MARGIN
    return out.reshape(-1, 2)


def _reciprocal(width: np.ndarray) -> np.ndarray:
    """1 / width, and 0 where the width is not positive (an interval no uniform falls in)."""
    return np.divide(1.0, width, out=np.zeros_like(width), where=width > 0)


# -- one row ------------------------------------------------------------------------------------
@row_function
def _mark(event, event_rows, start, n_events, row, bit):
    """Set an event bit; a row's first event this month adds it to event_rows[start + n]."""
    if event[row] == 0:
        event_rows[start + n_events] = row
        n_events += 1
    event[row] |= bit
    return n_events


@row_function
def _count_new(counts, d, h, age_months, medical_now):
    """A new resident of this month (turning 60, or moving in at any age) was drawn in their
    state and age already: only counted."""
    counts[d, C_ENTRANTS if age_months == _M60 else C_IMMIGRANTS] += 1
    counts[d, C_60] += 1
    counts[d, _STATE0 + h] += 1
    if age_months >= _M65:
        counts[d, C_65] += 1
    if age_months >= _M80:
        counts[d, C_80] += 1
    if medical_now:
        counts[d, C_MEDICAL] += 1


@row_function
def _count_exit(counts, d, h, age_months, medical_now, flow):
    """Take a person who died or moved out (`flow`: C_DEATHS or C_EMIGRANTS) out of the stock of
    their district."""
    counts[d, flow] += 1
    counts[d, C_60] -= 1
    counts[d, _STATE0 + h] -= 1
    if age_months >= _M65:
        counts[d, C_65] -= 1
    if age_months >= _M80:
        counts[d, C_80] -= 1
    if medical_now:
        counts[d, C_MEDICAL] -= 1


@row_function
def _next_health(v, cells, cum, cell, h):
    """State after one month for the health uniform v, and w: where v lies within that state's
    interval, scaled to [0, 1) (uniform given the state). Most people stay: tested first."""
    if cells[cell, _STAY_LOW] <= v < cells[cell, _STAY_HIGH]:
        return h, (v - cells[cell, _STAY_LOW]) * cells[cell, _STAY_SCALE]
    last = _U(cum.shape[1] - 1)
    new_h = _U(0)
    while v >= cum[cell, new_h] and new_h < last:
        new_h += _U(1)
    low = cum[cell, new_h - _U(1)] if new_h > 0 else 0.0
    high = cum[cell, new_h]
    # v >= high only past the last state (a table summing to just under 1): no medical change
    return new_h, (v - low) / (high - low) if v < high else 1.0


@kernel
def _step_chunk(lo, hi, columns, tables, event_part, needy_part, dead_part, counts):
    """One chunk, rows alive_idx[lo:hi]: everything `step_population` does except what the
    merge does (recording deaths and widowhood in alive, death_month and spouse, taking the dead
    out of alive_idx); it lists the positions of the dead in alive_idx instead. Writes its event
    rows, needy rows and dead positions from index lo of the part buffers (never more than
    hi - lo of each), all in key order; counts[district, column] receives its counts. Returns
    the sizes (event rows, needy rows, deaths)."""
    alive_idx, _, age_m, sex, district, health, medical, spouse = columns[:8]
    entry_month, _, _, event = columns[8:]
    base, cells, cum, quiet, block, status_rows, status = tables[:7]
    medical_remission, external_spouse_death, seed, month = tables[7:]
    n_events = n_needy = n_dead = 0
    last_m = _U(base.shape[1] - 1)
    # the care received (sorted rows): walked alongside the chunk's rows, which are in key order
    j = np.searchsorted(status_rows, alive_idx[lo]) if lo < hi else 0
    n_status = status_rows.size
    # Each row's draw is made one iteration ahead, before the branches of the row before, so
    # that its long multiply chain overlaps that row's work (and survives its mispredictions).
    u_next = keyed_uniform(seed, _S_LIFE, alive_idx[lo] if lo < hi else 0, month)
    for k in range(lo, hi):
        r = _U(alive_idx[k])
        u = u_next
        u_next = keyed_uniform(seed, _S_LIFE, alive_idx[min(k + 1, hi - 1)], month)
        d = _U(district[r])
        h = _U(health[r])
        new = entry_month[r] == month  # an entrant or a newcomer: counted, not aged this month
        if new:
            _count_new(counts, d, h, _U(age_m[r]), medical[r])
        else:
            age_months = _U(age_m[r])
            while j < n_status and status_rows[j] < r:
                j += 1
            received = status[j] if j < n_status and status_rows[j] == r else 0
            cell = _U(base[_U(sex[r]), min(age_months, last_m)]) + h + _U(received) * _U(block)
            q = _U(2) * cell + _U(medical[r])
            changed = False
            if not quiet[q, 0] <= u < quiet[q, 1]:  # else alive, same state, same medical need
                if u < cells[cell, _P_EXIT]:  # alive and death_month are the merge's to write
                    died = u < cells[cell, _P_DEATH]
                    flow, bit = (C_DEATHS, EVENT_DIED) if died else (C_EMIGRANTS, EVENT_LEFT)
                    _count_exit(counts, d, h, age_months, medical[r], flow)
                    n_events = _mark(event, event_part, lo, n_events, r, bit)
                    dead_part[lo + n_dead] = k
                    n_dead += 1
                    continue
                v = min((u - cells[cell, _P_EXIT]) * cells[cell, _SURVIVAL_SCALE], _BELOW_ONE)
                new_h, w = _next_health(v, cells, cum, cell, h)
                if new_h != h:
                    health[r] = new_h
                    counts[d, _STATE0 + h] -= 1
                    counts[d, _STATE0 + new_h] += 1
                    changed = NEED_LEVEL[new_h] != NEED_LEVEL[h]
                    cell = cell - h + new_h
                    h = new_h
                cared = NEED_LEVEL[h] > 0  # a medical change matters to care with a care need
                if medical[r]:
                    if w < medical_remission:
                        medical[r] = False
                        counts[d, C_MEDICAL] -= 1
                        changed = changed or cared
                elif w < cells[cell, _ONSET]:
                    medical[r] = True
                    counts[d, C_MEDICAL] += 1
                    changed = changed or cared
            if spouse[r] == -2 and keyed_uniform(seed, _S_SPOUSE, r, month) < external_spouse_death:
                n_events = _mark(event, event_part, lo, n_events, r, EVENT_WIDOWED)  # merge: -1
            if changed:
                n_events = _mark(event, event_part, lo, n_events, r, EVENT_NEED)
                counts[d, C_NEED_CHANGED] += 1
        if NEED_LEVEL[h] > 0:
            needy_part[lo + n_needy] = r
            n_needy += 1
            if new:
                n_events = _mark(event, event_part, lo, n_events, r, EVENT_ARRIVED)
        if not new:
            older = age_m[r] + 1
            age_m[r] = older
            if older == _M65:
                counts[d, _AGED_65] += 1
            elif older == _M80:
                counts[d, _AGED_80] += 1
    return n_events, n_needy, n_dead


# -- all rows -----------------------------------------------------------------------------------
@row_function
def _run_chunk(c, bounds, sizes, counts, columns, tables, event_part, needy_part, dead_part):
    """Chunk c: sizes[c] and counts[c] receive its results."""
    events, needy, dead = _step_chunk(
        bounds[c], bounds[c + 1], columns, tables, event_part, needy_part, dead_part, counts[c]
    )
    sizes[c, _EVENTS] = events
    sizes[c, _NEEDY] = needy
    sizes[c, _DEATHS] = dead


@numba.njit(parallel=True, cache=True)
def _step_chunks(bounds, sizes, counts, columns, tables, event_part, needy_part, dead_part):
    """The chunks [bounds[c], bounds[c + 1]) of alive_idx, in parallel. Chunks touch disjoint
    rows and disjoint parts of the buffers."""
    for c in numba.prange(bounds.size - 1):
        _run_chunk(c, bounds, sizes, counts, columns, tables, event_part, needy_part, dead_part)


@kernel
def _step_chunks_alone(
    first, stop, bounds, sizes, counts, columns, tables, event_part, needy_part, dead_part, source
):  # fmt: skip
    """Chunks first..stop-1 one after another on this thread, without the GIL: for the month
    that runs ahead beside this month's care. With a `source` (size >= 0), each chunk first
    copies its rows of the month before into `columns`, so the copy and the kernel meet the rows
    once, in cache."""
    for c in range(first, stop):
        _copy_and_run(
            c, bounds, sizes, counts, columns, tables, event_part, needy_part, dead_part, source
        )  # fmt: skip


@kernel
def _claimed_chunks(
    from_top, limit, claims, bounds, sizes, counts, columns, tables, event_part, needy_part,
    dead_part, source,
):  # fmt: skip
    """Claim chunks one at a time and run them (`_step_chunks_alone`'s work), until every chunk
    is claimed: from the first chunk up, and never chunk `limit` or later, or with `from_top`
    from the last chunk down. Each claim takes a ticket, claims[0], atomically; a ticket below
    the number of chunks grants the side its next chunk. So two threads, one from each end,
    share out the chunks exactly, however long each takes to arrive or to run them. Returns the
    number of chunks this call ran."""
    n_chunks = bounds.size - 1
    ran = 0
    while from_top or ran < limit:
        if fetch_add(claims, 0, 1) >= n_chunks:
            break
        c = n_chunks - 1 - ran if from_top else ran
        _copy_and_run(
            c, bounds, sizes, counts, columns, tables, event_part, needy_part, dead_part, source
        )  # fmt: skip
        ran += 1
    return ran


@row_function
def _copy_and_run(
    c, bounds, sizes, counts, columns, tables, event_part, needy_part, dead_part, source
):  # fmt: skip
    """Chunk c, its rows of a `source` (size >= 0) copied into `columns` first."""
    if source.size >= 0:
        _copy_chunk(c, bounds, source, columns)
    _run_chunk(c, bounds, sizes, counts, columns, tables, event_part, needy_part, dead_part)


@row_function
def _first_row(alive_idx, source, position):
    """The first row of the chunk starting at `position` of alive_idx: the source's living row
    there, or the source's size for the positions of this month's entrants (their rows follow
    the source's rows and are written already)."""
    return alive_idx[position] if position < source.n_alive else source.size


@row_function
def _copy_chunk(c, bounds, source, columns):
    """Copy chunk c's rows of the `KernelColumns`, from the row it starts at to the row the next
    chunk starts at (the first chunk from row 0, the last to the source's size: the chunks share
    out every row, living or not). No event bits are copied: a month starts with none. Column by
    column, so that each loop is a plain (vectorised) copy. (alive_idx is the month before's
    until the merge.)"""
    first, stop = bounds[c], bounds[c + 1]
    s, alive_idx = source.columns, columns.alive_idx
    row = _U(0) if c == 0 else _U(_first_row(alive_idx, source, first))
    end = _U(source.size) if c == bounds.size - 2 else _U(_first_row(alive_idx, source, stop))
    n = end - row
    _copy_down(s.age_m, row, columns.age_m, row, n)
    _copy_down(s.health, row, columns.health, row, n)
    _copy_down(s.medical, row, columns.medical, row, n)
    for r in range(row, end):
        columns.event[r] = 0


@row_function
def _copy_down(source, start, target, to, size):
    """target[to:to + size] = source[start:start + size], where target may be source with
    to <= start: copying forward is then safe, and with unsigned indices LLVM vectorises it."""
    for t in range(size):
        target[to + t] = source[start + t]


@numba.njit(cache=True)
def _join_parts(part, bounds, sizes, column, target):
    """Copy each chunk's list part[bounds[c]:][:sizes[c, column]] behind the previous chunk's
    into target (which may be part itself), in chunk order, so in key order; returns the length."""
    n = _U(0)
    for c in range(bounds.size - 1):
        size = _U(sizes[c, column])
        _copy_down(part, _U(bounds[c]), target, n, size)
        n += size
    return np.int64(n)


@numba.njit(cache=True)
def _remove_dead(alive_idx, n_alive, dead_at, n_dead):
    """Take the positions dead_at[:n_dead] (increasing) out of alive_idx[:n_alive], keeping the
    order: each run of survivors moves down by the number of deaths before it (the rows before
    the first death stay put). Returns the living count."""
    n = start = _U(0)
    for t in range(n_dead):
        stop = _U(dead_at[t])
        _copy_down(alive_idx, start, alive_idx, n, stop - start)
        n += stop - start
        start = stop + _U(1)
    rest = _U(n_alive) - start
    _copy_down(alive_idx, start, alive_idx, n, rest)
    return np.int64(n + rest)


@numba.njit(nogil=True, cache=True)
def _merge_chunks(
    bounds, sizes, counts, parts, columns, n_alive, event_rows, needy_rows, stock, flows, aged,
    month,
):  # fmt: skip
    """The serial end of the month: join the chunks' lists in key order and add up their counts;
    record the deaths (and those who moved out) and widow the spouses of the dead (the spouses
    of those who moved out lose them too, without being widowed), going through the exits in key
    order as a serial pass would (someone whose spouse died earlier in key order has no spouse
    left to widow when they die too; the newly widowed without an event yet go to the end of
    event_rows); take the dead and the departed out of alive_idx; end the marriages of those
    whose external spouse died; count the living widowed. Returns (living count, event rows,
    needy rows).

    Only here are alive_idx, alive, spouse, death_month and left_month written: a month run
    ahead leaves them as they are until its merge."""
    alive_idx, alive, district, spouse, event = (
        columns.alive_idx, columns.alive, columns.district, columns.spouse, columns.event
    )  # fmt: skip
    n_events = _join_parts(parts[_EVENTS], bounds, sizes, _EVENTS, event_rows)
    n_needy = _join_parts(parts[_NEEDY], bounds, sizes, _NEEDY, needy_rows)
    dead_at = parts[_DEATHS]
    n_dead = _join_parts(dead_at, bounds, sizes, _DEATHS, dead_at)
    for c in range(counts.shape[0]):
        for d in range(counts.shape[1]):
            for col in range(C_60, C_MEDICAL + 1):
                stock[d, col] += counts[c, d, col]
            for col in range(C_DEATHS, N_COUNTS):
                flows[d, col] += counts[c, d, col]
            aged[d, 0] += counts[c, d, _AGED_65]
            aged[d, 1] += counts[c, d, _AGED_80]
    for t in range(n_dead):
        r = alive_idx[dead_at[t]]
        alive[r] = False
        died = event[r] & EVENT_DIED
        if died:
            columns.death_month[r] = month
        else:
            columns.left_month[r] = month
        j = spouse[r]
        if j >= 0:
            spouse[j] = -1
            bit = EVENT_WIDOWED if died else EVENT_SPOUSE_LEFT
            n_events = _mark(event, event_rows, 0, n_events, j, bit)
    n_kept = _remove_dead(alive_idx, n_alive, dead_at, n_dead)
    for k in range(n_events):
        row = event_rows[k]
        if event[row] & EVENT_WIDOWED and alive[row]:
            if spouse[row] == -2:  # the external spouse died (the row loop's draw)
                spouse[row] = -1
            flows[district[row], C_WIDOWED] += 1
    return n_kept, n_events, n_needy


class Parts:
    """`n_lists` buffers of rows kept from one call to the next: by default those for the chunks'
    lists (event rows, needy rows, dead positions). Fresh ones would be zeroed by the OS wherever
    a chunk writes (in 2 MiB huge pages, numpy asks for them), and every chunk starts at a
    different place: that cost more than the whole merge. The caller's buffers are written
    compactly, from their start, as a serial pass would. Pickled empty."""

    def __init__(self, n_lists: int = 3) -> None:
        self.array = np.empty((n_lists, 0), dtype=np.int64)

    def get(self, n: int) -> np.ndarray:
        if self.array.shape[1] < n:
            self.array = np.empty((self.array.shape[0], n + n // 4), dtype=np.int64)
        return self.array

    def __reduce__(self) -> tuple:
        return Parts, (self.array.shape[0],)


_PARTS = Parts()


class MonthRates(NamedTuple):
    """The month's rates and the keys of its draws. death_prob[sex, age, state],
    leave_prob[sex, age] (moving out of Taiyuan), health_cum[sex, age, from, to] and
    medical_onset[state] are monthly."""

    death_prob: np.ndarray
    leave_prob: np.ndarray
    health_cum: np.ndarray
    medical_onset: np.ndarray
    medical_remission: float
    external_spouse_death: float
    seed: int
    month: int
    effects: CareEffects  # hazard multipliers by care status
    care_received: tuple[np.ndarray, np.ndarray]  # (rows, status) of care_effects.LAG months ago


class PopulationMonth(NamedTuple):
    """What the population kernel produced for one month."""

    event_rows: np.ndarray  # rows with an event (deaths, need changes, widowhood, arrivals in need)
    needy: np.ndarray  # living rows needing care (state 2+), in key order
    counts: np.ndarray  # [district, COUNTS] of the month
    stock: np.ndarray  # the stock carried into the next month


class KernelOutputs(NamedTuple):
    """The arrays the kernel fills, or for `stock` updates. stock[district, C_60..C_MEDICAL] is
    kept up to date by deltas (deaths, moves, transitions, new residents); flows[district,
    C_DEATHS..] counts this month's events; aged[district, 0/1] the people turning 65 / 80 at the
    end of the month (added to the stock before the month's counts are taken). event_rows
    receives the rows whose `event` bits were set this month (each row once, in no particular
    order), needy the living rows with a care need (state 2+), in key order;
    each needs room for n_alive rows (buffers kept from month to month: `month` copies them
    out)."""

    stock: np.ndarray
    flows: np.ndarray
    aged: np.ndarray
    event_rows: np.ndarray
    needy: np.ndarray

    def month(self, n_events: int, n_needy: int) -> PopulationMonth:
        """The month's results, given the lengths of the lists the kernel returned: the counts
        are the stock on the first day of the next month (after ageing) and the month's flows."""
        self.stock[:, C_65] += self.aged[:, 0]
        self.stock[:, C_80] += self.aged[:, 1]
        counts = self.stock + self.flows
        event_rows, needy = self.event_rows[:n_events].copy(), self.needy[:n_needy].copy()
        return PopulationMonth(event_rows, needy, counts, self.stock)


def kernel_columns(pop) -> Columns:
    """The population's columns the kernel reads and writes, by name."""
    return Columns(**{name: getattr(pop, name) for name in Columns._fields})


def month_kernel(
    columns: Columns,
    n_alive: int,
    rates: MonthRates,
    outputs: KernelOutputs,
    source: Source | None = None,
) -> MonthKernel:
    """One month for every living resident, ready to run (`step_population` runs it whole).

    columns.alive_idx[:n_alive] lists the living rows in key order and is compacted in place as
    people die. For the outputs see `KernelOutputs`, for `source` see `MonthKernel`.
    """
    base, cells, cum = _cell_tables(
        rates.death_prob, rates.leave_prob, rates.health_cum, rates.medical_onset, rates.effects
    )
    remission = float(rates.medical_remission)
    status_rows, status = rates.care_received
    tables = _Tables(
        base=base,
        cells=cells,
        cum=cum,
        quiet=_quiet_table(cells, remission),
        block=cells.shape[0] // N_STATUS,
        status_rows=status_rows,
        status=status,
        medical_remission=remission,
        external_spouse_death=float(rates.external_spouse_death),
        seed=int(rates.seed),
        month=int(rates.month),
    )
    return MonthKernel(columns, n_alive, tables, tuple(outputs), source)


def step_population(
    columns: Columns,
    n_alive: int,
    rates: MonthRates,
    outputs: KernelOutputs,
    alone: bool = False,
) -> tuple[int, int, int]:
    """Advance every living resident by one month: `month_kernel(...)`, run whole.
    Returns (living count, number of event rows, number of needy rows).

    The chunks run in parallel, or with alone=True one after another on the calling thread
    without the GIL (the same results). The whole call holds the lock that keeps threads out of
    numba's workqueue and of the shared part buffers.
    """
    month = month_kernel(columns, n_alive, rates, outputs)
    with _LOCK:
        month.parts = _PARTS.get(month.n_alive)
        if alone:
            month.run_chunks(0, month.n_chunks)
        else:
            _step_chunks(*month.chunk_arguments())
        return month.merge()


class MonthKernel:
    """One month of the kernel (the arguments of `step_population`, gathered) in separate steps:
    the chunks, each run exactly once in any order and on any threads (`run_chunks` or
    `claim_chunks`, without the GIL), then `merge`, which joins them in key order. The results
    do not depend on who ran which chunk. `parts` must be set to buffers no other kernel uses
    meanwhile (`Parts.get`).

    A `source` (the month before's `KernelColumns`, other arrays) is copied into the columns chunk
    by chunk, before each chunk runs (rows [0, source.size); the rows after, this month's
    entrants, must be in the columns already); the other columns are shared and only the merge
    writes them.
    """

    def __init__(
        self,
        columns: Columns,
        n_alive: int,
        tables: _Tables,
        outputs: tuple[np.ndarray, ...],
        source: Source | None = None,
    ):
        n_chunks = max(min(N_CHUNKS, n_alive), 1)
        self.bounds = np.arange(n_chunks + 1, dtype=np.int64) * n_alive // n_chunks
        self.sizes = np.zeros((n_chunks, 3), dtype=np.int64)
        self.counts = np.zeros((n_chunks, outputs[0].shape[0], _N_CHUNK_COUNTS), dtype=np.int64)
        self.columns, self.n_alive, self.tables, self.outputs = columns, n_alive, tables, outputs
        if source is None:  # nothing to copy (size -1), in arrays of the columns' types
            empty = (getattr(columns, name)[:0] for name in KernelColumns._fields)
            source = Source(KernelColumns(*empty), -1, -1)
        self.source = source
        self.parts: np.ndarray | None = None
        self._claims = np.zeros(1, dtype=np.int64)  # tickets taken (`claim_chunks`)

    @property
    def n_chunks(self) -> int:
        return self.bounds.size - 1

    def chunk_arguments(self) -> tuple:
        parts = self.parts
        lists = (parts[_EVENTS], parts[_NEEDY], parts[_DEATHS])
        return (self.bounds, self.sizes, self.counts, self.columns, self.tables, *lists)

    def run_chunks(self, first: int, stop: int) -> None:
        """Run chunks first..stop-1 on this thread."""
        _step_chunks_alone(first, stop, *self.chunk_arguments(), self.source)

    def claim_chunks(self, from_top: bool, limit: int = N_CHUNKS) -> int:
        """Run the chunks this thread claims before all are claimed (`_claimed_chunks`): from
        the first up to chunk `limit` at most, or `from_top` down. One thread from each end runs
        every chunk once (this month's chunks must not be run otherwise). Returns how many ran."""
        return int(
            _claimed_chunks(from_top, limit, self._claims, *self.chunk_arguments(), self.source)
        )

    def merge(self) -> tuple[int, int, int]:
        """Join the chunks (all run); (living count, number of event rows, of needy rows)."""
        stock, flows, aged, event_rows, needy_rows = self.outputs
        n_kept, n_events, n_needy = _merge_chunks(
            self.bounds, self.sizes, self.counts, self.parts, self.columns, self.n_alive,
            event_rows, needy_rows, stock, flows, aged, self.tables.month,
        )  # fmt: skip
        return int(n_kept), int(n_events), int(n_needy)


def stock_counts(pop, n_districts: int) -> np.ndarray:
    """Stock columns [district, C_60..C_MEDICAL] counted from scratch (start, and tests)."""
    out = np.zeros((n_districts, N_COUNTS), dtype=np.int64)
    _count_stock(pop.alive_rows(), pop.district, pop.age_m, pop.health, pop.medical, out)
    return out


@kernel
def _count_stock(rows, district, age_m, health, medical, out):
    """`stock_counts`' pass over the living `rows`."""
    for k in range(rows.size):
        r = rows[k]
        d, years = district[r], age_m[r] // 12
        out[d, C_60] += 1
        out[d, C_65] += years >= 65
        out[d, C_80] += years >= 80
        out[d, C_STATE0 + health[r]] += 1
        out[d, C_MEDICAL] += medical[r]
