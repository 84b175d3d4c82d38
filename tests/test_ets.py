"""Exponential smoothing (models/ets.py): the forms it chooses, its forecasts on series whose future is known,
and that padding and batching do not change a series' forecast."""

import numpy as np

from forecast_cli.models import ets


def test_a_straight_line_is_extrapolated_as_a_line():
    y = 10.0 + 2.5 * np.arange(40.0)
    forecast = ets.ets(y[None], 6, 1)[0]
    truth = 10.0 + 2.5 * np.arange(40.0, 46.0)
    np.testing.assert_allclose(forecast, truth, rtol=0.02)  # phi <= 0.98 damps the slope a little


def test_a_flat_noisy_series_gets_a_flat_forecast_at_its_level():
    rng = np.random.default_rng(0)
    y = 50 + rng.normal(0, 1, 60)
    fit = ets.fit_rows(y[None], 1)
    forecast = fit.forecast(8)[0]
    assert np.ptp(forecast) < 0.5 and abs(forecast.mean() - 50) < 1.5


def test_multiplicative_season_is_found_and_continued_in_phase():
    t = np.arange(120.0)
    shape = 1 + 0.4 * np.sin(2 * np.pi * t / 12)
    y = (100 + 0.5 * t) * shape
    fit = ets.fit_rows(y[None], 12)
    assert fit.seasonal[0] and fit.multiplicative[0]
    future = np.arange(120.0, 138.0)
    truth = (100 + 0.5 * future) * (1 + 0.4 * np.sin(2 * np.pi * future / 12))
    forecast = fit.forecast(18)[0]
    assert np.mean(np.abs(forecast - truth) / truth) < 0.03
    assert np.mean(np.abs(forecast - truth)) / np.mean(np.abs(y[12:] - y[:-12])) < 0.8  # MASE below 1
    assert np.argmax(forecast[:12]) == np.argmax(truth[:12])


def test_a_series_that_crosses_zero_gets_an_additive_season():
    t = np.arange(96.0)
    y = 10 * np.sin(2 * np.pi * t / 12) + 0.1 * t
    fit = ets.fit_rows(y[None], 12)
    assert fit.seasonal[0] and not fit.multiplicative[0]
    future = np.arange(96.0, 108.0)
    np.testing.assert_allclose(fit.forecast(12)[0], 10 * np.sin(2 * np.pi * future / 12) + 0.1 * future, atol=1.5)


def test_each_row_is_fitted_alone_whatever_else_is_in_the_batch_and_however_it_is_padded():
    rng = np.random.default_rng(3)
    rows = [100 + np.cumsum(rng.normal(0.5, 2, n)) for n in (30, 57, 64)]
    alone = [ets.ets(r[None], 5, 4)[0] for r in rows]
    width = 80
    batch = np.full((3, width), np.nan)
    for i, r in enumerate(rows):
        batch[i, width - len(r):] = r
    together = ets.ets(batch, 5, 4)
    np.testing.assert_allclose(together, np.stack(alone), rtol=1e-4)


def test_short_constant_and_huge_series_give_finite_forecasts():
    rows = np.full((4, 10), np.nan)
    rows[0, -1:] = 5.0  # one value
    rows[1, -3:] = [1.0, 2.0, 3.0]
    rows[2, :] = 7.0  # constant
    rows[3, :] = 1e150 * (1 + np.arange(10.0))
    forecast = ets.ets(rows, 4, 12)
    assert np.isfinite(forecast).all()
    np.testing.assert_allclose(forecast[0], 5.0)
    np.testing.assert_allclose(forecast[2], 7.0)
    assert (forecast[3] > 9e150).all()


def test_season_longer_than_the_limit_is_fitted_without_one():
    y = 5 + np.sin(np.arange(400.0))
    fit = ets.fit_rows(y[None], 168)
    assert not fit.seasonal[0] and fit.season.shape == (1, 1)


def test_refilter_with_the_same_history_gives_the_fit_s_own_forecast_and_follows_a_longer_one():
    rng = np.random.default_rng(5)
    y = (100 + np.cumsum(rng.normal(0.3, 1, 90))) * (1 + 0.2 * np.sin(2 * np.pi * np.arange(90) / 12))
    fit = ets.fit_rows(y[None, :70], 12)
    same = ets.refilter(fit, np.array([0]), y[None, :70], 12)
    np.testing.assert_allclose(same.forecast(6), fit.forecast(6), rtol=1e-5)
    longer = np.stack([np.concatenate([np.full(10, np.nan), y[:80]]), y])
    later = ets.refilter(fit, np.array([0, 0]), longer, 12)
    np.testing.assert_allclose(later.params, fit.params[[0, 0]])  # the same parameters, not a new fit
    lone = ets.refilter(fit, np.array([0]), y[None, :80], 12)
    np.testing.assert_allclose(later.forecast(3)[0], lone.forecast(3)[0], rtol=1e-5)  # padding changes nothing
    assert not np.allclose(later.forecast(3)[0], later.forecast(3)[1])  # each window from its own origin


def test_values_near_the_float_limit_neither_overflow_the_unit_nor_the_fit():
    y = 1.5e308 * (0.5 + 0.4 * np.sin(np.arange(48.0)))
    forecast = ets.ets(y[None], 3, 12)
    assert np.isfinite(forecast).all() and (np.abs(forecast) < 1.8e308).all()


def test_the_recursion_is_holt_winters_step_by_step():
    """The compiled smoothing against the equations written out in numpy, one series and one step at a time:
    mixed forms, missing values, a season whose slots the scan carries slot-major."""
    import jax.numpy as jnp

    from forecast_cli.models.ets import _recursion

    rng = np.random.default_rng(3)
    n, length, m = 5, 23, 4
    y = (2 + np.sin(np.arange(length) * 2 * np.pi / m) + 0.1 * rng.standard_normal((n, length))).astype(np.float32)
    mask = rng.random((n, length)) > 0.2
    level, slope = rng.uniform(1, 2, n), rng.uniform(-0.1, 0.1, n)
    factors = rng.uniform(0.5, 1.5, (n, m))
    params = np.column_stack([rng.uniform(0.1, 0.9, n), rng.uniform(0.0, 0.3, n), rng.uniform(0.0, 0.5, n),
                              rng.uniform(0.8, 0.98, n)])
    multiplicative = np.array([True, False, True, False, True])
    got = _recursion(*(jnp.asarray(a, jnp.float32) if a.dtype != bool else jnp.asarray(a)
                       for a in (y, mask, level, slope, factors, params, multiplicative)))
    for i in range(n):
        a, b, g, phi = params[i]
        lv, sl, f, sse = level[i], slope[i], factors[i].copy(), 0.0
        for t in range(length):
            if not mask[i, t]:
                continue
            s, v = f[t % m], y[i, t]
            base = lv + phi * sl
            error = v - (base * s if multiplicative[i] else base + s)
            new = a * (v / max(s, 1e-3) if multiplicative[i] else v - s) + (1 - a) * base
            sl = b * (new - lv) + (1 - b) * phi * sl
            f[t % m] = g * (v / new if multiplicative[i] else v - new) + (1 - g) * s
            lv, sse = new, sse + min(error**2, 1e6)
        np.testing.assert_allclose([float(got[0][i]), float(got[1][i]), float(got[3][i])], [lv, sl, sse], rtol=1e-4)
        np.testing.assert_allclose(np.asarray(got[2][i]), f, rtol=1e-4)
