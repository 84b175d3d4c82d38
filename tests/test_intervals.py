"""Prediction intervals: where the calibration errors come from (fit.calibrate), how they are normalised per
series (metrics.normalised_scores), clipping at 0 per series, quantile columns, and interval scores."""

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast_cli import DataConfig, ESNConfig, TrainSpec, fit_model, predict, read_series
from forecast_cli.cli import app
from forecast_cli.errors import ConfigError
from forecast_cli.evaluate import _interval_row
from forecast_cli.metrics import LOCAL_FLOOR, interval_score, local_scales, normalised_scores, pinball
from forecast_cli.models.auto import AUTO
from forecast_cli.options import parse_quantiles
from forecast_cli.windows import calibration_holdout

runner = CliRunner()
ESN = ESNConfig(units=40)


def write(tmp_path, frame, name="data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return read_series(str(path), DataConfig())


def annual(n=99, seed=0):
    rng = np.random.default_rng(seed)
    noise = np.zeros(n)
    for t in range(1, n):
        noise[t] = 0.6 * noise[t - 1] + rng.normal(0, 3)
    return pd.DataFrame({"unique_id": "flow", "ds": pd.date_range("1900-01-01", periods=n, freq="YS"),
                         "y": 100 + 0.5 * np.arange(n) + noise})


def test_a_single_short_series_is_calibrated_by_a_holdout_fit_with_distinct_levels(tmp_path):
    """99 years, h=10: the validation part holds one window, so a second fit holds out enough for 20, and the
    80% and 95% bands differ on every row (they were identical, both the largest of 4 errors)."""
    panel = write(tmp_path, annual())
    artifact = fit_model(panel, TrainSpec(kind="esn", horizon=10, esn=ESN))
    calibration = artifact.manifest.calibration
    assert calibration["origins"] == "holdout" and calibration["windows"] == 20
    assert calibration["holdout"] == 10 - 1 + 20
    assert artifact.arrays["calibration/scores"].shape == (20, 10)
    frame = predict(artifact, levels=[80, 95]).frame
    assert (frame["y_hat_hi_95"] - frame["y_hat_lo_95"] > frame["y_hat_hi_80"] - frame["y_hat_lo_80"]).all()


def test_calibration_holdout_sizes():
    lengths, val = np.array([99]), np.array([10])
    assert calibration_holdout(lengths, 20, 10, val, 20).tolist() == [29]  # 20 windows end in the last 29 steps
    assert calibration_holdout(lengths, 20, 10, np.array([40]), 20) is None  # 31 validation windows already
    assert calibration_holdout(np.array([40]), 20, 10, val, 20) is None  # no room: it must keep L + H to fit
    four = calibration_holdout(np.array([99, 99, 99, 99]), 20, 10, np.full(4, 10), 20)
    assert four.tolist() == [14] * 4  # 5 windows each
    assert calibration_holdout(np.array([60]), 10, 10, val, 100).tolist() == [30]  # at most half the series


def test_cross_fitted_scores_follow_each_series_own_error():
    """Two series whose errors differ tenfold: their ratios differ tenfold and their scores look alike."""
    rng = np.random.default_rng(0)
    errors = np.abs(rng.normal(size=(80, 3))) * np.repeat([1.0, 10.0], 40)[:, None]
    series = np.repeat([0, 1], 40)
    scores, ratio, pooled = normalised_scores(errors, series, np.ones(80), 2)
    logs = np.log(errors.mean(axis=1))
    assert pooled == pytest.approx(np.exp(logs.mean()))  # geometric means
    for i in (0, 1):  # shrunk towards the pooled ratio with the weight of SHRINK = 5 windows
        assert ratio[i] == pytest.approx(np.exp((logs[series == i].sum() + 5 * np.log(pooled)) / (40 + 5)))
    assert ratio[1] / ratio[0] > 7
    assert 1 / 2 < np.median(scores[40:]) / np.median(scores[:40]) < 2  # the errors' medians differ tenfold
    # an error is never divided by a ratio it helped estimate: the first half's scores use the second half's
    first = np.exp(logs[:20].mean())
    assert not np.allclose(scores[:20], errors[:20] / first)
    lone = normalised_scores(errors[:1], np.array([0]), np.ones(1), 3)[1]  # no windows: the pooled ratio
    assert lone[1] == lone[2] == pytest.approx(errors[0].mean())


@pytest.mark.parametrize("chunk", [1, 4, 13, 1 << 20])
def test_local_scales_by_hand(monkeypatch, chunk):
    """The mean |y_t - y_(t-lag)| over the last `span` steps before an origin, within its own series only,
    lag 1 while the series so far is no longer than a season, missing values skipped, floored; the running
    sums made `chunk` rows at a time."""
    from forecast_cli import metrics

    monkeypatch.setattr(metrics, "RUNNING_SUM_ROWS", chunk)
    rng = np.random.default_rng(3)
    lengths = [30, 5, 12]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    target = rng.normal(size=starts[-1]) * 10
    target[7] = np.nan
    target[starts[2]:starts[3]] = 4.0  # constant: the floor of a series with no variability is 0
    season, span = 4, 6
    series = np.array([0, 0, 0, 0, 1, 1, 2])
    origins = starts[series] + np.array([3, 12, 20, 30, 3, 5, 12])

    def by_hand(i, o):
        y = target[starts[i]:o]
        lag = season if len(y) > season else 1
        diffs = np.abs(y[lag:] - y[:-lag])
        recent = np.abs(y[-span:] - y[-span - lag:-lag]) if len(y) >= span + lag else diffs
        finite = recent[np.isfinite(recent)]
        return max(finite.mean(), LOCAL_FLOOR * np.nanmean(diffs))

    got = local_scales(target, starts, series, origins, season, span)
    np.testing.assert_allclose(got, [by_hand(i, o) for i, o in zip(series, origins, strict=True)])
    assert got[-1] == 0
    assert np.isnan(local_scales(target, starts, np.array([1]), np.array([starts[1] + 1]), season, span))[0]


def test_bands_follow_the_recent_variability(tmp_path):
    """The same model forecasting a series whose last weeks turned volatile (a river in flood) gives a wider
    band than for the calm one, and predicting on the training data equals predicting from the directory."""
    rng = np.random.default_rng(4)
    t = np.arange(300)
    y = 50 + 10 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1, len(t))
    frame = pd.DataFrame({"unique_id": "river", "ds": pd.date_range("2020-01-01", periods=len(t), freq="D"),
                          "y": y})
    panel = write(tmp_path, frame)
    artifact = fit_model(panel, TrainSpec(kind="snaive", horizon=7))
    stored = predict(artifact, levels=[80]).frame
    again = predict(artifact, panel, levels=[80]).frame
    np.testing.assert_allclose(stored["y_hat_hi_80"], again["y_hat_hi_80"])
    flood = frame.copy()
    flood.loc[flood.index[-14:], "y"] += rng.normal(0, 15, 14)
    wild = predict(artifact, write(tmp_path, flood, "flood.csv"), levels=[80]).frame

    def width(f):
        return float((f["y_hat_hi_80"] - f["y_hat_lo_80"]).mean())

    assert width(wild) > 4 * width(stored)


