"""Forecast error metrics and conformal interval radii: numpy only, no other module of ours.

Metrics follow the M-competitions: sMAPE in percent (0-200), MASE scaled by the in-sample MAE of the seasonal
naive forecast (naive when the series is no longer than a season), each computed per series and fold, then
averaged.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("mae", "rmse", "smape", "mase")


def mae(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.mean(np.abs(y - f)))


def rmse(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - f) ** 2)))


def smape(y: np.ndarray, f: np.ndarray) -> float:
    """Symmetric MAPE in percent, 200 |y - f| / (|y| + |f|); a step where both are 0 counts as 0."""
    denominator = np.abs(y) + np.abs(f)
    ratio = np.divide(2 * np.abs(y - f), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(100 * np.mean(ratio))


def mase_scale(insample: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast (lag `season`, or lag 1 when the series is too short)."""
    lag = season if len(insample) > season else 1
    if len(insample) <= lag:
        return math.nan
    return float(np.mean(np.abs(insample[lag:] - insample[:-lag])))


def mase(y: np.ndarray, f: np.ndarray, insample: np.ndarray, season: int) -> float:
    scale = mase_scale(insample, season)
    return mae(y, f) / scale if scale and scale > 0 else math.nan


def mase_weights(target: np.ndarray, starts: np.ndarray, fit_lengths: np.ndarray, season: int) -> np.ndarray:
    """(n_rows,) each row's weight for the "mase" loss: 1 / its series' MASE scale over the first fit_lengths
    rows of the series laid out by `starts` (n_series + 1,); 1 where that scale is undefined or negligible."""
    scales = np.array([mase_scale(target[a : a + n], season) for a, n in zip(starts[:-1], fit_lengths, strict=True)])
    per_series = np.where(scales > 1e-6, 1.0 / np.where(scales > 1e-6, scales, 1.0), 1.0)  # NaN compares False
    return np.repeat(per_series, np.diff(starts))


def conformal_quantiles(abs_errors: np.ndarray, level: float) -> np.ndarray:
    """Per-step split-conformal radius: the ceil((n+1)·level)-th smallest |error| of each column.

    abs_errors: (n_windows, horizon) -> (horizon,). With n too small for the level, the largest error.
    """
    n = abs_errors.shape[0]
    rank = min(n, math.ceil((n + 1) * level))
    return np.sort(abs_errors, axis=0)[rank - 1]


def interval_radius(abs_errors: np.ndarray, level: float, horizon: int) -> np.ndarray:
    """(horizon,) radii in scaled units; beyond the calibrated horizon they grow like sqrt(step)."""
    q = conformal_quantiles(abs_errors, level)
    calibrated = len(q)
    if horizon <= calibrated:
        return q[:horizon]
    extra = q[-1] * np.sqrt(np.arange(calibrated + 1, horizon + 1) / calibrated)
    return np.concatenate([q, extra])
