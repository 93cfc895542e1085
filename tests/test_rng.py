"""Tests for sim.engine.rng: keyed uniforms (against numpy), their distribution, independence."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.rng import (
    Stream,
    categorical,
    cumulative_shares,
    keyed_uniform,
    stable_order,
    uniforms,
)

N = 1_000_000


def _numpy_uniforms(seed: int, stream: int, keys: np.ndarray, month: int) -> np.ndarray:
    """The SplitMix64 hash of `keyed_uniform` written again in plain numpy (a reference)."""
    m1, m2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
    golden = np.uint64(0x9E3779B97F4A7C15)

    def mix(z):
        z = (z ^ (z >> np.uint64(30))) * m1
        z = (z ^ (z >> np.uint64(27))) * m2
        return z ^ (z >> np.uint64(31))

    with np.errstate(over="ignore"):
        c = mix(np.uint64(seed) * golden + np.uint64(stream)) ^ (np.uint64(month) * m1)
        h = mix(mix((keys.astype(np.uint64) * golden) ^ c))
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**53


@pytest.mark.parametrize("seed", [0, 1, 7, 123_456_789, 2**31 - 1])
@pytest.mark.parametrize("stream", [int(s) for s in Stream])
def test_compiled_and_numpy_bit_identical(seed: int, stream: int) -> None:
    keys = np.r_[np.arange(2_000), np.array([10**6, 2**31 - 1, 2**40 + 3, 2**62])]
    for month in (0, 1, 11, 59, 239, 1000):
        expected = _numpy_uniforms(seed, stream, keys, month)
        np.testing.assert_array_equal(uniforms(seed, stream, keys, month), expected)
        np.testing.assert_array_equal(
            [keyed_uniform(seed, stream, k, month) for k in keys[:50]], expected[:50]
        )


def test_scalar_python_call_matches_vectorised() -> None:
    keys = np.array([0, 1, 2, 99, 12_345])
    expected = uniforms(5, Stream.INIT_HEALTH, keys, 17)
    got = np.array([keyed_uniform(5, int(Stream.INIT_HEALTH), int(k), 17) for k in keys])
    np.testing.assert_array_equal(got, expected)


def test_uniforms_accept_any_integer_key_array() -> None:
    keys = np.arange(1_000)
    ref = uniforms(3, Stream.LIFE, keys, 4)
    for dtype in (np.int32, np.int64, np.uint32, np.uint64):
        np.testing.assert_array_equal(uniforms(3, Stream.LIFE, keys.astype(dtype), 4), ref)
    np.testing.assert_array_equal(uniforms(3, Stream.LIFE, list(range(1_000)), 4), ref)


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return uniforms(1, Stream.INIT_HEALTH, np.arange(N), 0)


def test_range_and_moments(draws: np.ndarray) -> None:
    assert draws.dtype == np.float64
    assert draws.min() >= 0.0
    assert draws.max() < 1.0
    # mean: sd = sqrt(1/12 / N); variance of U: sd of the sample variance = sqrt(1/180 / N)
    assert abs(draws.mean() - 0.5) < 5 * np.sqrt(1 / 12 / N)
    assert abs(draws.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / N)


def test_uniform_histogram(draws: np.ndarray) -> None:
    counts = np.bincount((draws * 100).astype(int), minlength=100)
    expected = N / 100
    chi2 = ((counts - expected) ** 2 / expected).sum()
    # chi-square with 99 df: mean 99, sd 14; 99 + 5 sd
    assert chi2 < 99 + 5 * np.sqrt(2 * 99)


def test_all_53_bits_used(draws: np.ndarray) -> None:
    # distinct values and a fine lower-order resolution (not e.g. 32-bit floats)
    assert np.unique(draws[:100_000]).size == 100_000
    frac = (draws * 2**40) % 1.0
    assert 0.45 < frac.mean() < 0.55


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize(
    ("other", "label"),
    [
        ((1, Stream.LIFE, 0), "stream"),
        ((1, Stream.INIT_HEALTH, 1), "month"),
        ((1, Stream.INIT_HEALTH, 2), "month+2"),
        ((2, Stream.INIT_HEALTH, 0), "seed"),
        ((1, Stream.INIT_MEDICAL, 1), "stream and month"),
    ],
)
def test_different_keys_uncorrelated(draws: np.ndarray, other: tuple, label: str) -> None:
    seed, stream, month = other
    b = uniforms(seed, stream, np.arange(N), month)
    # sd of a correlation estimate of independent variables is 1/sqrt(N) = 0.001
    assert abs(_corr(draws, b)) < 0.01, label
    assert not np.array_equal(draws, b)
    # agreement on the same 1% cell should be ~1%, i.e. the pair is jointly uniform
    same_cell = np.mean((draws * 10).astype(int) == (b * 10).astype(int))
    assert abs(same_cell - 0.1) < 5 * np.sqrt(0.1 * 0.9 / N)


def test_neighbouring_keys_uncorrelated(draws: np.ndarray) -> None:
    assert abs(_corr(draws[:-1], draws[1:])) < 0.01
    assert abs(_corr(draws[:-2], draws[2:])) < 0.01


def test_consecutive_seeds_uncorrelated() -> None:
    keys = np.arange(200_000)
    base = uniforms(0, Stream.LIFE, keys, 5)
    for seed in (1, 2, 3):
        assert abs(_corr(base, uniforms(seed, Stream.LIFE, keys, 5))) < 0.01


def test_draws_are_pure_functions_of_the_key() -> None:
    keys = np.array([5, 3, 900, 3, 5])
    u = uniforms(9, Stream.CHOICE, keys, 12)
    assert u[0] == u[4] and u[1] == u[3]
    np.testing.assert_array_equal(u[[2, 1]], uniforms(9, Stream.CHOICE, np.array([900, 3]), 12))


def test_categorical_shared_probabilities(draws: np.ndarray) -> None:
    p = np.array([0.1, 0.0, 0.25, 0.05, 0.6])
    idx = categorical(draws, p)
    assert idx.min() >= 0 and idx.max() <= p.size - 1
    freq = np.bincount(idx, minlength=p.size) / N
    sd = np.sqrt(p * (1 - p) / N)
    assert np.all(np.abs(freq - p) <= 5 * sd + 1e-12)
    assert freq[1] == 0.0  # zero-probability category never drawn


def test_categorical_unnormalised_weights() -> None:
    u = uniforms(4, Stream.CHOICE, np.arange(200_000), 0)
    np.testing.assert_array_equal(categorical(u, [2.0, 6.0, 2.0]), categorical(u, [0.2, 0.6, 0.2]))


def test_categorical_per_row_probabilities(draws: np.ndarray) -> None:
    n = 400_000
    u = draws[:n]
    group = (uniforms(1, Stream.CHOICE, np.arange(n), 0) < 0.5).astype(int)
    table = np.array([[0.7, 0.2, 0.1], [0.05, 0.15, 0.8]])
    idx = categorical(u, table[group])
    for g in (0, 1):
        sel = group == g
        freq = np.bincount(idx[sel], minlength=3) / sel.sum()
        sd = np.sqrt(table[g] * (1 - table[g]) / sel.sum())
        assert np.all(np.abs(freq - table[g]) < 5 * sd)


def test_categorical_boundaries() -> None:
    p = np.array([0.25, 0.25, 0.5])
    u = np.array([0.0, 0.2499, 0.25, 0.5, 0.9999999])
    np.testing.assert_array_equal(categorical(u, p), [0, 0, 1, 2, 2])
    np.testing.assert_array_equal(categorical(u, np.tile(p, (u.size, 1))), [0, 0, 1, 2, 2])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 21, 32, 33, 34, 100, 337])
def test_categorical_equals_numpy_searchsorted(size: int) -> None:
    """`categorical` (compiled `category`: a count for short tables, bisection for long ones)
    gives numpy's searchsorted categories, also for zero-probability categories, draws on a
    cumulative edge, 0 and ~1."""
    rng = np.random.default_rng(size)
    probs = rng.random(size) * (rng.random(size) < 0.7)
    probs[rng.integers(size)] += 0.01
    cum = cumulative_shares(probs)
    u = np.r_[rng.random(20_000), cum, np.nextafter(cum, 0), 0.0, 1 - 2**-53]
    u = u[u < 1]
    expected = np.searchsorted(cum, u, side="right").clip(0, cum.size - 1)
    np.testing.assert_array_equal(categorical(u, probs), expected)


@pytest.mark.parametrize(
    "values", [np.random.default_rng(1).random(5000), np.repeat([0.3, 0.1, 0.2], 400)]
)
def test_stable_order_is_numpys_stable_argsort(values: np.ndarray) -> None:
    """Without ties (uniform draws) and with many (where the fast unstable sort is not used)."""
    np.testing.assert_array_equal(stable_order(values), np.argsort(values, kind="stable"))
