"""`forecast train` and `forecast predict` end to end through Typer's CliRunner (tiny and fast)."""

import io

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast_cli.cli import app

runner = CliRunner()
FAST = ["--epochs", "3", "--hidden", "8", "--batch-size", "32", "--quiet"]


def read(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


@pytest.fixture
def trained(seasonal_csv):
    path = seasonal_csv(n_series=2, length=100)
    result = runner.invoke(app, ["train", str(path), "--model", "gru", "--horizon", "5", "--lookback", "14", *FAST])
    assert result.exit_code == 0, result.output
    return path


def test_train_then_predict_prints_csv(trained):
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 0, result.output
    frame = read(result.stdout)
    assert list(frame.columns) == ["unique_id", "ds", "y_hat"]
    assert len(frame) == 2 * 5
    assert frame["ds"].iloc[0] == "2024-04-10"  # the day after the last training day (100 days from Jan 1)
    assert frame["y_hat"].notna().all()


def test_train_reports_validation_against_seasonal_naive(seasonal_csv):
    path = seasonal_csv(n_series=2, length=100)
    result = runner.invoke(app, ["train", str(path), "--epochs", "2", "--hidden", "8", "--model-dir", "m"])
    assert result.exit_code == 0, result.output
    assert "training auto on 2 series" in result.stderr
    assert "epoch 2/2" in result.stderr  # plain lines when stderr is not a terminal
    assert "seasonal naive)" in result.stderr
    assert result.stdout == ""


def test_predict_to_a_file_and_with_fresh_data(trained, write_csv, tmp_path):
    result = runner.invoke(app, ["predict", "-o", "out.csv", "--horizon", "3"])
    assert result.exit_code == 0 and result.stdout == ""
    assert len(pd.read_csv(tmp_path / "out.csv")) == 6
    assert result.stderr.splitlines()[-1] == "wrote 6 rows for 2 series to out.csv"
    quiet = runner.invoke(app, ["predict", "-o", "out.csv", "--horizon", "3", "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    fresh = pd.read_csv(trained)
    new = fresh[fresh.unique_id == "s1"].assign(unique_id="brand_new")
    short = fresh[fresh.unique_id == "s0"].tail(5).assign(unique_id="short")
    path = write_csv(pd.concat([fresh, new, short]).to_csv(index=False), "fresh.csv")
    result = runner.invoke(app, ["predict", str(path)])
    assert result.exit_code == 0, result.output
    frame = read(result.stdout)
    assert sorted(frame.unique_id.unique()) == ["brand_new", "s0", "s1", "short"]
    assert "forecast by seasonal naive: short" in result.stderr
    last = fresh[fresh.unique_id == "s0"]["y"].iloc[-1]
    assert frame[frame.unique_id == "short"]["y_hat"].round(4).tolist() == [last] * 5  # naive: under a season


def test_auto_forecasts_short_series_by_theta(seasonal_csv, write_csv):
    path = seasonal_csv(n_series=2, length=100)
    assert runner.invoke(app, ["train", str(path), "--horizon", "5", "--lookback", "14", *FAST]).exit_code == 0
    fresh = pd.read_csv(path)
    short = fresh[fresh.unique_id == "s0"].tail(5).assign(unique_id="short")
    result = runner.invoke(app, ["predict", str(write_csv(pd.concat([fresh, short]).to_csv(index=False), "f.csv"))])
    assert result.exit_code == 0, result.output
    assert "1 series shorter than the lookback (14) forecast by Theta: short" in result.stderr
    frame = read(result.stdout)
    assert len(frame) == 15 and frame["y_hat"].notna().all()


def test_longer_horizon_rolls_forward(trained):
    result = runner.invoke(app, ["predict", "--horizon", "12"])
    assert result.exit_code == 0
    assert "recursive roll-forward" in result.stderr
    frame = read(result.stdout)
    assert len(frame) == 24
    assert frame.groupby("unique_id")["ds"].apply(lambda d: pd.to_datetime(d).diff().dropna().eq(
        pd.Timedelta(days=1)).all()).all()


def test_covariates_travel_with_the_target(write_csv):
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=90, freq="D")})
    frame["rain"] = (frame.index % 5 == 0) * 10.0
    frame["level"] = 1.0 + frame["rain"].shift(1, fill_value=0) * 0.1
    path = write_csv(frame.to_csv(index=False), "river.csv")
    args = ["train", str(path), "--target", "level", "--covariates", "rain", "--horizon", "3", *FAST]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["predict", "--horizon", "4"])
    assert result.exit_code == 0, result.output
    assert read(result.stdout)["unique_id"].unique().tolist() == ["level"]


