"""The `auto` model: the GRU blended with the Theta method, the blend weight chosen on the validation windows.

The network learns across series; Theta extrapolates each series' own level and trend and needs only a short
history. Which is better depends on the data (on M1, Theta on short yearly series, the blend on monthly ones,
see docs/accuracy.md), so `auto` tries the weights of WEIGHTS on the validation windows and keeps the one with
the least error. Series shorter than the network's lookback are forecast by Theta alone.
"""

from __future__ import annotations

import numpy as np

from forecast_cli.models.theta import theta

WEIGHTS = tuple(i / 10 for i in range(11))  # the network's share of the forecast, Theta has the rest (steps of
# 0.1 beat steps of 0.25 on the M1 holdouts of all three frequencies, docs/accuracy.md)
CONTEXT = 256  # most recent steps of each series that Theta sees (and the model directory keeps)
MAX_WINDOWS = 5000  # validation windows used to choose the weight (evenly spaced when there are more)


def context_rows(lengths: np.ndarray, lookback: int) -> int:
    """How many of the latest steps of each series to keep for Theta: all of the longest, up to CONTEXT."""
    return int(max(lookback, min(int(lengths.max()), CONTEXT)))


def theta_on_windows(target: np.ndarray, starts: np.ndarray, begin: np.ndarray, lookback: int, horizon: int,
                     season: int) -> np.ndarray:
    """Theta forecasts (n, horizon) for the windows starting at rows `begin: (n,)`, each from the history of its
    series up to the window's forecast origin (not only the window's own input): target: (n_rows,)."""
    series = np.searchsorted(starts, begin, side="right") - 1
    origin = begin + lookback
    first = np.maximum(starts[series], origin - CONTEXT)
    history = np.full((len(begin), int((origin - first).max()) if len(begin) else 0), np.nan)
    for i, (a, b) in enumerate(zip(first, origin, strict=True)):
        history[i, history.shape[1] - (b - a) :] = target[a:b]
    return theta(history, horizon, season)


def choose_weight(network: np.ndarray, theta_forecast: np.ndarray, truth: np.ndarray, window_weight: np.ndarray
                  ) -> tuple[float, dict[float, float]]:
    """The network weight of WEIGHTS with the least weighted mean absolute error on the validation windows.

    All arrays (n_windows, horizon) in the same units, `window_weight: (n_windows,)` each window's weight (the
    inverse of its series' error scale). Returns (weight, the error of each weight); ties go to the larger
    network share."""
    errors = {}
    for w in WEIGHTS:
        blend = w * network + (1 - w) * theta_forecast
        errors[w] = float(np.sum(np.mean(np.abs(blend - truth), axis=1) * window_weight) / np.sum(window_weight))
    best = min(errors.values())
    return max(w for w, e in errors.items() if e <= best), errors
