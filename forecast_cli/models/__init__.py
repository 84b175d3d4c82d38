"""The model registry: every kind of model is one entry of MODELS, a `Model` in a module of its own.

A kind says how it is fitted (`fit`: a FitTask -> Fitted) and how its saved parameters forecast
(`predictor`: X (n, lookback, n_features) scaled input windows, column 0 the target -> (n, horizon) scaled
forecasts; a kind that `sees_future` gets X (n, lookback + horizon, n_features) when it has future-known
columns, as windows.gather_windows makes them). Everything around that (windows, scaling, validation,
intervals, the model directory) is the same for every kind and lives in fit.py and forecast.py.
Adding a kind is one module and one line below.

The registry names modules rather than importing them, so that `forecast --help` and a forecast by seasonal
naive never import JAX or Flax; config.MODEL_KINDS lists the same names for the CLI (tests/test_layout.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli.errors import ConfigError

if TYPE_CHECKING:
    from forecast_cli.artifact import Manifest
    from forecast_cli.config import TrainSpec, WindowConfig
    from forecast_cli.data import Panel
    from forecast_cli.windows import Scaler

Predictor = Callable[[np.ndarray], np.ndarray]

MODELS = {  # kind -> "module:object"; the order is the one --help lists
    "auto": "forecast_cli.models.auto:AUTO",
    "gru": "forecast_cli.models.rnn:GRU",
    "lstm": "forecast_cli.models.rnn:LSTM",
    "elman": "forecast_cli.models.rnn:ELMAN",
    "esn": "forecast_cli.models.esn:ESN",
    "naive": "forecast_cli.models.baselines:NAIVE",
    "snaive": "forecast_cli.models.baselines:SNAIVE",
}


def get(kind: str) -> Model:
    """The Model registered as `kind`; ConfigError for a kind that is not."""
    if kind not in MODELS:
        raise ConfigError(f"Unknown --model '{kind}'; choose one of {', '.join(MODELS)}")
    module, name = MODELS[kind].split(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class FitTask:
    """What a kind is fitted on: the scaled model inputs of every series and where their windows start."""

    panel: Panel
    spec: TrainSpec
    window: WindowConfig
    inputs: np.ndarray  # (n_rows, n_features) float32: scaled target, covariates, calendar
    scaler: Scaler
    train_idx: np.ndarray  # rows where training windows start
    val_idx: np.ndarray  # rows where validation windows start
    fit_lengths: np.ndarray  # (n_series,) rows of each series before its validation part
    season: int
    key: object  # a jax.random key
    on_epoch: Callable[[int, dict], None] | None = None
    row_weight: np.ndarray | None = None  # (n_rows,) each window's weight in the loss (by its first row)
    devices: object = None  # the local devices to split work over (a parallel.Devices; None: one)
    total: Callable[[np.ndarray], np.ndarray] = np.asarray  # a sum over every process's windows
    # (parallel.reduction(): the identity with one process); models never import the process code themselves
    future: tuple[int, ...] = ()  # the input columns known over the horizon (--future-covariates): windows
    # carry their horizon values (windows.gather_windows), and a kind that sees the future records them


@dataclass
class Fitted:
    """A fitted kind: the arrays saved under "params/", the manifest's "model" (its hyperparameters, which rebuild
    it) and "fit" (how fitting went) sections, and the parameters to validate with (the same unless the model was
    refitted on the validation windows too)."""

    params: dict[str, np.ndarray]
    model: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    validated: dict[str, np.ndarray] | None = None  # None: `params`
    state: dict[str, np.ndarray] = field(default_factory=dict)  # saved under "state/": what `forecast update`
    # continues from (the ESN's normal equations, the networks' optimizer moments)

    def __post_init__(self):
        if self.validated is None:
            self.validated = self.params


class Model:
    """A kind of model. Subclasses set `name` and implement fit and predictor; the rest has defaults."""

    name: str
    trained_on_loss = False  # fitted by gradient descent on --loss (MASE needs per-series row weights)
    default_log: bool | None = None  # model the log of the target when --log is not given (None: when all > 0)
    context: bool = False  # forecasts also need the longer recent history of each series (arrays "context/")
    short_series = "seasonal naive"  # what forecasts the series shorter than the lookback (see complete)
    parameter_free = False  # fits nothing: its forecast of any window is out of sample, so every window of the
    # data calibrates its intervals (else the validation windows, or a holdout fit: fit.calibrate)
    sees_future = False  # takes future-known covariates: its predictor's windows then carry the horizon's values
    # of those columns (windows.gather_windows), as its model section's "future" lists them

    def fit(self, task: FitTask) -> Fitted:
        raise NotImplementedError

    def predictor(self, model: dict, horizon: int, season: int, params: dict[str, np.ndarray]) -> Predictor:
        """The forecast function of saved `params` with hyperparameters `model` (the manifest's "model"), for
        windows of the trained `horizon`."""
        raise NotImplementedError

    def update(self, task: FitTask, manifest: Manifest, params: dict[str, np.ndarray],
               state: dict[str, np.ndarray]) -> Fitted:
        """The model of `manifest` (its `params` and `state`) with the series' new rows folded in (`forecast
        update`): `task` is the grown panel, scaled by the model's scaler; task.train_idx are the windows to learn
        from, task.val_idx the newest windows (update.py says which). By default nothing is fitted: the same
        parameters (the baselines forecast from the data alone)."""
        return Fitted(params, manifest.model, {**manifest.fit, "kept": "nothing to fit"}, state=state)

    def after_fit(self, task: FitTask, predictor: Predictor, val_idx: np.ndarray, chosen: dict | None = None
                  ) -> tuple[dict, np.ndarray, np.ndarray | None]:
        """Once fitted: more manifest fields ({} by default), the validation windows to judge the model by
        (`val_idx` by default) and its scaled forecasts of them when they are not predictor's (None).
        `chosen`: the manifest fields that an earlier call chose on more windows (a calibration holdout fit,
        fit._holdout_fit), to keep rather than choose again."""
        return {}, val_idx, None

    def context_state(self, context: np.ndarray, season: int, fields: dict) -> dict[str, np.ndarray]:
        """Arrays the model directory keeps beside "context/values: (n_series, steps)" (fitted on it once, at
        training and at each update, so that a forecast need not): none by default. `fields`: the manifest
        fields after_fit chose."""
        return {}

    def complete(self, forecast: np.ndarray, short: np.ndarray, context: np.ndarray | None, horizon: int,
                 manifest: Manifest, saved: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The final forecast (n_series, horizon) in original units from `forecast`: the predictor's for series
        at least a lookback long, seasonal naive for the `short` others. `context`: the recent history of each
        series when the kind asked for it; `saved`: context_state's arrays for these rows when the forecast
        is of the saved context (None for fresh data). By default, `forecast`."""
        return forecast


def flatten_params(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """A nested dict of arrays -> {"a/b/c": array}."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_params(value, name + "/"))
        else:
            flat[name] = np.asarray(value)
    return flat


def batched(fn, X: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Apply a jitted fn in chunks padded to a power of two, so few shapes are ever compiled."""
    outputs = []
    for first in range(0, len(X), batch):
        part = X[first : first + batch]
        size = max(8, 1 << (len(part) - 1).bit_length())
        padded = np.concatenate([part, np.zeros((size - len(part),) + part.shape[1:], part.dtype)])
        outputs.append(np.asarray(fn(padded))[: len(part)])
    return np.concatenate(outputs) if outputs else np.zeros((0, 0))
