"""The recurrent forecasters' forward pass in plain JAX, straight from saved weights.

`forecast predict` uses it instead of rebuilding the Flax module, so a cron job does not pay for importing
Flax (about 0.4-0.7 s of a cold start, see docs/benchmarks.md). It follows flax.nnx's GRUCell, LSTMCell and
SimpleCell exactly, with the weight names of their saved state; tests/test_models.py checks that both give
the same numbers for every cell.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from forecast_cli.windows import split_future

Array = jax.Array


def _dense(params: dict, name: str, x: Array) -> Array:
    out = x @ params[f"{name}/kernel"]
    bias = params.get(f"{name}/bias")
    return out if bias is None else out + bias


def _gru(p: dict, h: Array, x: Array) -> Array:
    xi_r, xi_z, xi_n = jnp.split(_dense(p, "dense_i", x), 3, axis=-1)
    hh_r, hh_z, hh_n = jnp.split(_dense(p, "dense_h", h), 3, axis=-1)
    r = jax.nn.sigmoid(xi_r + hh_r)
    z = jax.nn.sigmoid(xi_z + hh_z)
    n = jnp.tanh(xi_n + r * hh_n)
    return (1.0 - z) * n + z * h


def _lstm(p: dict, carry: tuple[Array, Array], x: Array) -> tuple[Array, Array]:
    c, h = carry
    i = jax.nn.sigmoid(_dense(p, "ii", x) + _dense(p, "hi", h))
    f = jax.nn.sigmoid(_dense(p, "if_", x) + _dense(p, "hf", h))
    g = jnp.tanh(_dense(p, "ig", x) + _dense(p, "hg", h))
    o = jax.nn.sigmoid(_dense(p, "io", x) + _dense(p, "ho", h))
    c = f * c + i * g
    return c, o * jnp.tanh(c)


def _elman(p: dict, h: Array, x: Array) -> Array:
    return jnp.tanh(_dense(p, "dense_i", x) + _dense(p, "dense_h", h))


def recurrent_forward(params: dict[str, Array], X: Array, cell: str, layers: int, hidden: int,
                      future: tuple[int, ...] = (), horizon: int = 0) -> Array:
    """X: (batch, lookback, n_features) -> (batch, horizon), as RecurrentForecaster.__call__ (no dropout); with
    `future` columns, X is (batch, lookback + horizon, n_features) and the decoder runs over their horizon rows."""
    X, fut = split_future(X, horizon, future)
    level = jnp.mean(X[:, :, 0], axis=1, keepdims=True)
    h = jnp.swapaxes(X.at[:, :, 0].add(-level), 0, 1)  # time-major
    zeros = jnp.zeros((X.shape[0], hidden), X.dtype)
    carry = None
    for layer in range(layers):
        carry, h = _scan(_cell_params(params, f"layers/{layer}/cell/"), cell,
                         (zeros, zeros) if cell == "lstm" else zeros, h)
    if fut is None:
        return _dense(params, "head", h[-1]) + level
    _, states = _scan(_cell_params(params, "decoder/cell/"), cell, carry, jnp.swapaxes(fut, 0, 1))
    return jnp.swapaxes(_dense(params, "head", states)[..., 0], 0, 1) + level


def _cell_params(params: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def _scan(p: dict, cell: str, carry, inputs: Array):
    """(final carry, hidden states (time, batch, hidden)) of one cell run over time-major `inputs`."""
    if cell == "lstm":
        def step(carry, x):
            carry = _lstm(p, carry, x)
            return carry, carry[1]
    else:
        update = _gru if cell == "gru" else _elman

        def step(carry, x):
            carry = update(p, carry, x)
            return carry, carry
    return jax.lax.scan(step, carry, inputs)
