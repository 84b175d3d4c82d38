import jax
import jax.numpy as jnp
import numpy as np
import pytest

from forecast_cli.config import ESNConfig, RecurrentConfig, TrainConfig, TrainSpec
from forecast_cli.data import read_series
from forecast_cli.fit import fit_model
from forecast_cli.models import esn, recurrent
from forecast_cli.models.baselines import naive, seasonal_naive

FAST = TrainConfig(epochs=60, patience=0, batch_size=32, learning_rate=1e-2)


@pytest.mark.parametrize("cell", ["gru", "lstm", "elman"])
def test_recurrent_shapes(cell):
    model = recurrent.build(3, 5, RecurrentConfig(cell=cell, hidden=8, layers=2), jax.random.key(0))
    assert model(jnp.ones((4, 12, 3))).shape == (4, 5)


@pytest.mark.parametrize("log, bound", [(False, 0.85), (True, 0.9)])
def test_gru_beats_seasonal_naive_on_a_noisy_seasonal_series(seasonal_csv, log, bound):
    panel = read_series(seasonal_csv(n_series=2, length=200, noise=0.5))
    spec = TrainSpec(kind="gru", horizon=7, lookback=21, recurrent=RecurrentConfig(hidden=16), train=FAST, log=log)
    v = fit_model(panel, spec).manifest.validation
    # noise sd 0.5 (additive, so the log is not this series' natural scale): the best possible MAE is about 0.40,
    # seasonal naive's about 0.56
    assert v["model_mae"] < bound * v["snaive_mae"]
    assert v["model_mae"] < 0.5


@pytest.mark.parametrize("cell", ["lstm", "elman"])
def test_lstm_and_elman_train(seasonal_csv, cell):
    panel = read_series(seasonal_csv(n_series=2, length=120))
    spec = TrainSpec(kind=cell, horizon=7, lookback=14, recurrent=RecurrentConfig(hidden=8),
                     train=TrainConfig(epochs=15, patience=0, batch_size=32, learning_rate=1e-2, loss="mse",
                                       refit=False))
    fit = fit_model(panel, spec).manifest.fit
    assert fit["epochs"] == 15
    assert np.isfinite(fit["val_loss"])
    assert fit["val_loss"] < 0.5  # scaled MSE: far below the variance of the scaled series (about 1)


