"""Per-series scaling and the cut of series into (input, target) windows. Arrays only from here on.

A panel of series is held as `values: (n_rows, n_features)` (target in column 0, then covariates) and
`starts: (n_series + 1,)` row offsets, so series i is `values[starts[i]:starts[i + 1]]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCALINGS = ("standard", "robust")


@dataclass(frozen=True)
class Scaler:
    """Per-series, per-feature affine map: scaled = (x - loc) / scale. loc, scale: (n_series, n_features).

    With `log`, the target (feature 0) is replaced by its natural log before the affine map, and forecasts are
    exponentiated on the way back: a multiplicative trend or season becomes an additive one."""

    loc: np.ndarray
    scale: np.ndarray
    log: bool = False

    def transform(self, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """values: (n_rows, n_features) laid out by `starts` -> scaled copy, same shape."""
        counts = np.diff(starts)
        out = self._log(values)
        out = np.array(out, np.float64) if out is values else out  # (in place below: one copy of the values)
        out -= np.repeat(self.loc, counts, axis=0)
        out /= np.repeat(self.scale, counts, axis=0)
        return out

    def transform_windows(self, values: np.ndarray) -> np.ndarray:
        """values: (n_series, length, n_features), one window per series -> scaled copy."""
        return (self._log(values) - self.loc[:, None, :]) / self.scale[:, None, :]

    def target_to_scaled(self, y: np.ndarray, series: np.ndarray) -> np.ndarray:
        """y: (n, horizon) target values in original units of series `series: (n,)` -> scaled. With `log`,
        values at or below 0 are taken as the smallest positive float."""
        y = np.log(np.maximum(y, np.finfo(np.float64).tiny)) if self.log else y
        return (y - self.loc[series, :1]) / self.scale[series, :1]

    def inverse_target(self, y: np.ndarray, series: np.ndarray) -> np.ndarray:
        """y: (n, horizon) scaled target values of series `series: (n,)` -> original units."""
        y = y * self.scale[series, :1] + self.loc[series, :1]
        return np.exp(y) if self.log else y

    def select(self, mask: np.ndarray) -> Scaler:
        """The scaler of the series where `mask: (n_series,)` is true (or of the indices it lists)."""
        return Scaler(self.loc[mask], self.scale[mask], self.log)

    def _log(self, values: np.ndarray) -> np.ndarray:
        if not self.log:
            return values
        values = values.copy()
        values[..., 0] = np.log(values[..., 0])
        return values


def fit_scaler(values: np.ndarray, starts: np.ndarray, fit_lengths: np.ndarray | None = None,
               method: str = "standard", log: bool = False) -> Scaler:
    """Statistics of the first `fit_lengths[i]` rows of each series (all rows when None).

    "standard" uses mean and standard deviation, "robust" median and interquartile range / 1.349. A scale
    that is zero (a constant series) or negligible becomes 1, so nothing divides by zero. With `log` the
    statistics of the target are those of its log (every target value must be positive).
    """
    if method not in SCALINGS:
        raise ValueError(f"unknown scaling {method!r}")
    values = Scaler(np.zeros(0), np.zeros(0), log)._log(values)
    lengths = np.diff(starts) if fit_lengths is None else np.asarray(fit_lengths)
    n_series, n_features = len(starts) - 1, values.shape[1]
    loc = np.empty((n_series, n_features))
    scale = np.empty((n_series, n_features))
    if method == "standard":
        mask = _prefix_mask(starts, lengths)
        # Sums of values near the float64 limit (1e308, or squares of 1e154) overflow: each series' columns are
        # divided by a power of two near their largest |value| first, which is exact, so ordinary data gets the
        # same bits as without it.
        largest = np.maximum.reduceat(np.abs(values) * mask[:, None], starts[:-1], axis=0)
        unit = np.ldexp(1.0, np.frexp(np.where(largest > 0, largest, 1.0))[1])  # (n_series, n_features)
        rows_unit = np.repeat(unit, np.diff(starts), axis=0)
        normed = values / rows_unit
        first = np.add.reduceat(normed * mask[:, None], starts[:-1], axis=0) / lengths[:, None]
        centred = (normed - np.repeat(first, np.diff(starts), axis=0)) * mask[:, None]
        loc[:] = first * unit
        scale[:] = np.sqrt(np.add.reduceat(centred**2, starts[:-1], axis=0) / lengths[:, None]) * unit
    else:
        for i in range(n_series):
            part = values[starts[i] : starts[i] + lengths[i]]
            q1, median, q3 = np.percentile(part, [25, 50, 75], axis=0)
            loc[i], scale[i] = median, (q3 - q1) / 1.349
            flat = scale[i] <= 0
            scale[i, flat] = part[:, flat].std(axis=0)
    negligible = scale <= 1e-8 * np.maximum(1.0, np.abs(loc))
    return Scaler(loc, np.where(negligible, 1.0, scale), log)


def _prefix_mask(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(n_rows,) True on the first lengths[i] rows of each series."""
    position = np.arange(starts[-1]) - np.repeat(starts[:-1], np.diff(starts))
    return position < np.repeat(lengths, np.diff(starts))


