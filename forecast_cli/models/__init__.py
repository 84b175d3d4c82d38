"""The model registry: how each kind is fitted and how its saved parameters become a forecast function.

Every kind forecasts through the same interface: `predictor(X) -> Y`, where X: (n, lookback, n_features) holds
scaled input windows (column 0 the target) and Y: (n, horizon) the scaled forecast.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from forecast_cli.config import MODEL_KINDS, RECURRENT_KINDS, ESNConfig, RecurrentConfig

Predictor = Callable[[np.ndarray], np.ndarray]

__all__ = ["MODEL_KINDS", "RECURRENT_KINDS", "flatten_params", "make_predictor"]


def flatten_params(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """A nested dict of arrays -> {"a/b/c": array}."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_params(value, name + "/"))
        else:
            flat[name] = np.asarray(value)
    return flat


def make_predictor(kind: str, manifest: dict, params: dict[str, np.ndarray]) -> Predictor:
    """The forecast function of a trained model of `kind` (see the module docstring)."""
    horizon = manifest["window"]["horizon"]
    if kind in RECURRENT_KINDS or kind == "auto":  # auto's network is a GRU; blend.py adds Theta
        return _recurrent_predictor(manifest, params)
    if kind == "esn":
        return _esn_predictor(manifest, params)
    if kind == "naive":
        from forecast_cli.models.baselines import naive

        return lambda X: naive(X[:, :, 0], horizon)
    if kind == "snaive":
        from forecast_cli.models.baselines import seasonal_naive

        season = manifest["season"]
        return lambda X: seasonal_naive(X[:, :, 0], horizon, season)
    raise ValueError(f"unknown model kind {kind!r}")


def _batched(fn, X: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Apply a jitted fn in chunks padded to a power of two, so few shapes are ever compiled."""
    outputs = []
    for first in range(0, len(X), batch):
        part = X[first : first + batch]
        size = max(8, 1 << (len(part) - 1).bit_length())
        padded = np.concatenate([part, np.zeros((size - len(part),) + part.shape[1:], part.dtype)])
        outputs.append(np.asarray(fn(padded))[: len(part)])
    return np.concatenate(outputs) if outputs else np.zeros((0, 0))


def _recurrent_predictor(manifest: dict, params: dict[str, np.ndarray]) -> Predictor:
    import jax

    from forecast_cli.models.forward import recurrent_forward

    config = RecurrentConfig(**manifest["model"])
    members = [{k: v for k, v in params.items() if not k.startswith("member")}]
    for prefix in sorted({k.split("/")[0] + "/" for k in params if k.startswith("member")}):  # an ensemble:
        members.append({k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)})  # averaged

    @jax.jit
    def forward(members, X):
        return sum(recurrent_forward(p, X, config.cell, config.layers, config.hidden) for p in members) / len(members)

    return lambda X: _batched(lambda chunk: forward(members, chunk), X)


def _esn_predictor(manifest: dict, params: dict[str, np.ndarray]) -> Predictor:
    import jax

    from forecast_cli.models import esn

    config = ESNConfig(**{**manifest["model"], "ridges": tuple(manifest["model"]["ridges"])})
    reservoir = {k: params[k] for k in ("W", "W_in", "b")}
    forward = jax.jit(lambda reservoir, readout, X: esn.predict(reservoir, readout, X, config.leak_rate))
    return lambda X: _batched(lambda chunk: forward(reservoir, params["readout"], chunk), X)
