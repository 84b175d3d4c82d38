"""From a Panel to a trained Artifact: the library behind `forecast train`.

It prints nothing and reports progress through an optional callback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli import blend, distributed, limits, timeindex
from forecast_cli.config import (
    RECURRENT_KINDS,
    DataConfig,
    ESNConfig,
    RecurrentConfig,
    TrainConfig,
    WindowConfig,
)
from forecast_cli.errors import ConfigError, DataError, TrainingError
from forecast_cli.features import last_windows, model_inputs, stamps_around
from forecast_cli.metrics import mase_weights
from forecast_cli.models import flatten_params, make_predictor
from forecast_cli.models.baselines import naive, seasonal_naive
from forecast_cli.persistence import Artifact
from forecast_cli.windows import default_val_size, fit_scaler, gather_windows, window_starts

if TYPE_CHECKING:
    from forecast_cli.data import Panel


@dataclass(frozen=True)
class TrainSpec:
    """Everything `forecast train` decides besides the data."""

    kind: str = "auto"
    horizon: int | None = None  # default: about one season of the frequency (timeindex.default_horizon)
    lookback: int | None = None  # default: default_lookback(), capped by the data
    scaling: str = "standard"
    log: bool | None = None  # model the log of the target; None: when every target value is above 0
    recurrent: RecurrentConfig = RecurrentConfig()
    esn: ESNConfig = ESNConfig()
    train: TrainConfig = TrainConfig()
    data: DataConfig = field(default_factory=DataConfig)


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
    lengths = distributed.gather_rows(panel.lengths) if distributed.process_count() > 1 else panel.lengths
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


def fit_model(panel: Panel, spec: TrainSpec, on_epoch: Callable[[int, dict], None] | None = None
                   ) -> Artifact:
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
    log = use_log(panel, False if spec.kind == "esn" and spec.log is None else spec.log)  # the ESN measured
    # worse on logs (M1 MASE +4-25%, docs/accuracy.md), so it models them only when asked
    scaler = fit_scaler(panel.values, starts, np.where(cut >= 2, cut, lengths), spec.scaling, log)
    inputs = model_inputs(scaler.transform(panel.values, starts), panel.ds, panel.freq)
    train_idx, val_idx = window_starts(starts, L, H, val_size)
    key = jax.random.key(spec.train.seed)
    manifest = {
        "kind": spec.kind,
        "window": {**window.to_dict(), "scaling": spec.scaling, "log": log},
        "train": spec.train.to_dict(),
        "data": spec.data.to_dict(),
        "freq": panel.freq,
        "season": timeindex.season_length(panel.freq),
        "covariates": list(panel.covariates),
        "columns": panel.columns,
        "n_features": int(inputs.shape[1]),
        "calendar": list(timeindex.calendar_feature_names(panel.freq)),
        "series": panel.ids.tolist(),
        "nonnegative": bool(panel.values[:, 0].min() >= 0),  # forecasts and intervals are clipped at 0
        "fingerprint": fingerprint(panel),
        "device": str(jax.devices()[0].platform),
    }
    network = dataclasses.replace(spec, kind="gru") if spec.kind == "auto" else spec
    mase_loss = spec.train.loss == "mase" and network.kind in RECURRENT_KINDS
    row_weight = mase_weights(inputs[:, 0], starts, cut, manifest["season"]) if mase_loss else None
    params, fit_info, validated = _fit(network, inputs, train_idx, val_idx, window, key, on_epoch, row_weight)
    _check_params(params)
    manifest["model"] = fit_info.pop("model_config")
    manifest["fit"] = fit_info
    predictor = make_predictor(spec.kind, manifest, validated)
    blended = None
    if spec.kind == "auto":
        val_idx = val_idx[np.linspace(0, len(val_idx) - 1, blend.MAX_WINDOWS).astype(int)] \
            if len(val_idx) > blend.MAX_WINDOWS else val_idx
        manifest["blend"], blended = _choose_blend(predictor, inputs, panel, scaler, val_idx, window,
                                                   manifest["season"], cut)
    manifest["validation"], abs_errors = validate(predictor, inputs, panel, scaler, val_idx, window,
                                                  manifest["season"], blended)
    history = last_windows(panel.ids, panel.values, panel.ds, starts, L)
    arrays = {f"params/{k}": v for k, v in params.items()}
    arrays.update({"scaler/loc": scaler.loc, "scaler/scale": scaler.scale, "history/values": history.values,
                   "history/last_ds": history.last_ds, "history/length": history.length,
                   "calibration/abs_errors": abs_errors})
    if spec.kind == "auto":
        every_length = distributed.gather_rows(lengths) if distributed.process_count() > 1 else lengths
        context = last_windows(panel.ids, panel.values[:, :1], panel.ds, starts, blend.context_rows(every_length, L))
        arrays["context/values"] = context.values[:, :, 0]
    if distributed.process_count() > 1:
        _gather_across_processes(manifest, arrays)
    manifest["training_seconds"] = round(time.perf_counter() - start, 3)
    return Artifact(manifest, arrays)


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
    if distributed.process_count() > 1:  # every process must decide alike
        anywhere = distributed.allsum(np.array(float(where is not None))) > 0
        where = where or ("another process's series has one at or below 0" if anywhere else None)
    if wanted and where:
        raise DataError(f"{panel.source}: --log needs target values above 0, but {where}; use --no-log")
    return where is None if wanted is None else bool(wanted)


def _choose_blend(predictor, inputs, panel, scaler, val_idx, window, season, cut
                  ) -> tuple[dict, np.ndarray | None]:
    """The network's weight and Theta's drift in `auto` and the blended validation forecasts (scaled units), or
    weight 1 (Theta left out) when there are no validation windows to judge by. They are chosen on the MASE of the
    blend in original units (each window's error divided by its series' in-sample seasonal-naive error). With
    several processes, each adds up its own windows' errors and the sums are shared, so all choose alike."""
    several = distributed.process_count() > 1
    windows = int(distributed.allsum(np.array(len(val_idx)))) if several else len(val_idx)
    if not windows:
        return {"weight": 1.0, "drift": 0.5, "errors": {}}, None
    sums, total = np.zeros(len(blend.PAIRS)), 0.0
    if len(val_idx):
        L, H = window.lookback, window.horizon
        X, Y = gather_windows(inputs, val_idx, L, H)
        series = np.searchsorted(panel.starts, val_idx, side="right") - 1
        network = scaler.inverse_target(np.asarray(predictor(X), np.float64), series)
        by_theta = blend.theta_on_windows(panel.values[:, 0], panel.starts, val_idx, L, H, season)
        mase_weight = mase_weights(panel.values[:, 0], panel.starts, cut, season)[val_idx]
        sums = blend.blend_error_sums(network, by_theta, scaler.inverse_target(Y, series), mase_weight)
        total = float(np.sum(mase_weight))
    if several:
        shared = distributed.allsum(np.append(sums, total))
        sums, total = shared[:-1], float(shared[-1])
    try:
        drift, weight, errors = blend.choose_from_sums(sums, total)
    except ValueError as e:
        raise TrainingError(f"cannot choose the blend: {e} (a numerical overflow); nothing was saved. Try "
                            "--scaling robust or another --model") from e
    if not len(val_idx):
        return {"weight": weight, "drift": drift, "errors": errors}, np.zeros((0, window.horizon))
    blended = weight * network + (1 - weight) * by_theta[drift]
    return {"weight": weight, "drift": drift, "errors": errors}, scaler.target_to_scaled(blended, series)