def default_val_size(lengths: np.ndarray, horizon: int) -> np.ndarray:
    """Steps held out at the end of each series: a tenth of it, at least one horizon, at most ten."""
    return np.clip(np.round(0.1 * lengths).astype(np.int64), horizon, 10 * horizon)


def calibration_holdout(lengths: np.ndarray, lookback: int, horizon: int, val_size: np.ndarray, wanted: int
                        ) -> np.ndarray | None:
    """Steps to hold out at the end of each series so that `wanted` windows end in the held-out parts; None
    when the validation parts (`val_size: (n_series,)`) already give that many, or no series has room for more.

    Every series that has room holds out the same number of windows' worth, and keeps at least half of itself
    and one lookback and horizon for fitting."""
    n_val = _windows_in_holdout(lengths, lookback, horizon, val_size)
    if n_val.sum() >= wanted:
        return None
    room = np.minimum(lengths - lookback - horizon, lengths // 2)  # the most each series may hold out
    roomy = room > val_size
    if not roomy.any():
        return None
    per_series = horizon - 1 + -(-(wanted - int(n_val[~roomy].sum())) // int(roomy.sum()))
    return np.where(roomy, np.clip(per_series, val_size, room), val_size)


def _windows_in_holdout(lengths: np.ndarray, lookback: int, horizon: int, val_size: np.ndarray) -> np.ndarray:
    """(n_series,) windows whose target ends in the last val_size steps (window_starts' validation windows)."""
    first_val = np.maximum(0, lengths - val_size - lookback)
    return np.maximum(0, lengths - lookback - horizon + 1 - first_val)


def every_window(starts: np.ndarray, lookback: int, horizon: int) -> np.ndarray:
    """Rows where every window of every series begins."""
    return _ragged_range(starts[:-1], np.maximum(0, np.diff(starts) - lookback - horizon + 1))


def spread_windows(starts: np.ndarray, lookback: int, horizon: int, most: int) -> np.ndarray:
    """Rows where at most `most` windows of each series begin, evenly spaced over all of its windows from the
    first to the last (the last alone when `most` is 1), or every window of a series that has no more: a bound
    on what every_window gives."""
    return spread(starts[:-1], np.maximum(0, np.diff(starts) - lookback - horizon + 1), most)


def spread(first: np.ndarray, count: np.ndarray, most: int) -> np.ndarray:
    """Of the runs first[i], first[i] + 1, .. first[i] + count[i] - 1 (ascending), at most `most` of each,
    evenly spaced from its first to its last (the last alone when `most` is 1), or all of a run that has no
    more."""
    keep = np.minimum(count, most)
    per = np.repeat(keep, keep)
    back = per - 1 - _ragged_range(np.zeros(len(count), np.int64), keep)  # keep-1 .. 0 within each run
    last = np.repeat(np.maximum(count - 1, 0), keep)
    gaps = np.maximum(per - 1, 1)
    return np.repeat(first, keep) + last - (back * last + gaps // 2) // gaps


def window_starts(starts: np.ndarray, lookback: int, horizon: int, val_size: np.ndarray | int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Row indices where the training and the validation windows begin.

    Series i is split at cut = length - val_size[i]. A training window's input and target both lie before
    the cut; a validation window's target lies at or after it (its input may reach back before the cut).
    So no value of a validation target is ever seen in training. Returns (train, val), each (n_windows,).
    """
    lengths = np.diff(starts)
    cut = lengths - np.broadcast_to(np.asarray(val_size), lengths.shape)
    n_train = np.maximum(0, cut - lookback - horizon + 1)
    first_val = np.maximum(0, cut - lookback)
    n_val = _windows_in_holdout(lengths, lookback, horizon, np.broadcast_to(np.asarray(val_size), lengths.shape))
    return (
        _ragged_range(starts[:-1], n_train),
        _ragged_range(starts[:-1] + first_val, n_val),
    )


def _ragged_range(begin: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of arange(begin[i], begin[i] + count[i]) over i."""
    total = int(count.sum())
    offsets = np.repeat(np.cumsum(count) - count, count)
    return np.repeat(begin, count) + (np.arange(total) - offsets)


def gather_windows(values: np.ndarray, begin: np.ndarray, lookback: int, horizon: int, future: tuple[int, ...] = ()
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Windows starting at rows `begin: (n,)`: of a numpy array, or of a JAX array inside jit (training and the
    ESN readout gather on the device this way).

    Returns X: (n, lookback, n_features), the inputs, and Y: (n, horizon), the target column that follows.
    With `future` (the columns known over the horizon), X is (n, lookback + horizon, n_features): its last
    `horizon` rows hold those columns' values at the forecast steps and zeros elsewhere (the target among
    them: a forecast never sees what it forecasts).
    """
    X = values[begin[:, None] + np.arange(lookback + (horizon if future else 0))]
    if future:
        X = X * future_mask(lookback, horizon, values.shape[1], future)
    return X, window_targets(values, begin, lookback, horizon)


def window_targets(values: np.ndarray, begin: np.ndarray, lookback: int, horizon: int) -> np.ndarray:
    """Y of gather_windows alone: (n, horizon), the target column after each window's lookback."""
    return values[begin[:, None] + lookback + np.arange(horizon), 0]


WINDOW_CHUNK = 65_536  # windows gathered at a time for a forecast of many (validation, calibration)


def window_chunks(values: np.ndarray, begin: np.ndarray, lookback: int, horizon: int, future: tuple[int, ...] = ()):
    """(part, X, Y) of the windows starting at rows `begin: (n,)`, WINDOW_CHUNK at a time (`part`: the slice of
    `begin` they are): 4 million validation windows of a million series would otherwise gather 2 GB of inputs
    at once."""
    for first in range(0, len(begin), WINDOW_CHUNK):
        part = slice(first, min(first + WINDOW_CHUNK, len(begin)))
        yield (part, *gather_windows(values, begin[part], lookback, horizon, future))


def window_forecasts(predictor, values: np.ndarray, begin: np.ndarray, lookback: int, horizon: int,
                     future: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(predictor(X) as float64 (n, horizon), Y (n, horizon)) of the windows starting at rows `begin: (n,)`,
    gathered WINDOW_CHUNK at a time (window_chunks)."""
    pred = np.zeros((len(begin), horizon))
    Y = np.zeros((len(begin), horizon), values.dtype)
    for part, X, Y[part] in window_chunks(values, begin, lookback, horizon, future):
        pred[part] = predictor(X)
    return pred, Y


def future_mask(lookback: int, horizon: int, n_features: int, future: tuple[int, ...]) -> np.ndarray:
    """(lookback + horizon, n_features) float32: 1 on the input rows, and on the horizon rows in the `future`
    columns only."""
    mask = np.ones((lookback + horizon, n_features), np.float32)
    mask[lookback:] = 0
    mask[lookback:, list(future)] = 1
    return mask


def split_future(X, horizon: int, future: tuple[int, ...]):
    """A window of gather_windows -> (its input rows, its future values: (n, horizon, len(future)), or None
    without `future`). numpy or JAX."""
    if not future:
        return X, None
    return X[:, :-horizon], X[:, -horizon:][:, :, list(future)]


def make_windows(series: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of one series `series: (length,) or (length, n_features)`.

    There are length - lookback - horizon + 1 windows; window i has X[i] = series[i : i + lookback] and
    Y[i] = series[i + lookback : i + lookback + horizon] (target column).
    """
    values = series[:, None] if series.ndim == 1 else series
    count = max(0, len(values) - lookback - horizon + 1)
    return gather_windows(values, np.arange(count), lookback, horizon)
