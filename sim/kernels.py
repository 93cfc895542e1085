"""The fused monthly population kernel: deaths, health and medical-need transitions, widowhood,
counts by district, ageing. One compiled pass over the resident columns (numba), so a month of
the full city costs milliseconds; every draw is keyed by (seed, stream, person, month).
"""

from __future__ import annotations

import numba
import numpy as np

from sim.rng import Stream, keyed_uniform

# Columns of the per-district count array filled by the kernel.
C_60, C_65, C_80, C_STATE0 = 0, 1, 2, 3  # states occupy 3..7
C_MEDICAL, C_DEATHS, C_ENTRANTS, C_WIDOWED, C_NEED_CHANGED = 8, 9, 10, 11, 12
N_COUNTS = 13

EVENT_NEED = 1  # care-need level or medical need changed (or a new entrant with a need)
EVENT_WIDOWED = 2  # spouse died: a carer is lost
EVENT_DIED = 4  # died this month: bed, queue place and team slot are freed
EVENT_REVIEW = 8  # periodic review of the care arrangement (once a year per person in need)
NEED_LEVEL = np.array([0, 0, 1, 2, 3], dtype=np.int8)  # care-need level of each health state

_S_DEATH, _S_HEALTH, _S_MEDICAL, _S_SPOUSE = (
    int(Stream.DEATH),
    int(Stream.HEALTH),
    int(Stream.MEDICAL),
    int(Stream.SPOUSE),
)


@numba.njit(cache=True)
def step_population(
    alive_idx,
    n_alive,
    alive,
    age_m,
    sex,
    district,
    health,
    medical,
    spouse,
    entry_month,
    death_month,
    death_prob,
    health_cum,
    medical_onset,
    medical_remission,
    external_spouse_death,
    seed,
    month,
    stock,
    flows,
    aged,
    event,
    event_rows,
    needy_rows,
):
    """Advance every living resident by one month; returns (living count, rows with an event).

    alive_idx[:n_alive] lists the living rows in key order and is compacted in place as people
    die. death_prob[sex, age, state] and health_cum[sex, age, from, to] are monthly.
    stock[district, C_60..C_MEDICAL] is kept up to date by deltas (deaths, transitions,
    entrants), flows[district, C_DEATHS..] counts this month's events, and aged[district, 0/1]
    the people turning 65 / 80 at the end of the month (added to the stock after the snapshot).
    event_rows receives the rows whose `event` bits were set this month (each row once), and
    needy_rows the living rows with a care need (state 2+) or a medical need, in key order.
    Returns (living count, number of event rows, number of needy rows).
    """
    n_events = 0
    n_needy = 0
    n_kept = 0
    n_ages = death_prob.shape[1]
    for k in range(n_alive):
        i = alive_idx[k]
        d = district[i]
        h = health[i]
        if entry_month[i] == month:  # entrants of this month were drawn in their state already
            flows[d, C_ENTRANTS] += 1
            stock[d, C_60] += 1
            stock[d, C_STATE0 + h] += 1
            if medical[i]:
                stock[d, C_MEDICAL] += 1
        else:
            years = age_m[i] // 12
            a = min(years - 60, n_ages - 1)
            s = sex[i]
            if keyed_uniform(seed, _S_DEATH, i, month) < death_prob[s, a, h]:
                alive[i] = False
                death_month[i] = month
                if event[i] == 0:
                    event_rows[n_events] = i
                    n_events += 1
                event[i] |= EVENT_DIED
                flows[d, C_DEATHS] += 1
                stock[d, C_60] -= 1
                stock[d, C_STATE0 + h] -= 1
                if years >= 65:
                    stock[d, C_65] -= 1
                if years >= 80:
                    stock[d, C_80] -= 1
                if medical[i]:
                    stock[d, C_MEDICAL] -= 1
                j = spouse[i]
                if j >= 0:
                    spouse[j] = -1
                    if event[j] == 0:
                        event_rows[n_events] = j
                        n_events += 1
                    event[j] |= EVENT_WIDOWED
                continue
            u = keyed_uniform(seed, _S_HEALTH, i, month)
            low = health_cum[s, a, h, h - 1] if h > 0 else 0.0
            new_h = h
            if u < low or u >= health_cum[s, a, h, h]:  # most people stay: test that first
                new_h = 0
                while u >= health_cum[s, a, h, new_h] and new_h < 4:
                    new_h += 1
                health[i] = new_h
                stock[d, C_STATE0 + h] -= 1
                stock[d, C_STATE0 + new_h] += 1
            changed = NEED_LEVEL[new_h] != NEED_LEVEL[h]
            u = keyed_uniform(seed, _S_MEDICAL, i, month)
            if medical[i]:
                if u < medical_remission:
                    medical[i] = False
                    stock[d, C_MEDICAL] -= 1
                    changed = True
            elif u < medical_onset[new_h]:
                medical[i] = True
                stock[d, C_MEDICAL] += 1
                changed = True
            if spouse[i] == -2 and keyed_uniform(seed, _S_SPOUSE, i, month) < external_spouse_death:
                spouse[i] = -1
                if event[i] == 0:
                    event_rows[n_events] = i
                    n_events += 1
                event[i] |= EVENT_WIDOWED
            if changed:
                if event[i] == 0:
                    event_rows[n_events] = i
                    n_events += 1
                event[i] |= EVENT_NEED
                flows[d, C_NEED_CHANGED] += 1
        if NEED_LEVEL[health[i]] > 0 or medical[i]:
            needy_rows[n_needy] = i
            n_needy += 1
            due = (entry_month[i] == month) or (i % 12 == month % 12)
            if due:
                if event[i] == 0:
                    event_rows[n_events] = i
                    n_events += 1
                event[i] |= EVENT_REVIEW
        age_m[i] += 1
        if age_m[i] == 65 * 12:
            aged[d, 0] += 1
        elif age_m[i] == 80 * 12:
            aged[d, 1] += 1
        alive_idx[n_kept] = i
        n_kept += 1
    for k in range(n_events):
        if event[event_rows[k]] & EVENT_WIDOWED and alive[event_rows[k]]:
            flows[district[event_rows[k]], C_WIDOWED] += 1
    return n_kept, n_events, n_needy


def stock_counts(pop, n_districts: int) -> np.ndarray:
    """Stock columns [district, C_60..C_MEDICAL] counted from scratch (start, and tests)."""
    rows = pop.alive_rows()
    d = pop.district[rows].astype(np.int64)
    years = pop.age_m[rows] // 12
    out = np.zeros((n_districts, N_COUNTS), dtype=np.int64)
    out[:, C_60] = np.bincount(d, minlength=n_districts)
    out[:, C_65] = np.bincount(d, weights=years >= 65, minlength=n_districts)
    out[:, C_80] = np.bincount(d, weights=years >= 80, minlength=n_districts)
    for state in range(5):
        out[:, C_STATE0 + state] = np.bincount(
            d, weights=pop.health[rows] == state, minlength=n_districts
        )
    out[:, C_MEDICAL] = np.bincount(d, weights=pop.medical[rows], minlength=n_districts)
    return out
