"""ESN: reservoir state collection and ridge readout fit on a 10,000-step series, forecast against
reservoirpy with the same hyperparameters, for 500, 1000 and 2000 units; one-step-ahead test error of each.
Then the CLI's windowed fit (`esn.fit`, what `forecast train --model esn` runs) on a panel, with the native
reservoir kernel against the pure-JAX path it replaces, in the same run."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from common import header, median_time, table  # noqa: E402

STEPS, WASHOUT, TEST = 10_000, 100, 1_000
LEAK, RADIUS, INPUT_SCALING, RIDGE, CONNECTIVITY = 0.3, 0.9, 0.5, 1e-6, 0.1


def make_series():
    t = np.arange(STEPS + TEST + 1)
    rng = np.random.default_rng(0)
    return (np.sin(2 * np.pi * t / 50) + 0.5 * np.sin(2 * np.pi * t / 13.7) + 0.05 * rng.standard_normal(len(t)))


def ours(units, y):
    import jax
    import jax.numpy as jnp

    from forecast_cli.config import ESNConfig
    from forecast_cli.models import esn

    config = ESNConfig(units=units, spectral_radius=RADIUS, input_scaling=INPUT_SCALING, sparsity=1 - CONNECTIVITY,
                       leak_rate=LEAK, bias_scaling=0.0)

    x = jnp.asarray(y[:-1, None], jnp.float32)  # (time, features 1)
    x_host = np.asarray(x)
    target = y[WASHOUT + 1 : STEPS + 1, None]

    def fit():
        # the reservoir is drawn (and scaled to its spectral radius) inside the timed region, as reservoirpy's is
        reservoir = esn.init_reservoir(1, config, jax.random.key(0))
        states = np.asarray(esn.run_series(reservoir, x, LEAK))  # the series cut into pieces run side by side
        # the readout's rows [state, input, 1] (esn.design), written once, in float64: with ridge 1e-6 the
        # normal equations are too ill-conditioned for float32
        Z = np.empty((len(states), units + 2))
        Z[:, :units], Z[:, units], Z[:, -1] = states, x_host[:, 0], 1.0
        train = Z[WASHOUT:STEPS]
        readout = esn.solve_ridge(train.T @ train, train.T @ target, RIDGE)
        return Z[STEPS:] @ readout

    seconds = median_time(fit, repeats=5)
    error = float(np.mean((fit()[:, 0] - y[STEPS + 1 :]) ** 2))
    return seconds, error


def reservoirpy_fit(units, y):
    from reservoirpy.nodes import Reservoir, Ridge

    X, Y = y[:-1, None], y[1:, None]

    def fit():
        reservoir = Reservoir(units, lr=LEAK, sr=RADIUS, input_scaling=INPUT_SCALING, rc_connectivity=CONNECTIVITY,
                              input_connectivity=1.0, seed=0)
        model = reservoir >> Ridge(ridge=RIDGE)
        model.fit(X[:STEPS], Y[:STEPS], warmup=WASHOUT)
        return model.run(X[STEPS:])

    seconds = median_time(fit, repeats=3)
    error = float(np.mean((np.asarray(fit())[:, 0] - Y[STEPS:, 0]) ** 2))
    return seconds, error


def windowed(n_series=300, length=400, units=500, lookback=21, horizon=7):
    """Seconds of esn.fit on every window of `n_series` noisy seasonal series, with and without the kernel."""
    import jax

    from forecast_cli import native
    from forecast_cli.config import ESNConfig
    from forecast_cli.models import esn

    rng = np.random.default_rng(0)
    t = np.arange(length)
    series = [np.sin(2 * np.pi * t / 7 + k) + 0.3 * rng.standard_normal(length) for k in range(n_series)]
    inputs = np.concatenate(series).astype(np.float32)[:, None]
    starts = np.arange(n_series) * length
    idx = (starts[:, None] + np.arange(length - lookback - horizon + 1)).ravel()
    train, val = idx[idx % length < length - 60], idx[idx % length >= length - 60 + horizon]
    config = ESNConfig(units=units)
    reservoir = esn.init_reservoir(1, config, jax.random.key(0))

    def fit():
        return esn.fit(reservoir, inputs, train, val, lookback, horizon, config)[2]["val_loss"]

    kernel, original = native.reservoir_kernel(), native.reservoir_kernel
    seconds, loss = median_time(fit, repeats=3), fit()
    native.reservoir_kernel = lambda: False  # esn.prepared then leaves W dense: the lax.scan path
    try:
        plain, plain_loss = median_time(fit, repeats=3), fit()
    finally:
        native.reservoir_kernel = original
    return len(idx), seconds if kernel else float("nan"), plain, loss, plain_loss


def main():
    header("Echo-state network: states + readout on a 10,000-step series", "jax", "reservoirpy")
    y = make_series()
    rows = []
    for units in (500, 1000, 2000):
        seconds, error = ours(units, y)
        try:
            peer_seconds, peer_error = reservoirpy_fit(units, y)
            rows.append([units, f"{seconds:.3f} s", f"{peer_seconds:.3f} s", f"{peer_seconds / seconds:.1f}x",
                         f"{error:.2e}", f"{peer_error:.2e}"])
        except ImportError:
            rows.append([units, f"{seconds:.3f} s", "not installed", "", f"{error:.2e}", ""])
    print(table(["units", "forecast", "reservoirpy", "speed-up", "forecast test MSE", "reservoirpy test MSE"],
                rows))
    windows, seconds, plain, loss, plain_loss = windowed()
    print(f"\n### The CLI's windowed fit (esn.fit, 500 units, lookback 21, horizon 7): {windows} windows of 300 "
          "series\n")
    print(table(["native kernel", "pure JAX (dense lax.scan)", "speed-up", "validation MSE", "pure JAX's"],
                [[f"{seconds:.2f} s", f"{plain:.2f} s", f"{plain / seconds:.1f}x", f"{loss:.5f}",
                  f"{plain_loss:.5f}"]]))


if __name__ == "__main__":
    main()
