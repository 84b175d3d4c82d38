"""metrics.py: the error metrics by hand and against utilsforecast, MASE loss weights, conformal ranks."""

import math

import numpy as np
import pandas as pd
import pytest

from forecast_cli.metrics import conformal_quantiles, interval_radius, mae, mase, mase_weights, rmse, smape


def test_metrics_by_hand():
    y, f = np.array([1.0, 2, 3]), np.array([2.0, 2, 5])
    assert mae(y, f) == 1.0
    assert rmse(y, f) == pytest.approx(math.sqrt(5 / 3))
    assert smape(y, f) == pytest.approx(100 * (2 / 3 + 0 + 4 / 8) / 3)
    assert mase(y, f, np.array([1.0, 3, 2, 4]), season=1) == pytest.approx(1 / (5 / 3))
    assert mase(y, f, np.array([1.0, 3, 2, 4]), season=2) == pytest.approx(1 / 1)  # |2-1|, |4-3|
    assert smape(np.zeros(2), np.zeros(2)) == 0.0


def test_metrics_match_utilsforecast():
    losses = pytest.importorskip("utilsforecast.losses")
    rng = np.random.default_rng(0)
    insample = rng.normal(10, 2, 40)
    y, f = rng.normal(10, 2, 6), rng.normal(10, 2, 6)
    df = pd.DataFrame({"unique_id": "a", "ds": np.arange(6), "y": y, "m": f})
    train = pd.DataFrame({"unique_id": "a", "ds": np.arange(-40, 0), "y": insample})
    assert mae(y, f) == pytest.approx(losses.mae(df, ["m"])["m"].iloc[0])
    assert rmse(y, f) == pytest.approx(losses.rmse(df, ["m"])["m"].iloc[0])
    assert smape(y, f) == pytest.approx(200 * losses.smape(df, ["m"])["m"].iloc[0])  # theirs is in [0, 1]
    assert mase(y, f, insample, 4) == pytest.approx(losses.mase(df, ["m"], 4, train)["m"].iloc[0])


def test_conformal_quantile_rank():
    errors = np.arange(1.0, 11)[:, None]  # 10 windows
    assert conformal_quantiles(errors, 0.8)[0] == 9.0  # ceil(11 * 0.8) = 9th smallest
    assert conformal_quantiles(errors, 0.95)[0] == 10.0  # rank capped at n


def test_loss_weights_are_the_inverse_seasonal_naive_error_of_the_fitted_part():
    target = np.concatenate([np.array([0.0, 1, 3, 6, 10, 99]), np.array([2.0, 2, 2, 5])])
    starts = np.array([0, 6, 10])
    weights = mase_weights(target, starts, np.array([5, 4]), season=1)
    np.testing.assert_allclose(weights[:6], 1 / 2.5)  # |diffs| of the first 5 rows: 1, 2, 3, 4
    np.testing.assert_allclose(weights[6:], 1 / 1.0)  # 0, 0, 3


def test_interval_radius_grows_like_the_square_root_of_the_step_past_the_calibrated_horizon():
    errors = np.tile([[1.0, 2.0]], (9, 1))
    np.testing.assert_allclose(interval_radius(errors, 0.8, 2), [1.0, 2.0])
    np.testing.assert_allclose(interval_radius(errors, 0.8, 4), [1.0, 2.0, 2.0 * math.sqrt(1.5), 2.0 * math.sqrt(2)])
