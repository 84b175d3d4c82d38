"""metrics.py: the error metrics by hand and against utilsforecast, MASE loss weights, conformal ranks."""

import math

import numpy as np
import pandas as pd
import pytest

from forecast_cli.metrics import (
    conformal_quantiles,
    extrapolated,
    interval_radius,
    mae,
    mase,
    mase_weights,
    rmse,
    smape,
    supported_level,
)


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
    assert conformal_quantiles(errors, 10 / 11)[0] == 10.0  # the largest, still measured
    assert not extrapolated(10, 10 / 11) and extrapolated(10, 0.95) and not extrapolated(19, 0.95)
    assert supported_level(19) == 95.0


def test_too_few_windows_widen_past_the_largest_error_by_an_exponential_tail():
    errors = np.arange(1.0, 5)[:, None]  # 4 windows: 80% is the largest error, 95% is beyond the sample
    assert conformal_quantiles(errors, 0.8)[0] == 4.0
    q95, q99 = conformal_quantiles(errors, 0.95)[0], conformal_quantiles(errors, 0.99)[0]
    assert q95 == pytest.approx(4.0 + 2.5 * math.log(1 / (5 * 0.05)))  # the mean error is the tail's scale
    assert 4.0 < q95 < q99
    one = np.array([[2.0, 3.0]])  # a single window: every level is extrapolated, each wider than the last
    radii = [conformal_quantiles(one, lv) for lv in (0.5, 0.8, 0.95)]
    assert (radii[0] < radii[1]).all() and (radii[1] < radii[2]).all()


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