def test_widths_follow_the_series_not_the_panel(tmp_path):
    """A smooth series beside a noisy one: its band is about as wide as when it is trained alone."""
    rng = np.random.default_rng(1)
    t = np.arange(400)
    smooth = 20 + 10 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.3, len(t))
    noisy = 5 + rng.gamma(0.5, 4, len(t))  # rain-like: spiky, never below 0
    ds = pd.date_range("2020-01-01", periods=len(t), freq="D")
    both = pd.concat([pd.DataFrame({"unique_id": "smooth", "ds": ds, "y": smooth}),
                      pd.DataFrame({"unique_id": "noisy", "ds": ds, "y": noisy})])
    spec = TrainSpec(kind="snaive", horizon=7)

    def width(frame, sid):
        mine = frame[frame["unique_id"] == sid]
        return float((mine["y_hat_hi_80"] - mine["y_hat_lo_80"]).mean())

    together = predict(fit_model(write(tmp_path, both), spec), levels=[80]).frame
    alone = predict(fit_model(write(tmp_path, both[both["unique_id"] == "smooth"], "alone.csv"), spec),
                    levels=[80]).frame
    assert width(together, "smooth") == pytest.approx(width(alone, "smooth"), rel=0.25)
    assert width(together, "noisy") > 3 * width(together, "smooth")


