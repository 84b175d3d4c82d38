"""`forecast predict` from a model directory alone writes its CSV without pandas (forecast_cli.csvout) and
computes fixed-step stamps and calendar features with numpy: the same bytes and numbers as the pandas path."""

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast_cli import csvout, timeindex
from forecast_cli.cli import app
from forecast_cli.features import stamps_around
from forecast_cli.forecast import predict
from forecast_cli.persistence import load_artifact

runner = CliRunner()


def pandas_csv(columns: dict) -> str:
    return pd.DataFrame(columns).to_csv(index=False, float_format="%.8g")


IDS = np.array(["a", "b,c", 'say "hi"', "ünï", "line\nbreak", " pad "])
FLOATS = np.array([1.0, -0.0, np.nan, np.inf, 123456789.123, 1.23456789e-12])


@pytest.mark.parametrize("ds", [
    np.arange(1990, 1996),
    np.datetime64("2024-03-30", "ns") + np.timedelta64(1, "D") * np.arange(6),
    np.datetime64("1969-12-31T22:00", "ns") + np.timedelta64(1, "h") * np.arange(6),
    np.datetime64("2024-01-01T00:00", "us") + np.timedelta64(15, "m") * np.arange(6),
])
def test_csv_is_byte_identical_to_pandas(ds):
    columns = {"unique_id": IDS, "ds": ds, "y_hat": FLOATS, "y_hat_lo_80": FLOATS[::-1].copy()}
    assert csvout.to_csv(columns) == pandas_csv(columns)


def test_sub_second_stamps_and_object_ids_match_pandas():
    sub_second = np.datetime64("2024-01-01", "ns") + np.timedelta64(1500, "ms") * np.arange(2)
    columns = {"unique_id": np.array(["a", "b,c"], dtype=object), "ds": sub_second}
    assert csvout.to_csv(columns) == pandas_csv(columns)


def test_a_bare_carriage_return_in_an_id_is_quoted():
    """Python 3.11's csv module (and pandas through it) leaves a bare CR unquoted: readers then see two rows."""
    ids = np.array(["a\rb", "c"], dtype=object)
    text = csvout.to_csv({"unique_id": ids, "y_hat": np.array([1.0, 2.0])})
    assert text == 'unique_id,y_hat\n"a\rb",1\nc,2\n'
    back = pd.read_csv(io.StringIO(text), dtype={"unique_id": str})
    assert back["unique_id"].tolist() == ["a\rb", "c"]


def test_csv_refuses_what_a_forecast_never_holds():
    with pytest.raises(ValueError, match="NaT"):
        csvout.to_csv({"ds": np.array(["2024-01-01", "NaT"], "datetime64[ns]")})
    with pytest.raises(TypeError):
        csvout.to_csv({"x": np.array([1 + 2j])})


@pytest.mark.parametrize("freq", ["D", "3D", "h", "2h", "15min", "min", "s"])
def test_fixed_step_stamps_and_calendar_features_match_pandas(freq):
    last = np.array(["1969-12-31T23:45", "2024-02-28T06:30", "2024-02-28T06:30"], "datetime64[ns]")
    past, future = stamps_around(last, freq, 30, 10)
    offset = timeindex.to_offset(freq)
    for i, stamp in enumerate(last):
        np.testing.assert_array_equal(past[i], pd.date_range(end=stamp, periods=30, freq=offset).to_numpy())
        np.testing.assert_array_equal(future[i], pd.date_range(stamp, periods=11, freq=offset)[1:].to_numpy())
    stamps = np.concatenate([past.reshape(-1), future.reshape(-1)])
    index = pd.DatetimeIndex(stamps)
    expected = {"hour": (index.hour + index.minute / 60.0) / 24.0, "weekday": index.day_of_week / 7.0,
                "month": (index.month - 1) / 12.0}
    names = timeindex.calendar_feature_names(freq)
    angles = [2 * np.pi * np.asarray(expected[n], np.float64) for n in names]
    want = np.stack([f(a) for a in angles for f in (np.sin, np.cos)], axis=1).astype(np.float32)
    np.testing.assert_array_equal(timeindex.calendar_features(stamps, freq), want)


@pytest.mark.parametrize("kind, freq", [("gru", "D"), ("esn", "h"), ("snaive", "MS")])
def test_predict_csv_equals_the_pandas_path(seasonal_csv, kind, freq):
    path = seasonal_csv(n_series=3, length=120, freq=freq)
    args = ["train", str(path), "--model", kind, "--horizon", "5", "--epochs", "2", "--units", "40", "--hidden",
            "8", "--model-dir", "model", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["predict", "--horizon", "8", "--levels", "80,95", "--model-dir", "model"])
    assert result.exit_code == 0
    forecast = predict(load_artifact("model"), horizon=8, levels=[80, 95])
    expected = forecast.frame.to_csv(index=False, float_format="%.8g")
    assert result.stdout == expected
    assert expected.splitlines()[0] == "unique_id,ds,y_hat,y_hat_lo_80,y_hat_hi_80,y_hat_lo_95,y_hat_hi_95"
    assert len(expected.splitlines()) == 1 + 3 * 8


def test_predict_from_the_model_directory_imports_no_pandas(seasonal_csv, tmp_path):
    path = seasonal_csv(n_series=2, length=80)
    assert runner.invoke(app, ["train", str(path), "--model", "esn", "--units", "30", "--horizon", "4",
                               "--model-dir", "model", "-q"]).exit_code == 0
    code = ("import sys; from forecast_cli.cli import app\n"
            "try:\n    app(['predict', '--model-dir', 'model', '--levels', '90'])\n"
            "except SystemExit:\n    pass\n"
            "print('pandas' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "False"
    assert len(done.stdout.splitlines()) == 1 + 2 * 4
