"""fit.py: window sizes, what each kind is fitted on, and the typed manifest it returns."""

import numpy as np
import pytest
from conftest import seasonal_frame

from forecast_cli import models
from forecast_cli.artifact import Manifest
from forecast_cli.config import ESNConfig, RecurrentConfig, TrainConfig, TrainSpec
from forecast_cli.data import read_series
from forecast_cli.errors import DataError
from forecast_cli.fit import fit_model, resolve_window
from forecast_cli.metrics import mase_weights


def panel_of(tmp_path, **kwargs):
    path = tmp_path / "data.csv"
    seasonal_frame(**kwargs).to_csv(path, index=False)
    return read_series(path)


def test_window_defaults_follow_the_frequency_and_the_data(tmp_path):
    daily = panel_of(tmp_path, n_series=2, length=150)
    assert resolve_window(daily, None, None).horizon == 7  # one season of daily data
    assert resolve_window(daily, 7, None).lookback == 21  # three seasons
    assert resolve_window(daily, 7, 10).lookback == 10
    short = panel_of(tmp_path, n_series=2, length=20)
    window = resolve_window(short, 7, 10)
    assert window.val_size == 0  # no room for a validation part: train on every window, without one
    with pytest.raises(DataError, match="too short for lookback=30"):
        resolve_window(short, 7, 30)


def captured_task(monkeypatch, panel, spec):
    seen = {}
    real = models.get(spec.kind).fit

    def spy(task):
        seen["task"] = task
        return real(task)

    monkeypatch.setattr(models.get(spec.kind), "fit", spy)
    fit_model(panel, spec)
    return seen["task"]


def test_only_kinds_trained_on_the_loss_get_mase_row_weights(tmp_path, monkeypatch):
    panel = panel_of(tmp_path, n_series=3, length=90)
    small = TrainConfig(epochs=1, patience=0, refit=False)
    gru = captured_task(monkeypatch, panel, TrainSpec(kind="gru", horizon=7, train=small,
                                                      recurrent=RecurrentConfig(hidden=4)))
    np.testing.assert_allclose(gru.row_weight, mase_weights(gru.inputs[:, 0], panel.starts, gru.fit_lengths, 7))
    assert len(np.unique(gru.row_weight)) == 3  # one weight per series
    mse = captured_task(monkeypatch, panel, TrainSpec(kind="gru", horizon=7, recurrent=RecurrentConfig(hidden=4),
                                                      train=TrainConfig(epochs=1, patience=0, refit=False,
                                                                        loss="mse")))
    assert mse.row_weight is None
    esn = captured_task(monkeypatch, panel, TrainSpec(kind="esn", horizon=7, esn=ESNConfig(units=20)))
    assert esn.row_weight is None and not esn.spec.log  # the ESN models logs only when asked


def test_the_manifest_is_typed_and_round_trips(tmp_path):
    panel = panel_of(tmp_path, n_series=2, length=60)
    manifest = fit_model(panel, TrainSpec(kind="snaive", horizon=7)).manifest
    assert isinstance(manifest, Manifest)
    assert manifest.series == ("s0", "s1") and manifest.window.horizon == 7 and manifest.season == 7
    assert manifest.blend is None and manifest.processes is None
    again = Manifest.from_dict(manifest.to_dict())
    assert again == manifest and "blend" not in manifest.to_dict()
    assert manifest.validation["windows"] > 0 and manifest.validation["snaive_mae"] == manifest.validation[
        "model_mae"]  # snaive is the seasonal-naive baseline


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("season", [1, 4, 9])
def test_validation_errors_added_chunk_by_chunk_equal_those_of_every_window_at_once(monkeypatch, log, season):
    from types import SimpleNamespace

    from forecast_cli import fit, windows
    from forecast_cli.config import WindowConfig
    from forecast_cli.models.baselines import naive, seasonal_naive

    rng = np.random.default_rng(season)
    lengths = np.array([30, 41, 25])
    starts = np.concatenate([[0], np.cumsum(lengths)])
    inputs = rng.standard_normal((starts[-1], 3)).astype(np.float32)
    scaler = windows.Scaler(rng.uniform(-1, 1, (3, 3)), rng.uniform(0.5, 2, (3, 3)), log)
    L, H = 6, 3
    _, val_idx = windows.window_starts(starts, L, H, 8)

    def predictor(X):
        return X[:, -H:, 0] * 0.5 + X[:, :1, 1]

    panel, window = SimpleNamespace(starts=starts), WindowConfig(lookback=L, horizon=H)
    X, Y = windows.gather_windows(inputs, val_idx, L, H)
    series = np.searchsorted(starts, val_idx, side="right") - 1
    truth, history = scaler.inverse_target(Y, series), scaler.inverse_target(X[:, :, 0], series)
    want = {"windows": len(val_idx)} | {
        f"{name}_mae": float(np.mean(np.abs(f - truth)))
        for name, f in (
            ("model", scaler.inverse_target(predictor(X), series)),
            ("naive", naive(history, H)),
            ("snaive", seasonal_naive(history, H, season)),
        )
    }
    monkeypatch.setattr(windows, "WINDOW_CHUNK", 4)
    for known in (None, predictor(X)):
        metrics, pred = fit.validate(predictor, inputs, panel, scaler, val_idx, window, season, known)
        assert metrics.keys() == want.keys()
        for name, value in want.items():
            assert metrics[name] == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(pred, predictor(X), rtol=1e-6)
