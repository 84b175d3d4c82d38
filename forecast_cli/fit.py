"""From a Panel to a trained Artifact: the library behind `forecast train`.

It prints nothing and reports progress through an optional callback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli import limits, models, parallel, timeindex
from forecast_cli.artifact import Artifact, Manifest
from forecast_cli.config import TrainSpec, WindowConfig
from forecast_cli.errors import ConfigError, DataError, TrainingError
from forecast_cli.features import model_inputs, stamps_around
from forecast_cli.metrics import mase_weights
from forecast_cli.models import FitTask
from forecast_cli.models.auto import context_rows
from forecast_cli.models.baselines import naive, seasonal_naive
from forecast_cli.windows import default_val_size, fit_scaler, gather_windows, window_starts

if TYPE_CHECKING:
    from forecast_cli.data import Panel


def default_lookback(horizon: int, season: int) -> int:
    """A few seasonal cycles, and at least two horizons: 21 for daily, 72 for hourly, 36 for monthly."""
    return max(2 * horizon, 3 * season if 3 * season <= 200 else season)


def resolve_window(panel: Panel, horizon: int | None, lookback: int | None) -> WindowConfig:
    """The window sizes for this panel; DataError when no series is long enough for them.

    When no series is long enough to hold back a validation part as well, the model is trained on every
    window without one (val_size 0: no early stopping, no interval calibration)."""
    season = timeindex.season_length(panel.freq)
    horizon = timeindex.default_horizon(panel.freq) if horizon is None else horizon
    if not 1 <= horizon <= limits.MAX_HORIZON or (lookback is not None and not 1 <= lookback <= limits.MAX_LOOKBACK):
        raise ConfigError(f"--horizon must be between 1 and {limits.MAX_HORIZON:,} and --lookback between 1 and "
                          f"{limits.MAX_LOOKBACK:,}")
    lengths = parallel.gather_rows(panel.lengths) if parallel.process_count() > 1 else panel.lengths
    if not len(lengths):
        raise DataError(f"{panel.source}: no series left to train on")
    room = lengths - default_val_size(lengths, horizon) - horizon  # the longest lookback each series allows
    val_size = None
    if room.max() < (lookback or 1):
        room, val_size = lengths - horizon, 0
    if lookback is None:
        typical = int(np.median(room))
        lookback = max(1, min(default_lookback(horizon, season), typical if typical >= 1 else int(room.max())))
    if room.max() < lookback:
        longest = int(lengths.max())
        raise DataError(
            f"{panel.source}: every series is too short for lookback={lookback} + horizon={horizon}: the longest "
            f"has {longest} rows. Use a smaller --lookback or --horizon"
        )
    return WindowConfig(lookback=lookback, horizon=horizon, val_size=val_size)


def fingerprint(panel: Panel) -> str:
    digest = hashlib.sha256()
    digest.update("\0".join(map(str, panel.ids)).encode())
    for part in (panel.ds, panel.values):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]


def fit_model(panel: Panel, spec: TrainSpec, on_epoch: Callable[[int, dict], None] | None = None) -> Artifact:
    """Fit a model of kind `spec.kind` to every series of `panel` (one global model)."""
    import jax

    start = time.perf_counter()
    window = resolve_window(panel, spec.horizon, spec.lookback)
    L, H = window.lookback, window.horizon
    starts, lengths = panel.starts, panel.lengths
    try:  # refused now, not at predict time: a forecast of the horizon must not run past the last stamp
        stamps_around(panel.ds[starts[1:] - 1], panel.freq, 0, H)
    except DataError as e:
        raise DataError(f"{panel.source}: horizon {H}: {e}") from None
    val_size = default_val_size(lengths, H) if window.val_size is None else np.full(len(lengths), window.val_size)
    cut = lengths - val_size
    kind = models.get(spec.kind)
    log = use_log(panel, kind.default_log if spec.log is None else spec.log)
    scaler = fit_scaler(panel.values, starts, np.where(cut >= 2, cut, lengths), spec.scaling, log)
    inputs = model_inputs(scaler.transform(panel.values, starts), panel.ds, panel.freq)
    train_idx, val_idx = window_starts(starts, L, H, val_size)
    key = jax.random.key(spec.train.seed)
    season = timeindex.season_length(panel.freq)
    several = parallel.process_count() > 1
    row_weight = mase_weights(inputs[:, 0], starts, cut, season) \
        if spec.train.loss == "mase" and kind.trained_on_loss else None
    task = FitTask(panel, spec, window, inputs, scaler, train_idx, val_idx, cut, season, key, on_epoch,
                   row_weight, parallel.local_devices(spec.train.devices), parallel.reduction())
    fitted = _fit(kind, task)
    _check_params(fitted.params)
    predictor = kind.predictor(fitted.model, H, season, fitted.validated)
    extra, val_idx, val_forecast = kind.after_fit(task, predictor, val_idx)
    validation, abs_errors = validate(predictor, inputs, panel, scaler, val_idx, window, season, val_forecast)
    history = panel.last_windows(L)
    arrays = {f"params/{k}": v for k, v in fitted.params.items()}
    arrays.update({"scaler/loc": scaler.loc, "scaler/scale": scaler.scale, "history/values": history.values,
                   "history/last_ds": history.last_ds, "history/length": history.length,
                   "calibration/abs_errors": abs_errors})
    if kind.context:
        every_length = parallel.gather_rows(lengths) if several else lengths
        context = panel.last_windows(context_rows(every_length, L), target_only=True)
        arrays["context/values"] = context.values[:, :, 0]
    manifest = Manifest(
        kind=spec.kind, window=dataclasses.replace(window, scaling=spec.scaling, log=log), train=spec.train,
        data=spec.data, freq=panel.freq, season=season, covariates=tuple(panel.covariates), columns=panel.columns,
        n_features=int(inputs.shape[1]), calendar=tuple(timeindex.calendar_feature_names(panel.freq)),
        series=tuple(panel.ids.tolist()), nonnegative=bool(panel.values[:, 0].min() >= 0),
        fingerprint=fingerprint(panel), device=str(jax.devices()[0].platform), model=fitted.model,
        fit=fitted.info, validation=validation, **extra)
    if several:
        manifest = _gather_across_processes(manifest, arrays)
    return Artifact(dataclasses.replace(manifest, training_seconds=round(time.perf_counter() - start, 3)), arrays)


def _check_params(params: dict[str, np.ndarray]) -> None:
    """TrainingError when a trained weight is NaN or infinite: such a model would forecast NaN."""
    for name, value in params.items():
        if not np.isfinite(value).all():
            raise TrainingError(f"training gave non-finite weights ({name}); nothing was saved. Try --scaling robust, "
                                "a lower --learning-rate or another --model")


def use_log(panel: Panel, wanted: bool | None) -> bool:
    """Whether to model the log of the target: as asked, else when every target value (of every process) is
    above 0. DataError when asked for but a value is not."""
    where = panel.first_not_positive()
    if parallel.process_count() > 1:  # every process must decide alike
        anywhere = parallel.allsum(np.array(float(where is not None))) > 0
        where = where or ("another process's series has one at or below 0" if anywhere else None)
    if wanted and where:
        raise DataError(f"{panel.source}: --log needs target values above 0, but {where}; use --no-log")
    return where is None if wanted is None else bool(wanted)


def _gather_across_processes(manifest: Manifest, arrays: dict) -> Manifest:
    """Put every process's series into the artifact (in process order); the weights are already shared."""
    for name in ("scaler/loc", "scaler/scale", "history/values", "history/length", "calibration/abs_errors",
                 "context/values"):
        if name not in arrays:
            continue
        arrays[name] = parallel.gather_rows(arrays[name])
    last = arrays["history/last_ds"]
    arrays["history/last_ds"] = parallel.gather_rows(last.view(np.int64)).view(last.dtype)
    fingerprints = parallel.gather_strings([manifest.fingerprint])
    v = manifest.validation
    names = ("model_mae", "naive_mae", "snaive_mae")
    local = np.array([v["windows"]] + [v.get(n, 0.0) * v["windows"] for n in names], np.float64)
    total = parallel.allsum(local)
    validation = {"windows": int(total[0])}
    if total[0]:
        validation.update({n: float(t / total[0]) for n, t in zip(names, total[1:], strict=True)})
    return dataclasses.replace(
        manifest, series=tuple(parallel.gather_strings(manifest.series).tolist()),
        nonnegative=bool(parallel.allsum(np.array(not manifest.nonnegative)) == 0),
        fingerprint=hashlib.sha256(",".join(fingerprints).encode()).hexdigest()[:16], validation=validation,
        processes=parallel.process_count())


