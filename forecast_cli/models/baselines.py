"""Naive and seasonal naive forecasts on plain arrays: models of their own and the fallback for short series."""

from __future__ import annotations

import numpy as np


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """history: (n, length) target values -> (n, horizon): the last value repeated."""
    return np.repeat(history[:, -1:], horizon, axis=1)


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """history: (n, length) -> (n, horizon): the last full season repeated; naive when the history is shorter
    than one season (or the season is 1)."""
    if season <= 1 or history.shape[1] < season:
        return naive(history, horizon)
    last_season = history[:, -season:]
    return np.tile(last_season, (1, -(-horizon // season)))[:, :horizon]
