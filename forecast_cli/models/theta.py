"""The Theta method (Assimakopoulos and Nikolopoulos 2000, in the form of Hyndman and Billah 2003): simple
exponential smoothing with a drift of half the series' linear trend, on the seasonally adjusted series.

It needs no training across series and is strong on short yearly and quarterly series, where a network has
few windows to learn from; `auto` blends it with the networks (see models/ensemble.py). Works on plain
arrays, one row per series, NaN on the left where a series is shorter than the row.
"""

from __future__ import annotations

import numpy as np

ALPHAS = np.linspace(0.05, 1.0, 20)  # the smoothing-parameter grid; the in-sample one-step error picks one


def theta(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """history: (n, length), NaN-padded on the left -> (n, horizon) forecasts."""
    out = np.empty((len(history), horizon))
    for i, row in enumerate(history):
        out[i] = theta_one(row[~np.isnan(row)], horizon, season)
    return out


def theta_one(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Forecast one series y: (length,) `horizon` steps ahead."""
    if len(y) == 0:
        return np.full(horizon, np.nan)
    if len(y) < 3:
        return np.full(horizon, y[-1])
    index = seasonal_index(y, season)
    phase = np.arange(len(y)) % season
    adjusted = y / index[phase] if index is not None else y
    level, alpha = _ses(adjusted)
    n = len(adjusted)
    slope = np.polyfit(np.arange(n), adjusted, 1)[0]
    h = np.arange(1, horizon + 1)
    forecast = level + 0.5 * slope * (h - 1 + 1 / alpha - (1 - alpha) ** n / alpha)
    if index is not None:
        forecast = forecast * index[(n + h - 1) % season]
    return forecast


def seasonal_index(y: np.ndarray, season: int) -> np.ndarray | None:
    """Multiplicative seasonal indices (season,) by classical decomposition, or None when the series is not
    seasonal by the 90% autocorrelation test at lag `season`, too short (under three seasons) or not positive."""
    n = len(y)
    if season <= 1 or n < 3 * season or y.min() <= 0:
        return None
    centred = y - y.mean()
    denom = np.sum(centred**2)
    if denom <= 0:
        return None
    acf = np.array([np.sum(centred[k:] * centred[:-k]) / denom for k in range(1, season + 1)])
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n)
    if abs(acf[-1]) <= limit:
        return None
    weights = np.ones(season + 1 if season % 2 == 0 else season)
    if season % 2 == 0:
        weights[[0, -1]] = 0.5
    trend = np.convolve(y, weights / season, mode="valid")
    offset = len(weights) // 2
    ratio = y[offset : offset + len(trend)] / trend
    phase = (np.arange(len(ratio)) + offset) % season
    index = np.array([ratio[phase == p].mean() for p in range(season)])
    return index / index.mean()


def _ses(y: np.ndarray) -> tuple[float, float]:
    """Simple exponential smoothing from level y[0]: (final level, alpha) for the alpha of ALPHAS with the least
    in-sample one-step squared error; every alpha runs at once."""
    level = np.full(len(ALPHAS), y[0], dtype=np.float64)
    sse = np.zeros(len(ALPHAS))
    for value in y[1:]:
        error = value - level
        sse += error**2
        level += ALPHAS * error
    best = int(np.argmin(sse))
    return float(level[best]), float(ALPHAS[best])
