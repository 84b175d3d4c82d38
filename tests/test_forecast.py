"""forecast.py: short series, roll-forward past the trained horizon, shards, intervals, bounds."""

import numpy as np
import pandas as pd
import pytest
from conftest import seasonal_frame

from forecast_cli.config import TrainSpec
from forecast_cli.data import read_series
from forecast_cli.errors import ConfigError
from forecast_cli.fit import fit_model
from forecast_cli.forecast import predict


@pytest.fixture
def model(tmp_path):
    frame = seasonal_frame(n_series=4, length=80)
    short = pd.DataFrame({"unique_id": "tiny", "ds": pd.date_range("2024-03-01", periods=9, freq="D"),
                          "y": np.arange(9.0) + 1})
    path = tmp_path / "data.csv"
    pd.concat([frame, short]).to_csv(path, index=False)
    panel = read_series(path)
    return panel, fit_model(panel, TrainSpec(kind="naive", horizon=7, lookback=14))


def test_series_shorter_than_the_lookback_get_seasonal_naive(model):
    panel, artifact = model
    result = predict(artifact, horizon=7)
    assert result.fallback == ["tiny"] and result.fallback_by == "seasonal naive"
    tiny = result.frame[result.frame.unique_id == "tiny"]["y_hat"].to_numpy()
    np.testing.assert_allclose(tiny, [3, 4, 5, 6, 7, 8, 9])  # the last 7 days repeated
    s0 = result.frame[result.frame.unique_id == "s0"]["y_hat"].to_numpy()
    np.testing.assert_allclose(s0, panel.values[panel.starts[1] - 1, 0])  # naive: the last value


def test_a_longer_horizon_rolls_forward_and_keeps_the_calendar(model):
    _, artifact = model
    result = predict(artifact, horizon=20)
    assert result.rolled and len(result.frame) == 5 * 20
    s0 = result.frame[result.frame.unique_id == "s0"]
    assert (np.diff(s0["ds"].to_numpy()) == np.timedelta64(1, "D")).all()
    assert not predict(artifact, horizon=7).rolled


def test_shards_partition_the_forecast(model):
    _, artifact = model
    whole = predict(artifact, horizon=7).frame
    parts = pd.concat([predict(artifact, horizon=7, shard=(3, i)).frame for i in range(3)])
    assert sorted(parts["unique_id"]) == sorted(whole["unique_id"])
    merged = whole.merge(parts, on=["unique_id", "ds"])
    np.testing.assert_array_equal(merged["y_hat_x"], merged["y_hat_y"])


def test_intervals_widen_with_the_level_and_contain_the_forecast(model):
    _, artifact = model
    frame = predict(artifact, horizon=7, levels=[50, 95]).frame
    assert (frame["y_hat_lo_95"] <= frame["y_hat_lo_50"]).all() and (frame["y_hat_lo_50"] <= frame["y_hat"]).all()
    assert (frame["y_hat"] <= frame["y_hat_hi_50"]).all() and (frame["y_hat_hi_50"] <= frame["y_hat_hi_95"]).all()


def test_a_horizon_out_of_range_is_refused(model):
    _, artifact = model
    for horizon in (0, 10**6):
        with pytest.raises(ConfigError, match="--horizon"):
            predict(artifact, horizon=horizon)
