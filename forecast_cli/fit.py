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
from forecast_cli.metrics import base_scales, end_scales, local_scales, local_span, mase_weights, normalised_scores
from forecast_cli.models import FitTask
from forecast_cli.models.auto import context_rows
from forecast_cli.models.baselines import naive, seasonal_naive
from forecast_cli.windows import (
    calibration_holdout,
    default_val_size,
    fit_scaler,
    spread,
    spread_windows,
    window_chunks,
    window_forecasts,
    window_starts,
    window_targets,
)

if TYPE_CHECKING:
    from forecast_cli.data import Panel

CALIBRATION_WINDOWS = 20  # calibration windows wanted: 19 calibrate a 95% band without extrapolating


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
        digest.update(np.ascontiguousarray(part).view(np.uint8))  # its buffer, not a copy as bytes
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
    kind = models.get(spec.kind)
    if (panel.future_covariates or panel.holidays) and not kind.sees_future:
        flag = "--future-covariates" if panel.future_covariates else "--holidays"
        raise ConfigError(f"--model {spec.kind} forecasts from the target alone; {flag} needs gru, lstm, elman, esn "
                          "or auto")
    log = use_log(panel, kind.default_log if spec.log is None else spec.log)
    season = timeindex.season_length(panel.freq)
    several = parallel.process_count() > 1
    if several and panel.static:
        raise ConfigError("--static is for one process: each process would encode the categories of its own series")
    task = _task(panel, spec, window, kind, log, val_size, on_epoch)
    fitted = _fit(kind, task)
    _check_params(fitted.params)
    predictor = kind.predictor(fitted.model, H, season, fitted.validated)
    source, chosen = _holdout_fit(kind, task, fitted.info.get("best_epoch")), None  # where the calibration
    # errors come from
    if source is not None:  # too few validation windows: a second fit held out more; auto's blend follows it
        chosen, source.idx, source.forecast = kind.after_fit(source.task, source.predictor, source.idx)
    extra, val_idx, val_forecast = kind.after_fit(task, predictor, task.val_idx, chosen)
    validation, val_forecast = validate(predictor, task.inputs, panel, task.scaler, val_idx, window, season,
                                        val_forecast, task.future)
    if source is None and kind.parameter_free and not several:  # every window's forecast is out of sample
        most = max(2, limits.MAX_CALIBRATION_ERRORS // len(lengths))  # per series
        source = Source(task, predictor, spread_windows(starts, L, H, most), None, "every window")
    source = source or Source(task, predictor, val_idx, val_forecast, "validation")
    scores, ratio, scale, summary = calibrate(source, task)
    history = panel.last_windows(L)
    arrays = {f"params/{k}": v for k, v in fitted.params.items()}
    arrays.update({f"state/{k}": v for k, v in fitted.state.items()})
    scaler = task.scaler
    arrays.update({"scaler/loc": scaler.loc, "scaler/scale": scaler.scale, "history/values": history.values,
                   "history/last_ds": history.last_ds, "history/length": history.length,
                   "history/nonnegative": nonnegative(panel), "history/rows": lengths.astype(np.int64),
                   "history/digest": panel.digests(), "calibration/scores": scores,
                   "calibration/ratio": ratio, "calibration/scale": scale,
                   "calibration/pending": np.zeros((0, H)), "calibration/pending_series": np.zeros(0, np.int64),
                   "calibration/pending_row": np.zeros(0, np.int64)})  # forecasts `forecast update` will score
    encoding, encoded = static_inputs(panel)
    if encoding is not None:
        arrays["static/values"] = encoded
    if kind.context:
        every_length = parallel.gather_rows(lengths) if several else lengths
        context = panel.last_windows(context_rows(every_length, L), target_only=True)
        arrays["context/values"] = context.values[:, :, 0]
        arrays.update(kind.context_state(arrays["context/values"], season, extra))
    manifest = Manifest(
        kind=spec.kind, window=dataclasses.replace(window, scaling=spec.scaling, log=log), train=spec.train,
        data=spec.data, freq=panel.freq, season=season, covariates=tuple(panel.covariates), columns=panel.columns,
        n_features=int(task.inputs.shape[1]), calendar=tuple(timeindex.calendar_feature_names(panel.freq)),
        series=tuple(panel.ids.tolist()), fingerprint=fingerprint(panel), device=str(jax.devices()[0].platform),
        model=fitted.model, fit=fitted.info, validation=validation, calibration=summary, static=encoding, **extra)
    if several:
        manifest = _gather_across_processes(manifest, arrays)
    return Artifact(dataclasses.replace(manifest, training_seconds=round(time.perf_counter() - start, 3)), arrays)


def _task(panel: Panel, spec: TrainSpec, window: WindowConfig, kind: models.Model, log: bool, val_size: np.ndarray,
          on_epoch: Callable[[int, dict], None] | None) -> FitTask:
    """What `kind` is fitted on when the last `val_size: (n_series,)` steps of each series are held out."""
    import jax

    L, H = window.lookback, window.horizon
    starts, lengths = panel.starts, panel.lengths
    cut = lengths - val_size
    scaler = fit_scaler(panel.values, starts, np.where(cut >= 2, cut, lengths), spec.scaling, log)
    encoding, encoded = static_inputs(panel)
    inputs = model_inputs(scaler.transform(panel.values, starts), panel.ds, panel.freq, panel.holidays,
                          None if encoding is None else np.repeat(encoded, panel.lengths, axis=0))
    train_idx, val_idx = window_starts(starts, L, H, val_size)
    season = timeindex.season_length(panel.freq)
    row_weight = mase_weights(inputs[:, 0], starts, cut, season) \
        if spec.train.loss == "mase" and kind.trained_on_loss else None
    return FitTask(panel, spec, window, inputs, scaler, train_idx, val_idx, cut, season,
                   jax.random.key(spec.train.seed), on_epoch, row_weight, parallel.local_devices(spec.train.devices),
                   parallel.reduction(), future_columns(len(panel.covariates), len(panel.future_covariates),
                                                        len(timeindex.calendar_feature_names(panel.freq)),
                                                        panel.holidays))


def future_columns(n_covariates: int, n_future: int, n_calendar: int, holidays: str | None) -> tuple[int, ...]:
    """The model input columns known over the horizon: the future covariates (the last `n_future` of the
    covariates, after the target) and, with --holidays, the holiday indicator (after the sin and cos of the
    `n_calendar` calendar cycles)."""
    holiday = 1 + n_covariates + 2 * n_calendar
    return tuple(range(1 + n_covariates - n_future, 1 + n_covariates)) + ((holiday,) if holidays else ())


def static_inputs(panel: Panel) -> tuple[list[dict] | None, np.ndarray | None]:
    """(the encoding of `panel`'s --static columns, (n_series, width) each series' encoded values); (None, None)
    without any."""
    if not panel.static:
        return None, None
    from forecast_cli import static

    encoding = static.fit_encoding(panel.static, panel.static_values)
    return encoding, static.encode(encoding, panel.static_values, panel.source, panel.ids)


@dataclasses.dataclass
class Source:
    """Where calibration errors come from: `predictor`'s forecasts of the windows starting at rows `idx` of
    task.inputs (or `forecast`, those forecasts in scaled units when already made)."""

    task: FitTask
    predictor: models.Predictor
    idx: np.ndarray
    forecast: np.ndarray | None
    origins: str  # the manifest's calibration.origins: "validation", "every window" or "holdout"
    holdout: int = 0  # with "holdout": the most steps it held out of a series


def _holdout_fit(kind: models.Model, task: FitTask, best_epoch: int | None = None) -> Source | None:
    """A second fit of `kind` that holds out enough of each series to give CALIBRATION_WINDOWS windows
    (windows.calibration_holdout), when the validation windows are fewer; None when they are not, when no
    series has room for more, for kinds that need no fit, and with several processes. It skips what only
    the final model needs (the refit on every window, the ensemble), and a network trains for at most the
    `best_epoch` that early stopping chose in the first fit, without waiting out the patience again (its best
    weights over those epochs are kept)."""
    if kind.parameter_free or parallel.process_count() > 1:
        return None
    holdout = calibration_holdout(task.panel.lengths, task.window.lookback, task.window.horizon,
                                  task.panel.lengths - task.fit_lengths, CALIBRATION_WINDOWS)
    if holdout is None:
        return None
    train = dataclasses.replace(task.spec.train, refit=False, ensemble=1)
    if best_epoch:
        train = dataclasses.replace(train, epochs=min(train.epochs, best_epoch), patience=0)
    quick = dataclasses.replace(task.spec, train=train)
    wider = _task(task.panel, quick, task.window, kind, task.scaler.log, holdout, None)
    fitted = _fit(kind, wider)
    _check_params(fitted.params)
    predictor = kind.predictor(fitted.model, task.window.horizon, task.season, fitted.validated)
    return Source(wider, predictor, wider.val_idx, None, "holdout", int(holdout.max()))


def calibrate(source: Source, final: FitTask) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Normalised conformal scores of the calibration windows (metrics.py) and each series' error ratio and
    error scale at its end: (scores (n_windows, horizon) float32, ratio (n_series,), scale (n_series,) in
    original units, the manifest's "calibration" summary). Errors are taken in original units, not the model's
    scaled (or log) ones: a radius applied in logs turns into an exponential upper bound, which on short
    trending series (M1 yearly) was many times wider than needed. Each error is scaled by its series' local
    variability just before the window's origin, the radius of a forecast by that just before the series' end:
    on M1 yearly (series that grow) and a river with floods, a scale of the whole series under-covered."""
    task, L, H = source.task, final.window.lookback, final.window.horizon
    starts, season, target = final.panel.starts, final.season, final.panel.values[:, 0]
    n_series, span = len(starts) - 1, local_span(H, season)
    idx, forecast = source.idx, source.forecast
    series = np.searchsorted(starts, idx, side="right") - 1
    if len(idx) > limits.MAX_CALIBRATION_ERRORS:  # 100,000 series x 500 steps have 4.4 million validation windows
        each = np.bincount(series, minlength=n_series)
        keep = spread(np.cumsum(each) - each, each, max(2, limits.MAX_CALIBRATION_ERRORS // n_series))
        idx, series, forecast = idx[keep], series[keep], None if forecast is None else forecast[keep]
    if len(idx):
        if forecast is None:
            pred, Y = window_forecasts(source.predictor, task.inputs, idx, L, H, task.future)
        else:
            pred, Y = np.asarray(forecast, np.float64), window_targets(task.inputs, idx, L, H)
        _check_forecasts(pred)
        abs_errors = task.scaler.inverse_target(pred, series)
        del pred
        abs_errors -= task.scaler.inverse_target(Y, series)
        np.abs(abs_errors, out=abs_errors)
        _check_forecasts(abs_errors)
    else:
        abs_errors = np.zeros((0, H))
    window_scale = base_scales(local_scales(target, starts, series, idx + L, season, span))
    scores, ratio, pooled = normalised_scores(abs_errors, series, window_scale, n_series, final.total)
    scores = scores[np.argsort(final.panel.ds[idx + L], kind="stable")]  # oldest origin first: `update`
    if len(scores) > limits.MAX_CALIBRATION_WINDOWS:  # drops from the front
        scores = scores[np.linspace(0, len(scores) - 1, limits.MAX_CALIBRATION_WINDOWS).astype(int)]
    scale = end_scales(target, starts, season, H) * ratio
    summary = {"windows": int(len(scores)), "origins": source.origins, "holdout": source.holdout, "ratio": pooled}
    return scores.astype(np.float32), ratio, scale, summary


def nonnegative(panel: Panel) -> np.ndarray:
    """(n_series,) whether each series' target was never below 0: its forecasts and bounds are clipped at 0."""
    if not len(panel.ids):
        return np.zeros(0, bool)
    return np.minimum.reduceat(panel.values[:, 0], panel.starts[:-1]) >= 0


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
    for name in ("scaler/loc", "scaler/scale", "history/values", "history/length", "history/nonnegative",
                 "history/rows", "calibration/scores", "calibration/ratio", "calibration/scale", "context/values"):
        if name not in arrays:
            continue
        arrays[name] = parallel.gather_rows(arrays[name])
    last = arrays["history/last_ds"]
    arrays["history/last_ds"] = parallel.gather_rows(last.view(np.int64)).view(last.dtype)
    arrays["history/digest"] = parallel.gather_rows(arrays["history/digest"].view(np.int64)).view(np.uint64)
    fingerprints = parallel.gather_strings([manifest.fingerprint])
    v = manifest.validation
    names = ("model_mae", "naive_mae", "snaive_mae")
    local = np.array([v["windows"]] + [v.get(n, 0.0) * v["windows"] for n in names], np.float64)
    total = parallel.allsum(local)
    validation = {"windows": int(total[0])}
    if total[0]:
        validation.update({n: float(t / total[0]) for n, t in zip(names, total[1:], strict=True)})
    calibration = {**manifest.calibration, "windows": int(len(arrays["calibration/scores"]))}
    return dataclasses.replace(
        manifest, series=tuple(parallel.gather_strings(manifest.series).tolist()), calibration=calibration,
        fingerprint=hashlib.sha256(",".join(fingerprints).encode()).hexdigest()[:16], validation=validation,
        processes=parallel.process_count())


def _fit(kind: models.Model, task: FitTask) -> models.Fitted:
    """kind.fit(task) (a seam for tests)."""
    return kind.fit(task)


def validate(predictor, inputs, panel, scaler, val_idx, window, season, pred: np.ndarray | None = None,
             future: tuple[int, ...] = ()) -> tuple[dict, np.ndarray]:
    """On the validation windows: MAE in original units of the model and of the naive baselines, and the model's
    forecasts of them (scaled units, (n_windows, horizon)). `pred`: those forecasts when already known, else
    predictor(X); `future`: the input columns the windows carry over the horizon."""
    L, H = window.lookback, window.horizon
    n = len(val_idx)
    if not n:
        return {"windows": 0}, np.zeros((0, H))
    series = np.searchsorted(panel.starts, val_idx, side="right") - 1
    forecasts = np.zeros((n, H)) if pred is None else np.asarray(pred, np.float64)
    last = min(L, max(season, 1))  # of the lookback, what the baselines forecast from
    sums = np.zeros(3)  # absolute errors of the model, naive, seasonal naive
    for part, X, Y in window_chunks(inputs, val_idx, L, H, future):  # 100,000 series x 500 steps have 4.4
        # million validation windows: their errors are added up chunk by chunk, not held
        if pred is None:
            forecasts[part] = predictor(X)
        _check_forecasts(forecasts[part])
        of = series[part]
        truth, history = scaler.inverse_target(Y, of), scaler.inverse_target(X[:, L - last : L, 0], of)
        for i, f in enumerate((scaler.inverse_target(forecasts[part], of), naive(history, H),
                               seasonal_naive(history, H, season))):
            sums[i] += np.abs(f - truth).sum()
    metrics = {"windows": int(n)}
    metrics.update({f"{name}_mae": float(total / (n * H))
                    for name, total in zip(("model", "naive", "snaive"), sums, strict=True)})
    return metrics, forecasts


def _check_forecasts(pred: np.ndarray) -> None:
    if not np.isfinite(pred).all():
        raise TrainingError("the model's forecasts of the validation windows are not finite numbers (a numerical "
                            "overflow); nothing was saved. Try --scaling robust or another --model")
