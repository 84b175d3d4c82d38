"""Echo-state network: a fixed random leaky reservoir, run by the native kernel over W's nonzeros on the CPU
(forecast_cli/kernels/reservoir.cc) or with `lax.scan`, and a linear readout fitted in closed form by ridge
regression on the reservoir states.

Reservoir update (reservoirpy's leaky integrator): s' = (1 - a) s + a tanh(W s + W_in x + b).
Readout: y[t+1 .. t+horizon] - y[t] = [s_t, x_t, 1] @ readout, all horizon steps at once: it forecasts the
change from the last value, so series that drift from their scaling statistics stay in range. With future-known
columns (config.future), their values at t+1 .. t+horizon join the readout's inputs: [s_t, x_t, f_t+1..t+H, 1].
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from forecast_cli import native
from forecast_cli.config import ESNConfig
from forecast_cli.errors import DataError
from forecast_cli.models import FitTask, Fitted, Model, Predictor, batched
from forecast_cli.windows import every_window, gather_windows, split_future

if TYPE_CHECKING:
    from forecast_cli.artifact import Manifest

Array = jax.Array


def init_reservoir(n_features: int, config: ESNConfig, key: Array) -> dict[str, np.ndarray]:
    """Random reservoir {"W": (units, units), "W_in": (units, n_features), "b": (units,)}; same key, same one."""
    W, W_in, b = _draw(key, n_features, config.units, config.sparsity, config.input_scaling, config.bias_scaling)
    W = np.asarray(W, np.float64)
    radius = spectral_radius(W)
    if radius > 0:
        W *= config.spectral_radius / radius
    return {"W": W.astype(np.float32), "W_in": np.asarray(W_in), "b": np.asarray(b)}


@jax.jit(static_argnums=(1, 2, 3, 4, 5))
def _draw(key, n_features, units, sparsity, input_scaling, bias_scaling):
    """W before its scaling to the spectral radius, W_in and b: one compiled call (0.03 s at 1000 units, where
    drawing them op by op took 0.05-0.1 s)."""
    k_w, k_mask, k_in, k_b = jax.random.split(key, 4)
    W = jax.random.normal(k_w, (units, units)) * (jax.random.uniform(k_mask, (units, units)) >= sparsity)
    W_in = jax.random.uniform(k_in, (units, n_features), minval=-1.0, maxval=1.0) * input_scaling
    b = jax.random.uniform(k_b, (units,), minval=-1.0, maxval=1.0) * bias_scaling
    return W, W_in, b


def spectral_radius(W: np.ndarray, iterations: int = 200) -> float:
    """Largest |eigenvalue| by Gelfand's formula, ||W^k v||^(1/k): power iteration that also converges when
    the dominant eigenvalues are a complex pair, and costs matrix-vector products only. They use W's nonzeros
    only (a CSR copy): at 1000 units with 10% connectivity that is 0.02 s instead of 0.2-1.5 s dense."""
    from scipy import sparse

    indptr, indices, values = _csr(np.asarray(W, np.float64))
    W = sparse.csr_array((values, indices, indptr), shape=W.shape)
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


def prepared(reservoir: dict) -> dict:
    """The reservoir's arrays for `run_reservoir`: {"W", "W_in", "b"}, and W's CSR rows {"indptr", "indices",
    "values"} (host arrays) where the native kernel will run it: on the CPU, for a W at most MAX_NATIVE_DENSITY
    nonzero (a dense W runs faster as XLA's matrix product). Make it outside jit: the CSR needs W's values."""
    arrays = {k: reservoir[k] for k in ("W", "W_in", "b")}
    W = np.asarray(arrays["W"], np.float32)
    if np.count_nonzero(W) <= MAX_NATIVE_DENSITY * W.size and native.reservoir_kernel():
        arrays.update(zip(("indptr", "indices", "values"), _csr(W), strict=True))
    return arrays


def _csr(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W's nonzeros row by row: (indptr (rows + 1,), column indices, values), int32 indices."""
    flat = np.flatnonzero(W)
    rows, columns = np.divmod(flat, W.shape[1])
    indptr = np.searchsorted(rows, np.arange(W.shape[0] + 1)).astype(np.int32)
    return indptr, columns.astype(np.int32), W.ravel()[flat]


MAX_NATIVE_DENSITY = 0.3  # at 500-2000 units, 10% nonzero: native 0.09-0.37 s against dense 0.4-2 s (section 2)


def run_reservoir(reservoir: dict, inputs: Array, leak_rate: float, start: Array | None = None,
                  keep: int | None = None) -> tuple[Array, Array]:
    """Run `inputs: (time, batch, n_features)` from a zero state; sequence j holds its zero state for its first
    `start[j]` steps. Returns (the states of the last `keep` steps (all by default): (batch, keep, units), the
    state before them: (batch, units)).

    With `prepared`'s CSR rows in `reservoir`, the native kernel runs it (forecast_cli/kernels/reservoir.cc: one
    16-wide multiply-add per nonzero of W); else a `lax.scan` of dense products, which is its reference."""
    steps = inputs.shape[0]
    keep = steps if keep is None else keep
    if start is None:
        start = jnp.zeros(inputs.shape[1], jnp.int32)
    W_in, b = jnp.asarray(reservoir["W_in"]), jnp.asarray(reservoir["b"])
    if "indptr" in reservoir:
        return native.reservoir_states(inputs, W_in, b, reservoir, start, leak_rate, keep)
    W = jnp.asarray(reservoir["W"])
    drive = inputs @ W_in.T + b  # (time, batch, units): the input part of every step at once
    live = jnp.arange(steps)[:, None] >= start  # (time, batch)

    def step(state, x):
        u, live = x
        new = (1 - leak_rate) * state + leak_rate * jnp.tanh(state @ W.T + u)
        return jnp.where(live[:, None], new, state), None

    def collect(state, x):
        state, _ = step(state, x)
        return state, state

    state0 = jnp.zeros((inputs.shape[1], W.shape[0]), inputs.dtype)
    before, _ = jax.lax.scan(step, state0, (drive[: steps - keep], live[: steps - keep]))
    _, states = jax.lax.scan(collect, before, (drive[steps - keep :], live[steps - keep :]))
    return jnp.swapaxes(states, 0, 1), before


def run_series(reservoir: dict, inputs: Array, leak_rate: float, segments: int | None = None,
               overlap: int = 256, tol: float = 1e-5) -> np.ndarray:
    """States for one long sequence `inputs: (time, n_features)` from a zero state -> (time, units), as
    `run_reservoir` gives them, but with the time axis cut into `segments` pieces that run side by side.

    One long series is a chain of matrix-vector products, bound by reading W from memory at every step (at
    2000 units W is 16 MB: 0.3 ms a step here). Side by side, each step is one matrix product for all pieces.
    Piece k starts `overlap` steps before its own part from a zero state; the echo-state property (spectral
    radius < 1, leak) makes a state forget its start, and this is checked, not assumed: each piece's state at
    the step before its part must match the previous piece's state there to `tol`, else the overlap doubles
    (up to a plain sequential run). Piece 0 starts at time 0, like the sequential run. Default `segments`:
    one per 2 x overlap steps, at most 16 (at 10,000 steps and 500-1000 units, 16 pieces took 7-25% less time
    than 9 in repeated runs here, and 64 more). The native kernel runs pieces in blocks of 16, a block per
    thread: there the default is 16 per thread, each at least `overlap` steps long, where the series allows."""
    steps = inputs.shape[0]
    reservoir = prepared(reservoir)
    if segments is None:
        segments = int(np.clip(steps // (2 * overlap), 1, 16))
        if "indptr" in reservoir and steps >= 16 * overlap:
            segments = 16 * min(native.threads(), steps // (16 * overlap))
    while segments > 1 and overlap < -(-steps // segments):
        states, gap = _segment_states(reservoir, jnp.asarray(inputs), segments=segments, overlap=overlap,
                                      leak_rate=leak_rate)
        if float(gap) <= tol:
            return np.asarray(states)[:steps]  # a view: the pieces' padding past the end is not copied away
        overlap *= 2
    return np.asarray(run_reservoir(reservoir, jnp.asarray(inputs)[:, None], leak_rate)[0][0])


@jax.jit(static_argnames=("segments", "overlap", "leak_rate"))
def _segment_states(reservoir, inputs, *, segments, overlap, leak_rate):
    """(states (segments x span, units): the time axis and then the last piece's padding, largest disagreement
    between neighbouring pieces where they meet)."""
    steps, span = inputs.shape[0], -(-inputs.shape[0] // segments)
    t = jnp.arange(segments)[None, :] * span - overlap + jnp.arange(overlap + span)[:, None]  # (time, piece)
    start = jnp.zeros(segments, jnp.int32).at[0].set(overlap)  # piece 0 has nothing before time 0
    states, warm = run_reservoir(reservoir, inputs[jnp.clip(t, 0, steps - 1)], leak_rate, start, keep=span)
    gap = jnp.max(jnp.abs(warm[1:] - states[:-1, -1]))  # each piece's state before its part: its predecessor's last
    return states.reshape(segments * span, -1), gap


def design(states: Array, inputs: Array, future: Array | None = None) -> Array:
    """Readout features [state, input, (future values,) 1] -> (..., units + n_features (+ horizon * n_future) + 1)."""
    parts = [states, inputs] + ([] if future is None else [future])
    return jnp.concatenate(parts + [jnp.ones(states.shape[:-1] + (1,), states.dtype)], axis=-1)


def solve_ridge(gram: np.ndarray, cross: np.ndarray, ridge: float) -> np.ndarray:
    """Readout (p, horizon) from normal equations gram = ZᵀZ: (p, p), cross = ZᵀY: (p, horizon), in float64.

    The ridge is relative to the mean diagonal of `gram`, so one grid suits any data scale. gram plus the ridge
    is symmetric positive definite: a Cholesky solve (a third of an LU's work), or an LU solve where rounding
    has left it otherwise. The factorisation is numpy's LAPACK, as the float64 products around it are: scipy's
    is a second OpenBLAS whose threads, spinning after each call, took a core from the work that followed
    (benchmarks/esn.py, docs/benchmarks.md section 2).
    """
    from scipy.linalg import solve_triangular

    gram, cross = np.asarray(gram, np.float64), np.asarray(cross, np.float64)
    regularised = gram.copy()
    regularised.flat[:: len(gram) + 1] += ridge * max(np.trace(gram) / len(gram), 1e-12)
    try:
        lower = np.linalg.cholesky(regularised)
    except np.linalg.LinAlgError:
        return np.linalg.solve(regularised, cross)
    inner = solve_triangular(lower, cross, lower=True, check_finite=False)
    return solve_triangular(lower, inner, lower=True, trans="T", check_finite=False)


def squared_error(readout: np.ndarray, gram: np.ndarray, cross: np.ndarray, yy: float) -> float:
    """Σ||Y - Z readout||² from the normal equations of (Z, Y): no need to keep the rows themselves (at least 0)."""
    readout = np.asarray(readout, np.float64)
    total = float(np.sum(readout * (np.asarray(gram, np.float64) @ readout)) - 2 * np.sum(readout * cross) + yy)
    return max(total, 0.0)  # taken by cancellation: a near-exact fit can come out a rounding error below 0


def predict(reservoir: dict, readout: Array, X: Array, leak_rate: float, future: tuple[int, ...] = ()) -> Array:
    """Forecast from windows X: (batch, lookback, n_features) -> (batch, horizon), from a zero state (with
    `future` columns, X: (batch, lookback + horizon, n_features), windows.gather_windows' form)."""
    X, fut = split_future(X, readout.shape[1], future)
    fut = None if fut is None else fut.reshape(fut.shape[0], -1)
    states = run_reservoir(reservoir, jnp.swapaxes(X, 0, 1), leak_rate, keep=1)[0][:, 0]
    return design(states, X[:, -1], fut) @ readout + X[:, -1, :1]


def equations(reservoir: dict, inputs: np.ndarray, idx: np.ndarray, lookback: int, horizon: int, config: ESNConfig,
              devices=None, total=np.asarray) -> list[np.ndarray]:
    """Normal equations [ZᵀZ (p, p), ZᵀY (p, horizon), ΣY², number of windows] in float64 of the windows of
    `inputs: (n_rows, n_features)` starting at rows `idx`, summed over every process (`total`).

    Each window runs the reservoir from a zero state over its `lookback` inputs (they are its washout), exactly
    as a forecast does; its final state is paired with the change of the target over the next `horizon` steps.
    Windows go through in chunks, so memory does not grow with the data. With several local `devices` (a
    parallel.Devices), each chunk's windows are split over them and XLA sums their equations. Sums of windows
    add up: the equations of a panel that grew are those it had plus those of its new windows."""
    reservoir = prepared(reservoir)
    if "indptr" in reservoir:
        devices = None  # the native kernel shares each chunk out over the cores itself
    count = 1 if devices is None else devices.count
    put = (lambda x: x) if devices is None else devices.put_batch
    replicated = (lambda x: x) if devices is None else devices.replicated
    device_inputs = replicated(jnp.asarray(inputs, jnp.float32))
    reservoir = replicated({k: jnp.asarray(v) for k, v in reservoir.items()})
    chunk = int(np.clip(2e7 // (lookback * config.units), 64, 8192))
    chunk = min(chunk, 1 << max(6, (len(idx) - 1).bit_length()))  # few windows (an update): a smaller power of 2
    chunk = -(-chunk // count) * count
    p = config.units + inputs.shape[1] + 1 + horizon * len(config.future)
    sums = [np.zeros((p, p)), np.zeros((p, horizon)), np.zeros(()), np.zeros(())]
    for first in range(0, len(idx), chunk):
        part = idx[first : first + chunk]
        begin = np.concatenate([part, np.full(chunk - len(part), part[0])])
        weight = np.arange(chunk) < len(part)
        out = _window_equations(reservoir, device_inputs, put(jnp.asarray(begin)),
                                put(jnp.asarray(weight, jnp.float32)),
                                lookback=lookback, horizon=horizon, leak_rate=config.leak_rate,
                                future=config.future)
        sums = [a + o for a, o in zip(sums, uncentred(*out), strict=True)]
    return [total(x) for x in sums]


def centred_equations(Z: Array, Y: Array, w: Array) -> tuple[Array, ...]:
    """The normal equations of the rows `Z: (n, p)` (targets `Y: (n, horizon)`, weights `w: (n,)`) in float32,
    taken about their weighted mean c: (Z_cᵀWZ_c, Z_cᵀWY, ΣwY², Σw, Z_cᵀw, ΣwY, c) with Z_c = Z - c, which
    `uncentred` turns into ZᵀWZ and ZᵀWY in float64. Where the rows' means are large against their spread (the
    constant column, a bias, a target level), ZᵀZ taken directly in float32 loses the spread the readout is made
    of; about the mean float32 keeps it, and the large part, n c cᵀ, is added in float64. It does not help
    states that are collinear about a mean near 0 (docs/benchmarks.md, section 2)."""
    n = jnp.sum(w)
    c = (w @ Z) / jnp.maximum(n, 1.0)
    Zc = Z - c
    Zw = Zc * w[:, None]
    hi = jax.lax.Precision.HIGHEST
    return (jnp.matmul(Zw.T, Zc, precision=hi), jnp.matmul(Zw.T, Y, precision=hi), jnp.sum(w[:, None] * Y**2), n,
            jnp.sum(Zw, axis=0), w @ Y, c)


def uncentred(gram_c, cross_c, yy, n, s_c, s_y, c) -> list[np.ndarray]:
    """centred_equations' parts -> [ZᵀWZ (p, p), ZᵀWY (p, horizon), ΣwY², Σw] in float64: ZᵀWZ = Z_cᵀWZ_c +
    c s_cᵀ + s_c cᵀ + n c cᵀ and ZᵀWY = Z_cᵀWY + c (ΣwY)ᵀ, exact for any c (s_c = Z_cᵀw, about 0)."""
    gram_c, cross_c, n, s_c, s_y, c = (np.asarray(a, np.float64) for a in (gram_c, cross_c, n, s_c, s_y, c))
    gram = gram_c + np.outer(c, s_c) + np.outer(s_c, c) + n * np.outer(c, c)
    return [gram, cross_c + np.outer(c, s_y), np.asarray(yy, np.float64), n]


def fit(reservoir: dict, inputs: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray, lookback: int,
        horizon: int, config: ESNConfig, devices=None, total=np.asarray, rest_idx: np.ndarray | None = None
        ) -> tuple[np.ndarray, np.ndarray, dict, dict[str, np.ndarray]]:
    """Ridge readout from windows of `inputs: (n_rows, n_features)` (column 0 the scaled target).

    Training windows fit the readout for every ridge strength in `config.ridges`, validation windows pick the
    best, then the readout is refitted on both with it, and on `rest_idx` (the windows that neither holds: those
    whose target straddles the validation cut), so that the final readout is that of every window (only their
    normal equations are kept: `equations`).
    Returns (readout: (p, horizon), the readout of the training windows alone (which the validation windows
    judge), info, {"gram", "cross"}: the normal equations the readout solves, float64, which `forecast update`
    adds new windows to).
    """
    gram_t, cross_t, _, n_t = equations(reservoir, inputs, train_idx, lookback, horizon, config, devices, total)
    if n_t == 0:
        raise ValueError("no training windows")
    errors = {}
    gram_v, cross_v, yy_v, n_v = equations(reservoir, inputs, val_idx, lookback, horizon, config, devices, total)
    if n_v:
        readouts = {ridge: solve_ridge(gram_t, cross_t, ridge) for ridge in config.ridges}
        for ridge, readout in readouts.items():
            errors[ridge] = squared_error(readout, gram_v, cross_v, float(yy_v)) / (n_v * horizon)
        best = min(errors, key=errors.get)
        validated = readouts[best]
    else:
        best = config.ridges[len(config.ridges) // 2]
        validated = solve_ridge(gram_t, cross_t, best)
    gram, cross = gram_t + gram_v, cross_t + cross_v
    if rest_idx is not None and total(np.array(len(rest_idx))):
        gram_r, cross_r, _, _ = equations(reservoir, inputs, rest_idx, lookback, horizon, config, devices, total)
        gram, cross = gram + gram_r, cross + cross_r
    readout = solve_ridge(gram, cross, best) if n_v or rest_idx is not None else validated
    info = {"ridge": best, "val_loss": errors.get(best), "train_windows": int(n_t), "val_windows": int(n_v),
            "val_loss_by_ridge": {str(k): v for k, v in errors.items()}}
    return readout.astype(np.float32), validated.astype(np.float32), info, {"gram": gram, "cross": cross}


@jax.jit(static_argnames=("lookback", "horizon", "leak_rate", "future"))
def _window_equations(reservoir, inputs, begin, weight, *, lookback, horizon, leak_rate, future):
    """Normal equations of the windows starting at rows `begin`, weighted by `weight`: centred_equations."""
    X, Y = gather_windows(inputs, begin, lookback, horizon, future)
    X, fut = split_future(X, horizon, future)
    fut = None if fut is None else fut.reshape(fut.shape[0], -1)
    Y = Y - X[:, -1, :1]
    Z = design(run_reservoir(reservoir, jnp.swapaxes(X, 0, 1), leak_rate, keep=1)[0][:, 0], X[:, -1], fut)
    return centred_equations(Z, Y, weight)


# one compiled function per shape, whatever the weights
_forward = jax.jit(predict, static_argnames=("leak_rate", "future"))


class EchoState(Model):
    """The echo-state network kind: a fixed random reservoir and a closed-form ridge readout. It models the log of
    the target only when asked: logs measured worse for it (M1 MASE +4-25%, docs/accuracy.md)."""

    name = "esn"
    default_log = False
    sees_future = True

    def fit(self, task: FitTask) -> Fitted:
        config, L, H = dataclasses.replace(task.spec.esn, future=task.future), task.window.lookback, task.window.horizon
        reservoir = init_reservoir(task.inputs.shape[1], config, task.key)
        try:
            rest = np.setdiff1d(every_window(task.panel.starts, L, H), np.union1d(task.train_idx, task.val_idx))
            readout, validated, info, normal = fit(reservoir, task.inputs, task.train_idx, task.val_idx, L, H,
                                                   config, task.devices, task.total, rest)
        except ValueError as e:
            raise DataError(f"cannot fit the ESN readout: {e}; use longer series or a smaller --horizon") from e
        if task.on_epoch:
            loss = info["val_loss"] or float("nan")
            task.on_epoch(1, {"train_loss": float("nan"), "val_loss": loss, "best_val_loss": loss})
        return Fitted({**reservoir, "readout": readout}, config.to_dict(), info, {**reservoir, "readout": validated},
                      state=normal)

    def update(self, task: FitTask, manifest: Manifest, params: dict[str, np.ndarray],
               state: dict[str, np.ndarray]) -> Fitted:
        """Exact: the new windows' normal equations (task.train_idx and task.val_idx: every window that ends in the
        new rows) are added to the kept ones and the readout is
        solved again with the ridge strength that training chose, so it equals the readout of a fit on every
        window of the grown panel with the same reservoir, scaling and ridge."""
        task = dataclasses.replace(task, train_idx=np.union1d(task.train_idx, task.val_idx))
        config = ESNConfig(**manifest.model)
        gram, cross, _, n = equations(params, task.inputs, task.train_idx, task.window.lookback,
                                      task.window.horizon, config)
        gram, cross = state["gram"] + gram, state["cross"] + cross
        readout = solve_ridge(gram, cross, manifest.fit["ridge"]).astype(np.float32)
        info = {**manifest.fit, "train_windows": manifest.fit["train_windows"] + int(n),
                "kept": f"readout solved again with {int(n)} new windows"}
        return Fitted({**params, "readout": readout}, manifest.model, info, state={"gram": gram, "cross": cross})

    def predictor(self, model: dict, horizon: int, season: int, params: dict[str, np.ndarray]) -> Predictor:
        config = ESNConfig(**model)
        reservoir = prepared(params)
        return lambda X: batched(lambda chunk: _forward(reservoir, params["readout"], chunk,
                                                        leak_rate=config.leak_rate, future=config.future), X)


ESN = EchoState()
