"""Echo-state network: a fixed random leaky reservoir run with `lax.scan`, and a linear readout fitted in
closed form by ridge regression on the reservoir states.

Reservoir update (reservoirpy's leaky integrator): s' = (1 - a) s + a tanh(W s + W_in x + b).
Readout: y[t+1 .. t+horizon] - y[t] = [s_t, x_t, 1] @ readout, all horizon steps at once: it forecasts the
change from the last value, so series that drift from their scaling statistics stay in range.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from forecast_cli.config import ESNConfig

Array = jax.Array


def init_reservoir(n_features: int, config: ESNConfig, key: Array) -> dict[str, np.ndarray]:
    """Random reservoir {"W": (units, units), "W_in": (units, n_features), "b": (units,)}; same key, same one."""
    k_w, k_mask, k_in, k_b = jax.random.split(key, 4)
    units = config.units
    W = jax.random.normal(k_w, (units, units)) * (jax.random.uniform(k_mask, (units, units)) >= config.sparsity)
    W = np.asarray(W, np.float64)
    radius = spectral_radius(W)
    if radius > 0:
        W *= config.spectral_radius / radius
    W_in = jax.random.uniform(k_in, (units, n_features), minval=-1.0, maxval=1.0) * config.input_scaling
    b = jax.random.uniform(k_b, (units,), minval=-1.0, maxval=1.0) * config.bias_scaling
    return {"W": W.astype(np.float32), "W_in": np.asarray(W_in, np.float32), "b": np.asarray(b, np.float32)}


def spectral_radius(W: np.ndarray, iterations: int = 200) -> float:
    """Largest |eigenvalue| by Gelfand's formula, ||W^k v||^(1/k): power iteration that also converges when
    the dominant eigenvalues are a complex pair, and costs matrix-vector products only."""
    v = np.random.default_rng(0).standard_normal(W.shape[0])
    v /= np.linalg.norm(v)
    log_growth = 0.0
    for _ in range(iterations):
        v = W @ v
        norm = np.linalg.norm(v)
        if norm == 0:
            return 0.0
        log_growth += np.log(norm)
        v /= norm
    return float(np.exp(log_growth / iterations))


def run_reservoir(reservoir: dict, inputs: Array, leak_rate: float, mask: Array | None = None) -> Array:
    """States for `inputs: (time, batch, n_features)` from a zero state -> (time, batch, units).

    Where `mask: (time, batch)` is False (left padding of shorter series) the state stays as it was.
    """
    W, W_in, b = (jnp.asarray(reservoir[k]) for k in ("W", "W_in", "b"))
    drive = inputs @ W_in.T + b  # (time, batch, units): the input part of every step at once
    mask = jnp.ones(inputs.shape[:2], bool) if mask is None else mask

    def step(state, xs):
        u, m = xs
        new = (1 - leak_rate) * state + leak_rate * jnp.tanh(state @ W.T + u)
        new = jnp.where(m[:, None], new, state)
        return new, new

    state0 = jnp.zeros((inputs.shape[1], W.shape[0]), inputs.dtype)
    return jax.lax.scan(step, state0, (drive, mask))[1]


def design(states: Array, inputs: Array) -> Array:
    """Readout features [state, input, 1] -> (..., units + n_features + 1)."""
    return jnp.concatenate([states, inputs, jnp.ones(states.shape[:-1] + (1,), states.dtype)], axis=-1)


def solve_ridge(gram: np.ndarray, cross: np.ndarray, ridge: float) -> np.ndarray:
    """Readout (p, horizon) from normal equations gram = ZᵀZ: (p, p), cross = ZᵀY: (p, horizon), in float64.

    The ridge is relative to the mean diagonal of `gram`, so one grid suits any data scale.
    """
    gram = np.asarray(gram, np.float64)
    strength = ridge * max(np.trace(gram) / len(gram), 1e-12)
    return np.linalg.solve(gram + strength * np.eye(len(gram)), np.asarray(cross, np.float64))


def squared_error(readout: np.ndarray, gram: np.ndarray, cross: np.ndarray, yy: float) -> float:
    """Σ||Y - Z readout||² from the normal equations of (Z, Y): no need to keep the rows themselves."""
    readout = np.asarray(readout, np.float64)
    return float(np.sum(readout * (np.asarray(gram, np.float64) @ readout)) - 2 * np.sum(readout * cross) + yy)


def predict(reservoir: dict, readout: Array, X: Array, leak_rate: float) -> Array:
    """Forecast from windows X: (batch, lookback, n_features) -> (batch, horizon), from a zero state."""
    states = run_reservoir(reservoir, jnp.swapaxes(X, 0, 1), leak_rate)
    return design(states[-1], X[:, -1]) @ readout + X[:, -1, :1]


def fit(reservoir: dict, inputs: np.ndarray, starts: np.ndarray, cut: np.ndarray, horizon: int,
        config: ESNConfig) -> tuple[np.ndarray, dict]:
    """Ridge readout for the series of `inputs: (n_rows, n_features)` (column 0 the scaled target).

    Each series is run from a zero state; the state at step t (after its first `washout` steps) is paired with
    the target's next `horizon` values. Pairs whose targets lie before `cut[i]` fit the readout; pairs whose
    targets lie at or after it choose the ridge strength from `config.ridges`; then the readout is refitted on
    both with that strength. Series are processed in chunks and only the normal equations are kept, so
    memory does not grow with the number of rows. Returns (readout: (p, horizon), info).
    """
    lengths = np.diff(starts)
    T = int(lengths.max())
    chunk = int(np.clip(4e7 // (T * config.units), 1, 256))
    device_inputs = jnp.asarray(inputs, jnp.float32)
    sums = None
    for first in range(0, len(lengths), chunk):
        pick = np.arange(first, first + chunk)
        real = pick < len(lengths)
        pick = np.where(real, pick, 0)
        part = _normal_equations(
            reservoir, device_inputs, jnp.asarray(starts[pick]), jnp.asarray(np.where(real, lengths[pick], 0)),
            jnp.asarray(cut[pick]), T=T, horizon=horizon, washout=config.washout, leak_rate=config.leak_rate,
        )
        part = [np.asarray(p, np.float64) for p in part]
        sums = part if sums is None else [a + b for a, b in zip(sums, part, strict=True)]
    gram_t, cross_t, gram_v, cross_v, yy_v, n_t, n_v = sums
    if n_t == 0:
        raise ValueError("no training rows for the readout")
    errors = {}
    for ridge in config.ridges:
        readout = solve_ridge(gram_t, cross_t, ridge)
        errors[ridge] = squared_error(readout, gram_v, cross_v, float(yy_v)) / max(n_v * horizon, 1)
    best = min(errors, key=errors.get) if n_v else config.ridges[len(config.ridges) // 2]
    readout = solve_ridge(gram_t + gram_v, cross_t + cross_v, best)
    info = {"ridge": best, "val_loss": errors[best] if n_v else None, "train_rows": int(n_t),
            "val_rows": int(n_v), "val_loss_by_ridge": {str(k): v for k, v in errors.items()}}
    return readout.astype(np.float32), info


@jax.jit(static_argnames=("T", "horizon", "washout", "leak_rate"))
def _normal_equations(reservoir, inputs, begin, length, cut, *, T, horizon, washout, leak_rate):
    """Normal equations of one chunk of series, each right-aligned in a (T, chunk) grid."""
    local = jnp.arange(T)[:, None] - (T - length)[None, :]  # (T, chunk) step within the series; < 0 is padding
    valid = local >= 0
    rows = jnp.clip(begin[None, :] + local, 0, inputs.shape[0] - 1)
    x = jnp.where(valid[..., None], inputs[rows], 0.0)
    Z = design(run_reservoir(reservoir, x, leak_rate, valid), x)
    Y = inputs[jnp.clip(rows[..., None] + 1 + jnp.arange(horizon), 0, inputs.shape[0] - 1), 0] - x[..., :1]
    train = valid & (local >= washout - 1) & (local + horizon <= cut[None, :] - 1)
    val = valid & (local + 1 >= cut[None, :]) & (local + horizon <= length[None, :] - 1)
    Z, Y = Z.reshape(-1, Z.shape[-1]), Y.reshape(-1, horizon)
    wt, wv = train.reshape(-1, 1).astype(Z.dtype), val.reshape(-1, 1).astype(Z.dtype)
    hi = jax.lax.Precision.HIGHEST
    return (
        jnp.matmul((Z * wt).T, Z, precision=hi), jnp.matmul((Z * wt).T, Y, precision=hi),
        jnp.matmul((Z * wv).T, Z, precision=hi), jnp.matmul((Z * wv).T, Y, precision=hi),
        jnp.sum(wv * Y**2), jnp.sum(wt), jnp.sum(wv),
    )
