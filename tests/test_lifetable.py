"""Life table: e60 against closed forms and the WPP table, the mx round trip, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from sim.population import lifetable as lt


def test_constant_hazard_gives_one_over_h():
    for h in (0.02, 0.05, 0.3):
        assert lt.life_expectancy(np.full(lt.N_AGES, h)) == pytest.approx(1 / h, rel=1e-12)
        assert lt.life_expectancy(np.array([h])) == pytest.approx(1 / h, rel=1e-12)


def test_two_piece_hazard_matches_hand_formula():
    # 10 one-year intervals at h1, then open at h2:
    # e = (1 - exp(-10 h1)) / h1 + exp(-10 h1) / h2
    h1, h2 = 0.02, 0.25
    hazard = np.array([h1] * 10 + [h2])
    expected = (1 - np.exp(-10 * h1)) / h1 + np.exp(-10 * h1) / h2
    assert lt.life_expectancy(hazard) == pytest.approx(expected, rel=1e-12)
    # the same with one 10-year interval
    assert lt.life_expectancy(np.array([h1, h2]), np.array([10.0, 1.0])) == pytest.approx(
        expected, rel=1e-12
    )


def test_life_expectancy_rejects_non_positive_hazard():
    with pytest.raises(ValueError):
        lt.life_expectancy(np.array([0.01, 0.0]))


@pytest.mark.parametrize("year", [2010, 2015, 2020])
@pytest.mark.parametrize("sex", [0, 1, 2])
def test_e60_within_0_3_years_of_the_table(year, sex):
    schedule = lt.e60(year + 0.5, sex)
    table = lt.table_life_expectancy(year, sex)
    assert abs(schedule - table) < 0.3, (year, sex, schedule, table)


def test_table_e60_values_are_the_wpp_2024_ones_computed_here():
    # regression guard on the data file: constant-hazard e60 from WPP 2024 China mx
    assert lt.table_life_expectancy(2020, 0) == pytest.approx(19.50, abs=0.01)
    assert lt.table_life_expectancy(2020, 1) == pytest.approx(23.68, abs=0.01)
    assert lt.table_life_expectancy(2010, 0) == pytest.approx(18.76, abs=0.01)
    assert lt.table_life_expectancy(2010, 1) == pytest.approx(22.20, abs=0.01)


def test_single_age_schedule_reproduces_each_group_central_rate():
    years, starts, mx = lt.wpp_mx()
    y = int(np.flatnonzero(years == 2020)[0])
    for sex in range(2):
        h = lt.single_age_hazard(mx[y, sex], starts, np.inf)
        for g, start in enumerate(starts):
            if not 60 <= start <= 95:
                continue
            hh = h[start - 60 : start - 55]
            survive = np.exp(-hh)
            lx = np.concatenate([[1.0], np.cumprod(survive)])
            rate = (1 - lx[-1]) / (lx[:-1] * (1 - survive) / hh).sum()
            assert rate == pytest.approx(mx[y, sex, g], rel=1e-8)


def test_men_die_faster_than_women_and_hazard_rises_with_age():
    h = lt.hazard_table(2020.5)
    assert np.all(h[0, :41] > h[1, :41])
    assert np.all(np.diff(h[:2, :41], axis=1) > 0)
    assert np.all(h <= 1.2)


def test_improvement_multiplier():
    frozen = lt.hazard_table(2035.5, improvement=0.0)
    base_2021 = lt.hazard_table(2021.0)
    np.testing.assert_allclose(frozen, base_2021, rtol=1e-12)
    wpp = lt.hazard_table(2035.5)
    fast = lt.hazard_table(2035.5, improvement=1.5)
    assert np.all(fast[:, :30] < wpp[:, :30]) and np.all(wpp[:, :30] < frozen[:, :30])
    # before improvement_from the multiplier changes nothing
    np.testing.assert_array_equal(lt.hazard_table(2015.0, improvement=0.5), lt.hazard_table(2015.0))


def test_normalised_relative_risks_identity():
    rng = np.random.default_rng(7)
    rr = rng.uniform(0.3, 6.0, size=(2, lt.N_AGES, 5))
    prevalence = rng.dirichlet(np.ones(5), size=(2, lt.N_AGES))
    out = lt.normalised_relative_risks(rr, prevalence)
    np.testing.assert_allclose((out * prevalence).sum(axis=2), 1.0, rtol=1e-12)
    # ratios between states are kept, and a sex- and age-specific scale is all that changes
    np.testing.assert_allclose(out / out[..., :1], rr / rr[..., :1], rtol=1e-12)
    # the population-average death hazard equals the table's, per sex and age
    table = lt.hazard_table(2020.5)[:2]
    mean = (table[..., None] * out * prevalence).sum(axis=2)
    np.testing.assert_allclose(mean, table, rtol=1e-12)


def test_normalisation_is_per_sex_not_pooled():
    rr = np.ones((2, 1, 2))
    rr[:, 0, 1] = 3.0
    prevalence = np.array([[[0.9, 0.1]], [[0.5, 0.5]]])
    out = lt.normalised_relative_risks(rr, prevalence)
    assert out[0, 0, 0] == pytest.approx(1 / 1.2)
    assert out[1, 0, 0] == pytest.approx(1 / 2.0)


def test_normalisation_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        lt.normalised_relative_risks(np.ones((2, 3, 5)), np.ones((2, 3, 4)))
