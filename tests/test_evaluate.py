import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import seasonal_frame
from typer.testing import CliRunner

from forecast_cli.cli import app
from forecast_cli.config import ESNConfig, TrainSpec
from forecast_cli.data import read_series
from forecast_cli.evaluate import backtest, summarize_scores
from forecast_cli.fit import fit_model
from forecast_cli.forecast import predict

runner = CliRunner()



def linear_csv(write_csv):
    frame = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=20), "y": np.arange(1.0, 21)})
    return write_csv(frame.to_csv(index=False))


def test_backtest_of_the_baselines_by_hand(write_csv):
    panel = read_series(linear_csv(write_csv))
    scores, forecasts = backtest(panel, [], horizon=2, folds=2, step=2)
    table = summarize_scores(scores).set_index("model")
    # fold 1 trains on 1..16 and forecasts 17, 18; fold 2 trains on 1..18 and forecasts 19, 20
    assert table.loc["naive", "mae"] == pytest.approx(1.5)  # 16, 16 vs 17, 18 and 18, 18 vs 19, 20
    assert table.loc["snaive", "mae"] == pytest.approx(7.0)  # daily: the week before, 10, 11 vs 17, 18
    assert table.loc["snaive", "mase"] == pytest.approx(1.0)  # in-sample weekly differences are all 7
    assert table.loc["naive", "mase"] == pytest.approx(1.5 / 7)
    assert sorted(forecasts["fold"].unique()) == [0, 1]
    assert len(forecasts) == 2 * 2 * 2


def test_backtest_reports_each_fold_of_each_model(write_csv):
    seen = []
    backtest(read_series(linear_csv(write_csv)), [], horizon=2, folds=2, step=2,
             on_fold=lambda *args: seen.append(args))
    assert seen == [("naive", 1, 2), ("naive", 2, 2), ("snaive", 1, 2), ("snaive", 2, 2)]


def test_evaluate_cli_says_one_line_per_model_and_fold_off_a_terminal(write_csv):
    result = runner.invoke(app, ["evaluate", str(linear_csv(write_csv)), "-m", "naive", "--horizon", "2",
                                 "--folds", "2"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "fold" in line and "done" in line]
    assert lines == ["naive: fold 1/2 done", "naive: fold 2/2 done", "snaive: fold 1/2 done",
                     "snaive: fold 2/2 done"]
    quiet = runner.invoke(app, ["evaluate", str(linear_csv(write_csv)), "-m", "naive", "--horizon", "2", "-q"])
    assert "done" not in quiet.stderr



def test_interval_coverage_on_a_known_process(seasonal_csv):
    """Sine plus Gaussian noise: held-out coverage of 80% and 95% intervals is close to nominal."""
    panel = read_series(seasonal_csv(n_series=80, length=260, noise=1.0))
    past = panel.truncate(7)
    artifact = fit_model(past, TrainSpec(kind="esn", horizon=7, lookback=21, esn=ESNConfig(units=80)))
    frame = predict(artifact, levels=[80, 95]).frame
    actual = panel.to_frame().merge(frame, on=["unique_id", "ds"])
    assert len(actual) == 80 * 7
    for level, tolerance in ((80, 0.06), (95, 0.04)):
        inside = (actual["y"] >= actual[f"y_hat_lo_{level}"]) & (actual["y"] <= actual[f"y_hat_hi_{level}"])
        assert abs(inside.mean() - level / 100) < tolerance
    widths = (frame["y_hat_hi_95"] - frame["y_hat_lo_95"]).to_numpy().reshape(80, 7)
    assert (widths > (frame["y_hat_hi_80"] - frame["y_hat_lo_80"]).to_numpy().reshape(80, 7)).all()


def test_evaluate_cli_json_and_csv(seasonal_csv):
    path = str(seasonal_csv(n_series=2, length=80))
    result = runner.invoke(app, ["evaluate", path, "-m", "esn", "--horizon", "5", "--folds", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["model"] for r in report["rows"]] == ["esn", "naive", "snaive"]
    intervals = ["cov_80", "width_80", "msis_80", "cov_95", "width_95", "msis_95", "sql"]
    assert set(report["rows"][0]) == {"model", "mae", "rmse", "smape", "mase", *intervals}
    result = runner.invoke(app, ["evaluate", path, "-m", "snaive", "--horizon", "5", "--csv", "--per-series",
                                 "--levels", "90"])
    table = pd.read_csv(io.StringIO(result.stdout))
    assert list(table.columns) == ["model", "unique_id", "mae", "rmse", "smape", "mase", "cov_90", "width_90",
                                   "msis_90", "sql"]
    assert len(table) == 2 * 2  # snaive and naive, two series


def test_predict_levels_cli(seasonal_csv):
    path = str(seasonal_csv(n_series=2, length=80))
    assert runner.invoke(app, ["train", path, "-m", "esn", "--units", "40", "--horizon", "4", "-q"]).exit_code == 0
    result = runner.invoke(app, ["predict", "--levels", "95,80"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert list(frame.columns) == ["unique_id", "ds", "y_hat", "y_hat_lo_80", "y_hat_hi_80", "y_hat_lo_95",
                                   "y_hat_hi_95"]
    assert (frame["y_hat_lo_95"] <= frame["y_hat_lo_80"]).all() and (frame["y_hat_lo_80"] <= frame["y_hat"]).all()
    assert (frame["y_hat_lo_95"] >= 0).all()  # the training data were never negative
    bad = runner.invoke(app, ["predict", "--levels", "80,150"])
    assert bad.exit_code == 2 and "between 1 and 99" in bad.stderr


def test_plot_and_backtest_plot_write_pngs(seasonal_csv, tmp_path):
    path = str(seasonal_csv(n_series=3, length=80))
    assert runner.invoke(app, ["train", path, "-m", "snaive", "-q"]).exit_code == 0
    result = runner.invoke(app, ["plot", "-o", "f.png", "--series", "s1", "--series", "s2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(app, ["plot", "--series", "nope"])
    assert bad.exit_code == 2 and "--series nope: no such series" in bad.stderr
    result = runner.invoke(app, ["evaluate", path, "-m", "naive", "--folds", "2", "--plot", "b.png", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b.png").stat().st_size > 10_000
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == [".forecast-model.lock"]  # the lock file stays (empty); no temporary files are left


def test_evaluate_csv_quotes_an_id_with_a_bare_carriage_return(write_csv):
    frame = seasonal_frame(n_series=2, length=80)
    frame["unique_id"] = frame["unique_id"].map({"s0": "a\rb", "s1": "c"})
    text = frame.to_csv(index=False).replace("a\rb", '"a\rb"')  # (pandas itself leaves the CR bare)
    path = str(write_csv(text))
    result = runner.invoke(app, ["evaluate", path, "-m", "snaive", "--horizon", "5", "--csv", "--per-series"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(io.StringIO(result.stdout), dtype={"unique_id": str})
    assert len(table) == 4 and sorted(set(table["unique_id"])) == ["a\rb", "c"]
