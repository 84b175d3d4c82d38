"""Modelling the log of the target: the scaler's round trip, when it is used, and what it refuses."""

import io

import numpy as np
import pandas as pd
import pytest
from conftest import seasonal_frame
from typer.testing import CliRunner

from forecast_cli.cli import app
from forecast_cli.data import read_series
from forecast_cli.errors import DataError
from forecast_cli.fit import use_log
from forecast_cli.windows import fit_scaler

runner = CliRunner()
FAST = ["--epochs", "2", "--hidden", "8", "--batch-size", "32", "--horizon", "5", "--lookback", "14"]


def test_log_scaler_round_trips_and_scales_the_log():
    values = np.exp(np.random.default_rng(0).normal(3, 1, size=(40, 2)))
    starts = np.array([0, 25, 40])
    scaler = fit_scaler(values, starts, log=True)
    scaled = scaler.transform(values, starts)
    assert abs(scaled[:25, 0].mean()) < 1e-9 and abs(scaled[:25, 0].std() - 1) < 1e-9  # standardised logs
    np.testing.assert_allclose(scaled[:25, 1].std(), 1)  # covariates stay linear
    series = np.repeat([0, 1], [25, 15])
    np.testing.assert_allclose(scaler.inverse_target(scaled[:, :1], series)[:, 0], values[:, 0])
    np.testing.assert_allclose(scaler.target_to_scaled(values[:, :1], series), scaled[:, :1])


def panel_of(tmp_path, frame):
    frame.to_csv(tmp_path / "d.csv", index=False)
    return read_series(tmp_path / "d.csv")


def test_log_is_used_when_every_value_is_positive(tmp_path):
    frame = seasonal_frame(n_series=2, length=30)
    assert use_log(panel_of(tmp_path, frame), None)
    frame.loc[17, "y"] = 0.0
    panel = panel_of(tmp_path, frame)
    assert not use_log(panel, None) and not use_log(panel, False)
    with pytest.raises(DataError, match=r"d.csv: --log needs target values above 0, but series 's0' has 0 on "
                                         r"2024-01-18.* in column 'y'; use --no-log"):
        use_log(panel, True)


def test_log_model_gives_positive_intervals_and_refuses_non_positive_data(seasonal_csv, write_csv, tmp_path):
    path = seasonal_csv(n_series=2, length=100)
    result = runner.invoke(app, ["train", str(path), "--model", "gru", *FAST, "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", "--levels", "80"])
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert (frame["y_hat_lo_80"] > 0).all()
    assert ((frame["y_hat_lo_80"] < frame["y_hat"]) & (frame["y_hat"] < frame["y_hat_hi_80"])).all()
    fresh = pd.read_csv(path)
    fresh.loc[fresh.index[-1], "y"] = -2.0
    bad = write_csv(fresh.to_csv(index=False), "bad.csv")
    result = runner.invoke(app, ["predict", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: bad.csv: the model forecasts the log of the target, which needs values "
                                    "above 0, but series 's1' has -2 on 2024-04-09")
    assert len(result.stderr.strip().splitlines()) == 1
