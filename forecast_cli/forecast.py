"""From a trained Artifact (plus optional fresh data) to a Forecast: the library behind `forecast predict`.

A forecast from the model directory alone needs neither pandas nor the training CSV (forecast_cli.csvout writes
its CSV).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli import limits, models, parallel, timeindex
from forecast_cli.artifact import Artifact, Manifest
from forecast_cli.csvout import to_csv
from forecast_cli.errors import ConfigError, DataError, TrainingError
from forecast_cli.features import History, stamp_features, stamps_around, window_inputs
from forecast_cli.future import Future
from forecast_cli.metrics import end_scales, extrapolated, interval_radius, supported_level
from forecast_cli.models.auto import context_rows
from forecast_cli.models.baselines import seasonal_naive
from forecast_cli.windows import Scaler, fit_scaler, future_mask

if TYPE_CHECKING:
    import pandas as pd

    from forecast_cli.data import Panel


@dataclass
class Forecast:
    columns: dict[str, np.ndarray]  # unique_id, ds, y_hat (and y_hat_lo_<level>, y_hat_hi_<level>), one row each
    fallback: list[str]  # series shorter than the lookback, forecast by...
    fallback_by: str  # ...this (models.Model.short_series: seasonal naive, or Theta in `auto`)
    rolled: bool  # horizon longer than trained: recursive roll-forward was used
    time_sep: str = " "  # between date and time in the CSV: "T" when the data wrote its stamps so
    notes: list[str] = field(default_factory=list)  # what a user should know about the intervals

    @cached_property
    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.columns)

    def to_csv(self) -> str:
        """The forecast CSV (floats to 8 significant digits), written without pandas."""
        return to_csv(self.columns, float_format="%.8g", time_sep=self.time_sep)


def predict(artifact: Artifact, panel: Panel | None = None, horizon: int | None = None,
            levels: list[int] | tuple[int, ...] = (), shard: tuple[int, int] | None = None,
            quantiles: list[float] | tuple[float, ...] = (), future: Future | None = None) -> Forecast:
    """Forecast `horizon` steps after the end of every series: of `panel` when given (known series keep their
    training scaling; new ones are scaled by their own history), else of the data the model was trained on.

    `levels` (percent) add conformal interval columns y_hat_lo_<level>, y_hat_hi_<level>; `quantiles` (in
    (0, 1)) columns y_hat_q<100 q> (0.1 -> y_hat_q10), the bounds of the same intervals (q10 is the lower
    bound of the 80% interval, q50 the forecast). `shard` = (N, I) keeps the series that parallel.owner
    assigns to part I of N. A model with future covariates takes their values over the horizon from `future`,
    else from `panel`'s rows after each series' last target value (Panel.future)."""
    m = artifact.manifest
    L, trained_h = m.window.lookback, m.window.horizon
    horizon = trained_h if horizon is None else horizon
    if not 1 <= horizon <= limits.MAX_HORIZON:
        raise ConfigError(f"--horizon {horizon}: must be between 1 and {limits.MAX_HORIZON:,}")
    stored = Scaler(artifact.arrays["scaler/loc"], artifact.arrays["scaler/scale"], m.window.log)
    kind = models.get(m.kind)
    a = artifact.arrays
    if panel is None:
        history = History(np.asarray(m.series, dtype=object), a["history/values"], a["history/last_ds"],
                          a["history/length"])
        scaler, error_scale, nonnegative = stored, a["calibration/scale"], a["history/nonnegative"]
        context = a["context/values"] if kind.context else None
        saved = {k: v for k, v in a.items() if k.startswith("ets/")}
    else:
        history, scaler, error_scale, nonnegative = _history_from_panel(panel, m, stored, a)
        context = panel.last_windows(context_rows(panel.lengths, L), target_only=True).values[:, :, 0] \
            if kind.context else None
        saved = {}  # fitted on the training data's context, not on this one
    static = None
    if m.static:
        from forecast_cli.static import encode

        static = a["static/values"] if panel is None else encode(m.static, panel.static_values, panel.source,
                                                                 panel.ids)
    if shard is not None:
        mine = np.array([parallel.owner(sid, shard[0]) == shard[1] for sid in history.ids], dtype=bool)
        history, scaler = _select(history, mine), scaler.select(mine)
        error_scale, nonnegative = error_scale[mine], nonnegative[mine]
        context = context[mine] if kind.context else None
        saved = {k: v[mine] for k, v in saved.items()}
        static = static[mine] if static is not None else None
    cells = len(history.ids) * horizon
    if cells > limits.MAX_FORECAST_CELLS:
        raise ConfigError(f"--horizon {horizon} for {len(history.ids):,} series is {cells:,} forecast values, more "
                          f"than the {limits.MAX_FORECAST_CELLS:,} of one run; use a shorter --horizon or split the "
                          "series with --num-processes N --process-id I")
    predictor = kind.predictor(m.model, trained_h, m.season, artifact.params())
    y_hat = np.empty((len(history.ids), horizon))
    short = history.length < L
    if (~short).any():
        long = _select(history, ~short)
        ahead = _future_values(m, future if future is not None else (panel.future if panel is not None else None),
                               long, horizon) if m.data.future_covariates else None
        y_hat[~short] = _roll_forward(predictor, long, scaler.select(~short), m.freq, trained_h, horizon, ahead,
                                      tuple(m.model.get("future", ())), m.data.holidays,
                                      static[~short] if static is not None else None)
    for i in np.flatnonzero(short):  # too short for the model's lookback: seasonal naive, unless the kind
        raw = history.values[i, :, 0]  # has better (kind.complete)
        y_hat[i] = seasonal_naive(raw[~np.isnan(raw)][None], horizon, m.season)[0]
    y_hat = kind.complete(y_hat, short, context, horizon, m, saved)
    _, future = stamps_around(history.last_ds, m.freq, 1, horizon)
    floor = np.where(nonnegative, 0.0, -np.inf)[:, None]
    columns = {
        "unique_id": np.repeat(history.ids, horizon),
        "ds": future.reshape(-1),
        "y_hat": np.maximum(y_hat, floor).reshape(-1),
    }
    bands = Bands(a["calibration/scores"], error_scale, y_hat, floor)
    for level in levels:
        lo, hi = bands.bounds(level / 100)
        columns[f"y_hat_lo_{level}"], columns[f"y_hat_hi_{level}"] = lo.reshape(-1), hi.reshape(-1)
    for q in quantiles:
        lo, hi = bands.bounds(abs(2 * q - 1)) if q != 0.5 else (columns["y_hat"],) * 2
        columns[quantile_column(q)] = (lo if q < 0.5 else hi).reshape(-1)
    _check_finite(columns, history.ids, horizon)
    style = (panel.columns if panel is not None else m.columns).get("time_sep", " ")
    return Forecast(columns, history.ids[short].tolist(), kind.short_series, horizon > trained_h, style,
                    bands.notes())


def quantile_column(q: float) -> str:
    """0.1 -> "y_hat_q10", 0.025 -> "y_hat_q2.5"."""
    return f"y_hat_q{round(100 * q, 6):g}"


class Bands:
    """Conformal bounds around the forecast `y_hat: (n_series, horizon)`, in original units: series i's radius at
    step h is error_scale[i] times the conformal quantile of the calibration `scores` at h; bounds stay at or
    above `floor`."""

    def __init__(self, scores: np.ndarray, error_scale: np.ndarray, y_hat: np.ndarray, floor: np.ndarray):
        self.scores, self.error_scale, self.y_hat, self.floor = scores, error_scale, y_hat, floor
        self.widened: list[float] = []

    def bounds(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.scores):
            raise ConfigError("this model kept no validation errors to calibrate intervals (its series were too "
                              "short for a validation window); retrain on longer series or drop --levels and "
                              "--quantiles")
        if extrapolated(len(self.scores), level) and level not in self.widened:
            self.widened.append(level)
        radius = interval_radius(self.scores, level, self.y_hat.shape[1])[None, :] * self.error_scale[:, None]
        return np.maximum(self.y_hat - radius, self.floor), np.maximum(self.y_hat + radius, self.floor)

    def notes(self) -> list[str]:
        if not self.widened:
            return []
        n = len(self.scores)
        shown = ", ".join(f"{100 * level:g}%" for level in sorted(self.widened))
        return [f"the model kept {n} calibration window{'s' if n != 1 else ''}, which measure intervals up to "
                f"{supported_level(n):.0f}%: the {shown} interval is extrapolated past the largest error (an "
                "exponential tail) and may be too wide or too narrow; train on more data for measured intervals"]


def _check_finite(columns: dict[str, np.ndarray], ids: np.ndarray, horizon: int) -> None:
    """A forecast is never NaN or infinite: TrainingError naming the first series and column where it would be
    (an overflow inside the model), rather than a CSV with empty cells."""
    for name, values in columns.items():
        if values.dtype.kind != "f":
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise TrainingError(f"the model's {name} for series '{ids[row // horizon]}' is not a finite number (a "
                                "numerical overflow in the model); nothing was written. Retrain it, e.g. with "
                                "--scaling robust or another --model")


def _select(history: History, mask: np.ndarray) -> History:
    return History(history.ids[mask], history.values[mask], history.last_ds[mask], history.length[mask])


def _history_from_panel(panel: Panel, m: Manifest, stored: Scaler, arrays: dict[str, np.ndarray]
                        ) -> tuple[History, Scaler, np.ndarray, np.ndarray]:
    """The last windows of `panel`'s series, their scaler, error scales (calibration) and whether each is never
    below 0: known series keep their stored scaler and error ratio, new ones get their own scaler and the pooled
    ratio; the error scale follows each series' recent variability in `panel` (metrics.end_scales)."""
    if panel.freq != m.freq:
        raise DataError(f"{panel.source}: the data is {timeindex.describe(panel.freq)} ({panel.freq}) but the "
                        f"model was trained on {timeindex.describe(m.freq)} ({m.freq}) data")
    L = m.window.lookback
    history = panel.last_windows(L)
    log = m.window.log
    where = panel.first_not_positive() if log else None
    if where:
        raise DataError(f"{panel.source}: the model forecasts the log of the target, which needs values above 0, "
                        f"but {where}; retrain it with --no-log")
    own = fit_scaler(panel.values, panel.starts, method=m.window.scaling, log=log)
    known = {sid: i for i, sid in enumerate(m.series)}
    index = np.array([known.get(sid, -1) for sid in history.ids])
    seen = index >= 0
    loc, scale = own.loc.copy(), own.scale.copy()
    loc[seen], scale[seen] = stored.loc[index[seen]], stored.scale[index[seen]]
    scaler = Scaler(loc, scale, log)
    ratio = np.where(seen, arrays["calibration/ratio"][np.maximum(index, 0)], m.calibration["ratio"])
    error_scale = end_scales(panel.values[:, 0], panel.starts, m.season, m.window.horizon) * ratio
    nonnegative = np.minimum.reduceat(panel.values[:, 0], panel.starts[:-1]) >= 0 if len(index) else \
        np.zeros(0, bool)
    nonnegative[seen] &= arrays["history/nonnegative"][index[seen]]  # and in the training data
    return history, scaler, error_scale, nonnegative


