"""Naive and seasonal naive forecasts on plain arrays: models of their own and the fallback for short series."""

from __future__ import annotations

import numpy as np

from forecast_cli.models import FitTask, Fitted, Model, Predictor


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


class Naive(Model):
    """The last value repeated: nothing to fit."""

    name = "naive"
    parameter_free = True

    def fit(self, task: FitTask) -> Fitted:
        return Fitted({})

    def predictor(self, model: dict, horizon: int, season: int, params: dict) -> Predictor:
        return lambda X: naive(X[:, :, 0], horizon)


class SeasonalNaive(Naive):
    """The last season repeated: nothing to fit."""

    name = "snaive"

    def predictor(self, model: dict, horizon: int, season: int, params: dict) -> Predictor:
        return lambda X: seasonal_naive(X[:, :, 0], horizon, season)


NAIVE, SNAIVE = Naive(), SeasonalNaive()