def _gather_across_processes(manifest: dict, arrays: dict) -> None:
    """Put every process's series into the artifact (in process order); the weights are already shared."""
    for name in ("scaler/loc", "scaler/scale", "history/values", "history/length", "calibration/abs_errors",
                 "context/values"):
        if name not in arrays:
            continue
        arrays[name] = distributed.gather_rows(arrays[name])
    last = arrays["history/last_ds"]
    arrays["history/last_ds"] = distributed.gather_rows(last.view(np.int64)).view(last.dtype)
    manifest["series"] = distributed.gather_strings(manifest["series"]).tolist()
    manifest["nonnegative"] = bool(distributed.allsum(np.array(not manifest["nonnegative"])) == 0)
    fingerprints = distributed.gather_strings([manifest["fingerprint"]])
    manifest["fingerprint"] = hashlib.sha256(",".join(fingerprints).encode()).hexdigest()[:16]
    v = manifest["validation"]
    names = ("model_mae", "naive_mae", "snaive_mae")
    local = np.array([v["windows"]] + [v.get(n, 0.0) * v["windows"] for n in names], np.float64)
    total = distributed.allsum(local)
    manifest["validation"] = {"windows": int(total[0])}
    if total[0]:
        manifest["validation"].update({n: float(t / total[0]) for n, t in zip(names, total[1:], strict=True)})
    manifest["processes"] = distributed.process_count()