def test_model_dir_from_the_environment(seasonal_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_MODEL_DIR", str(tmp_path / "env-model"))
    path = seasonal_csv(n_series=1, length=60)
    assert runner.invoke(app, ["train", str(path), "--model", "snaive", "--quiet"]).exit_code == 0
    assert (tmp_path / "env-model" / "manifest.json").exists()
    assert runner.invoke(app, ["predict"]).exit_code == 0


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--model", "prophet"], 2, "Error: Unknown --model 'prophet'"),
        (["--lookback", "500"], 2, "every series is too short for lookback=500 + horizon=7"),
        (["--epochs", "0"], 2, "Error: Invalid value for '--epochs'"),
        (["--ensemble", "0"], 2, "Error: Invalid value for '--ensemble': Input should be greater than or equal to 1"),
        (["--loss", "huber"], 2, "Error: Unknown --loss 'huber'; choose mase, mae or mse"),
        (["--learning-rate", "1e35", "--epochs", "3"], 2, "(allowed: 1e-08 to 1)"),
    ],
)
def test_train_errors(seasonal_csv, tmp_path, args, code, message):
    path = seasonal_csv(n_series=1, length=60, noise=1e4)
    result = runner.invoke(app, ["train", str(path), "--model-dir", "m", "--quiet", *args])
    assert result.exit_code == code
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()  # nothing saved


def test_predict_without_a_model_exits_1(tmp_path):
    result = runner.invoke(app, ["predict", "--model-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no model directory" in result.stderr


def test_predict_parts_make_up_the_whole(seasonal_csv):
    path = seasonal_csv(n_series=6, length=60)
    assert runner.invoke(app, ["train", str(path), "--model", "snaive", "-q"]).exit_code == 0
    whole = read(runner.invoke(app, ["predict"]).stdout)
    parts = [read(runner.invoke(app, ["predict", "--num-processes", "3", "--process-id", str(i)]).stdout)
             for i in range(3)]
    joined = pd.concat(parts).sort_values(["unique_id", "ds"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(joined, whole.sort_values(["unique_id", "ds"]).reset_index(drop=True))
    assert all(set(a.unique_id).isdisjoint(b.unique_id) for i, a in enumerate(parts) for b in parts[i + 1:])
    bad = runner.invoke(app, ["predict", "--num-processes", "3", "--process-id", "3"])
    assert bad.exit_code == 2 and "--process-id" in bad.stderr


def test_an_empty_part_is_just_a_header(seasonal_csv):
    path = seasonal_csv(n_series=1, length=60)
    assert runner.invoke(app, ["train", str(path), "--model", "naive", "-q"]).exit_code == 0
    outputs = [runner.invoke(app, ["predict", "--num-processes", "2", "--process-id", str(i)]) for i in range(2)]
    assert all(r.exit_code == 0 for r in outputs)
    assert sorted(len(r.stdout.splitlines()) for r in outputs) == [1, 8]  # header only; header + 7 rows


def test_robust_scaling_is_stored_and_used(seasonal_csv, tmp_path):
    import json

    path = seasonal_csv(n_series=2, length=80)
    assert runner.invoke(app, ["train", str(path), "--scaling", "robust", *FAST]).exit_code == 0
    assert json.loads((tmp_path / "forecast-model" / "manifest.json").read_text())["window"]["scaling"] == "robust"
    assert runner.invoke(app, ["predict"]).exit_code == 0
    assert runner.invoke(app, ["train", str(path), "--scaling", "minmax"]).exit_code == 2
