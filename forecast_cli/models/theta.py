"""The Theta method (Assimakopoulos and Nikolopoulos 2000, in the form of Hyndman and Billah 2003): simple
exponential smoothing with a linear drift, on the seasonally adjusted series.

The classic method adds half the series' linear-regression slope (`drift` 0.5, the theta = 2 line); the optimised
Theta method fits that share instead (Fiorucci et al. 2016). `auto` picks the drift per data set on its
validation windows (models/auto.py): M1's trending yearly series want the whole slope, its monthly ones about half.
It needs no training across series and is strong on short series, where a network has few windows to learn
from. Works on plain arrays, one row per series, NaN on the left where a series is shorter than the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHAS = np.linspace(0.05, 1.0, 20)  # the smoothing-parameter grid; the in-sample one-step error picks one


@dataclass(frozen=True)
class ThetaFit:
    """What a forecast of one series needs: the smoothed level and its alpha, the regression slope, the length
    and the multiplicative seasonal indices (None: not seasonal)."""

    level: float
    alpha: float
    slope: float
    length: int
    index: np.ndarray | None
    season: int

    def forecast(self, horizon: int, drift: float = 0.5) -> np.ndarray:
        """(horizon,) forecasts: the level plus `drift` times the slope, SES-adjusted (Hyndman and Billah)."""
        h = np.arange(1, horizon + 1)
        a, n = self.alpha, self.length
        out = self.level + drift * self.slope * (h - 1 + 1 / a - (1 - a) ** n / a)
        if self.index is not None:
            out = out * self.index[(n + h - 1) % self.season]
        return out


def theta(history: np.ndarray, horizon: int, season: int, drift: float = 0.5) -> np.ndarray:
    """history: (n, length), NaN-padded on the left -> (n, horizon) forecasts."""
    return np.stack([f.forecast(horizon, drift) for f in fit_rows(history, season)]) if len(history) else \
        np.zeros((0, horizon))


def fit_rows(history: np.ndarray, season: int) -> list[ThetaFit]:
    """One fit per row of `history: (n, length)`, NaN-padded on the left."""
    return [theta_fit(row[~np.isnan(row)], season) for row in history]


def theta_one(y: np.ndarray, horizon: int, season: int, drift: float = 0.5) -> np.ndarray:
    """Forecast one series y: (length,) `horizon` steps ahead."""
    return theta_fit(y, season).forecast(horizon, drift)


def theta_fit(y: np.ndarray, season: int) -> ThetaFit:
    """Fit one series y: (length,). Under 3 points: the last value, flat (NaN when there is none).

    The fit runs on y divided by a power of two near its largest |value| (exact, so ordinary series get the same
    bits): the squared errors and autocorrelations of values near 1e154 would overflow float64."""
    if len(y) < 3:
        return ThetaFit(float(y[-1]) if len(y) else np.nan, 1.0, 0.0, len(y), None, season)
    largest = float(np.max(np.abs(y)))
    unit = float(np.ldexp(1.0, np.frexp(largest)[1])) if largest > 0 else 1.0
    fit = _theta_fit(y / unit, season)
    return ThetaFit(fit.level * unit, fit.alpha, fit.slope * unit, fit.length, fit.index, season)


def _theta_fit(y: np.ndarray, season: int) -> ThetaFit:
    index = seasonal_index(y, season)
    adjusted = y / index[np.arange(len(y)) % season] if index is not None else y
    level, alpha = _ses(adjusted)
    slope = float(np.polyfit(np.arange(len(adjusted)), adjusted, 1)[0])
    return ThetaFit(level, alpha, slope, len(y), index, season)


def seasonal_index(y: np.ndarray, season: int) -> np.ndarray | None:
    """Multiplicative seasonal indices (season,) by classical decomposition, or None when the series is not
    seasonal by the 90% autocorrelation test at lag `season`, too short (under three seasons) or not positive."""
    if y.min() <= 0 or not is_seasonal(y, season):
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


def is_seasonal(y: np.ndarray, season: int) -> bool:
    """Whether y: (n,) passes the 90% autocorrelation test at lag `season` with at least three seasons."""
    n = len(y)
    if season <= 1 or n < 3 * season:
        return False
    centred = y - y.mean()
    denom = np.sum(centred**2)
    if denom <= 0:
        return False
    acf = np.array([np.sum(centred[k:] * centred[:-k]) / denom for k in range(1, season + 1)])
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n)
    return bool(abs(acf[-1]) > limit)


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
