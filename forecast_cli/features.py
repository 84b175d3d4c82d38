"""Model inputs from series: scaled target and covariates plus calendar features, and the last window of each
series (the history a forecast starts from).

Input rows have the columns [target, covariates..., calendar..., holiday, static...], all scaled or bounded,
float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecast_cli import timeindex
from forecast_cli.windows import Scaler

ROW_CHUNK = 1 << 20  # rows whose calendar features are made at a time: their float64 steps stay a few MB


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """np.empty at a 64-byte aligned address: JAX's CPU devices can then use the memory without a copy
    (parallel.Devices.replicated)."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + 64, np.uint8)
    offset = (-raw.ctypes.data) % 64
    return raw[offset : offset + size].view(dtype).reshape(shape)


def model_inputs(scaled: np.ndarray, ds: np.ndarray, freq: str, holidays: str | None = None,
                 static_rows: np.ndarray | None = None) -> np.ndarray:
    """scaled: (n_rows, n_columns), ds: (n_rows,) -> (n_rows, n_columns + n_stamp_features (+ n_static)) float32;
    `static_rows: (n_rows, n_static)` the encoded static covariates of each row's series (static.py). Filled
    ROW_CHUNK rows at a time into the one float32 array (100 million rows: 2 GB, where whole-column float64
    steps took 10 GB more)."""
    n_stamp = stamp_features(ds[:0], freq, holidays).shape[1]
    n_static = 0 if static_rows is None else static_rows.shape[1]
    k = scaled.shape[1]
    out = aligned_empty((len(scaled), k + n_stamp + n_static), np.float32)
    for a in range(0, len(scaled), ROW_CHUNK):
        b = a + ROW_CHUNK
        out[a:b, :k] = scaled[a:b]
        out[a:b, k : k + n_stamp] = stamp_features(ds[a:b], freq, holidays)
        if n_static:
            out[a:b, k + n_stamp :] = static_rows[a:b]
    return out


def stamp_features(ds: np.ndarray, freq: str, holidays: str | None = None) -> np.ndarray:
    """What the stamps alone give, known for any future step: the calendar features (sin/cos of hour, weekday,
    month) and, with `holidays` (--holidays), a public-holiday indicator. (len(ds), n) float32."""
    return np.concatenate([timeindex.calendar_features(ds, freq), timeindex.holiday_features(ds, holidays)], axis=1)


@dataclass
class History:
    """The last `lookback` rows of each series, in original units.

    values: (n_series, lookback, n_columns), NaN on the left where a series is shorter than the lookback;
    last_ds: (n_series,) the last timestamp; length: (n_series,) rows available (at most lookback).
    """

    ids: np.ndarray  # (n_series,) object array of str: a fixed-width unicode array would make every id as wide
    # as the longest (one 1 MB id among 300 series: 1.2 GB, and again per forecast row)
    values: np.ndarray
    last_ds: np.ndarray
    length: np.ndarray


def last_windows(ids: np.ndarray, values: np.ndarray, ds: np.ndarray, starts: np.ndarray, lookback: int) -> History:
    """History of every series of a panel laid out by `starts`."""
    lengths = np.diff(starts)
    offsets = np.arange(-lookback, 0)  # relative to the end of each series
    rows = starts[1:, None] + offsets[None, :]
    inside = offsets[None, :] >= -lengths[:, None]
    window = np.where(inside[..., None], values[np.clip(rows, 0, len(values) - 1)], np.nan)
    return History(np.asarray(ids, dtype=object), window, ds[starts[1:] - 1], np.minimum(lengths, lookback))


def stamps_around(last_ds: np.ndarray, freq: str, before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """For each series' last stamp: the `before` stamps ending at it and the `after` stamps following it.

    Returns (past: (n_series, before), future: (n_series, after)). Computed once per distinct last stamp.
    """
    if not len(last_ds):
        return np.zeros((0, before), last_ds.dtype), np.zeros((0, after), last_ds.dtype)
    unique, inverse = np.unique(last_ds, return_inverse=True)
    past, future = [], []
    for last in unique:
        past.append(timeindex.past_times(last, freq, before))  # both raise DataError rather than wrap
        future.append(timeindex.future_times(last, freq, after))
    return np.stack(past)[inverse], np.stack(future)[inverse]


def window_inputs(history: History, scaler: Scaler, freq: str, holidays: str | None = None,
                  static: np.ndarray | None = None) -> np.ndarray:
    """Model input windows for a forecast: (n_series, lookback, n_features), NaN where history is missing;
    `static: (n_series, n_static)` the encoded static covariates, carried by every row."""
    n, lookback, n_columns = history.values.shape
    scaled = scaler.transform_windows(history.values)
    past, _ = stamps_around(history.last_ds, freq, lookback, 0)
    calendar = stamp_features(past.reshape(-1), freq, holidays)
    calendar = calendar.reshape(n, lookback, calendar.shape[1])
    parts = [scaled, calendar] + ([] if static is None else [np.repeat(static[:, None, :], lookback, axis=1)])
    return np.concatenate(parts, axis=2).astype(np.float32)