def test_clipping_at_zero_is_decided_per_series(tmp_path):
    rng = np.random.default_rng(2)
    ds = pd.date_range("2020-01-01", periods=200, freq="D")
    frame = pd.concat([pd.DataFrame({"unique_id": "rain", "ds": ds, "y": rng.gamma(0.3, 3, 200)}),
                       pd.DataFrame({"unique_id": "anomaly", "ds": ds, "y": rng.normal(0, 1, 200)})])
    artifact = fit_model(write(tmp_path, frame), TrainSpec(kind="snaive", horizon=7))
    assert artifact.arrays["history/nonnegative"].tolist() == [False, True]  # ids sorted: anomaly, rain
    out = predict(artifact, levels=[95]).frame
    assert (out.loc[out["unique_id"] == "rain", "y_hat_lo_95"] >= 0).all()
    assert (out.loc[out["unique_id"] == "rain", "y_hat_lo_95"] == 0).any()  # clipped, not merely positive
    assert (out.loc[out["unique_id"] == "anomaly", "y_hat_lo_95"] < 0).all()
    # with fresh data, a series that went below 0 there is no longer clipped
    fresh = frame.copy()
    fresh.loc[fresh["unique_id"] == "rain", "y"] -= 50
    again = predict(artifact, write(tmp_path, fresh, "fresh.csv"), levels=[95]).frame
    assert (again.loc[again["unique_id"] == "rain", "y_hat_lo_95"] < 0).all()


def test_quantile_columns_are_the_interval_bounds(tmp_path):
    artifact = fit_model(write(tmp_path, annual(80)), TrainSpec(kind="naive", horizon=4))
    out = predict(artifact, levels=[80, 95], quantiles=[0.025, 0.1, 0.5, 0.9]).frame
    assert list(out.columns[-4:]) == ["y_hat_q2.5", "y_hat_q10", "y_hat_q50", "y_hat_q90"]
    np.testing.assert_array_equal(out["y_hat_q10"], out["y_hat_lo_80"])
    np.testing.assert_array_equal(out["y_hat_q90"], out["y_hat_hi_80"])
    np.testing.assert_array_equal(out["y_hat_q2.5"], out["y_hat_lo_95"])
    np.testing.assert_array_equal(out["y_hat_q50"], out["y_hat"])


