"""The public API (forecast_cli/__init__.py): lazy, complete, and the docstring's four calls work."""

import subprocess
import sys

import numpy as np

import forecast_cli as fc


def test_importing_the_package_loads_nothing_heavy():
    code = ("import sys, forecast_cli; heavy = [m for m in ('jax', 'flax', 'pandas', 'numpy') if m in sys.modules];"
            " print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves_and_unknown_ones_do_not():
    for name in fc.__all__:
        assert getattr(fc, name) is not None, name
    assert set(fc.MODELS) >= {"auto", "gru", "lstm", "elman", "esn", "naive", "snaive"}
    try:
        fc.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("an unknown name resolved")


def test_read_fit_save_load_predict_backtest(tmp_path, seasonal_csv):
    panel = fc.read_series(seasonal_csv(n_series=3, length=80))
    model = fc.fit_model(panel, fc.TrainSpec(kind="snaive", horizon=7))
    fc.save_artifact(tmp_path / "model", model)
    loaded = fc.load_artifact(tmp_path / "model")
    assert isinstance(loaded.manifest, fc.Manifest) and loaded.manifest == model.manifest
    forecast = fc.predict(loaded, horizon=7, levels=[80])
    frame = forecast.frame
    assert len(frame) == 3 * 7 and {"y_hat", "y_hat_lo_80", "y_hat_hi_80"} <= set(frame.columns)
    last_week = panel.values[panel.starts[1] - 7 : panel.starts[1], 0]  # snaive repeats the last season
    np.testing.assert_allclose(frame["y_hat"].to_numpy()[:7], last_week)
    scores, forecasts = fc.backtest(panel, [fc.TrainSpec(kind="naive")], horizon=7, folds=2)
    assert set(scores["model"]) == {"naive", "snaive"} and len(forecasts) == 2 * 2 * 3 * 7