def _future_values(m: Manifest, future: Future | None, history: History, horizon: int) -> np.ndarray:
    """(n_series, horizon, n_future) the future covariates over the horizon of each series of `history`, in
    original units; DataError when there is no source or a value is missing."""
    if future is None:
        names = ", ".join(m.data.future_covariates)
        raise DataError(f"the model was trained with future covariates ({names}) and forecasts only with their "
                        "values over the horizon: pass --future FILE, or DATA whose rows after each series' last "
                        f"target value hold {names} (the target left empty)")
    return future.over(history.ids, history.last_ds, m.freq, horizon)


def _roll_forward(predictor, history: History, scaler: Scaler, freq: str, trained_h: int, horizon: int,
                  ahead: np.ndarray | None = None, columns: tuple[int, ...] = (), holidays: str | None = None,
                  static: np.ndarray | None = None) -> np.ndarray:
    """Forecast `horizon` steps; beyond the trained horizon, feed forecasts back in as inputs (past-only
    covariates are held at their last observed value, calendar features follow the future timestamps).

    `columns`: the input columns known over the horizon (the model's "future"): the future covariates, whose
    values over the horizon `ahead: (n, horizon, n_future)` gives (original units), then, with `holidays`, the
    holiday indicator, which the stamps give. Each block of `trained_h` steps sees their values at its own
    steps; a last block that runs past `horizon` sees the last supplied value repeated at the steps after it,
    whose forecasts are dropped. `static: (n, n_static)`: the encoded static covariates (the last input columns,
    held on every row)."""
    X = window_inputs(history, scaler, freq, holidays, static)
    n, L, n_features = X.shape
    n_columns = history.values.shape[2]
    n_stamp = n_features - n_columns - (0 if static is None else static.shape[1])  # calendar and holiday columns
    _, future = stamps_around(history.last_ds, freq, 1, horizon + trained_h)
    supplied = list(columns[: 0 if ahead is None else ahead.shape[2]])
    if supplied:
        scaled_ahead = ((ahead - scaler.loc[:, None, supplied]) / scaler.scale[:, None, supplied]).astype(np.float32)
    steps = []
    done = 0
    while done < horizon:
        block = None
        if columns:
            stamps = future[:, done : done + trained_h]
            block = np.zeros((n, trained_h, n_features), np.float32)
            block[:, :, n_columns:n_columns + n_stamp] = stamp_features(stamps.reshape(-1), freq, holidays).reshape(
                n, trained_h, n_stamp)
            if supplied:
                block[:, :, supplied] = scaled_ahead[:, np.minimum(np.arange(done, done + trained_h), horizon - 1)]
            block *= future_mask(0, trained_h, n_features, columns)  # the horizon rows carry these columns only
            pred = np.asarray(predictor(np.concatenate([X, block], axis=1)), np.float64)
        else:
            pred = np.asarray(predictor(X), np.float64)
        steps.append(pred)
        done += pred.shape[1]
        if done >= horizon:
            break
        new = np.repeat(X[:, -1:, :], pred.shape[1], axis=1).copy()  # holds the past-only covariates
        new[:, :, 0] = pred
        if supplied:
            new[:, :, supplied] = block[:, :, supplied]  # the future ones take their supplied values
        stamps = future[:, done - pred.shape[1] : done]
        if n_stamp:
            calendar = stamp_features(stamps.reshape(-1), freq, holidays)
            new[:, :, n_columns:n_columns + n_stamp] = calendar.reshape(n, pred.shape[1], n_stamp)
        X = np.concatenate([X, new.astype(np.float32)], axis=1)[:, -L:]
    scaled = np.concatenate(steps, axis=1)[:, :horizon]
    return scaler.inverse_target(scaled, np.arange(n))


def recent_history(artifact: Artifact, panel: Panel | None, rows: int) -> pd.DataFrame:
    """The last `rows` observations of each series (unique_id, ds, y): from `panel` when given, else what the
    model directory keeps (the lookback, or the longer context of a kind that keeps one, e.g. auto's 256)."""
    if panel is not None:
        return panel.tail(rows).to_frame()[["unique_id", "ds", "y"]]
    import pandas as pd

    m, a = artifact.manifest, artifact.arrays
    values = a["history/values"][:, :, 0]
    if "context/values" in a and a["context/values"].shape[1] > values.shape[1]:
        values = a["context/values"]
    values = values[:, -rows:]
    past, _ = stamps_around(a["history/last_ds"], m.freq, values.shape[1], 0)
    frame = pd.DataFrame({"unique_id": np.repeat(np.asarray(m.series, dtype=object), values.shape[1]),
                          "ds": past.reshape(-1), "y": values.reshape(-1)})
    return frame.dropna(subset=["y"])