def ar2_series(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = 0.6 * y[t - 1] - 0.3 * y[t - 2] + 0.1 * rng.standard_normal()
    return y


def test_esn_readout_recovers_a_linear_autoregressive_process():
    y = ar2_series()
    config = ESNConfig(units=100)
    reservoir = esn.init_reservoir(1, config, jax.random.key(0))
    readout, _, info, _ = esn.fit(reservoir, y[:, None], np.arange(0, 2460), np.arange(2460, 2959), 40, 1, config)
    X = np.stack([y[i : i + 40] for i in range(2500, 2950)])[:, :, None]
    truth = y[2540:2990]
    oracle = 0.6 * X[:, -1, 0] - 0.3 * X[:, -2, 0]
    pred = np.asarray(esn.predict(reservoir, readout, X, config.leak_rate))[:, 0]
    assert np.mean((pred - oracle) ** 2) < 0.05 * np.var(y)  # close to the true conditional mean
    assert np.mean((pred - truth) ** 2) < 1.1 * np.mean((oracle - truth) ** 2)
    assert info["val_loss"] < 1.1 * 0.01  # noise variance


def test_same_seed_same_reservoir():
    a = esn.init_reservoir(2, ESNConfig(units=50), jax.random.key(3))
    b = esn.init_reservoir(2, ESNConfig(units=50), jax.random.key(3))
    c = esn.init_reservoir(2, ESNConfig(units=50), jax.random.key(4))
    assert all((a[k] == b[k]).all() for k in a)
    assert not (a["W"] == c["W"]).all()
    radius = np.abs(np.linalg.eigvals(a["W"].astype(np.float64))).max()
    assert radius == pytest.approx(0.9, rel=0.03)


def _long_run(radius: float, units: int = 60, steps: int = 2000):
    config = ESNConfig(units=units, spectral_radius=radius, sparsity=0.9, leak_rate=0.3, input_scaling=0.5)
    reservoir = esn.init_reservoir(1, config, jax.random.key(0))
    u = jnp.asarray(np.sin(np.arange(steps) / 7.0) + 0.1 * np.random.default_rng(0).standard_normal(steps),
                    jnp.float32)[:, None]
    return reservoir, u, np.asarray(esn.run_reservoir(reservoir, u[:, None], 0.3)[0][0])  # the dense scan


@pytest.mark.parametrize("segments, overlap", [(None, 64), (4, 64), (7, 100)])
def test_run_series_in_pieces_gives_the_sequential_states(segments, overlap):
    reservoir, u, sequential = _long_run(0.9)
    states = np.asarray(esn.run_series(reservoir, u, 0.3, segments=segments, overlap=overlap))
    assert states.shape == sequential.shape
    np.testing.assert_allclose(states, sequential, atol=2e-5)


def test_run_series_doubles_a_short_overlap_until_the_pieces_agree(monkeypatch):
    reservoir, u, sequential = _long_run(0.9)
    tried, real = [], esn._segment_states
    monkeypatch.setattr(esn, "_segment_states", lambda *a, **kw: tried.append(kw["overlap"]) or real(*a, **kw))
    states = np.asarray(esn.run_series(reservoir, u, 0.3, segments=4, overlap=2))
    assert tried[:3] == [2, 4, 8] and len(tried) > 3  # 2 steps cannot wash out a start; it doubled until they could
    np.testing.assert_allclose(states, sequential, atol=2e-5)


def test_run_series_without_echo_state_property_runs_sequentially(monkeypatch):
    """Spectral radius 3: states never forget their start, the pieces never agree, and the result is the
    sequential run itself."""
    reservoir, u, sequential = _long_run(3.0)
    tried, real = [], esn._segment_states
    monkeypatch.setattr(esn, "_segment_states", lambda *a, **kw: tried.append(kw["overlap"]) or real(*a, **kw))
    states = np.asarray(esn.run_series(reservoir, u, 0.3, segments=4, overlap=16))
    assert tried == [16, 32, 64, 128, 256]  # the last overlap below the 500-step pieces
    sequential = esn.run_reservoir(esn.prepared(reservoir), u[:, None], 0.3)[0][0]  # as run_series runs it
    np.testing.assert_array_equal(states, sequential)


def test_esn_forecasts_a_seasonal_panel(seasonal_csv):
    """On its validation windows, which its readout did not see (the saved readout is refitted on them)."""
    panel = read_series(seasonal_csv(n_series=12, length=200, noise=0.5))
    spec = TrainSpec(kind="esn", horizon=7, lookback=21, esn=ESNConfig(units=100))
    v = fit_model(panel, spec).manifest.validation
    assert v["model_mae"] < v["snaive_mae"]


def test_baselines():
    history = np.array([[1.0, 2, 3, 4, 5, 6]])
    assert naive(history, 3).tolist() == [[6, 6, 6]]
    assert seasonal_naive(history, 5, 4).tolist() == [[3, 4, 5, 6, 3]]
    assert seasonal_naive(history[:, :2], 3, 4).tolist() == [[2, 2, 2]]  # shorter than a season: naive


@pytest.mark.parametrize("cell", ["gru", "lstm", "elman"])
def test_plain_jax_forward_matches_the_flax_module(cell):
    from flax import nnx

    from forecast_cli.models import flatten_params
    from forecast_cli.models.forward import recurrent_forward

    config = RecurrentConfig(cell=cell, hidden=8, layers=2)
    model = recurrent.build(3, 5, config, jax.random.key(1))
    X = jax.random.normal(jax.random.key(2), (4, 12, 3))
    params = flatten_params(nnx.to_pure_dict(nnx.state(model)))
    expected = np.asarray(model(X))
    np.testing.assert_allclose(np.asarray(recurrent_forward(params, X, cell, 2, 8)), expected, rtol=1e-5, atol=1e-5)
    # with future-known columns: the decoder over the horizon rows, the same numbers both ways
    config = RecurrentConfig(cell=cell, hidden=8, layers=2, future=(2,))
    model = recurrent.build(3, 5, config, jax.random.key(1))
    X = jax.random.normal(jax.random.key(2), (4, 12 + 5, 3))
    params = flatten_params(nnx.to_pure_dict(nnx.state(model)))
    assert params["head/kernel"].shape == (8, 1) and any(k.startswith("decoder/cell/") for k in params)
    np.testing.assert_allclose(np.asarray(recurrent_forward(params, X, cell, 2, 8, (2,), 5)), np.asarray(model(X)),
                               rtol=1e-5, atol=1e-5)


def test_the_ridge_solve_is_the_regularised_system_s_solution_and_survives_an_indefinite_gram():
    """A Cholesky solve of ZᵀZ plus the ridge (relative to the mean diagonal); a gram that rounding has left
    indefinite falls back to an LU solve instead of failing."""
    from forecast_cli.models import esn

    rng = np.random.default_rng(1)
    Z, Y = rng.standard_normal((300, 40)), rng.standard_normal((300, 3))
    gram = Z.T @ Z
    expected = np.linalg.solve(gram + 1e-2 * np.trace(gram) / 40 * np.eye(40), Z.T @ Y)
    np.testing.assert_allclose(esn.solve_ridge(gram, Z.T @ Y, 1e-2), expected, rtol=1e-10)
    indefinite = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    np.testing.assert_allclose(esn.solve_ridge(indefinite, np.ones((2, 1)), 1e-9),
                               np.linalg.solve(indefinite + 1e-9 * np.eye(2), np.ones((2, 1))), rtol=1e-10)


def test_the_esn_normal_equations_taken_in_float32_about_the_mean_solve_like_float64():
    """Reservoir-like rows (large means, small spread, a constant column) at ridge 1e-6: the readout from the
    float32 equations taken about the mean fits as the float64 one does, where a running float32 sum of the
    rows' products (what a stream of small chunks adds up to) does not.

    The contrast is a running sum in a fixed order rather than one float32 BLAS product, whose accuracy
    depends on how the library blocks its sums (an accurate one can hide the loss)."""
    from forecast_cli.models import esn

    rng = np.random.default_rng(0)
    n, p = 4000, 60
    base = rng.standard_normal((n, 8)) @ rng.standard_normal((8, p - 1))  # nearly collinear, as states are
    Z = np.concatenate([0.6 + 0.02 * np.tanh(base) + 1e-4 * rng.standard_normal((n, p - 1)), np.ones((n, 1))], 1)
    Y = Z @ rng.standard_normal((p, 3)) + 1e-3 * rng.standard_normal((n, 3))
    w = np.ones(n)
    exact = esn.solve_ridge(Z.T @ Z, Z.T @ Y, 1e-6)
    Z32, Y32 = Z.astype(np.float32), Y.astype(np.float32)
    gram, cross, yy, count = esn.uncentred(*jax.jit(esn.centred_equations)(Z32, Y32, w.astype(np.float32)))
    assert count == n and yy == pytest.approx(np.sum(Y32.astype(np.float64) ** 2), rel=1e-5)
    ours = esn.solve_ridge(gram, cross, 1e-6)
    running_gram, running_cross = np.zeros((p, p), np.float32), np.zeros((p, 3), np.float32)
    for start in range(0, n, 16):  # float32 throughout, 16 rows at a time
        rows = slice(start, start + 16)
        running_gram += Z32[rows].T @ Z32[rows]
        running_cross += Z32[rows].T @ Y32[rows]
    naive = esn.solve_ridge(running_gram, running_cross, 1e-6)

    def excess_error(readout):  # the mean squared error above the float64 readout's, relative to it
        best = np.mean((Z @ exact - Y) ** 2)
        return float(np.mean((Z @ readout - Y) ** 2) / best - 1)

    assert excess_error(ours) < 1e-3
    assert excess_error(naive) > 0.2  # what the centring is for


def test_the_esn_squared_error_from_normal_equations_is_never_below_zero():
    """An exact fit's error, taken by cancellation from the normal equations, can round below 0: it is 0."""
    from forecast_cli.models import esn

    gram, readout = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([[1.0], [3.0]])
    cross = gram @ readout
    yy = float(np.sum(readout * cross)) * (1 - 1e-15)
    assert esn.squared_error(readout, gram, cross, yy) == 0.0