def test_predict_quantiles_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    annual(60).to_csv("flow.csv", index=False)
    assert runner.invoke(app, ["train", "flow.csv", "-m", "naive", "--horizon", "3", "-q"]).exit_code == 0
    result = runner.invoke(app, ["predict", "--quantiles", "0.05,0.95"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "unique_id,ds,y_hat,y_hat_q5,y_hat_q95"
    for bad in ("0", "1.5", "x", "0.1234567"):
        result = runner.invoke(app, ["predict", "--quantiles", bad])
        assert result.exit_code == 2 and "--quantiles" in result.stderr
    assert parse_quantiles("0.9, 0.1,0.1") == [0.1, 0.9]
    with pytest.raises(ConfigError):
        parse_quantiles("-0.1")


def test_an_extrapolated_level_says_so(tmp_path, monkeypatch):
    """Too short for 20 windows even with a holdout: the 99% band is widened past the largest error, and
    predict says so on stderr, naming the level."""
    monkeypatch.chdir(tmp_path)
    annual(40).to_csv("short.csv", index=False)
    assert runner.invoke(app, ["train", "short.csv", "-m", "esn", "--units", "30", "--horizon", "8"]).exit_code == 0
    result = runner.invoke(app, ["predict", "--levels", "50,99"])
    assert result.exit_code == 0, result.output
    assert "the 99% interval is extrapolated" in result.stderr and "50%" not in result.stderr
    frame = pd.read_csv(__import__("io").StringIO(result.stdout))
    assert (frame["y_hat_hi_99"] - frame["y_hat_lo_99"] > frame["y_hat_hi_50"] - frame["y_hat_lo_50"]).all()


def test_auto_keeps_a_blend_chosen_on_more_windows(tmp_path):
    """after_fit with `chosen` (the holdout fit's blend) does not choose again."""
    from forecast_cli.fit import _task

    panel = write(tmp_path, annual(99))
    window = __import__("forecast_cli.fit", fromlist=["resolve_window"]).resolve_window(panel, 10, None)
    task = _task(panel, TrainSpec(kind="auto", horizon=10), window, AUTO, False, np.array([30]), None)
    chosen = {"blend": {"weight": 0.3, "drift": 1.25, "errors": {"x": 1.0}}}
    network = lambda X: np.zeros((len(X), 10))  # noqa: E731
    extra, idx, blended = AUTO.after_fit(task, network, task.val_idx, chosen)
    assert extra is chosen and len(idx) == 21 and blended.shape == (21, 10)


def test_interval_scores_by_hand():
    y, lo, hi = np.array([1.0, 5.0, 10.0]), np.array([0.0, 0.0, 0.0]), np.array([2.0, 4.0, 12.0])
    # widths 2, 4, 12; the second misses by 1: penalty 2 / 0.2 x 1
    assert interval_score(y, lo, hi, 0.8) == pytest.approx((2 + 4 + 12 + 10) / 3)
    assert pinball(np.array([1.0, 3.0]), np.array([2.0, 2.0]), 0.9) == pytest.approx((0.1 + 0.9) / 2)
    group = pd.DataFrame({"y_hat": [1.0, 2.0], "y_hat_lo_80": [0.0, 1.0], "y_hat_hi_80": [2.0, 3.0]})
    row = _interval_row(group, np.array([1.5, 4.0]), 2.0, [80])
    assert row["cov_80"] == 0.5 and row["width_80"] == 2.0
    assert row["msis_80"] == pytest.approx((2 + 2 + 10 * 1) / 2 / 2)
    quantile_loss = np.mean([pinball(np.array([1.5, 4.0]), b, q) for b, q in
                             ((np.array([0.0, 1.0]), 0.1), (np.array([1.0, 2.0]), 0.5), (np.array([2.0, 3.0]), 0.9))])
    assert row["sql"] == pytest.approx(quantile_loss / 2)
    assert math.isnan(_interval_row(group[["y_hat"]], np.array([1.0, 2.0]), 2.0, [80])["cov_80"])


def test_the_holdout_fit_of_a_network_trains_for_the_epochs_the_first_fit_chose(tmp_path, monkeypatch):
    """It needs no early stopping of its own: at most the first fit's best epoch, patience off."""
    from forecast_cli import train
    from forecast_cli.config import RecurrentConfig, TrainConfig

    configs = []
    real = train.fit
    monkeypatch.setattr(train, "fit", lambda *a, **k: configs.append(a[6]) or real(*a, **k))
    panel = write(tmp_path, annual())
    spec = TrainSpec(kind="gru", horizon=10, recurrent=RecurrentConfig(hidden=4),
                     train=TrainConfig(epochs=6, patience=2, refit=False))
    artifact = fit_model(panel, spec)
    assert artifact.manifest.calibration["origins"] == "holdout" and len(configs) == 2
    first, holdout = configs
    assert (first.epochs, first.patience) == (6, 2)
    assert (holdout.epochs, holdout.patience) == (artifact.manifest.fit["best_epoch"], 0)


def test_a_model_that_fits_nothing_calibrates_on_a_bounded_spread_of_windows(tmp_path, monkeypatch):
    """A naive model calibrates on every window of each series, up to limits.MAX_CALIBRATION_ERRORS in all
    (at least two per series): 10 series of 120 days give over 900 windows; a bound of 100 keeps 100."""
    from forecast_cli import limits

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(10)], 120),
                          "ds": np.tile(pd.date_range("2021-01-01", periods=120, freq="D"), 10),
                          "y": rng.normal(10, 1, 1200)})
    panel = write(tmp_path, frame)
    every = fit_model(panel, TrainSpec(kind="snaive", horizon=7)).manifest.calibration["windows"]
    monkeypatch.setattr(limits, "MAX_CALIBRATION_ERRORS", 100)
    bounded = fit_model(panel, TrainSpec(kind="snaive", horizon=7))
    assert every > 900 and bounded.manifest.calibration["windows"] == 100
    band = predict(bounded, levels=[80]).frame
    assert np.all(band["y_hat_hi_80"] > band["y_hat_lo_80"])


def test_validation_windows_beyond_the_bound_are_thinned_evenly_before_their_errors_are_measured(
        tmp_path, monkeypatch):
    """A fitted model calibrates on its validation windows, up to limits.MAX_CALIBRATION_ERRORS in all (at least
    two per series, evenly spaced over each): 12 series give 12 x 6 windows here; a bound of 30 keeps 2 each."""
    from forecast_cli import limits

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(12)], 120),
                          "ds": np.tile(pd.date_range("2021-01-01", periods=120, freq="D"), 12),
                          "y": rng.normal(10, 1, 1440) + np.tile(np.sin(np.arange(120)), 12)})
    panel = write(tmp_path, frame)
    spec = TrainSpec(kind="esn", horizon=7, esn=ESNConfig(units=20))
    every = fit_model(panel, spec).manifest
    monkeypatch.setattr(limits, "MAX_CALIBRATION_ERRORS", 30)
    bounded = fit_model(panel, spec)
    assert every.calibration["windows"] == every.validation["windows"] == 72
    assert bounded.manifest.calibration["windows"] == 24 and bounded.manifest.validation["windows"] == 72
    band = predict(bounded, levels=[80]).frame
    assert np.all(band["y_hat_hi_80"] > band["y_hat_lo_80"])