def _fit(kind: models.Model, task: FitTask) -> models.Fitted:
    """kind.fit(task) (a seam for tests)."""
    return kind.fit(task)


def validate(predictor, inputs, panel, scaler, val_idx, window, season, pred: np.ndarray | None = None
             ) -> tuple[dict, np.ndarray]:
    """On the validation windows: MAE in original units of the model and of the naive baselines, and the
    model's absolute errors in scaled units, (n_windows, horizon), which calibrate the prediction intervals.
    `pred`: the model's forecasts of those windows when already known (scaled), else predictor(X)."""
    L, H = window.lookback, window.horizon
    if not len(val_idx):
        return {"windows": 0}, np.zeros((0, H), np.float32)
    X, Y = gather_windows(inputs, val_idx, L, H)
    series = np.searchsorted(panel.starts, val_idx, side="right") - 1
    pred = np.asarray(predictor(X) if pred is None else pred, np.float64)
    if not np.isfinite(pred).all():
        raise TrainingError("the model's forecasts of the validation windows are not finite numbers (a numerical "
                            "overflow); nothing was saved. Try --scaling robust or another --model")
    truth = scaler.inverse_target(Y, series)
    raw_history = scaler.inverse_target(X[:, :, 0], series)
    forecasts = {
        "model": scaler.inverse_target(pred, series),
        "naive": naive(raw_history, H),
        "snaive": seasonal_naive(raw_history, H, season),
    }
    metrics = {"windows": int(len(val_idx))}
    metrics.update({f"{name}_mae": float(np.mean(np.abs(f - truth))) for name, f in forecasts.items()})
    abs_errors = np.abs(pred - Y)
    if len(abs_errors) > limits.MAX_CALIBRATION_WINDOWS:
        abs_errors = abs_errors[np.linspace(0, len(abs_errors) - 1, limits.MAX_CALIBRATION_WINDOWS).astype(int)]
    return metrics, abs_errors.astype(np.float32)