def _fit(spec, inputs, train_idx, val_idx, window, key, on_epoch, row_weight=None):
    """Fit the model; returns (flat params, info including "model_config", the flat params to validate with:
    the same unless the model was refitted on the validation windows too)."""
    L, H = window.lookback, window.horizon
    if spec.kind in RECURRENT_KINDS:
        if not len(train_idx) and distributed.process_count() == 1:
            raise DataError("no series is long enough to give a training window; use a smaller --lookback")
        return _fit_recurrent(spec, inputs, train_idx, val_idx, window, key, on_epoch, row_weight)
    if spec.kind == "esn":
        from forecast_cli import sharding
        from forecast_cli.models import esn

        config = spec.esn
        reservoir = esn.init_reservoir(inputs.shape[1], config, key)
        try:
            mesh = sharding.data_mesh(spec.train.devices)
            readout, info = esn.fit(reservoir, inputs, train_idx, val_idx, L, H, config, mesh)
        except ValueError as e:
            raise DataError(f"cannot fit the ESN readout: {e}; use longer series or a smaller --horizon") from e
        if on_epoch:
            on_epoch(1, {"train_loss": float("nan"), "val_loss": info["val_loss"] or float("nan"),
                         "best_val_loss": info["val_loss"] or float("nan")})
        params = {**reservoir, "readout": readout}
        return params, {**info, "model_config": config.to_dict()}, params
    if spec.kind in ("naive", "snaive"):
        return {}, {"model_config": {}}, {}
    raise ConfigError(f"Unknown --model '{spec.kind}'")


def _fit_recurrent(spec, inputs, train_idx, val_idx, window, key, on_epoch, row_weight):
    """Early stopping on the validation windows, then (with `refit`) the same network trained again on every
    window for the epochs early stopping chose, plus `ensemble - 1` more from other seeds trained that way;
    their forecasts are averaged. Members after the first are stored under "member<k>/"."""
    import jax
    from flax import nnx

    from forecast_cli import train
    from forecast_cli.models import recurrent

    L, H = window.lookback, window.horizon
    config = RecurrentConfig(**{**spec.recurrent.to_dict(), "cell": spec.kind})
    dropout = config.dropout > 0

    def flat(model):
        return flatten_params(nnx.to_pure_dict(nnx.state(model)))

    model_key, train_key = jax.random.split(key)
    model = recurrent.build(inputs.shape[1], H, config, model_key)
    several = distributed.process_count() > 1
    if several:
        model, history = train.fit_across_processes(model, inputs, train_idx, val_idx, L, H, spec.train,
                                                    on_epoch=on_epoch, row_weight=row_weight)
    else:
        model, history = train.fit(model, inputs, train_idx, val_idx, L, H, spec.train, train_key,
                                   dropout=dropout, on_epoch=on_epoch, row_weight=row_weight)
    info = {"epochs": len(history.train_loss), "best_epoch": history.best_epoch,
            "stopped_early": history.stopped_early, "train_loss": history.train_loss[-1],
            "val_loss": history.val_loss[history.best_epoch - 1], "seconds": round(history.seconds, 3)}
    validated = params = flat(model)
    validation_anywhere = distributed.allsum(np.array(len(val_idx))) > 0 if several else len(val_idx) > 0
    if spec.train.refit and validation_anywhere:
        every = np.union1d(train_idx, val_idx)
        again = dataclasses.replace(spec.train, epochs=history.best_epoch, patience=0)
        params = {}
        for member in range(spec.train.ensemble):
            if member:
                model_key, train_key = jax.random.split(jax.random.fold_in(key, member))
            fresh = recurrent.build(inputs.shape[1], H, config, model_key)
            if several:  # every process refits alike: the same epochs and seeds, each on its own windows
                model, _ = train.fit_across_processes(fresh, inputs, every, np.zeros(0, np.int64), L, H, again,
                                                      row_weight=row_weight)
            else:
                model, _ = train.fit(fresh, inputs, every, np.zeros(0, np.int64), L, H, again, train_key,
                                     dropout=dropout, row_weight=row_weight)
            params.update({(f"member{member}/{k}" if member else k): v for k, v in flat(model).items()})
        refit_windows = int(distributed.allsum(np.array(len(every)))) if several else len(every)
        info.update(refit_windows=refit_windows, members=spec.train.ensemble)
    return params, {**info, "model_config": config.to_dict()}, validated


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
