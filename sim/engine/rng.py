"""Common random numbers: every draw is a pure function of (seed, stream, person key, month).

../shared/DESIGN.md section 6: scenario comparisons are differences, so a draw must not depend on
how many other draws happened before it. A counter-based hash (SplitMix64 finaliser applied to the
four keys) gives each (seed, stream, key, month) its own uniform number, in any order, in any
process. A plain numpy version of the hash in the tests checks the compiled one bit for bit.
"""

from __future__ import annotations

from enum import IntEnum

import numba
import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_INV_2_53 = 1.0 / 9007199254740992.0


class Stream(IntEnum):
    """One stream per kind of decision, so adding a draw to one mechanism never shifts another."""

    INIT_AGE = 1
    INIT_SEX = 2
    INIT_DISTRICT = 3
    INIT_HEALTH = 4
    INIT_MEDICAL = 5
    INIT_INCOME = 6
    INIT_MARRIED = 7
    INIT_CHILDREN = 8
    INIT_CHILD_PLACE = 9
    INIT_URBAN = 10
    INIT_NEIGHBOURHOOD = 11
    LIFE = 20  # death, then health, then medical need: one draw, conditioned (population/kernel.py)
    SPOUSE = 23
    ENTRANT = 24
    NEWCOMER = 25  # the sex and age of those moving in (positive net migration)
    CHOICE = 30
    QUEUE_TIE = 31
    FACILITY = 33
    DISPATCH = 34
    FACILITY_PICK = 35


@numba.njit(inline="always", cache=True)
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(inline="always", cache=True)
def keyed_uniform(seed: int, stream: int, key: int, month: int) -> float:
    """Uniform in [0, 1) for one (seed, stream, key, month); usable inside numba kernels."""
    # the (seed, stream, month) part is loop-invariant in a kernel, so it is computed once there
    c = _mix(np.uint64(seed) * _GOLDEN + np.uint64(stream)) ^ (np.uint64(month) * _M1)
    h = _mix(_mix((np.uint64(key) * _GOLDEN) ^ c))
    return float(h >> _S11) * _INV_2_53


def uniforms(seed: int, stream: int, keys: np.ndarray, month: int) -> np.ndarray:
    """`keyed_uniform` over an array of person keys (any integer array or list)."""
    keys = np.asarray(keys)
    out = np.empty(keys.shape)
    _uniforms(seed, stream, keys.astype(np.int64, copy=False).ravel(), month, out.ravel())
    return out


@numba.njit(cache=True, nogil=True)
def _uniforms(seed: int, stream: int, keys: np.ndarray, month: int, out: np.ndarray) -> None:
    for k in range(keys.size):
        out[k] = keyed_uniform(seed, stream, keys[k], month)


def stable_order(values: np.ndarray) -> np.ndarray:
    """np.argsort(values, kind="stable"), by numpy's unstable sort (about three times faster)
    where no two values tie, as is nearly certain for uniform draws."""
    order = np.argsort(values)
    ordered = values[order]
    return np.argsort(values, kind="stable") if (ordered[1:] == ordered[:-1]).any() else order


def cumulative_shares(probs: np.ndarray) -> np.ndarray:
    """Cumulative sums along the last axis divided by the total: the table `categorical` searches
    (tables for `category` are made here too, so both give the same categories)."""
    cum = np.cumsum(np.asarray(probs, dtype=float), axis=-1)
    return cum / cum[..., -1:]


def categorical(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Category index for uniforms `u` given per-row (or shared) probability vectors."""
    cum = cumulative_shares(probs)
    if cum.ndim == 1:
        out = np.empty(np.shape(u), dtype=np.int64)
        _categories(cum, np.asarray(u, dtype=np.float64).ravel(), out.ravel())
        return out
    return (u[:, None] >= cum).sum(axis=1).clip(0, cum.shape[1] - 1)


@numba.njit(inline="always", cache=True)
def category(cum: np.ndarray, u: float) -> int:
    """`categorical` of one uniform inside numba kernels, given `cumulative_shares(probs)`: the
    number of entries <= u (numpy's searchsorted, side='right'), at most the last index.

    Uniform draws make every comparison a coin toss that a branch would mispredict, so a short
    table is counted whole (no branch); a long one is searched by bisection."""
    last = cum.size - 1
    if last < 32:
        count = 0
        for i in range(last):
            count += cum[i] <= u
        return count
    lo, hi = 0, last
    while lo < hi:
        mid = (lo + hi) >> 1
        if cum[mid] <= u:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _categories(cum: np.ndarray, u: np.ndarray, out: np.ndarray) -> None:
    """`category` of each of `u` (the shared-table path of `categorical`)."""
    for k in range(u.size):
        out[k] = category(cum, u[k])
