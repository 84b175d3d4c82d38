"""models/theta.py: the Theta method on plain arrays."""

import numpy as np

from forecast_cli.models.theta import seasonal_index, theta, theta_one


def test_theta_extrapolates_half_the_trend_of_a_straight_line():
    y = 5.0 + 2.0 * np.arange(20)
    # SES follows a line best with alpha = 1 (level = last value); Theta adds half the OLS slope per step
    np.testing.assert_allclose(theta_one(y, 4, 1), y[-1] + 0.5 * 2.0 * np.arange(1, 5), rtol=1e-9)


def test_theta_repeats_an_exact_multiplicative_season():
    pattern = np.array([1.0, 1.2, 0.9, 0.7, 1.1, 1.3, 1.0, 0.8, 0.9, 1.1, 1.0, 1.0])
    pattern /= pattern.mean()
    y = 10 * np.tile(pattern, 6)
    np.testing.assert_allclose(seasonal_index(y, 12), pattern, rtol=1e-9)
    np.testing.assert_allclose(theta_one(y, 18, 12), 10 * np.tile(pattern, 2)[:18], rtol=1e-6)


def test_theta_leaves_out_the_season_when_it_is_not_significant_or_not_positive():
    rng = np.random.default_rng(0)
    assert seasonal_index(10 + rng.standard_normal(60), 12) is None  # white noise
    assert seasonal_index(np.sin(np.arange(60) * 2 * np.pi / 12), 12) is None  # not positive
    assert seasonal_index(np.arange(1.0, 20.0), 12) is None  # under three seasons


def test_theta_rows_ignore_the_left_padding():
    rows = np.full((2, 30), np.nan)
    rows[0, 10:] = np.linspace(1, 3, 20)
    rows[1] = np.cos(np.arange(30)) + 5
    out = theta(rows, 5, 4)
    np.testing.assert_allclose(out[0], theta_one(rows[0, 10:], 5, 4))
    np.testing.assert_allclose(out[1], theta_one(rows[1], 5, 4))
    assert np.isfinite(theta(np.array([[np.nan, 2.0]]), 3, 1)).all()  # one point: its value


def test_theta_drift_scales_the_trend_it_extrapolates():
    y = 5.0 + 2.0 * np.arange(20)  # a line: level = last value, slope 2
    for drift in (0.0, 1.0, 1.5):
        np.testing.assert_allclose(theta_one(y, 3, 1, drift), y[-1] + drift * 2.0 * np.arange(1, 4), rtol=1e-9)
