"""A forecast is never empty, NaN or unbounded: extreme values scale without overflow, a model that would
forecast NaN is refused, ids stay compact text, and a forecast's size is bounded before anything is allocated."""

import os

import numpy as np
import pandas as pd
import pytest
from conftest import seasonal_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecast_cli import limits
from forecast_cli.config import ESNConfig, RecurrentConfig, TrainConfig, TrainSpec
from forecast_cli.data import read_series
from forecast_cli.errors import ConfigError, TrainingError
from forecast_cli.fit import fit_model
from forecast_cli.forecast import predict
from forecast_cli.windows import fit_scaler

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))


def plain_standard(values, starts):
    """The textbook per-series mean and standard deviation (what fit_scaler computed before it guarded overflow)."""
    loc = np.add.reduceat(values, starts[:-1], axis=0) / np.diff(starts)[:, None]
    centred = values - np.repeat(loc, np.diff(starts), axis=0)
    return loc, np.sqrt(np.add.reduceat(centred**2, starts[:-1], axis=0) / np.diff(starts)[:, None])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(-300, 300), st.integers(0, 2**32 - 1))
def test_standard_scaling_is_finite_at_any_magnitude_and_exact_for_ordinary_data(exponent, seed):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((60, 2)) * 10.0**exponent + 10.0**exponent
    starts = np.array([0, 25, 60])
    scaler = fit_scaler(values, starts)
    assert np.isfinite(scaler.loc).all() and np.isfinite(scaler.scale).all() and (scaler.scale > 0).all()
    scaled = scaler.transform(values, starts)
    assert np.isfinite(scaled).all() and np.abs(scaled).max() < 10
    if abs(exponent) < 100:  # where the textbook sums do not overflow, the same bits (powers of two are exact)
        loc, scale = plain_standard(values, starts)
        np.testing.assert_array_equal(scaler.loc, loc)
        np.testing.assert_array_equal(scaler.scale, np.where(scale <= 1e-8 * np.maximum(1, np.abs(loc)), 1, scale))


def single_series(values) -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=len(values)), "y": values})


@pytest.mark.parametrize("kind", ["esn", "snaive", "gru", "auto"])
def test_values_near_1e154_train_and_forecast_finite(tmp_path, monkeypatch, kind):
    """Squares of 1e154 overflow float64: the ESN's scaling gave NaN forecasts (empty cells, exit 0). The reader
    refuses values beyond limits.MAX_ABS_VALUE (1e100); the models stay finite well beyond it all the same."""
    import forecast_cli.data

    monkeypatch.setattr(forecast_cli.data, "MAX_ABS_VALUE", np.inf)
    path = tmp_path / "big.csv"
    single_series(1e154 * (1.5 + np.sin(np.arange(80)))).to_csv(path, index=False)
    spec = TrainSpec(kind=kind, horizon=7, recurrent=RecurrentConfig(hidden=8), train=TrainConfig(epochs=2),
                     esn=ESNConfig(units=20))
    forecast = predict(fit_model(read_series(path), spec), levels=[80])
    for name in ("y_hat", "y_hat_lo_80", "y_hat_hi_80"):
        assert np.isfinite(forecast.columns[name]).all(), name


def test_a_model_that_would_forecast_nan_is_refused_not_written(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    seasonal_frame(n_series=2, length=60).to_csv(path, index=False)
    artifact = fit_model(read_series(path), TrainSpec(kind="snaive", horizon=7))
    from forecast_cli.models import baselines

    real = baselines.SeasonalNaive.predictor
    monkeypatch.setattr(baselines.SeasonalNaive, "predictor", lambda *a: (lambda X: real(*a)(X) * np.nan))
    artifact.arrays["history/length"][:] = artifact.manifest.window.lookback  # the network path
    with pytest.raises(TrainingError, match="not a finite number"):
        predict(artifact)


def test_non_finite_weights_are_never_saved(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    seasonal_frame(n_series=2, length=60).to_csv(path, index=False)
    import forecast_cli.fit as fit

    real = fit._fit

    def poisoned(*args, **kwargs):
        fitted = real(*args, **kwargs)
        fitted.params = {k: v * np.nan for k, v in fitted.params.items()}
        return fitted

    monkeypatch.setattr(fit, "_fit", poisoned)
    with pytest.raises(TrainingError, match="non-finite weights"):
        fit_model(read_series(path), TrainSpec(kind="esn", horizon=7, esn=ESNConfig(units=20)))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "data.csv"
    frame = seasonal_frame(n_series=3, length=60)
    frame["unique_id"] = frame["unique_id"].map({"s0": "x" * limits.MAX_ID_CHARS, "s1": "007", "s2": "b"})
    frame.to_csv(path, index=False)
    return fit_model(read_series(path), TrainSpec(kind="snaive", horizon=7))


@pytest.mark.parametrize("horizon", [0, -1, limits.MAX_HORIZON + 1, 10**9, 10**20])
def test_a_forecast_horizon_out_of_bounds_is_refused_before_allocating(small_model, horizon):
    with pytest.raises(ConfigError, match="--horizon"):
        predict(small_model, horizon=horizon)


def test_a_forecast_larger_than_the_cell_bound_is_refused(small_model, monkeypatch):
    monkeypatch.setattr(limits, "MAX_FORECAST_CELLS", 3 * 7 - 1)
    with pytest.raises(ConfigError, match="forecast values"):
        predict(small_model, horizon=7)


def test_ids_stay_compact_text_from_panel_to_csv(small_model):
    """A fixed-width unicode array makes every id as wide as the longest, on every forecast row."""
    forecast = predict(small_model, horizon=7)
    ids = forecast.columns["unique_id"]
    assert ids.dtype == object and len(ids) == 3 * 7
    assert set(ids) == {"x" * limits.MAX_ID_CHARS, "007", "b"}
    text = forecast.to_csv()
    back = pd.read_csv(pd.io.common.StringIO(text), dtype={"unique_id": str})
    assert sorted(set(back["unique_id"])) == sorted({"x" * limits.MAX_ID_CHARS, "007", "b"})


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(-150, 150), st.integers(0, 2**32 - 1))
def test_theta_is_scale_exact_and_finite_at_any_magnitude(exponent, seed):
    from forecast_cli.models import theta

    rng = np.random.default_rng(seed)
    t = np.arange(48)
    y = (3 + np.sin(2 * np.pi * t / 12) + 0.1 * rng.standard_normal(48)) * 10.0**exponent
    forecast = theta.theta_one(y, 12, 12, drift=1.0)
    assert np.isfinite(forecast).all()
    unit = np.ldexp(1.0, np.frexp(np.max(np.abs(y)))[1])
    np.testing.assert_allclose(theta._theta_fit(y / unit, 12).forecast(12, 1.0) * unit, forecast, rtol=1e-12)
    if abs(exponent) < 100:  # where nothing overflows, the same bits as a fit on the raw values
        np.testing.assert_array_equal(theta._theta_fit(y, 12).forecast(12, 1.0), forecast)
