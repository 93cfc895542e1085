"""Queries over the queue columns: who of a list is waiting for a bed, who still is after the
month's choices, and sorted unions of row lists. Compiled passes over lists of scattered rows."""

from __future__ import annotations

import numpy as np

from sim.engine.jit import AHEAD, kernel, prefetch


def waiting(queue_facility: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Those of `rows` in a queue for a bed (`queue_facility` >= 0), in the same order."""
    out = np.empty(rows.size, dtype=np.int64)
    return out[: _select_queued(rows, queue_facility, out)]


@kernel
def _select_queued(rows: np.ndarray, queue_facility: np.ndarray, out: np.ndarray) -> int:
    n = 0
    for k in range(rows.size):
        row = rows[k]
        out[n] = row
        n += queue_facility[row] >= 0
    return n


def still_waiting(
    queue_facility: np.ndarray, queued: np.ndarray, deciders: np.ndarray
) -> np.ndarray:
    """The residents in need in a queue after the choices, from those queued before and the
    deciders (both sorted rows), instead of a pass over everyone in need: only deciders join or
    leave queues, and a decider not in need (the only kind outside the needy) can choose family
    care only, which leaves any queue. One merge of the two sorted lists."""
    out = np.empty(queued.size + deciders.size, dtype=np.int64)
    return out[: _merge_waiting(queued, deciders, queue_facility, out)]


@kernel
def _merge_waiting(
    queued: np.ndarray, deciders: np.ndarray, queue_facility: np.ndarray, out: np.ndarray
) -> int:
    """Sorted: the queued who did not decide, and the deciders now in a queue."""
    n = i = j = 0
    while i < queued.size or j < deciders.size:
        if j == deciders.size or (i < queued.size and queued[i] < deciders[j]):
            out[n] = queued[i]
            n += 1
            i += 1
            continue
        if i < queued.size and queued[i] == deciders[j]:
            i += 1  # decided: in a queue now only if the decider is
        if j + AHEAD < deciders.size:  # the deciders' rows are scattered: load them ahead
            prefetch(queue_facility, np.uintp(deciders[j + AHEAD]))
        row = deciders[j]
        out[n] = row
        n += queue_facility[row] >= 0
        j += 1
    return n


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted union of two arrays of rows (np.union1d's hash-based unique is ~10x slower). The
    arrays come nearly sorted, which the stable sort (a merge of runs) turns to account."""
    rows = np.sort(np.concatenate([a, b]), kind="stable")
    return rows[np.r_[True, rows[1:] != rows[:-1]]] if rows.size else rows
