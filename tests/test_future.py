"""Future-known covariates (`--future-covariates`): their horizon values reach the forecast of exactly their step,
from `--future FILE`, DATA's trailing rows or a backtest's oracle; every way of lacking them is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast_cli.cli import app
from forecast_cli.config import DataConfig, ESNConfig, RecurrentConfig, TrainConfig, TrainSpec
from forecast_cli.data import read_future, read_series
from forecast_cli.errors import ConfigError, DataError
from forecast_cli.fit import fit_model
from forecast_cli.forecast import predict
from forecast_cli.persistence import load_artifact, save_artifact
from forecast_cli.update import update_model
from forecast_cli.windows import gather_windows

runner = CliRunner()
H, L = 4, 12


def echo_frame(n_series=4, length=160, ahead=0, seed=0):
    """y a random walk and x equal to y: the best forecast of step h is the value of x at step h, and nothing in
    the past predicts it. With `ahead`, each series has that many more rows with y empty (the future rows)."""
    frames = []
    for s in range(n_series):  # (the same values whatever the length)
        walk = 50 + np.cumsum(np.random.default_rng([seed, s]).standard_normal(400))[: length + ahead]
        y = walk.copy()
        y[length:] = np.nan
        frames.append(pd.DataFrame({"unique_id": f"s{s}", "ds": pd.date_range("2024-01-01", periods=length + ahead),
                                    "y": y.round(6), "x": walk.round(6)}))
    return pd.concat(frames, ignore_index=True)


def esn_spec(**kwargs):
    return TrainSpec(kind="esn", horizon=H, lookback=L, esn=ESNConfig(units=60, ridges=(1e-8, 1e-6)),
                     data=DataConfig(future_covariates=("x",)), **kwargs)


def future_file(path, frame, values: dict[str, np.ndarray], length):
    """A --future file: for each series, x = values[id] at the steps after its first `length` rows."""
    rows = []
    for sid, v in values.items():
        ds = pd.date_range("2024-01-01", periods=length + len(v))[length:]
        rows.append(pd.DataFrame({"unique_id": sid, "ds": ds, "x": v}))
    pd.concat(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("future")
    echo_frame().to_csv(tmp / "data.csv", index=False)
    panel = read_series(tmp / "data.csv", DataConfig(future_covariates=("x",)))
    return tmp, panel, fit_model(panel, esn_spec())


def test_windows_carry_the_horizon_values_of_the_future_columns_only():
    values = np.arange(60, dtype=np.float32).reshape(20, 3)  # column 0 the target, 2 the future covariate
    X, Y = gather_windows(values, np.array([0, 5]), 4, 3, future=(2,))
    assert X.shape == (2, 7, 3)
    np.testing.assert_array_equal(X[:, :4], values[np.array([0, 5])[:, None] + np.arange(4)])
    np.testing.assert_array_equal(X[:, 4:, 2], values[np.array([4, 9])[:, None] + np.arange(3), 2])
    assert not X[:, 4:, :2].any()  # the target (and past-only columns) of the horizon are never seen
    np.testing.assert_array_equal(Y, values[np.array([4, 9])[:, None] + np.arange(3), 0])


def test_the_value_at_step_h_reaches_the_forecast_of_step_h(trained):
    tmp, panel, artifact = trained
    assert artifact.manifest.model["future"] == [1]
    rng = np.random.default_rng(1)
    wanted = {sid: 50 + 5 * rng.standard_normal(H) for sid in panel.ids}  # values no past predicts
    path = future_file(tmp / "ahead.csv", None, wanted, 160)
    result = predict(artifact, None, H, future=read_future(path, artifact.manifest.data, artifact.manifest.columns,
                                                              artifact.manifest.freq)).frame
    for sid, v in wanted.items():
        got = result.loc[result.unique_id == sid, "y_hat"].to_numpy()
        np.testing.assert_allclose(got, v, atol=0.05 * np.std(v))  # each step follows its own value, not another's


def test_forecasts_past_the_trained_horizon_use_the_supplied_values(trained):
    tmp, panel, artifact = trained
    rng = np.random.default_rng(2)
    wanted = {sid: 50 + 5 * rng.standard_normal(3 * H + 1) for sid in panel.ids}
    path = future_file(tmp / "long.csv", None, wanted, 160)
    m = artifact.manifest
    result = predict(artifact, None, 3 * H + 1, future=read_future(path, m.data, m.columns, m.freq)).frame
    for sid, v in wanted.items():
        got = result.loc[result.unique_id == sid, "y_hat"].to_numpy()
        np.testing.assert_allclose(got, v, atol=0.1 * np.std(v))  # a held copy of the last value would not be


def test_trailing_rows_of_data_are_the_future_and_are_not_trained_on(tmp_path, trained):
    _, panel, artifact = trained
    frame = echo_frame(ahead=H)
    frame.to_csv(tmp_path / "grown.csv", index=False)
    with_rows = read_series(tmp_path / "grown.csv", DataConfig(future_covariates=("x",)))
    np.testing.assert_array_equal(with_rows.lengths, panel.lengths)  # the same series as trained on
    np.testing.assert_array_equal(with_rows.values, panel.values)
    assert with_rows.future is not None and len(with_rows.future.ds) == H * len(panel.ids)
    by_rows = predict(artifact, with_rows, H).frame
    tail = frame[frame.y.isna()]
    wanted = {sid: g["x"].to_numpy() for sid, g in tail.groupby("unique_id")}
    path = future_file(tmp_path / "same.csv", None, wanted, 160)
    m = artifact.manifest
    by_file = predict(artifact, with_rows, H, future=read_future(path, m.data, m.columns, m.freq)).frame
    pd.testing.assert_frame_equal(by_rows, by_file)
    np.testing.assert_allclose(by_rows["y_hat"], tail["x"], atol=0.3)


def test_a_saved_model_with_future_covariates_forecasts_the_same_after_loading(tmp_path, trained):
    _, panel, _ = trained
    spec = TrainSpec(kind="gru", horizon=H, lookback=L, recurrent=RecurrentConfig(hidden=8),
                     train=TrainConfig(epochs=2), data=DataConfig(future_covariates=("x",)))
    frame = echo_frame(ahead=H)
    frame.to_csv(tmp_path / "grown.csv", index=False)
    with_rows = read_series(tmp_path / "grown.csv", DataConfig(future_covariates=("x",)))
    artifact = fit_model(panel, spec)
    assert artifact.arrays["params/head/kernel"].shape == (8, 1)  # one step at a time, from the decoder's state
    assert artifact.arrays["params/decoder/cell/dense_i/kernel"].shape == (1, 24)  # its input: x at that step
    save_artifact(tmp_path / "m", artifact)
    loaded = load_artifact(tmp_path / "m")
    pd.testing.assert_frame_equal(predict(artifact, with_rows, H).frame, predict(loaded, with_rows, H).frame)
    before = predict(loaded, with_rows, H).frame["y_hat"].to_numpy()
    shifted = with_rows.future.values.copy() + 10.0
    moved = type(with_rows.future)(with_rows.future.ids, with_rows.future.ds, shifted, with_rows.future.starts,
                                   with_rows.future.names, "test")
    after = predict(loaded, with_rows, H, future=moved).frame["y_hat"].to_numpy()
    assert not np.allclose(before, after)  # the network's forecast depends on the future values


def test_update_folds_in_new_rows_of_a_model_with_future_covariates(tmp_path):
    echo_frame(length=140).to_csv(tmp_path / "old.csv", index=False)
    echo_frame(length=150, ahead=H).to_csv(tmp_path / "new.csv", index=False)
    config = DataConfig(future_covariates=("x",))
    artifact = fit_model(read_series(tmp_path / "old.csv", config), esn_spec())
    grown = read_series(tmp_path / "new.csv", config)
    updated = update_model(artifact, grown).artifact
    assert updated is not None
    assert (updated.arrays["history/rows"] == 150).all()
    forecast = predict(updated, None, H, future=grown.future).frame
    pd.testing.assert_frame_equal(forecast, predict(updated, grown, H).frame)


# --- what is refused -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("future_cli")
    echo_frame(n_series=3, length=120, ahead=H).to_csv(tmp / "data.csv", index=False)
    result = runner.invoke(app, ["train", str(tmp / "data.csv"), "--future-covariates", "x", "--model", "esn",
                                 "--horizon", str(H), "--units", "40", "--model-dir", str(tmp / "m"), "-q"])
    assert result.exit_code == 0, result.output
    return tmp


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_forecasts_from_trailing_rows_and_from_a_future_file(model_dir):
    by_rows = run("predict", model_dir / "data.csv", "--model-dir", model_dir / "m", "-q")
    assert by_rows.exit_code == 0, by_rows.output
    frame = pd.read_csv(model_dir / "data.csv")
    frame[frame.y.isna()].drop(columns="y").to_csv(model_dir / "ahead.csv", index=False)
    by_file = run("predict", "--future", model_dir / "ahead.csv", "--model-dir", model_dir / "m", "-q")
    assert by_file.exit_code == 0, by_file.output
    assert by_rows.stdout == by_file.stdout and len(by_file.stdout.splitlines()) == 1 + 3 * H


@pytest.mark.parametrize("case, expected", [
    ("none", "trained with future covariates (x)"),
    ("missing step", "series 's1', column 'x': no value for 2024-05-02 (step 3 of"),
    ("missing series", "no rows for series 's2'"),
    ("missing column", "column 'x' (from --future-covariates) not found"),
    ("empty cell", "series 's0', column 'x': no value for 2024-04-30 (step 1 of"),
    ("other frequency", "the data is hourly"),
])
def test_lacking_future_values_is_one_line_and_exit_2(model_dir, case, expected):
    frame = pd.read_csv(model_dir / "data.csv")
    ahead = frame[frame.y.isna()].drop(columns="y").reset_index(drop=True)
    args = ["predict", "--model-dir", model_dir / "m", "-q"]
    if case == "missing step":
        ahead = ahead[~((ahead.unique_id == "s1") & (ahead.ds == "2024-05-02"))]
    elif case == "missing series":
        ahead = ahead[ahead.unique_id != "s2"]
    elif case == "missing column":
        ahead = ahead.rename(columns={"x": "rain"})
    elif case == "empty cell":
        ahead.loc[0, "x"] = np.nan
    elif case == "other frequency":
        ahead = pd.DataFrame({"unique_id": "s0", "ds": pd.date_range("2024-04-30 23:00", periods=30, freq="h"),
                              "x": 1.0})
    if case != "none":
        ahead.to_csv(model_dir / "bad.csv", index=False)
        args += ["--future", model_dir / "bad.csv"]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and len(result.output.strip().splitlines()) == 1 and not result.stdout.strip()


def test_options_that_cannot_work_are_refused(tmp_path, model_dir):
    echo_frame(n_series=2, length=60).to_csv(tmp_path / "d.csv", index=False)
    both = run("train", tmp_path / "d.csv", "--covariates", "x", "--future-covariates", "x", "--model-dir",
               tmp_path / "m")
    assert both.exit_code == 2 and "both --covariates and --future-covariates" in both.output
    snaive = run("train", tmp_path / "d.csv", "--future-covariates", "x", "--model", "snaive", "--model-dir",
                 tmp_path / "m")
    assert snaive.exit_code == 2 and "--model snaive forecasts from the target alone" in snaive.output
    assert not (tmp_path / "m").exists()
    plain = run("train", tmp_path / "d.csv", "--model", "snaive", "--model-dir", tmp_path / "plain", "-q")
    assert plain.exit_code == 0, plain.output
    refused = run("predict", "--model-dir", tmp_path / "plain", "--future", model_dir / "data.csv")
    assert refused.exit_code == 2 and "trained without --future-covariates" in refused.output
    with pytest.raises(ConfigError):
        read_series(tmp_path / "d.csv", DataConfig(covariates=("x",), future_covariates=("x",)))
    with pytest.raises(DataError, match="from --future-covariates"):
        read_series(tmp_path / "d.csv", DataConfig(future_covariates=("tide",)))


def test_evaluate_uses_the_actual_future_and_compares_with_no_covariates(model_dir):
    result = run("evaluate", model_dir / "data.csv", "--future-covariates", "x", "--model", "esn", "--horizon", H,
                 "--folds", 2, "--compare-covariates", "--csv")
    assert result.exit_code == 0, result.output
    assert "oracle future" in result.output
    table = pd.read_csv(__import__("io").StringIO(result.stdout))
    mase = dict(zip(table["model"], table["mase"], strict=True))
    assert set(mase) == {"esn", "esn without covariates", "naive", "snaive"}
    assert mase["esn"] < 0.5 * mase["esn without covariates"]  # x is the target itself: knowing it is worth a lot


# --- holidays ---------------------------------------------------------------------------------------------------


def test_the_holiday_indicator_marks_the_public_holidays_of_the_stamps_day():
    from forecast_cli.timeindex import holiday_features

    ds = np.array(["2024-01-01", "2024-01-02", "2024-07-04T15:00", "2024-12-25", "2024-12-26"], "datetime64[ns]")
    np.testing.assert_array_equal(holiday_features(ds, "US")[:, 0], [1, 0, 1, 1, 0])
    assert holiday_features(ds, None).shape == (5, 0)
    assert holiday_features(np.array(["2024-10-03"], "datetime64[ns]"), "DE-HE")[0, 0] == 1  # German Unity Day


def shops(path, n_series=3):
    """Daily series that drop by 40 on US public holidays."""
    from forecast_cli.timeindex import holiday_features

    days = pd.date_range("2021-01-01", "2023-12-31", freq="D")
    flag = holiday_features(days.to_numpy(), "US")[:, 0]
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"unique_id": f"s{s}", "ds": days,
                            "y": 100 + 5 * s - 40 * flag + rng.standard_normal(len(days))}) for s in range(n_series)]
    pd.concat(frames).to_csv(path, index=False)
    return path


def test_holidays_reach_the_forecast_of_their_day_and_survive_a_save(tmp_path):
    config = DataConfig(holidays="US")
    panel = read_series(shops(tmp_path / "shops.csv"), config)
    spec = TrainSpec(kind="esn", horizon=7, lookback=14, esn=ESNConfig(units=60), data=config)
    artifact = fit_model(panel, spec)
    assert artifact.manifest.model["future"] == [artifact.manifest.n_features - 1]
    save_artifact(tmp_path / "m", artifact)
    loaded = load_artifact(tmp_path / "m")
    forecast = predict(loaded, None, 20).frame  # 2024-01-01 and 2024-01-15 (MLK day), the second past the horizon
    by_day = forecast[forecast.unique_id == "s0"].set_index("ds")["y_hat"]
    ordinary = by_day.drop([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-15")])
    assert by_day[pd.Timestamp("2024-01-01")] < ordinary.min() - 25
    assert by_day[pd.Timestamp("2024-01-15")] < ordinary.min() - 25
    pd.testing.assert_frame_equal(forecast, predict(artifact, None, 20).frame)


def test_holidays_that_cannot_work_are_refused(tmp_path):
    shops(tmp_path / "shops.csv")
    unknown = run("train", tmp_path / "shops.csv", "--holidays", "XX", "--model-dir", tmp_path / "m")
    assert unknown.exit_code == 2 and "Unknown --holidays 'XX'" in unknown.output
    pd.DataFrame({"ds": range(2000, 2030), "y": np.arange(30.0)}).to_csv(tmp_path / "yearly.csv", index=False)
    yearly = run("train", tmp_path / "yearly.csv", "--holidays", "US", "--model-dir", tmp_path / "m")
    assert yearly.exit_code == 2 and "needs daily or finer data" in yearly.output
    baseline = run("train", tmp_path / "shops.csv", "--holidays", "US", "--model", "naive", "--model-dir",
                   tmp_path / "m")
    assert baseline.exit_code == 2 and "--holidays needs gru" in baseline.output
    assert not (tmp_path / "m").exists()


def test_plot_takes_the_future_file_too(model_dir):
    frame = pd.read_csv(model_dir / "data.csv")
    frame[frame.y.isna()].drop(columns="y").to_csv(model_dir / "ahead.csv", index=False)
    out = model_dir / "plot.png"
    result = run("plot", "--model-dir", model_dir / "m", "--future", model_dir / "ahead.csv", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = run("plot", "--model-dir", model_dir / "m", "-o", model_dir / "no.png")
    assert refused.exit_code == 2 and "trained with future covariates" in refused.output
